"""Segmentation metrics with physical (anisotropic) spacing.

Dice, IoU, HD95, NSD (surface Dice) and ASSD of a predicted mask against a
reference, plus per-slice 2D Dice and the slice selections used in the SAM 2
CT/MRI papers. Surface distances are computed once and every surface metric is
derived from them; the default definition is DeepMind's ``surface-distance``
(area-weighted surfels on the voxel-corner grid), see
:mod:`sam2vol.metrics.surface`.

Empty masks: both empty gives Dice 1, IoU 1, HD95 0, ASSD 0, NSD 1; exactly
one empty gives Dice 0, IoU 0, HD95 inf, ASSD inf, NSD 0. In JSON, ``inf`` is
the string ``"inf"``.

Example:
    >>> import numpy as np
    >>> from sam2vol.metrics import evaluate
    >>> gt = np.zeros((32, 32, 12), bool); gt[8:24, 8:24, 3:9] = True
    >>> pred = np.roll(gt, 2, axis=0)  # 2 rows = 1.4 mm off
    >>> r = evaluate(pred, gt, spacing_mm=(0.7, 0.7, 2.5), tolerance_mm=2.0)
    >>> round(r.dice, 3), round(r.hd95_mm, 2), r.nsd
    (0.875, 1.4, 1.0)
"""

from sam2vol.metrics.overlap import dice, iou
from sam2vol.metrics.slices import SLICE_MODES, SliceMode, per_slice_dice, select_slices
from sam2vol.metrics.summary import (
    METRIC_NAMES,
    MetricAccumulator,
    MetricResult,
    MetricSummary,
    evaluate,
)
from sam2vol.metrics.surface import (
    DEFAULT_DEFINITION,
    DEFINITIONS,
    Definition,
    SurfaceDistances,
    compute_surface_distances,
)

__all__ = [
    "DEFAULT_DEFINITION",
    "DEFINITIONS",
    "METRIC_NAMES",
    "SLICE_MODES",
    "Definition",
    "MetricAccumulator",
    "MetricResult",
    "MetricSummary",
    "SliceMode",
    "SurfaceDistances",
    "compute_surface_distances",
    "dice",
    "evaluate",
    "iou",
    "per_slice_dice",
    "select_slices",
]
