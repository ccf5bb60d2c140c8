"""Input checks and bounding-box cropping shared by the metric modules."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from sam2vol.errors import InputError


def as_mask(mask: ArrayLike, name: str) -> np.ndarray:
    """Returns ``mask`` as a boolean array (non-zero is foreground), without copying bools."""
    array = np.asarray(mask)
    if array.dtype != np.bool_:
        array = array != 0
    if array.ndim == 0:
        raise InputError(f"{name} must be an array with at least one axis, got a scalar")
    return array


def as_mask_pair(pred: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Casts both masks to bool and checks that their shapes match."""
    pred_mask = as_mask(pred, "pred")
    gt_mask = as_mask(gt, "gt")
    if pred_mask.shape != gt_mask.shape:
        raise InputError(
            f"pred and gt must have the same shape, got {pred_mask.shape} and {gt_mask.shape}"
        )
    return pred_mask, gt_mask


def as_spacing(spacing_mm: Sequence[float], ndim: int) -> tuple[float, ...]:
    """Checks a per-axis spacing: ``ndim`` finite positive numbers, as floats."""
    try:
        spacing = tuple(float(s) for s in spacing_mm)
    except TypeError:
        raise InputError(
            f"spacing_mm must be a sequence of {ndim} numbers, got {spacing_mm!r}"
        ) from None
    if len(spacing) != ndim:
        raise InputError(
            f"spacing_mm must have one value per mask axis ({ndim}), got {len(spacing)}"
        )
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise InputError(f"spacing_mm must be finite and > 0, got {spacing}")
    return spacing


def as_axis(axis: int, ndim: int) -> int:
    """Normalises a possibly negative axis index."""
    if not -ndim <= axis < ndim:
        raise InputError(f"axis {axis} is out of range for masks with {ndim} axes")
    return axis % ndim


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Smallest box holding all foreground of ``mask``, or ``None`` if it is empty."""
    if mask.size == 0:
        return None
    # One pass over the whole array for axis 0, the rest only inside that range.
    rows = mask.reshape(mask.shape[0], -1).any(axis=1)
    hits = np.flatnonzero(rows)
    if hits.size == 0:
        return None
    box = [slice(int(hits[0]), int(hits[-1]) + 1)]
    inner = mask[box[0]]
    for axis in range(1, mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(inner.any(axis=others))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def joint_bounding_box(pred: np.ndarray, gt: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of ``pred | gt`` without building the union, or ``None`` if both are empty."""
    boxes = [b for b in (bounding_box(pred), bounding_box(gt)) if b is not None]
    if not boxes:
        return None
    return tuple(
        slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes))
        for a in range(pred.ndim)
    )


def crop_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Views of both masks cropped to their joint bounding box (zero-size if both are empty)."""
    box = joint_bounding_box(pred, gt)
    if box is None:
        empty = (slice(0, 0),) * pred.ndim
        return pred[empty], gt[empty]
    return pred[box], gt[box]
