"""Benchmark of the weights-free default engine on the bundled samples and a large synthetic CT.

For each sample (axial, intensity preset ``auto``), the object is prompted on
the slice where it is largest, either with its ground-truth mask or with three
simulated clicks (the first positive at the ground-truth pixel farthest from
its border; each next one at the farthest-from-border pixel of the larger
error, positive for a miss, negative for a false alarm; the slice re-predicted
after each click, on top of the last prediction as the session does), then
propagated both ways. Dice is 3D over the volume.

Then a synthetic 512x512x100 CT (a soft-tissue blob over 40 slices in noisy
lung-like background) is propagated from a mask, for time and peak memory.

Run: ``python benchmarks/default_engine.py``. The last line is
``seconds_per_100_slices=<x>`` (synthetic propagation time per 100 slices).
"""

from __future__ import annotations

import resource
import time

import numpy as np
from scipy import ndimage as ndi

from sam2vol.engines.base import SlicePrompts
from sam2vol.engines.default import DefaultEngine
from sam2vol.intensity import prepare_stack
from sam2vol.io.read import read_label, read_volume
from sam2vol.metrics import dice
from sam2vol.samples import SAMPLES, sample_path
from sam2vol.slicing import SliceGeometry


def load_sample(name: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """(prepared stack, ground-truth stack, stack spacing) of a bundled sample, axial."""
    volume = read_volume(sample_path(name, "image"))
    label = read_label(sample_path(name, "label"), like=volume)
    geometry = SliceGeometry.for_volume(volume, "axial")
    image = prepare_stack(geometry.to_stack(volume.data), "auto")
    truth = np.ascontiguousarray(geometry.to_stack(label.data) > 0)
    return image, truth, geometry.stack_spacing_mm


def next_click(truth: np.ndarray, pred: np.ndarray) -> tuple[int, int, bool] | None:
    """Where a simulated user clicks next: the deepest pixel of the larger error."""
    missed, extra = truth & ~pred, pred & ~truth
    error, positive = (missed, True) if missed.sum() >= extra.sum() else (extra, False)
    if not error.any():
        return None
    depth = ndi.distance_transform_edt(np.pad(error, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(row), int(col), positive


def click_prompts(engine: DefaultEngine, s: int, truth: np.ndarray, n: int) -> SlicePrompts:
    """``n`` simulated clicks on slice ``s``, re-predicting after each from the last mask."""
    prompts = SlicePrompts()
    pred = np.zeros_like(truth)
    for _ in range(n):
        click = next_click(truth, pred)
        if click is None:
            break
        prompts.add_point(*click)
        pred = engine.predict_slice(s, prompts, current=pred)  # as the session does
    prompts.result = pred
    return prompts


def run_case(name: str, prompt: str) -> tuple[float, float, int, str]:
    """(Dice, seconds, slices covered, their range) of one sample and prompt kind."""
    image, truth, spacing = load_sample(name)
    engine = DefaultEngine()
    engine.set_image(image, spacing)
    s0 = int(truth.sum(axis=(1, 2)).argmax())
    tic = time.perf_counter()
    if prompt == "mask":
        prompts = SlicePrompts(mask=truth[s0])
        prompts.result = engine.predict_slice(s0, prompts)
    else:
        prompts = click_prompts(engine, s0, truth[s0], 3)
    pred = np.zeros_like(truth)
    for result in engine.propagate({1: {s0: prompts}}, start=s0):
        pred[result.slice_index] = result.masks[1]
    seconds = time.perf_counter() - tic
    covered = np.flatnonzero(pred.any(axis=(1, 2)))
    span = f"{covered[0]}-{covered[-1]}" if covered.size else "-"
    return dice(pred, truth), seconds, int(covered.size), span


def synthetic_ct(shape=(100, 512, 512), first=30, last=69, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy lung-like CT (prepared to [0, 1]) with a soft-tissue mass on slices first..last.

    A chest wall of the same intensity, behind a faint fat plane, runs
    through every slice and touches the mass where it is largest.
    """
    rng = np.random.default_rng(seed)
    n, h, w = shape
    image = np.empty(shape, dtype=np.float32)
    truth = np.zeros(shape, dtype=bool)
    rows, cols = np.ogrid[:h, :w]
    texture = ndi.gaussian_filter(rng.normal(0, 1, (h, w)).astype(np.float32), 3)
    wall_row = 345
    for s in range(n):
        image[s] = 0.15 + 0.03 * texture + rng.normal(0, 0.02, (h, w)).astype(np.float32)
        image[s, wall_row - 2 : wall_row] = 0.45  # fat plane
        image[s, wall_row:] += 0.37  # chest wall, as bright as the mass
        if first <= s <= last:
            t = (s - first) / (last - first)
            radius = 20 + 60 * np.sin(np.pi * t)
            blob = ((rows - 260 - 10 * t) / radius) ** 2 + ((cols - 260) / (0.8 * radius)) ** 2 <= 1
            blob &= rows < wall_row - 2
            truth[s] = blob
            image[s][blob] = 0.52 + rng.normal(0, 0.02, int(blob.sum()))
    return np.clip(image, 0, 1), truth


def run_synthetic() -> tuple[float, float, int, float, float]:
    """(seconds, CPU seconds, slices yielded, Dice, peak RSS in MiB) of the synthetic run."""
    image, truth = synthetic_ct()
    engine = DefaultEngine()
    engine.set_image(image, (2.5, 0.7, 0.7))
    s0 = 50
    prompts = SlicePrompts(mask=truth[s0])
    tic, cpu = time.perf_counter(), time.process_time()
    prompts.result = engine.predict_slice(s0, prompts)
    pred = np.zeros_like(truth)
    count = 0
    for result in engine.propagate({1: {s0: prompts}}, start=s0):
        pred[result.slice_index] = result.masks[1]
        count += 1
    seconds, cpu = time.perf_counter() - tic, time.process_time() - cpu
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, cpu, count, dice(pred, truth), peak_mib


def main() -> None:
    print(f"{'case':<8} {'prompt':<9} {'dice':>6} {'seconds':>8} {'slices':>7}  range")
    for name in SAMPLES:
        for prompt in ("mask", "3 clicks"):
            score, seconds, covered, span = run_case(name, prompt)
            print(f"{name:<8} {prompt:<9} {score:6.3f} {seconds:8.2f} {covered:7d}  {span}")
    seconds, cpu, count, score, peak_mib = run_synthetic()
    print(
        f"synthetic 512x512x100 from a mask: {seconds:.2f} s ({cpu:.2f} s CPU) for {count} "
        f"slices, Dice {score:.3f}, peak RSS of the process {peak_mib:.0f} MiB"
    )
    print(f"seconds_per_100_slices={seconds * 100 / count:.3f}")


if __name__ == "__main__":
    main()
