"""Surface distances between two masks, computed once; HD95, NSD and ASSD from them.

Two definitions are available; ``"deepmind"`` is the default.

``"deepmind"`` (default; DeepMind's ``surface-distance`` package, Nikolov et al. 2021)
    The surface is a marching-cubes mesh on the grid of voxel *corners*. Every
    corner point where the 2x2x2 voxels around it are neither all inside nor
    all outside is a surface element ("surfel"), weighted by the physical area
    (mm², from the anisotropic spacing) of its marching-cubes triangles. In 2D
    the elements are contour pieces weighted by their length in mm. Distances
    are Euclidean, in mm, from each surfel to the nearest surfel of the other
    mask. Derived metrics are area-weighted:

    * directed q-th percentile: sort a surface's surfels by distance and take
      the distance of the first one at which the cumulative area reaches q % of
      that surface's total area;
    * HD95: the larger of the two directed 95th percentiles;
    * NSD at tolerance τ (surface Dice): area of both surfaces within τ of the
      other surface (``<= τ``) divided by the total area of both surfaces;
    * ASSD: area-weighted mean distance over the surfels of both surfaces.

    Values equal ``surface_distance.compute_robust_hausdorff``,
    ``compute_surface_dice_at_tolerance`` and the area-weighted combination of
    ``compute_average_surface_distance``.

``"monai"`` (MONAI's ``compute_hausdorff_distance``, ``compute_surface_dice`` and
``compute_average_surface_distance`` with their defaults)
    The surface is the set of foreground voxels with at least one background
    face neighbour (``mask ^ binary_erosion(mask)``); every voxel counts once.
    HD95 is the larger of the two directed 95th percentiles with linear
    interpolation (``numpy.percentile``), NSD the share of boundary voxels of
    both masks within τ, ASSD the mean over the boundary voxels of both masks.
    Counting voxels instead of area over-weights surfaces that run along the
    grid diagonal and lets HD95 fall between two grid distances.

Empty masks (either definition):

===================  ========  ========  ========
case                 HD95      ASSD      NSD
===================  ========  ========  ========
both empty           0.0       0.0       1.0
exactly one empty    inf       inf       0.0
===================  ========  ========  ========

How: both masks are cropped to their joint bounding box; nearest surface
points come from the multi-threaded anisotropic EDT of the ``edt`` package on
that box or, when the box is large and the surfaces small (say, a stray false
positive far from the organ), from a scipy k-d tree over the surface points.
The EDT is float32, so the distances that decide a result at a threshold (the
element picked by a percentile, elements within 1e-5 relative of the NSD
tolerance) are recomputed exactly in float64, as
``sqrt(sum((k_i * spacing_i) ** 2))`` over the integer offset ``k`` to the
nearest point: ties such as "exactly 2 voxels away at a tolerance of 2 voxels"
are decided as in float64 references.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import edt
import numpy as np
from numpy.typing import ArrayLike

from sam2vol.errors import InputError
from sam2vol.metrics._common import as_mask_pair, as_spacing, crop_pair

__all__ = [
    "DEFAULT_DEFINITION",
    "DEFINITIONS",
    "Definition",
    "SurfaceDistances",
    "compute_surface_distances",
]

Definition = Literal["deepmind", "monai"]
DEFINITIONS: tuple[Definition, ...] = ("deepmind", "monai")
DEFAULT_DEFINITION: Definition = "deepmind"

# The float32 EDT is accurate to ~2e-7 relative; distances this close to a
# threshold are recomputed exactly.
_REL_BAND = 1e-5
# Largest (points x offsets) block looked up at once when recomputing distances.
_LOOKUP_BLOCK = 1 << 18
# Building and querying a k-d tree costs about as much per surface point as the
# EDT does for this many grid points (measured with 2 threads, surfaces a few
# mm apart; far-apart surfaces make the tree slower, hence the margin).
_KDTREE_COST = 25


def _corner_bit_offsets(ndim: int) -> list[tuple[int, ...]]:
    """Voxel offset (0/1 per axis) around a corner point for each bit of the corner code."""
    return [tuple((bit >> axis) & 1 for axis in range(ndim)) for bit in range(1 << ndim)]


@functools.cache
def _unit_triangle_vectors_3d() -> np.ndarray:
    """Area vectors of the marching-cubes triangles of each 2x2x2 code, unit spacing.

    Returns an array ``(256, max_triangles, 3)``, zero-padded. Triangles are
    those of the classic Lorensen-Cline table (scikit-image ``method="lorensen"``)
    at level 0.5, i.e. with vertices at edge midpoints. A code with more than
    four inside corners uses the triangles of its complement, so a code and its
    complement have the same surface.
    """
    from skimage.measure import marching_cubes

    offsets = _corner_bit_offsets(3)
    vectors: list[np.ndarray] = []
    for code in range(256):
        source = code if code.bit_count() <= 4 else 255 - code
        if source == 0:
            vectors.append(np.zeros((0, 3)))
            continue
        cube = np.zeros((2, 2, 2))
        for bit, offset in enumerate(offsets):
            cube[offset] = (source >> bit) & 1
        verts, faces, _, _ = marching_cubes(cube, level=0.5, method="lorensen")
        tri = verts.astype(np.float64)[faces]
        vectors.append(0.5 * np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
    table = np.zeros((256, max(len(v) for v in vectors), 3))
    for code, v in enumerate(vectors):
        table[code, : len(v)] = v
    return table


def _surfel_size_table(spacing_mm: tuple[float, ...]) -> np.ndarray:
    """Surfel area in mm² (3D) or contour length in mm (2D) for every corner code."""
    if len(spacing_mm) == 3:
        s0, s1, s2 = spacing_mm
        # An area vector scales with the product of the two other spacings.
        scaled = _unit_triangle_vectors_3d() * np.array([s1 * s2, s0 * s2, s0 * s1])
        return np.sqrt(np.sum(scaled * scaled, axis=-1)).sum(axis=-1)
    s0, s1 = spacing_mm
    half_diagonal = 0.5 * math.sqrt(s0 * s0 + s1 * s1)
    table = np.zeros(16)
    offsets = _corner_bit_offsets(2)
    for code in range(1, 15):
        inside = [offsets[bit] for bit in range(4) if (code >> bit) & 1]
        if len(inside) != 2:  # one corner cut off (or all but one)
            table[code] = half_diagonal
        elif inside[0][0] == inside[1][0]:  # both on one side of axis 0: a line along axis 1
            table[code] = s1
        elif inside[0][1] == inside[1][1]:
            table[code] = s0
        else:  # opposite corners: two cut-off corners
            table[code] = 2 * half_diagonal
    return table


def _corner_codes(mask: np.ndarray) -> np.ndarray:
    """Code of every voxel-corner point: bit ``b`` set if voxel ``corner - 1 + offset(b)`` is in.

    The corner grid has one more point than ``mask`` along every axis.
    """
    code = np.pad(mask, 1).view(np.uint8)
    for axis in range(mask.ndim):
        n = code.shape[axis]
        low = code[(slice(None),) * axis + (slice(0, n - 1),)]
        high = code[(slice(None),) * axis + (slice(1, n),)]
        code = low | (high << np.uint8(1 << axis))
    return code


def _boundary_voxels(mask: np.ndarray) -> np.ndarray:
    """Foreground voxels with a background face neighbour (outside the array is background)."""
    padded = np.pad(mask, 1)
    interior = mask.copy()
    center = (slice(1, -1),) * mask.ndim
    for axis in range(mask.ndim):
        for shift in (-1, 1):
            window = list(center)
            window[axis] = slice(1 + shift, padded.shape[axis] - 1 + shift)
            interior &= padded[tuple(window)]
    return mask & ~interior


def _available_threads() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _lattice_shell(
    low_mm: float, high_mm: float, spacing_mm: tuple[float, ...], shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Integer offsets whose physical length lies in ``[low_mm, high_mm]``, nearest first.

    Lengths are computed as ``sqrt(sum((k_i * s_i) ** 2))`` in float64, axis by
    axis, which is how ``scipy.ndimage.distance_transform_edt`` computes them.
    Offsets longer than the grid are left out.
    """
    s = np.asarray(spacing_mm, dtype=np.float64)
    reach = np.minimum(np.floor(high_mm / s).astype(np.int64), np.asarray(shape) - 1)
    # Enumerate all axes but the longest one; solve for that one.
    solve = int(np.argmax(reach))
    free = [a for a in range(s.size) if a != solve]
    grids = np.meshgrid(*(np.arange(-reach[a], reach[a] + 1) for a in free), indexing="ij")
    heads = np.stack([g.ravel() for g in grids], axis=1)
    head_sq = np.sum((heads * s[free]) ** 2, axis=1)
    widen = 1e-9
    lo = np.sqrt(np.clip(low_mm * low_mm - head_sq, 0.0, None)) / s[solve]
    hi = np.sqrt(np.clip(high_mm * high_mm - head_sq, 0.0, None)) / s[solve]
    t_min = np.ceil(lo * (1 - widen) - widen).astype(np.int64)
    t_max = np.minimum(np.floor(hi * (1 + widen) + widen).astype(np.int64), reach[solve])
    keep = (head_sq <= high_mm * high_mm * (1 + widen)) & (t_max >= t_min)
    heads, t_min, t_max = heads[keep], t_min[keep], t_max[keep]
    counts = t_max - t_min + 1
    starts = np.cumsum(counts) - counts
    t = np.repeat(t_min, counts) + np.arange(counts.sum()) - np.repeat(starts, counts)
    offsets = np.empty((t.size, s.size), dtype=np.int64)
    offsets[:, free] = np.repeat(heads, counts, axis=0)
    offsets[:, solve] = t
    mirrored = offsets[t > 0]
    mirrored[:, solve] *= -1
    offsets = np.concatenate([offsets, mirrored])
    dist_sq = np.zeros(len(offsets))
    for axis in range(s.size):
        step = offsets[:, axis] * s[axis]
        dist_sq = dist_sq + step * step
    dist = np.sqrt(dist_sq)
    keep = (dist >= low_mm) & (dist <= high_mm)
    offsets, dist = offsets[keep], dist[keep]
    order = np.argsort(dist, kind="stable")
    return offsets[order], dist[order]


