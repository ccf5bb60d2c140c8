"""The simulated user's click rules, as pure functions of 2D/3D masks.

Every function takes the reference mask (and the current prediction) of one
slice ``(row, col)``, or a slice stack ``(s, row, col)``, in the *array frame*
the authors' released code worked in: slice ``s`` is ``data.take(s,
slice_axis)`` of the file's array (nibabel's ``data[:, :, k]`` for axial), so
``row`` and ``col`` are array indices, not the radiological display (see
:mod:`sam2vol.protocols.frame`). Each rule follows the released code of its
paper, ties included; ``docs/protocols.md`` cites the lines.
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
    depth 1). As in Shen et al.'s ``find_largest_enclosed_point``: the first
    deepest pixel in row-major order within a component, and the first
    component in label (raster) order on a tie between components. Returns
    ``(0.0, None)`` for an empty region.

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
        if value > best_depth:  # strict: the first component (label order) wins ties
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
    # first in row-major order on a tie (torch.nonzero order, sorted stably)
    index = int(np.argmin((rows - cr) ** 2 + (cols - cc) ** 2))
    return int(rows[index]), int(cols[index])


def eroded_error_click(
    gt: np.ndarray, pred: np.ndarray, slice_index: int, *, centre: Centre = "code"
) -> Click | None:
    """He et al.'s next initial click (``get_points_from_false_pred``, ``num_point=1``).

    Both error regions are eroded by a 3x3 square (image edge as background).
    Positive at the centre of the eroded false negatives if they hold strictly
    more pixels than the eroded false positives, else negative at the centre
    of the eroded false positives. None when that region is empty: the
    initial clicking ends there (there is no fallback to un-eroded regions).

    Example:
        >>> gt = np.zeros((7, 7), bool); gt[1:6, 1:6] = True
        >>> eroded_error_click(gt, np.zeros_like(gt), 0)
        Click(slice_index=0, row=3, col=3, positive=True)
    """
    raw_fn, raw_fp = error_regions(gt, pred)
    fn, fp = erode(raw_fn), erode(raw_fp)
    positive = int(fn.sum()) > int(fp.sum())
    region = fn if positive else fp
    if not region.any():
        return None
    row, col = region_centre(region, centre)
    return Click(slice_index, row, col, positive)


def correction_clicks(
    gt: np.ndarray,
    pred: np.ndarray,
    slice_index: int,
    rng: np.random.Generator,
    *,
    centre: Centre = "code",
) -> list[Click]:
    """He et al.'s up to three clicks on the worst slice (``num_point=3``).

    On the error regions eroded by a 3x3 square: a positive click at the
    centre of the false negatives (if any are left), a negative click at the
    centre of the false positives (if any), and one more click at a random
    pixel (``rng``, uniform over the region's pixels in row-major order) of
    the false negatives if they hold strictly more pixels, else of the false
    positives (if not empty), with that region's sign. An empty list (erosion
    left nothing) ends the protocol: there is no fallback to un-eroded regions.
    """
    raw_fn, raw_fp = error_regions(gt, pred)
    fn, fp = erode(raw_fn), erode(raw_fp)
    clicks = []
    if fn.any():
        clicks.append(Click(slice_index, *region_centre(fn, centre), True))
    if fp.any():
        clicks.append(Click(slice_index, *region_centre(fp, centre), False))
    positive = int(fn.sum()) > int(fp.sum())
    rows, cols = np.nonzero(fn if positive else fp)
    if rows.size:
        pick = int(rng.integers(rows.size))
        clicks.append(Click(slice_index, int(rows[pick]), int(cols[pick]), positive))
    return clicks


def start_voxel(gt: np.ndarray) -> tuple[int, int, int]:
    """He et al.'s start point (``get_points_from_label``), on the array ``[i, j, k]``.

    The largest 26-connected 3D component (ties: the one reached first in C
    order); its voxel nearest to the component's centroid, distances in index
    units; ties go to the first voxel in C order of ``[i, j, k]`` (the order
    of ``torch.nonzero``, sorted stably).

    Example:
        >>> g = np.zeros((5, 5, 4), bool); g[1:4, 1:3, 1:4] = True; g[4, 4, 0] = True
        >>> start_voxel(g)  # centroid (2, 1.5, 2): (2, 1, 2) and (2, 2, 2) tie
        (2, 1, 2)
    """
    import cc3d

    labels = cc3d.connected_components(np.ascontiguousarray(gt, dtype=np.uint8))
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

    The largest component by pixel count; on a tie the one labelled *last*
    (Dong et al. sort ``(ratio, id)`` pairs and reverse them). Depth is the
    Euclidean distance transform in pixels with the image edge as border;
    ties in depth go to the first pixel in row-major order.

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
    largest = int(np.flatnonzero(counts == counts.max())[-1])
    return deepest_pixel(labels == largest)


def dong_slices(nonempty: list[int], n: int) -> list[int]:
    """Dong et al.'s prompted slices (``First_frame_finding_func``) of the object slices ``L``.

    ``n=1``: ``L[len(L) // 2]`` (frame mode 2). ``n=3`` (frame mode 4):
    ``step = max(1, len(L) // 4)``, ``picks = L[::step]``, then ``picks[1:4]``
    if more than 4 were picked, else ``picks[:3]``.

    Example:
        >>> dong_slices(list(range(10, 20)), 3)  # step 2: 10 12 14 16 18 -> 12 14 16
        [12, 14, 16]
    """
    if n == 1:
        return [nonempty[len(nonempty) // 2]]
    step = max(1, len(nonempty) // (n + 1))
    picks = nonempty[::step]
    return picks[1 : n + 1] if len(picks) > n + 1 else picks[:n]


def slice_dice(gt: np.ndarray, pred: np.ndarray) -> float:
    """2D Dice of one slice (1.0 when both are empty)."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    total = int(gt.sum()) + int(pred.sum())
    return 1.0 if total == 0 else 2.0 * int((gt & pred).sum()) / total


def _dice32(gt: np.ndarray, pred: np.ndarray) -> float:
    """2D Dice in float32, as MONAI's ``compute_dice`` gives it (ties are decided on it)."""
    total = np.float32(int(gt.sum()) + int(pred.sum()))
    return float(np.float32(2 * int((gt & pred).sum())) / total)


# He et al. weigh wrong pixels as |pred - label| on uint8 tensors: a false
# negative wraps to 255, a false positive counts 1.
HE_FN_WEIGHT = 255


def worst_slice(gt_stack: np.ndarray, pred_stack: np.ndarray) -> tuple[int, float] | None:
    """He et al.'s next slice and its 2D Dice: the lowest Dice among reference slices.

    Every slice where the reference shows the object is a candidate, prompted
    before or not. Dice is compared in float32 (MONAI's ``compute_dice``).
    Ties go to the slice with the larger error weight ``false positives +
    255 * false negatives`` (the released code's ``torch.abs(pred -
    label).sum()`` on uint8), then to the lowest index.
    None only when the reference is empty.

    Example:
        >>> g = np.zeros((3, 4, 4), bool); g[:, 1:3, 1:3] = True
        >>> p = g.copy(); p[1, 1, 1] = False; p[2] = False
        >>> worst_slice(g, p)
        (2, 0.0)
    """
    best: tuple[float, int, int] | None = None
    for s in np.flatnonzero(gt_stack.any(axis=(1, 2))):
        fn, fp = error_regions(gt_stack[s], pred_stack[s])
        weight = int(fp.sum()) + HE_FN_WEIGHT * int(fn.sum())
        key = (_dice32(gt_stack[s], pred_stack[s]), -weight, int(s))
        if best is None or key < best:
            best = key
    return None if best is None else (best[2], best[0])
