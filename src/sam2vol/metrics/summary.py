"""All metrics of one case in one call, and their aggregation over many cases.

JSON: ``inf`` (HD95 and ASSD when exactly one mask is empty) is written as the
string ``"inf"``, which ``float()`` reads back; standard JSON has no infinity.
NaN (only an aggregate over no finite value) is written as ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sam2vol.errors import InputError
from sam2vol.metrics._common import as_axis, as_mask_pair, as_spacing, crop_pair
from sam2vol.metrics.overlap import dice_from_counts, iou_from_counts, overlap_counts
from sam2vol.metrics.slices import SliceMode, select_slices
from sam2vol.metrics.surface import (
    DEFAULT_DEFINITION,
    DEFINITIONS,
    Definition,
    surface_distances_cropped,
)

__all__ = [
    "METRIC_NAMES",
    "MetricAccumulator",
    "MetricResult",
    "MetricSummary",
    "evaluate",
]

METRIC_NAMES: tuple[str, ...] = ("dice", "iou", "hd95_mm", "nsd", "assd_mm")


def _json_float(value: float) -> float | str | None:
    """A float as JSON can hold it: ``inf`` as ``"inf"``, NaN as ``None``."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def _from_json_float(value: float | str | None) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class MetricResult:
    """Metrics of one predicted mask against one reference.

    Attributes:
        dice: Volume Dice in [0, 1].
        iou: Volume IoU (Jaccard) in [0, 1].
        hd95_mm: 95th-percentile Hausdorff distance in mm (``inf`` if exactly one mask is empty).
        nsd: Normalised surface distance (surface Dice) at ``tolerance_mm``, in [0, 1].
        assd_mm: Average symmetric surface distance in mm (``inf`` if exactly one mask is empty).
        tolerance_mm: NSD tolerance used.
        definition: Surface definition used, ``"deepmind"`` or ``"monai"``.
        slices: Slice selection: ``"all"``, ``"foreground"``, ``"salient"`` or
            ``"custom"`` (a boolean index was given).
        n_slices: Number of slices scored along the slice axis (``None`` for
            ``slices="all"`` when the mask has no such axis).
        gt_voxels: Reference foreground voxels scored.
        pred_voxels: Predicted foreground voxels scored.
    """

    dice: float
    iou: float
    hd95_mm: float
    nsd: float
    assd_mm: float
    tolerance_mm: float
    definition: str = DEFAULT_DEFINITION
    slices: str = "all"
    n_slices: int | None = None
    gt_voxels: int = 0
    pred_voxels: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        """Plain dict for ``json.dumps``: the five metrics first, ``inf`` as ``"inf"``.

        Example:
            >>> r = MetricResult(0.0, 0.0, math.inf, 0.0, math.inf, tolerance_mm=2.0)
            >>> r.to_json_dict()["hd95_mm"]
            'inf'
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = _json_float(value) if isinstance(value, float) else value
        return out

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> MetricResult:
        """Inverse of :meth:`to_json_dict`."""
        kwargs = dict(data)
        for name in (*METRIC_NAMES, "tolerance_mm"):
            kwargs[name] = _from_json_float(kwargs[name])
        return cls(**kwargs)


def evaluate(
    pred: ArrayLike,
    gt: ArrayLike,
    *,
    spacing_mm: Sequence[float],
    tolerance_mm: float = 2.0,
    slice_axis: int = 2,
    slices: SliceMode | ArrayLike = "all",
    min_pixels: int = 256,
    definition: Definition = DEFAULT_DEFINITION,
    threads: int | None = None,
) -> MetricResult:
    """Dice, IoU, HD95, NSD and ASSD of a prediction, with one surface computation.

    Slice selection keeps the volume's geometry: unselected slices are set to
    background in *both* masks, so distances stay physical. With
    ``slices="foreground"`` that discards prediction outside the reference's
    slice range (background-slice removal); with ``"salient"`` it also drops the
    reference's small end slices.

    Args:
        pred: Predicted 2D or 3D mask, any array-like; non-zero is foreground.
        gt: Reference mask of the same shape.
        spacing_mm: Voxel size in mm per array axis, in array-axis order.
        tolerance_mm: NSD tolerance in mm.
        slice_axis: Array axis of the slices, for ``slices`` other than ``"all"``.
        slices: ``"all"``, ``"foreground"``, ``"salient"`` (see
            :func:`select_slices`) or a boolean index over ``slice_axis``.
        min_pixels: Threshold of ``"salient"``: a slice needs more reference pixels.
        definition: Surface definition, ``"deepmind"`` (default) or ``"monai"``;
            see :mod:`sam2vol.metrics.surface`.
        threads: Threads for the distance transform or k-d tree; default all
            available cores.

    Returns:
        The :class:`MetricResult`.

    Raises:
        ValueError: On a shape mismatch, a spacing of the wrong length, a
            negative tolerance, an unknown slice mode or definition.

    Example:
        >>> import numpy as np
        >>> gt = np.zeros((10, 10, 6), bool); gt[2:7, 2:7, 1:4] = True
        >>> pred = np.roll(gt, 1, axis=2)
        >>> r = evaluate(pred, gt, spacing_mm=(0.7, 0.7, 2.5), tolerance_mm=2.5)
        >>> round(r.dice, 3), r.hd95_mm, r.nsd
        (0.667, 2.5, 1.0)
    """
    p, g = as_mask_pair(pred, gt)
    if p.ndim not in (2, 3):
        raise InputError(f"evaluate needs 2D or 3D masks, got {p.ndim}D")
    spacing = as_spacing(spacing_mm, p.ndim)
    if not (math.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise InputError(f"tolerance_mm must be finite and >= 0, got {tolerance_mm}")
    if definition not in DEFINITIONS:
        raise InputError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be >= 1, got {threads}")

    if isinstance(slices, str) and slices == "all":
        label = "all"
        n_slices = p.shape[slice_axis] if -p.ndim <= slice_axis < p.ndim else None
    else:
        axis = as_axis(slice_axis, p.ndim)
        if isinstance(slices, str):
            label = slices
            keep = select_slices(g, axis=axis, mode=slices, min_pixels=min_pixels)  # type: ignore[arg-type]
        else:
            label = "custom"
            keep = np.asarray(slices)
            if keep.dtype != np.bool_ or keep.shape != (p.shape[axis],):
                raise InputError(
                    f"slices must be a mode name or a boolean array of length {p.shape[axis]}, "
                    f"got {keep.dtype} array of shape {keep.shape}"
                )
        n_slices = int(np.count_nonzero(keep))
        if n_slices < keep.size:
            keep = keep.reshape([-1 if a == axis else 1 for a in range(p.ndim)])
            p, g = p & keep, g & keep

    p, g = crop_pair(p, g)
    intersection, pred_voxels, gt_voxels = overlap_counts(p, g)
    distances = surface_distances_cropped(
        p, g, spacing_mm=spacing, definition=definition, threads=threads
    )
    return MetricResult(
        dice=dice_from_counts(intersection, pred_voxels, gt_voxels),
        iou=iou_from_counts(intersection, pred_voxels, gt_voxels),
        hd95_mm=distances.hd95(),
        nsd=distances.nsd(tolerance_mm),
        assd_mm=distances.assd(),
        tolerance_mm=float(tolerance_mm),
        definition=definition,
        slices=label,
        n_slices=n_slices,
        gt_voxels=gt_voxels,
        pred_voxels=pred_voxels,
    )


@dataclass(frozen=True)
class MetricSummary:
    """Aggregate of one metric over many cases.

    ``mean``, ``std`` (population) and ``median`` are taken over the finite
    values only; ``n_infinite`` says how many were left out (``inf`` HD95 or
    ASSD: exactly one mask empty). With no finite value they are NaN.

    Attributes:
        mean: Mean of the finite values.
        std: Population standard deviation of the finite values.
        median: Median of the finite values.
        n: Number of cases.
        n_infinite: Cases with an infinite value, not in mean/std/median.
    """

    mean: float
    std: float
    median: float
    n: int
    n_infinite: int

    def to_json_dict(self) -> dict[str, Any]:
        """Plain dict for ``json.dumps``; NaN as ``None``."""
        return {
            "mean": _json_float(self.mean),
            "std": _json_float(self.std),
            "median": _json_float(self.median),
            "n": self.n,
            "n_infinite": self.n_infinite,
        }


class MetricAccumulator:
    """Collects :class:`MetricResult` objects and aggregates them per metric.

    Infinite values (HD95/ASSD with exactly one empty mask) are never dropped
    silently: :meth:`mean` averages the finite values and :meth:`n_infinite`
    (and every :class:`MetricSummary`) counts the rest. All results must share
    definition, tolerance and slice mode, otherwise :meth:`append` raises.

    Example:
        >>> import numpy as np
        >>> gt = np.zeros((8, 8, 8), bool); gt[2:6, 2:6, 2:6] = True
        >>> acc = MetricAccumulator()
        >>> acc.append(evaluate(gt, gt, spacing_mm=(1, 1, 1)))
        >>> acc.append(evaluate(np.zeros_like(gt), gt, spacing_mm=(1, 1, 1)))
        >>> acc.mean()["dice"], acc.mean()["hd95_mm"], acc.n_infinite()["hd95_mm"]
        (0.5, 0.0, 1)
    """

    def __init__(self, results: Iterable[MetricResult] = ()) -> None:
        self._results: list[MetricResult] = []
        self.extend(results)

    def append(self, result: MetricResult) -> None:
        """Adds one result.

        Raises:
            TypeError: If ``result`` is not a :class:`MetricResult`.
            ValueError: If its definition, tolerance or slice mode differ from earlier ones.
        """
        if not isinstance(result, MetricResult):
            raise TypeError(f"expected a MetricResult, got {type(result).__name__}")
        if self._results:
            first = self._results[0]
            for name in ("definition", "tolerance_mm", "slices"):
                if getattr(result, name) != getattr(first, name):
                    raise InputError(
                        f"cannot mix results with {name}={getattr(first, name)!r} "
                        f"and {name}={getattr(result, name)!r}"
                    )
        self._results.append(result)

    def extend(self, results: Iterable[MetricResult]) -> None:
        """Adds several results."""
        for result in results:
            self.append(result)

    def reset(self) -> None:
        """Forgets all results."""
        self._results.clear()

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[MetricResult]:
        return iter(self._results)

    @property
    def results(self) -> tuple[MetricResult, ...]:
        """The results, in the order added."""
        return tuple(self._results)

    def values(self, name: str) -> np.ndarray:
        """All values of one metric (``inf`` included) as a float array, in the order added."""
        if name not in METRIC_NAMES:
            raise InputError(f"metric must be one of {METRIC_NAMES}, got {name!r}")
        return np.array([getattr(r, name) for r in self._results], dtype=np.float64)

    def summary(self) -> dict[str, MetricSummary]:
        """Per-metric :class:`MetricSummary` (mean/std/median of finite values, counts)."""
        out = {}
        for name in METRIC_NAMES:
            values = self.values(name)
            finite = values[np.isfinite(values)]
            if finite.size:
                stats = (float(finite.mean()), float(finite.std()), float(np.median(finite)))
            else:
                stats = (math.nan, math.nan, math.nan)
            out[name] = MetricSummary(*stats, n=values.size, n_infinite=values.size - finite.size)
        return out

    def mean(self) -> dict[str, float]:
        """Per-metric mean over the finite values (NaN if there are none)."""
        return {name: s.mean for name, s in self.summary().items()}

    def n_infinite(self) -> dict[str, int]:
        """Per-metric number of infinite values left out of :meth:`mean`."""
        return {name: s.n_infinite for name, s in self.summary().items()}

    def to_json_dict(self) -> dict[str, Any]:
        """``{metric: summary dict}`` for ``json.dumps``."""
        return {name: s.to_json_dict() for name, s in self.summary().items()}