def _exact_distances(
    points: np.ndarray, approx_mm: np.ndarray, targets: np.ndarray, spacing_mm: tuple[float, ...]
) -> np.ndarray:
    """Float64 distances from grid ``points`` (flat indices) to the nearest ``True`` in ``targets``.

    ``approx_mm`` are approximate distances (float32 EDT, or a k-d tree's); the
    nearest target is searched only among offsets within ``_REL_BAND`` of them,
    and the smallest of tied offsets wins. Points with no target in that shell
    keep their approximate value.
    """
    result = approx_mm.astype(np.float64, copy=True)
    todo = np.flatnonzero((result > 0) & np.isfinite(result))
    if todo.size == 0:
        return result
    low = float(result[todo].min()) * (1 - _REL_BAND)
    high = float(result[todo].max()) * (1 + _REL_BAND)
    offsets, dist = _lattice_shell(low, high, spacing_mm, targets.shape)
    if dist.size == 0:
        return result
    shape = np.asarray(targets.shape)
    flat_targets = targets.ravel()
    coords = np.stack(np.unravel_index(points[todo], targets.shape), axis=1)
    block = max(1, _LOOKUP_BLOCK // len(offsets))
    for start in range(0, todo.size, block):
        cand = coords[start : start + block, None, :] + offsets[None, :, :]
        inside = np.all((cand >= 0) & (cand < shape), axis=-1)
        cand[~inside] = 0
        hit = inside & flat_targets[np.ravel_multi_index(tuple(np.moveaxis(cand, -1, 0)), shape)]
        found = hit.any(axis=1)
        chunk = todo[start : start + block]
        result[chunk[found]] = dist[hit.argmax(axis=1)[found]]
    return result


def _nearest_edt(
    query_points: np.ndarray,
    targets: np.ndarray,
    spacing_mm: tuple[float, ...],
    threads: int,
) -> np.ndarray:
    """Distances (float32 precision) from grid points to the nearest ``True`` of ``targets``."""
    # edt is faster on uint8 than on bool; non-zero marks "not a target".
    outside = np.ascontiguousarray(np.logical_not(targets)).view(np.uint8)
    field_mm = edt.edt(outside, anisotropy=spacing_mm, black_border=False, parallel=threads)
    return field_mm.ravel()[query_points].astype(np.float64)


def _nearest_kdtree(
    query_points: np.ndarray,
    target_points: np.ndarray,
    shape: tuple[int, ...],
    spacing_mm: tuple[float, ...],
    threads: int,
) -> np.ndarray:
    """Float64 distances from grid points to the nearest of ``target_points`` (flat indices)."""
    from scipy.spatial import cKDTree

    s = np.asarray(spacing_mm, dtype=np.float64)
    query = np.stack(np.unravel_index(query_points, shape), axis=1)
    target = np.stack(np.unravel_index(target_points, shape), axis=1)
    tree = cKDTree(target * s, leafsize=32, balanced_tree=False, compact_nodes=False)
    _, nearest = tree.query(query * s, k=1, workers=threads)
    # Recompute from the integer offset, the way scipy's EDT does.
    offset = target[nearest] - query
    dist_sq = np.zeros(len(query))
    for axis in range(s.size):
        step = offset[:, axis] * s[axis]
        dist_sq = dist_sq + step * step
    return np.sqrt(dist_sq)


@dataclass(frozen=True, eq=False)
class _SurfaceGrid:
    """Surface points on the cropped grid, kept to recompute single distances exactly."""

    spacing_mm: tuple[float, ...]
    border_gt: np.ndarray
    border_pred: np.ndarray
    points_gt: np.ndarray
    points_pred: np.ndarray


@dataclass(frozen=True, eq=False)
class SurfaceDistances:
    """Distances between the surfaces of a predicted and a reference mask.

    Build it with :func:`compute_surface_distances`, then derive any number of
    metrics from it without recomputing distances. See the module docstring
    for the two definitions and the empty-mask rule.

    Attributes:
        distances_gt_to_pred_mm: For each surface element of ``gt``, the
            distance in mm to the nearest element of ``pred`` (``inf`` if
            ``pred`` is empty). Unsorted; float32 precision when they come from
            the EDT (metrics recompute the deciding ones exactly).
        distances_pred_to_gt_mm: The same from ``pred`` to ``gt``.
        weights_gt: Weight of each ``gt`` element: area in mm² (3D) or length in
            mm (2D) for ``"deepmind"``, 1.0 for ``"monai"``.
        weights_pred: The same for ``pred``.
        spacing_mm: Spacing the distances were computed with, in array-axis order.
        definition: ``"deepmind"`` or ``"monai"``.
    """

    distances_gt_to_pred_mm: np.ndarray
    distances_pred_to_gt_mm: np.ndarray
    weights_gt: np.ndarray
    weights_pred: np.ndarray
    spacing_mm: tuple[float, ...]
    definition: Definition = DEFAULT_DEFINITION
    _grid: _SurfaceGrid | None = field(default=None, repr=False)

    @property
    def gt_empty(self) -> bool:
        """Whether the reference mask has no foreground (no surface)."""
        return self.weights_gt.size == 0

    @property
    def pred_empty(self) -> bool:
        """Whether the predicted mask has no foreground (no surface)."""
        return self.weights_pred.size == 0

    def hausdorff(self, percentile: float = 100.0) -> float:
        """Symmetric (robust) Hausdorff distance in mm at a percentile.

        The larger of the two directed ``percentile``-th percentiles of the
        surface distances; ``percentile=100`` is the classic Hausdorff distance.

        Args:
            percentile: In [0, 100].

        Returns:
            Distance in mm; 0.0 if both masks are empty, ``inf`` if exactly one is.

        Example:
            >>> import numpy as np
            >>> a = np.zeros((8, 8, 8), bool); a[2:5, 2:5, 2:5] = True
            >>> b = np.zeros((8, 8, 8), bool); b[2:5, 2:5, 3:6] = True
            >>> compute_surface_distances(b, a, spacing_mm=(1.0, 1.0, 2.5)).hausdorff()
            2.5
        """
        if not 0.0 <= percentile <= 100.0:
            raise InputError(f"percentile must be in [0, 100], got {percentile}")
        if self.gt_empty and self.pred_empty:
            return 0.0
        if self.gt_empty or self.pred_empty:
            return math.inf
        return max(
            self._directed_percentile("gt", percentile),
            self._directed_percentile("pred", percentile),
        )

    def hd95(self) -> float:
        """95th-percentile Hausdorff distance in mm, ``hausdorff(95.0)``.

        Example:
            >>> import numpy as np
            >>> a = np.zeros((8, 8, 8), bool); a[4, 4, 1] = True
            >>> b = np.zeros((8, 8, 8), bool); b[4, 4, 4] = True
            >>> compute_surface_distances(b, a, spacing_mm=(1.0, 1.0, 2.5)).hd95()
            7.5
        """
        return self.hausdorff(95.0)

    def nsd(self, tolerance_mm: float) -> float:
        """Normalised surface distance (surface Dice) at a tolerance in mm.

        The share of both surfaces (by area for ``"deepmind"``, by boundary
        voxel count for ``"monai"``) that lies within ``tolerance_mm``
        (inclusive) of the other surface.

        Args:
            tolerance_mm: Finite, >= 0.

        Returns:
            NSD in [0, 1]: 1.0 if both masks are empty, 0.0 if exactly one is.

        Example:
            >>> import numpy as np
            >>> a = np.zeros((8, 8, 8), bool); a[2:5, 2:5, 2:5] = True
            >>> b = np.zeros((8, 8, 8), bool); b[2:5, 2:5, 3:6] = True
            >>> d = compute_surface_distances(b, a, spacing_mm=(1.0, 1.0, 2.5))
            >>> d.nsd(2.5), d.nsd(1.0) < 1.0
            (1.0, True)
        """
        if not (math.isfinite(tolerance_mm) and tolerance_mm >= 0):
            raise InputError(f"tolerance_mm must be finite and >= 0, got {tolerance_mm}")
        if self.gt_empty and self.pred_empty:
            return 1.0
        if self.gt_empty or self.pred_empty:
            return 0.0
        within_gt = self._within("gt", tolerance_mm)
        within_pred = self._within("pred", tolerance_mm)
        overlap = np.sum(self.weights_gt[within_gt]) + np.sum(self.weights_pred[within_pred])
        total = np.sum(self.weights_gt) + np.sum(self.weights_pred)
        return float(overlap / total)

    def assd(self) -> float:
        """Average symmetric surface distance in mm.

        The weighted mean of the distances of all elements of both surfaces:
        ``(sum(d_gt * w_gt) + sum(d_pred * w_pred)) / (sum(w_gt) + sum(w_pred))``.

        Returns:
            Distance in mm; 0.0 if both masks are empty, ``inf`` if exactly one is.

        Example:
            >>> import numpy as np
            >>> a = np.zeros((8, 8, 8), bool); a[2:5, 2:5, 2:5] = True
            >>> compute_surface_distances(a, a, spacing_mm=(0.7, 0.7, 2.5)).assd()
            0.0
        """
        if self.gt_empty and self.pred_empty:
            return 0.0
        if self.gt_empty or self.pred_empty:
            return math.inf
        weighted = np.dot(self.distances_gt_to_pred_mm, self.weights_gt) + np.dot(
            self.distances_pred_to_gt_mm, self.weights_pred
        )
        return float(weighted / (np.sum(self.weights_gt) + np.sum(self.weights_pred)))

    def _side(self, side: Literal["gt", "pred"]) -> tuple[np.ndarray, np.ndarray]:
        if side == "gt":
            return self.distances_gt_to_pred_mm, self.weights_gt
        return self.distances_pred_to_gt_mm, self.weights_pred

    def _exact(self, side: Literal["gt", "pred"], index: np.ndarray) -> np.ndarray:
        """Exact float64 distances of the elements ``index`` of one surface."""
        distances, _ = self._side(side)
        grid = self._grid
        if grid is None:
            return distances[index]
        if side == "gt":
            points, targets = grid.points_gt[index], grid.border_pred
        else:
            points, targets = grid.points_pred[index], grid.border_gt
        return _exact_distances(points, distances[index], targets, grid.spacing_mm)

    def _directed_percentile(self, side: Literal["gt", "pred"], percentile: float) -> float:
        distances, weights = self._side(side)
        if self.definition == "monai":
            # Linear interpolation between two order statistics. Make them, and
            # every element tied with them, exact first, so ties keep their order.
            rank = (distances.size - 1) * percentile / 100.0
            picks = np.unique([math.floor(rank), math.ceil(rank)])
            values = distances.copy()
            for value in np.unique(np.partition(distances, picks)[picks]):
                tied = np.flatnonzero(np.abs(distances - value) <= _REL_BAND * value)
                values[tied] = self._exact(side, tied)
            return float(np.percentile(values, percentile))
        # Area-weighted lower percentile: first element whose cumulative area
        # share reaches percentile / 100. Ties are ordered by area.
        order = np.lexsort((weights, distances))
        sorted_weights = weights[order]
        share = np.cumsum(sorted_weights) / np.sum(sorted_weights)
        pick = min(int(np.searchsorted(share, percentile / 100.0)), order.size - 1)
        return float(self._exact(side, order[pick : pick + 1])[0])

    def _within(self, side: Literal["gt", "pred"], tolerance_mm: float) -> np.ndarray:
        distances, _ = self._side(side)
        within = distances <= tolerance_mm
        if tolerance_mm > 0:
            close = np.flatnonzero(np.abs(distances - tolerance_mm) <= _REL_BAND * tolerance_mm)
            if close.size:
                within[close] = self._exact(side, close) <= tolerance_mm
        return within


def compute_surface_distances(
    pred: ArrayLike,
    gt: ArrayLike,
    *,
    spacing_mm: Sequence[float],
    definition: Definition = DEFAULT_DEFINITION,
    threads: int | None = None,
) -> SurfaceDistances:
    """Computes the distances between the surfaces of two masks, once.

    Derive HD95, NSD and ASSD from the result (``.hd95()``, ``.nsd(tol)``,
    ``.assd()``, ``.hausdorff(p)``). Note the argument order: prediction first,
    unlike DeepMind's ``compute_surface_distances(mask_gt, mask_pred, ...)``.

    Args:
        pred: Predicted 2D or 3D mask, any array-like; non-zero is foreground.
        gt: Reference mask of the same shape.
        spacing_mm: Voxel size in mm per array axis, in array-axis order.
        definition: ``"deepmind"`` (default: area-weighted surfels on the
            voxel-corner grid) or ``"monai"`` (boundary voxels, unweighted).
        threads: Threads for the distance transform or k-d tree; default all
            available cores.

    Returns:
        The :class:`SurfaceDistances`.

    Raises:
        ValueError: If the shapes differ, the masks are not 2D or 3D, the
            spacing does not match or the definition is unknown.

    Example:
        >>> import numpy as np
        >>> gt = np.zeros((10, 10, 6), bool); gt[2:7, 2:7, 1:4] = True
        >>> pred = np.roll(gt, 1, axis=2)  # one slice (2.5 mm) further along axis 2
        >>> d = compute_surface_distances(pred, gt, spacing_mm=(0.7, 0.7, 2.5))
        >>> d.hd95(), round(d.nsd(2.0), 3), d.nsd(2.5)
        (2.5, 0.791, 1.0)
    """
    p, g = as_mask_pair(pred, gt)
    if p.ndim not in (2, 3):
        raise InputError(f"surface distances need 2D or 3D masks, got {p.ndim}D")
    spacing = as_spacing(spacing_mm, p.ndim)
    if definition not in DEFINITIONS:
        raise InputError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be >= 1, got {threads}")
    return surface_distances_cropped(
        *crop_pair(p, g), spacing_mm=spacing, definition=definition, threads=threads
    )


def surface_distances_cropped(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    spacing_mm: tuple[float, ...],
    definition: Definition,
    threads: int | None,
    engine: Literal["auto", "edt", "kdtree"] = "auto",
) -> SurfaceDistances:
    """:func:`compute_surface_distances` on checked boolean masks already cropped to their box.

    ``engine`` picks how nearest surface points are found: ``"edt"`` (distance
    transform of the whole box, float32, exact near thresholds on demand),
    ``"kdtree"`` (scipy k-d tree over the surface points, float64) or
    ``"auto"`` (the cheaper one for this box and surface size).
    """
    empty = np.zeros(0)
    if pred.size == 0:
        return SurfaceDistances(empty, empty, empty, empty, spacing_mm, definition)
    if definition == "deepmind":
        sizes = _surfel_size_table(spacing_mm)
        full = np.uint8(sizes.size - 1)
        borders, points, weights = [], [], []
        for mask in (gt, pred):
            code = _corner_codes(mask)
            border = (code - np.uint8(1)) < full - 1  # neither 0 nor all-inside (0 wraps to 255)
            where = np.flatnonzero(border)
            borders.append(border)
            points.append(where)
            weights.append(sizes[code.ravel()[where]])
    else:
        borders = [_boundary_voxels(mask) for mask in (gt, pred)]
        points = [np.flatnonzero(border) for border in borders]
        weights = [np.ones(where.size) for where in points]

    parallel = threads or _available_threads()
    if engine == "auto":
        # EDT work grows with the box, k-d tree work with the surface size.
        surface_size = points[0].size + points[1].size
        engine = "kdtree" if _KDTREE_COST * surface_size < borders[0].size else "edt"
    distances = []
    for targets, target_points, query_points in (
        (borders[1], points[1], points[0]),
        (borders[0], points[0], points[1]),
    ):
        if target_points.size == 0:
            distances.append(np.full(query_points.size, math.inf))
        elif engine == "kdtree":
            distances.append(
                _nearest_kdtree(query_points, target_points, targets.shape, spacing_mm, parallel)
            )
        else:
            distances.append(_nearest_edt(query_points, targets, spacing_mm, parallel))
    grid = _SurfaceGrid(spacing_mm, borders[0], borders[1], points[0], points[1])
    return SurfaceDistances(
        distances[0], distances[1], weights[0], weights[1], spacing_mm, definition, grid
    )
