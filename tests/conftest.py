"""Shared fixtures: small synthetic volumes with uneven spacing and oblique-free geometry."""

from __future__ import annotations

import numpy as np
import pytest

from sam2vol.volume import Volume
from tests.helpers import lps_affine


@pytest.fixture
def ct_volume() -> Volume:
    """A 40x30x20 'CT' with a ball of soft tissue in air, LPS-oriented, uneven spacing."""
    rng = np.random.default_rng(0)
    i, j, k = np.meshgrid(np.arange(40), np.arange(30), np.arange(20), indexing="ij")
    ball = (i - 20) ** 2 + (j - 15) ** 2 + ((k - 10) * 2) ** 2 < 64
    data = np.where(ball, 40, -800) + rng.normal(0, 10, ball.shape)
    return Volume(data.astype(np.int16), lps_affine((0.7, 0.8, 2.5), (-10.0, 20.0, -30.0)), "ct")
