"""A tiny synthetic MSD task the runner tests share."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sam2vol import Volume
from sam2vol.io import write_volume

THRESHOLD_ENGINE = "tests.helpers:ThresholdEngine"
REPO = Path(__file__).resolve().parents[2]


def make_msd(root: Path, n_cases: int = 4) -> Path:
    """Cases with two bright boxes (labels 1 and 2) of varying size on a 20x16x10 grid."""
    training = []
    for n in range(n_cases):
        label = np.zeros((20, 16, 10), np.uint8)
        label[2 : 9 + n, 2:9, 2:8] = 1
        label[12:18, 3 : 10 + n, 3 : 7 + n % 2] = 2
        rng = np.random.default_rng(n)
        data = np.where(label > 0, 900.0, 100.0) + rng.normal(0, 5, label.shape)
        affine = np.diag([0.9, 0.9, 2.5, 1.0])
        for folder, array in (("imagesTr", data.astype(np.float32)), ("labelsTr", label)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            write_volume(Volume(array, affine), root / folder / f"case_{n}.nii.gz")
        training.append(
            {"image": f"./imagesTr/case_{n}.nii.gz", "label": f"./labelsTr/case_{n}.nii.gz"}
        )
    meta = {"labels": {"0": "background", "1": "kidney", "2": "spleen"}, "training": training}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


@pytest.fixture(scope="session")
def msd_task(tmp_path_factory) -> Path:
    return make_msd(tmp_path_factory.mktemp("msd") / "Task99_Synthetic")
