"""Benchmark: HD95 + NSD on a 512x512x300 CT-sized mask pair, against the references.

Times, best of 3:

* ours, ``definition="deepmind"``: one ``compute_surface_distances`` + ``hd95()`` + ``nsd()``;
* DeepMind ``surface_distance``: ``compute_surface_distances`` +
  ``compute_robust_hausdorff(95)`` + ``compute_surface_dice_at_tolerance``;
* ours, ``definition="monai"``: the same calls with MONAI's definition;
* MONAI: ``compute_hausdorff_distance(percentile=95, spacing=...)`` +
  ``compute_surface_dice(class_thresholds=[tol], spacing=...)`` (needs torch;
  left out with a message if MONAI is not installed).

Each reference is compared like for like with ours under the same definition:
values must agree (DeepMind exactly; MONAI to float32 precision, since it
interpolates its percentile in float32). Speedups are reference seconds divided
by our seconds under the matching definition. The last two lines are
``speedup_vs_slowest_reference=<x>`` and ``speedup_vs_fastest_reference=<x>``.

Run: ``python benchmarks/metrics.py`` (add ``src`` to ``PYTHONPATH`` if the
package is not installed).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from sam2vol.metrics import compute_surface_distances

SHAPE = (512, 512, 300)
SPACING_MM = (0.7, 0.7, 2.5)
TOLERANCE_MM = 2.0
REPEATS = 3


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], coarse: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: random coarse grid, upsampled linearly."""
    small = rng.uniform(-1.0, 1.0, size=[max(2, n // coarse) for n in shape])
    small = ndimage.gaussian_filter(small, 1.0)
    small /= np.abs(small).max()
    return ndimage.zoom(small, [n / m for n, m in zip(shape, small.shape, strict=True)], order=1)


def make_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An irregular organ-like reference and a perturbed prediction on the full CT grid.

    The reference is a lobed ellipsoid (semi-axes 95 x 75 x 30 voxels, i.e.
    66 x 52 x 75 mm) with a bumpy, low-frequency boundary: ~1.0 M voxels on ~70
    slices. The prediction is the reference shifted by about a voxel, with its
    boundary moved by other smooth noise, a missed notch and two small false
    positives far from the organ (which enlarge the joint bounding box).
    """
    rng = np.random.default_rng(seed)
    box = (240, 200, 80)
    origin = (140, 150, 110)
    grid = np.meshgrid(*(np.arange(n) - n / 2 for n in box), indexing="ij")
    radius = np.sqrt(sum((g / r) ** 2 for g, r in zip(grid, (95.0, 75.0, 30.0), strict=True)))
    lobes = 0.12 * np.cos(3 * np.arctan2(grid[1], grid[0]))
    gt_field = 1.0 - radius + lobes + 0.2 * _smooth_noise(rng, box, 24)
    pred_field = ndimage.shift(gt_field, (1.0, -1.0, 0.4), order=1, mode="nearest")
    pred_field += 0.04 * _smooth_noise(rng, box, 16) + 0.02 * _smooth_noise(rng, box, 6)
    gt_box = gt_field > 0
    pred_box = pred_field > 0
    pred_box[150:190, 120:170, 30:50] = False  # missed notch
    window = tuple(slice(o, o + n) for o, n in zip(origin, box, strict=True))
    gt = np.zeros(SHAPE, dtype=bool)
    pred = np.zeros(SHAPE, dtype=bool)
    gt[window] = gt_box
    pred[window] = pred_box
    pred[60:75, 300:312, 200:204] = True  # false positives away from the organ
    pred[400:406, 100:110, 60:62] = True
    return pred, gt


@dataclass
class Row:
    name: str
    definition: str
    seconds: float
    hd95_mm: float
    nsd: float


def best_of(fn: Callable[[], tuple[float, float]], repeats: int) -> tuple[float, float, float]:
    """Best wall time of ``repeats`` calls, and the values of the last call."""
    best = math.inf
    values = (math.nan, math.nan)
    for _ in range(repeats):
        start = time.perf_counter()
        values = fn()
        best = min(best, time.perf_counter() - start)
    return best, float(values[0]), float(values[1])


def ours(pred: np.ndarray, gt: np.ndarray, definition: str) -> tuple[float, float]:
    distances = compute_surface_distances(pred, gt, spacing_mm=SPACING_MM, definition=definition)
    return distances.hd95(), distances.nsd(TOLERANCE_MM)


def deepmind_fn(pred: np.ndarray, gt: np.ndarray) -> Callable[[], tuple[float, float]] | None:
    try:
        import surface_distance
    except ImportError as error:
        print(f"DeepMind surface-distance not available ({error}); leaving it out")
        return None

    def run() -> tuple[float, float]:
        distances = surface_distance.compute_surface_distances(gt, pred, SPACING_MM)
        return (
            surface_distance.compute_robust_hausdorff(distances, 95),
            surface_distance.compute_surface_dice_at_tolerance(distances, TOLERANCE_MM),
        )

    return run


def monai_fn(pred: np.ndarray, gt: np.ndarray) -> Callable[[], tuple[float, float]] | None:
    try:
        import torch
        from monai.metrics import compute_hausdorff_distance, compute_surface_dice
    except ImportError as error:
        print(f"MONAI not available ({error}); leaving it out")
        return None
    # Channel-first batch of one class; MONAI converts to float itself.
    y_pred = torch.from_numpy(pred)[None, None]
    y = torch.from_numpy(gt)[None, None]

    def run() -> tuple[float, float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hd = compute_hausdorff_distance(
                y_pred, y, include_background=True, percentile=95, spacing=SPACING_MM
            )
            nsd = compute_surface_dice(
                y_pred, y, [TOLERANCE_MM], include_background=True, spacing=SPACING_MM
            )
        return float(hd.item()), float(nsd.item())

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv)
    repeats = args.repeats

    start = time.perf_counter()
    pred, gt = make_pair()
    print(
        f"masks {SHAPE}, spacing {SPACING_MM} mm, tolerance {TOLERANCE_MM} mm: "
        f"gt {np.count_nonzero(gt)} voxels on {np.count_nonzero(gt.any(axis=(0, 1)))} slices, "
        f"pred {np.count_nonzero(pred)} voxels (built in {time.perf_counter() - start:.1f} s)"
    )

    rows = [Row("sam2vol", "deepmind", *best_of(lambda: ours(pred, gt, "deepmind"), repeats))]
    deepmind_run = deepmind_fn(pred, gt)
    if deepmind_run is not None:
        rows.append(Row("surface-distance (DeepMind)", "deepmind", *best_of(deepmind_run, repeats)))
    monai_run = monai_fn(pred, gt)
    if monai_run is not None:
        rows.append(Row("sam2vol", "monai", *best_of(lambda: ours(pred, gt, "monai"), repeats)))
        rows.append(Row("MONAI", "monai", *best_of(monai_run, repeats)))

    print(f"{'implementation':30} {'definition':10} {'seconds':>9} {'hd95_mm':>12} {'nsd':>12}")
    for row in rows:
        print(
            f"{row.name:30} {row.definition:10} {row.seconds:9.3f} "
            f"{row.hd95_mm:12.6f} {row.nsd:12.8f}"
        )

    ok = True
    speedups: dict[str, float] = {}
    for ref in rows:
        if ref.name == "sam2vol":
            continue
        mine = next(r for r in rows if r.name == "sam2vol" and r.definition == ref.definition)
        # DeepMind: same float64 arithmetic, equal values; MONAI: float32 percentile.
        rtol = 1e-9 if ref.definition == "deepmind" else 1e-5
        d_hd = abs(mine.hd95_mm - ref.hd95_mm)
        d_nsd = abs(mine.nsd - ref.nsd)
        equal = d_hd <= rtol * abs(ref.hd95_mm) and d_nsd <= rtol
        ok &= equal
        speedups[ref.name] = ref.seconds / mine.seconds
        print(
            f"vs {ref.name}: |d hd95| = {d_hd:.3g} mm, |d nsd| = {d_nsd:.3g} "
            f"({'equal' if equal else 'DIFFERENT'} at rtol {rtol:g}), "
            f"speedup {speedups[ref.name]:.2f}x"
        )
    if not ok:
        print("values differ from a reference", file=sys.stderr)
    if not speedups:
        print("no reference implementation installed", file=sys.stderr)
        print("speedup_vs_slowest_reference=nan")
        print("speedup_vs_fastest_reference=nan")
        return 1

    slowest = max((r for r in rows if r.name != "sam2vol"), key=lambda r: r.seconds)
    fastest = min((r for r in rows if r.name != "sam2vol"), key=lambda r: r.seconds)
    print(f"speedup_vs_slowest_reference={speedups[slowest.name]:.2f}")
    print(f"speedup_vs_fastest_reference={speedups[fastest.name]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
