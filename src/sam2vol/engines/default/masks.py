"""Small 2D mask helpers: discs, rings, distances, components."""

from __future__ import annotations

import edt
import numpy as np
from scipy import ndimage as ndi


def disc(radius_px: float) -> np.ndarray:
    """A bool disc structuring element of the given radius (at least the centre pixel)."""
    r = max(int(np.floor(radius_px)), 0)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return yy**2 + xx**2 <= radius_px**2 + 1e-9


def distance_mm(mask: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Distance (mm) of every pixel to the nearest True pixel of ``mask`` (inf if none)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return edt.edt(~mask, anisotropy=spacing, black_border=False).astype(np.float32)


def signed_distance_mm(mask: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Signed distance (mm) to the border of ``mask``: positive outside, negative inside."""
    outside = edt.edt(~mask, anisotropy=spacing, black_border=False)
    inside = edt.edt(mask, anisotropy=spacing, black_border=False)
    return (outside - inside).astype(np.float32)


def ring(mask: np.ndarray, inner_mm: float, outer_mm: float, spacing) -> np.ndarray:
    """Pixels between ``inner_mm`` and ``outer_mm`` outside ``mask``."""
    dist = distance_mm(mask, spacing)
    return (dist > inner_mm) & (dist <= outer_mm)


def points_mask(shape: tuple[int, int], points: np.ndarray, radius_px: float) -> np.ndarray:
    """Discs of ``radius_px`` around (row, col) points."""
    out = np.zeros(shape, dtype=bool)
    if len(points) == 0:
        return out
    out[points[:, 0], points[:, 1]] = True
    if radius_px >= 1:
        out = ndi.binary_dilation(out, disc(radius_px))
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its enclosed holes filled."""
    return ndi.binary_fill_holes(mask)


def components_touching(mask: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The connected components (8-connected) of ``mask`` that overlap ``keep``."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return mask
    hit = np.unique(labels[keep & mask])
    hit = hit[hit > 0]
    return np.isin(labels, hit)


def drop_small(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """``mask`` without its components smaller than ``min_pixels``."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    if n <= 1:
        return mask if mask.sum() >= min_pixels else np.zeros_like(mask)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return (sizes >= min_pixels)[labels]
