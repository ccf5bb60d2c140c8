"""The report's figures (matplotlib, imported only here)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from sam2vol.evaluation.stats import dice_at_round, mean_ci, relative_positions

SCOPES = (("all", "all slices"), ("foreground", "background slices removed"))
# dice_by_slice_position: bins over the object's extent (docs/protocols.md says 5).
N_BINS = 5
BAND_ALPHA = 0.12
# Confidence bands are drawn when a panel has at most this many lines (else they hide them).
MAX_BANDS = 3


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        from sam2vol.errors import InputError

        raise InputError("report figures need matplotlib: pip install 'sam2vol[eval]'") from exc

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(stats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, low and high arrays; no interval (n = 1) gives a zero-width band."""
    mean = np.array([s.mean for s in stats])
    low = np.array([s.mean if math.isnan(s.low) else s.low for s in stats])
    high = np.array([s.mean if math.isnan(s.high) else s.high for s in stats])
    return mean, low, high


def _annotate_n(ax, x, y, ns, colour) -> None:
    """Write n beside each point where it differs from the previous point's."""
    last = None
    for xi, yi, n in zip(x, y, ns, strict=True):
        if n != last:
            ax.annotate(f"n={n}", (xi, yi), textcoords="offset points", xytext=(2, 4),
                        fontsize=6, color=colour)  # fmt: skip
            last = n


def dice_vs_prompted_slices(series: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Mean Dice (95% t band) after each round, He et al.'s figure ("annotated slices").

    A run that stopped early counts only in the rounds it ran (n is written
    where it changes); a dotted line shows the mean with its last Dice
    carried forward, as He et al.'s plotting code fills NaN.

    Args:
        series: Label -> records (status ``ok``) of one line.
        path: PNG to write.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, (scope, title) in zip(axes, SCOPES, strict=True):
        points = 0  # one-round series are drawn side by side
        lines = sum(_rounds(records, scope) > 1 for records in series.values())
        for label, records in series.items():
            top = _rounds(records, scope)
            if top == 0:
                continue
            xs = np.arange(1, top + 1)
            stats = [mean_ci([dice_at_round(r, x, scope) for r in records]) for x in xs]
            keep = np.array([s.n > 0 for s in stats])
            x = xs[keep]
            mean, low, high = (a[keep] for a in _band(stats))
            if x.size == 1:
                shift = 0.06 * (points - 2)
                points += 1
                err = [[mean[0] - low[0]], [high[0] - mean[0]]]
                ax.errorbar(x + shift, mean, yerr=err, fmt="o", ms=5, capsize=3, label=label)
                continue
            (line,) = ax.plot(x, mean, marker="o", ms=3, label=label)
            colour = line.get_color()
            if lines <= MAX_BANDS:
                ax.fill_between(x, low, high, color=colour, alpha=BAND_ALPHA, lw=0)
            ns = [s.n for s, k in zip(stats, keep, strict=True) if k]
            _annotate_n(ax, x, mean, ns, colour)
            if min(ns) < max(ns):  # some runs stopped early: their carried-forward mean
                carried = [np.nanmean([_carried(r, n, scope) for r in records]) for n in x]
                ax.plot(x, carried, ls=":", color=colour, lw=1)
        ax.set_title(f"Dice, {title}")
        ax.set_xlabel("round (prompted slices, counting repeats)")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("mean Dice (95% CI)")
    axes[0].set_ylim(0, 1)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _rounds(records: list[dict[str, Any]], scope: str) -> int:
    return max(len((r.get("round_dice_by_scope") or {}).get(scope) or []) for r in records)


def _carried(record: dict[str, Any], n: int, scope: str) -> float:
    dice = (record.get("round_dice_by_scope") or {}).get(scope) or []
    return float(dice[min(n, len(dice)) - 1]) if dice else math.nan


def dice_vs_clicks(series: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """Mean Dice (95% t band) against the number of clicks (``shen2024-clicks``).

    Args:
        series: Label -> ``(clicks, Dice)`` points, one per run and click count
            (an exact run gives one point: its final clicks and Dice; a run that
            stopped early sits at the clicks it gave; n is written at each point).
        path: PNG to write.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, pairs in series.items():
        xs = np.array(sorted({c for c, _ in pairs}))
        stats = [mean_ci([d for c, d in pairs if c == x]) for x in xs]
        mean, low, high = _band(stats)
        (line,) = ax.plot(xs, mean, marker="o", ms=3, label=label)
        colour = line.get_color()
        if len(series) <= MAX_BANDS:
            ax.fill_between(xs, low, high, color=colour, alpha=BAND_ALPHA, lw=0)
        for x, y, st in zip(xs, mean, stats, strict=True):
            ax.annotate(f"n={st.n}", (x, y), textcoords="offset points", xytext=(2, 4),
                        fontsize=6, color=colour)  # fmt: skip
    ax.set_xlabel("clicks on the centre frame")
    ax.set_ylabel("mean Dice, protocol's scope (95% CI)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def dice_by_slice_position(series: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Mean 2D Dice (95% t band) by relative slice position in the object's extent."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    centres = (np.arange(N_BINS) + 0.5) / N_BINS
    for label, records in series.items():
        bins: list[list[float]] = [[] for _ in range(N_BINS)]
        for record in records:
            for position, dice in relative_positions(record):
                bins[min(int(position * N_BINS), N_BINS - 1)].append(dice)
        stats = [mean_ci(b) for b in bins]
        keep = np.array([s.n > 0 for s in stats])
        mean, low, high = (a[keep] for a in _band(stats))
        (line,) = ax.plot(centres[keep], mean, marker="o", ms=3, label=label)
        colour = line.get_color()
        if len(series) <= MAX_BANDS:
            ax.fill_between(centres[keep], low, high, color=colour, alpha=BAND_ALPHA, lw=0)
        for x, y, st in zip(centres[keep], mean, [s for s in stats if s.n > 0], strict=True):
            ax.annotate(f"{st.n}", (x, y), textcoords="offset points", xytext=(2, 4),
                        fontsize=6, color=colour)  # fmt: skip
    ax.set_xlabel(
        f"slice position in the object's extent, {N_BINS} bins (0 = first, 1 = last); "
        "numbers: slices per bin"
    )
    ax.set_ylabel("mean 2D Dice per slice" + (" (95% CI)" if len(series) <= MAX_BANDS else ""))
    ax.set_ylim(0, 1)
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
