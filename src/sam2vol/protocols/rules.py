"""The simulated user's click rules, as pure functions of 2D/3D masks.

Every function takes the reference mask (and the current prediction) of one
slice in display orientation ``(row, col)``, or a slice stack ``(s, row, col)``,
and returns where the simulated user would click. Ties are always broken by
the first pixel in row-major (C) order, so every rule is deterministic.
:class:`sam2vol.protocols.user.SimulatedUser` binds them to one reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Centre = Literal["paper", "code"]
CENTRES: tuple[Centre, ...] = ("paper", "code")
# Shen et al.: stop clicking when the deepest error pixel is this close to its border.
SHEN_STOP_DEPTH = 1.42


@dataclass(frozen=True)
class Click:
    """A click on slice ``slice_index`` at pixel ``(row, col)``; positive adds foreground."""

    slice_index: int
    row: int
    col: int
    positive: bool


def error_regions(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false negative, false positive) masks of a prediction against the reference."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    return gt & ~pred, pred & ~gt


def deepest_in_components(region: np.ndarray) -> tuple[float, tuple[int, int] | None]:
    """Largest depth over the 4-connected components of ``region`` and where it is.

    Each component is cut out on its own (other components count as
    background), padded by one pixel so the image edge counts as border, and
    its Euclidean distance transform taken. The depth of a pixel is its
    distance to the nearest pixel outside its component (an isolated pixel has
    depth 1). Returns ``(0.0, None)`` for an empty region.

    Example:
        >>> r = np.zeros((5, 6), bool); r[1:4, 1:4] = True; r[0, 5] = True
        >>> deepest_in_components(r)
        (2.0, (2, 2))
    """
    from scipy import ndimage

    labels, _ = ndimage.label(np.asarray(region, bool))  # 4-connectivity in 2D
    best_depth, best_at = 0.0, None
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        component = np.pad(labels[box] == index, 1)
        depth = ndimage.distance_transform_edt(component)[1:-1, 1:-1]
        flat = int(np.argmax(depth))
        row, col = np.unravel_index(flat, depth.shape)
        at = (int(row) + box[0].start, int(col) + box[1].start)
        value = float(depth.flat[flat])
        if value > best_depth or (value == best_depth and best_at is not None and at < best_at):
            best_depth, best_at = value, at
    return best_depth, best_at


def farthest_error_click(
    gt: np.ndarray, pred: np.ndarray, slice_index: int, *, stop_depth: float = SHEN_STOP_DEPTH
) -> Click | None:
    """Shen et al.'s next click on one slice, or None when the errors are too thin.

    The false-negative and false-positive regions are each split into
    4-connected components; the click goes to the deepest pixel (see
    :func:`deepest_in_components`). It is positive when the deepest false
    negative is at least as deep as the deepest false positive. No click when
    the deeper of the two is ``<= stop_depth`` (1.42: a region at most two
    pixels thick everywhere).

    Example:
        >>> gt = np.zeros((7, 7), bool); gt[1:6, 1:6] = True
        >>> farthest_error_click(gt, np.zeros_like(gt), 4)
        Click(slice_index=4, row=3, col=3, positive=True)
    """
    fn, fp = error_regions(gt, pred)
    fn_depth, fn_at = deepest_in_components(fn)
    fp_depth, fp_at = deepest_in_components(fp)
    if max(fn_depth, fp_depth) <= stop_depth:
        return None
    positive = fn_depth >= fp_depth
    row, col = fn_at if positive else fp_at  # type: ignore[misc]
    return Click(slice_index, row, col, positive)


def erode(region: np.ndarray) -> np.ndarray:
    """Binary erosion by a 3x3 square; pixels on the image edge are eroded away."""
    from scipy import ndimage

    return ndimage.binary_erosion(np.asarray(region, bool), structure=np.ones((3, 3), bool))


def region_centre(region: np.ndarray, centre: Centre = "paper") -> tuple[int, int]:
    """He et al.'s "centre" of a 2D region: one of its own pixels.

    ``paper``: the region pixel nearest to the region's centroid (mean row,
    mean column). ``code``: the region pixel nearest to ``(m, m)``, where ``m``
    is the mean of all row *and* column coordinates together, as the authors'
    released code computes it (``coords.mean()`` without an axis).

    Example:
        >>> r = np.zeros((6, 6), bool); r[0, 3:6] = True  # (0,3) (0,4) (0,5)
        >>> region_centre(r, "paper")  # centroid (0, 4)
        (0, 4)
        >>> region_centre(r, "code")   # m = (0+0+0+3+4+5)/6 = 2 -> nearest to (2, 2)
        (0, 3)
    """
    if centre not in CENTRES:
        raise ValueError(f"centre must be one of {CENTRES}, got {centre!r}")
    rows, cols = np.nonzero(np.asarray(region, bool))
    if rows.size == 0:
        raise ValueError("region_centre needs a non-empty region")
    if centre == "paper":
        cr, cc = rows.mean(), cols.mean()
    else:
        cr = cc = np.concatenate([rows, cols]).mean()
    index = int(np.argmin((rows - cr) ** 2 + (cols - cc) ** 2))
    return int(rows[index]), int(cols[index])


def eroded_error_click(
    gt: np.ndarray,
    pred: np.ndarray,
    slice_index: int,
    *,
    centre: Centre = "paper",
    uneroded_fallback: bool = False,
) -> Click | None:
    """He et al.'s initial click: in the larger eroded error region, at its centre.

    Both error regions are eroded by a 3x3 square. Positive at the centre of
    the eroded false negatives if they are strictly larger than the eroded
    false positives, else negative at the centre of the eroded false
    positives. None when both are empty after erosion, unless
    ``uneroded_fallback``: then the same rule runs on the un-eroded regions
    (used for the very first click on an object at most two pixels thick).

    Example:
        >>> gt = np.zeros((7, 7), bool); gt[1:6, 1:6] = True
        >>> eroded_error_click(gt, np.zeros_like(gt), 0)
        Click(slice_index=0, row=3, col=3, positive=True)
    """
    raw_fn, raw_fp = error_regions(gt, pred)
    fn, fp = erode(raw_fn), erode(raw_fp)
    if uneroded_fallback and not fn.any() and not fp.any():
        fn, fp = raw_fn, raw_fp
    n_fn, n_fp = int(fn.sum()), int(fp.sum())
    if n_fn == 0 and n_fp == 0:
        return None
    positive = n_fn > n_fp
    row, col = region_centre(fn if positive else fp, centre)
    return Click(slice_index, row, col, positive)


def correction_clicks(
    gt: np.ndarray,
    pred: np.ndarray,
    slice_index: int,
    rng: np.random.Generator,
    *,
    centre: Centre = "paper",
) -> list[Click]:
    """He et al.'s up to three clicks on a newly prompted slice.

    On the error regions eroded by a 3x3 square: a positive click at the
    centre of the false negatives (if any are left), a negative click at the
    centre of the false positives (if any), and one more click at a random
    pixel (``rng``, uniform over the region's pixels in row-major order) of the
    larger region (false negatives on a tie), with that region's sign. When
    erosion leaves nothing, the same rules run on the un-eroded regions. An
    empty list means the slice has no error.
    """
    raw_fn, raw_fp = error_regions(gt, pred)
    fn, fp = erode(raw_fn), erode(raw_fp)
    if not fn.any() and not fp.any():
        fn, fp = raw_fn, raw_fp
    clicks = []
    if fn.any():
        clicks.append(Click(slice_index, *region_centre(fn, centre), True))
    if fp.any():
        clicks.append(Click(slice_index, *region_centre(fp, centre), False))
    if clicks:
        positive = int(fn.sum()) >= int(fp.sum())
        rows, cols = np.nonzero(fn if positive else fp)
        pick = int(rng.integers(rows.size))
        clicks.append(Click(slice_index, int(rows[pick]), int(cols[pick]), positive))
    return clicks


def start_voxel(gt_stack: np.ndarray) -> tuple[int, int, int]:
    """He et al.'s start point: the voxel of the largest 3D component nearest its centroid.

    Components are 26-connected; the largest by voxel count (ties: the one
    reached first in C order). Distances are in index units of the stack
    ``(s, row, col)``; ties go to the first voxel in C order.

    Example:
        >>> g = np.zeros((4, 5, 5), bool); g[1:4, 1:4, 1:3] = True; g[0, 0, 4] = True
        >>> start_voxel(g)  # centroid (2, 2, 1.5): (2, 2, 1) and (2, 2, 2) tie
        (2, 2, 1)
    """
    import cc3d

    labels = cc3d.connected_components(np.ascontiguousarray(gt_stack, dtype=np.uint8))
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    if counts.max() == 0:
        raise ValueError("start_voxel needs a non-empty mask")
    coords = np.argwhere(labels == int(np.argmax(counts)))  # C order
    centroid = coords.mean(axis=0)
    index = int(np.argmin(((coords - centroid) ** 2).sum(axis=1)))
    return tuple(int(x) for x in coords[index])  # type: ignore[return-value]


def deepest_point_of_largest_component(gt: np.ndarray) -> tuple[int, int]:
    """Dong et al.'s click: deepest pixel of the largest 8-connected component of a slice.

    Depth is the Euclidean distance transform in pixels with the image edge as
    border; the largest component by pixel count (ties: the first labelled in
    row-major order); ties in depth go to the first pixel in row-major order.

    Example:
        >>> g = np.zeros((6, 8), bool); g[0:2, 0:2] = True; g[1:6, 3:8] = True
        >>> deepest_point_of_largest_component(g)
        (3, 5)
    """
    from scipy import ndimage

    from sam2vol.simulate import deepest_pixel

    labels, n = ndimage.label(np.asarray(gt, bool), structure=np.ones((3, 3), bool))
    if n == 0:
        raise ValueError("deepest_point_of_largest_component needs a non-empty mask")
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return deepest_pixel(labels == int(np.argmax(counts)))


def slice_dice(gt: np.ndarray, pred: np.ndarray) -> float:
    """2D Dice of one slice (1.0 when both are empty)."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    total = int(gt.sum()) + int(pred.sum())
    return 1.0 if total == 0 else 2.0 * int((gt & pred).sum()) / total


def worst_slice(gt_stack: np.ndarray, pred_stack: np.ndarray, exclude=()) -> int | None:
    """He et al.'s next slice: lowest 2D Dice among reference-foreground slices.

    Slices in ``exclude`` (already prompted) are skipped. Ties go to the slice
    with the most wrong pixels (false negatives + false positives), then to the
    lowest index. None when no candidate is left or every candidate is perfect.

    Example:
        >>> g = np.zeros((3, 4, 4), bool); g[:, 1:3, 1:3] = True
        >>> p = g.copy(); p[1, 1, 1] = False; p[2] = False
        >>> worst_slice(g, p), worst_slice(g, p, exclude=[2])
        (2, 1)
    """
    candidates = [int(s) for s in np.flatnonzero(gt_stack.any(axis=(1, 2))) if s not in exclude]
    best: tuple[float, int, int] | None = None
    for s in candidates:
        wrong = int((gt_stack[s] ^ pred_stack[s]).sum())
        key = (slice_dice(gt_stack[s], pred_stack[s]), -wrong, s)
        if best is None or key < best:
            best = key
    if best is None or best[0] >= 1.0:
        return None
    return best[2]
