"""Slice-wise evaluation: choosing which slices count, and 2D Dice per slice.

The SAM 2 papers on CT/MRI score volumes in two restricted ways besides "all
slices": background-slice removal (only slices where the reference has
foreground) and Shen et al.'s "salient area" (only slices where the reference
has more than 256 foreground pixels). :func:`select_slices` turns either rule
into a boolean slice index that :func:`sam2vol.metrics.evaluate` accepts.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from sam2vol.errors import InputError
from sam2vol.metrics._common import as_axis, as_mask, as_mask_pair

__all__ = ["SLICE_MODES", "SliceMode", "per_slice_dice", "select_slices"]

SliceMode = Literal["all", "foreground", "salient"]
SLICE_MODES: tuple[SliceMode, ...] = ("all", "foreground", "salient")


def _per_slice_count(mask: np.ndarray, axis: int) -> np.ndarray:
    others = tuple(a for a in range(mask.ndim) if a != axis)
    return np.count_nonzero(mask, axis=others) if others else mask.astype(np.intp)


def select_slices(
    gt: ArrayLike, *, axis: int, mode: SliceMode = "foreground", min_pixels: int = 256
) -> np.ndarray:
    """Which slices along ``axis`` to evaluate, decided from the reference mask alone.

    Args:
        gt: Reference mask; non-zero is foreground.
        axis: Array axis the slices are taken along.
        mode: ``"all"`` (every slice), ``"foreground"`` (background-slice
            removal: slices with at least one reference pixel) or ``"salient"``
            (Shen et al.: slices with more than ``min_pixels`` reference pixels).
        min_pixels: Threshold for ``"salient"``; a slice needs strictly more.

    Returns:
        Boolean array of length ``gt.shape[axis]``, True for evaluated slices.

    Raises:
        ValueError: For an unknown mode, a bad axis or a negative ``min_pixels``.

    Example:
        >>> import numpy as np
        >>> gt = np.zeros((20, 20, 4), bool)
        >>> gt[:, :, 1] = True          # 400 pixels
        >>> gt[:10, :10, 2] = True      # 100 pixels
        >>> select_slices(gt, axis=2, mode="foreground")
        array([False,  True,  True, False])
        >>> select_slices(gt, axis=2, mode="salient")
        array([False,  True, False, False])
    """
    g = as_mask(gt, "gt")
    axis = as_axis(axis, g.ndim)
    if mode not in SLICE_MODES:
        raise InputError(f"slice mode must be one of {SLICE_MODES}, got {mode!r}")
    if min_pixels < 0:
        raise InputError(f"min_pixels must be >= 0, got {min_pixels}")
    if mode == "all":
        return np.ones(g.shape[axis], dtype=bool)
    counts = _per_slice_count(g, axis)
    return counts > (0 if mode == "foreground" else min_pixels)


def per_slice_dice(
    pred: ArrayLike, gt: ArrayLike, *, axis: int, both_empty: float = np.nan
) -> np.ndarray:
    """2D Dice of every slice along ``axis``.

    Slices where both masks are empty get ``both_empty`` (default NaN), so
    ``np.nanmean`` averages over the slices where either mask has foreground.
    Pass ``both_empty=1.0`` to apply the volume rule (both empty = perfect)
    slice by slice instead. A slice where exactly one mask is empty gives 0.0.

    Args:
        pred: Predicted mask; non-zero is foreground.
        gt: Reference mask of the same shape.
        axis: Array axis the slices are taken along.
        both_empty: Value for slices where neither mask has foreground.

    Returns:
        Float array of length ``gt.shape[axis]``.

    Raises:
        ValueError: If the shapes differ or the axis is out of range.

    Example:
        >>> import numpy as np
        >>> gt = np.zeros((4, 4, 3), bool); gt[:2, :, 0] = True; gt[:2, :, 1] = True
        >>> pred = np.zeros((4, 4, 3), bool); pred[:1, :, 0] = True
        >>> per_slice_dice(pred, gt, axis=2)
        array([0.66666667, 0.        ,        nan])
    """
    p, g = as_mask_pair(pred, gt)
    axis = as_axis(axis, p.ndim)
    intersection = _per_slice_count(p & g, axis)
    total = _per_slice_count(p, axis) + _per_slice_count(g, axis)
    result = np.full(total.shape, float(both_empty))
    nonempty = total > 0
    result[nonempty] = 2.0 * intersection[nonempty] / total[nonempty]
    return result
