"""The weights-free benchmark's anchors are run at fair settings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
wf = pytest.importorskip("weights_free")

SPACING = (5.0, 0.7, 0.7)


def ellipsoid_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright ellipsoid (radius 5 mm in-plane, 3 slices) in noisy tissue, in [0, 1]."""
    z, r, c = np.ogrid[:9, :64, :64]
    truth = ((z - 4) * 5.0 / 7.0) ** 2 + ((r - 32) * 0.7 / 5.0) ** 2 + (
        (c - 32) * 0.7 / 5.0
    ) ** 2 <= 1.0
    rng = np.random.default_rng(seed)
    image = np.where(truth, 0.6, 0.4) + rng.normal(0, 0.05, truth.shape)
    return np.clip(image, 0, 1).astype(np.float32), truth


@pytest.mark.parametrize("method", list(wf.ANCHORS))
def test_anchor_finds_a_clear_object_from_one_click(method):
    # A distinct object from one click: every anchor at its benchmark settings
    # must find most of it (the random walker at skimage's default beta with the
    # voxel spacing and no denoising found Dice 0.26 here).
    image, truth = ellipsoid_case()
    out = wf.run_anchor(wf.ANCHORS[method], image, truth, SPACING, 4, "1 click")
    assert wf.dice(out, truth) > 0.7
