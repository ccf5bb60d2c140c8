"""Simulated-user helpers: where a person would click on a 2D mask."""

from __future__ import annotations

import numpy as np


def deepest_pixel(
    mask: np.ndarray, *, spacing_mm: tuple[float, float] = (1.0, 1.0)
) -> tuple[int, int]:
    """The pixel of ``mask`` farthest from its border (max of the Euclidean distance transform).

    Ties go to the first pixel in row-major order. The mask is padded by one
    pixel so the image edge counts as border.

    Example:
        >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
        >>> deepest_pixel(m)
        (2, 2)
    """
    import edt

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("deepest_pixel needs a non-empty mask")
    padded = np.pad(mask, 1).astype(np.uint8)
    dist = edt.edt(padded, anisotropy=tuple(float(s) for s in spacing_mm))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(row), int(col)
