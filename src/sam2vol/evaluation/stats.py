"""Summary statistics of the report: means with 95% t-intervals, curves over rounds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MeanCI:
    """Mean of a sample with a two-sided t confidence interval.

    ``low`` and ``high`` are NaN for fewer than two values (no interval).
    """

    mean: float
    low: float
    high: float
    n: int

    def format(self, digits: int = 3) -> str:
        """``0.812 [0.771, 0.853]``, or ``0.812`` without an interval, ``-`` when empty."""
        if self.n == 0:
            return "-"
        if math.isnan(self.low):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def mean_ci(
    values: Sequence[float | None],
    level: float = 0.95,
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> MeanCI:
    """Mean and Student-t interval ``mean ± t(level, n-1) · s / sqrt(n)`` (finite values only).

    The interval is clipped to ``bounds`` (a Dice lies in [0, 1]); ``None`` keeps it as is.

    Example:
        >>> r = mean_ci([0.8, 0.9, 1.0], bounds=None)
        >>> round(r.mean, 3), round(r.low, 3), round(r.high, 3)
        (0.9, 0.652, 1.148)
        >>> mean_ci([0.8, 0.9, 1.0]).high
        1.0
    """
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return MeanCI(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if x.size < 2:
        return MeanCI(mean, math.nan, math.nan, 1)
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return MeanCI(mean, low, high, int(x.size))


def median(values: Sequence[Any]) -> float:
    """Median of the finite values (``"inf"`` strings count as infinite and are left out)."""
    x = np.asarray([float(v) for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def dice_at_prompted_slices(record: dict[str, Any], n: int, scope: str) -> float:
    """Dice once the user has prompted ``n`` slices: the last round with at most ``n`` slices.

    A run that stopped early keeps its last Dice; NaN when even the first
    round prompted more than ``n`` slices.
    """
    rounds = record.get("round_prompted_slices") or []
    dice = (record.get("round_dice_by_scope") or {}).get(scope) or []
    value = math.nan
    for slices, d in zip(rounds, dice, strict=False):
        if slices <= n:
            value = float(d)
    return value


def dice_at_round(record: dict[str, Any], n: int, scope: str) -> float:
    """Dice after round ``n`` (1-based); NaN when the run stopped before it."""
    dice = (record.get("round_dice_by_scope") or {}).get(scope) or []
    return float(dice[n - 1]) if 0 < n <= len(dice) else math.nan


def pooled_slice_iou(records: Sequence[dict[str, Any]]) -> MeanCI:
    """Dong et al.'s figure: mean 2D IoU over every object slice of every record, pooled.

    Each ``slice_dice`` entry is a slice where the reference shows the object;
    IoU is ``d / (2 - d)`` of its 2D Dice ``d``.
    """
    values = [
        float(d) / (2.0 - float(d)) for r in records for _, d, *_ in r.get("slice_dice") or []
    ]
    return mean_ci(values, bounds=(0.0, 1.0))


def relative_positions(record: dict[str, Any]) -> list[tuple[float, float]]:
    """(position in the object's extent from 0 to 1, 2D Dice) of every reference slice."""
    first, last = record["extent"]
    span = max(last - first, 1)
    return [
        ((s - first) / span if last > first else 0.5, float(d))
        for s, d, *_ in record.get("slice_dice") or []
    ]
