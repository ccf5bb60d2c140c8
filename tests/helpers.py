"""Helpers shared by tests."""

from __future__ import annotations

import numpy as np


def lps_affine(spacing, origin_lps, direction_lps=None) -> np.ndarray:
    """RAS affine of an image given in DICOM/ITK (LPS) terms."""
    direction_lps = np.eye(3) if direction_lps is None else direction_lps
    flip = np.diag([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = flip @ np.asarray(direction_lps) @ np.diag(spacing)
    affine[:3, 3] = flip @ np.asarray(origin_lps)
    return affine
