"""Time SAM 2 propagation: our engine against the official pipeline the papers used.

On one synthetic volume (default 60 slices of 512x512; random weights: the cost
does not depend on them) it times

1. one propagation from a mask prompt on the middle slice, both directions;
2. the iterative protocol of He et al.: one prompt slice, then 7 rounds of one
   correction click and re-propagation (8 propagations in all). Each round
   corrects the slice with the largest error not corrected yet, clicking the
   centre of its largest error region (positive on a miss, negative on a false
   positive);

for our engine (slices fed from memory, every slice encoded once per session)
and for the official pipeline (slices written as JPEGs, ``init_state`` on the
folder, Meta's ``SAM2VideoPredictor``). Both run the same model with the same
settings (``add_all_frames_to_correct_as_cond=True``), so they do the same
tracking work; setup (JPEG writing, frame loading) is timed too, model
building is not. The two pipelines take turns a slice at a time, so that a
machine whose speed drifts (other jobs, a shared host) slows both alike.

Both pipelines' image-encoder calls are timed as well. The table splits each
run into encoding and everything else (tracking, prompts, frame I/O), and for
each task the script prints the *encode-once ceiling*: the speed-up an engine
would get from encoding every slice once and doing the official pipeline's
remaining work unchanged, ``official / (our encoding + official's other
time)``. An engine that must give the official logits computes the same
tracking steps, so beyond that ceiling only the frame I/O is left to save.

Prints a table and, last, ``iterative_speedup_vs_official=<x>``.

Usage:
    python benchmarks/propagation.py [--slices 60] [--image-size 512] [--quick]
    python benchmarks/propagation.py --checkpoint random:sam2.1_hiera_l --slices 24
    python benchmarks/propagation.py --batched-objects --slices 24 --image-size 256 --repeats 3
    python benchmarks/propagation.py --walks --slices 128 --slice-size 128 --image-size 256 \
        --repeats 4 [--walk-corrections]

``--batched-objects`` times one propagation (both ways) of 1 and 3 objects by
our batched engine, our sequential one (``batch_objects=False``) and the
official predictor, taking turns a slice at a time, and prints
``objects=N batched_vs_sequential=... batched_vs_official=...``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from sam2vol.engines.base import SlicePrompts


@dataclass
class Timing:
    """One timed run."""

    task: str
    pipeline: str
    seconds: float
    encoded: int
    encode_seconds: float
    propagations: int

    @property
    def other_seconds(self) -> float:
        """Tracking, prompts and frame I/O: everything but the image encoder."""
        return self.seconds - self.encode_seconds


class EncoderMeter:
    """Counts and times a predictor's image-encoder calls (``forward_image``)."""

    def __init__(self, predictor: Any) -> None:
        import torch

        self.slices = 0
        self.seconds = 0.0
        forward_image = predictor.forward_image
        on_cuda = predictor.device.type == "cuda"

        def timed(images: Any) -> Any:
            t0 = time.perf_counter()
            out = forward_image(images)
            if on_cuda:
                torch.cuda.synchronize()
            self.seconds += time.perf_counter() - t0
            self.slices += len(images)
            return out

        predictor.forward_image = timed


def synthetic_volume(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A stack [s, row, col] in [0, 1] with an ellipsoid 'organ' in noisy tissue, and its mask."""
    rng = np.random.default_rng(seed)
    s, r, c = np.ogrid[:n, :size, :size]
    mid = (n - 1) / 2
    mask = ((s - mid) / (0.4 * n)) ** 2 + ((r - size * 0.5) / (size * 0.2)) ** 2 + (
        (c - size * 0.45 - 0.002 * size * (s - mid)) / (size * 0.15)
    ) ** 2 < 1
    image = 0.3 + 0.35 * mask + 0.1 * np.sin(r / 17.0) * np.cos(c / 23.0)
    image = image + rng.normal(0, 0.04, mask.shape)
    return np.clip(image, 0, 1).astype(np.float32), mask


def next_correction(
    pred: np.ndarray, truth: np.ndarray, done: set[int]
) -> tuple[int, int, int, bool]:
    """He et al.'s next click: (slice, row, col, positive) on the worst slice not corrected yet."""
    errors = (pred != truth).reshape(len(truth), -1).sum(axis=1).astype(float)
    errors[list(done)] = -1
    s = int(np.argmax(errors))
    missed, extra = truth[s] & ~pred[s], pred[s] & ~truth[s]
    positive = missed.sum() >= extra.sum()
    region = missed if positive else extra
    if not region.any():  # a perfect slice: click the object's centre
        region, positive = truth[s], True
    labels, n = ndimage.label(region)
    if n > 1:
        sizes = ndimage.sum(region, labels, range(1, n + 1))
        region = labels == 1 + int(np.argmax(sizes))
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return s, int(row), int(col), bool(positive)


# ----- our engine ------------------------------------------------------------------------------
class Ours:
    """Our engine: one session per task."""

    name = "sam2vol"

    def __init__(
        self, checkpoint: str, image_size: int, device: str, compile: bool = False
    ) -> None:
        from sam2vol.engines.sam2 import Sam2Engine

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.engine = Sam2Engine(
                checkpoint=checkpoint,
                image_size=image_size,
                device=device,
                compile_image_encoder=compile,
            )
        self.encoder = EncoderMeter(self.engine.predictor)

    def start(self, image: np.ndarray) -> None:
        self.engine.set_image(image, (1.0, 1.0, 1.0))
        self.prompts: dict[int, SlicePrompts] = {}

    def prompt_mask(self, s: int, mask: np.ndarray) -> None:
        p = self.prompts.setdefault(s, SlicePrompts())
        p.mask = mask
        p.result = self.engine.predict_slice(s, p, object_id=1)

    def click(self, s: int, row: int, col: int, positive: bool) -> None:
        p = self.prompts.setdefault(s, SlicePrompts())
        p.add_point(row, col, positive)
        p.result = self.engine.predict_slice(s, p, object_id=1)

    def propagate(self, start: int, out: np.ndarray) -> Iterator[None]:
        for r in self.engine.propagate({1: self.prompts}, start=start, direction="both"):
            out[r.slice_index] = r.masks[1]
            yield


# ----- the official pipeline -------------------------------------------------------------------
class Official:
    """Slices written as JPEGs, ``init_state`` on the folder, the official predictor."""

    name = "official"

    def __init__(self, ours: Ours) -> None:
        import dataclasses

        import torch

        from sam2vol.engines.sam2.models import build_predictor

        engine = ours.engine
        weights = dataclasses.replace(engine.source, state_dict=engine.predictor.state_dict())
        self.torch = torch
        self.predictor = build_predictor(
            weights,
            image_size=engine.image_size,
            device=engine.device,
            correction_as_cond=True,
            predictor_target="sam2.sam2_video_predictor.SAM2VideoPredictor",
        )
        self.predictor.fill_hole_area = 8  # official setting (skipped without its CUDA extension)
        self.encoder = EncoderMeter(self.predictor)
        self._tmp = tempfile.TemporaryDirectory(prefix="sam2-official-")
        # As in Meta's examples, and as our engine does by default: bf16 autocast on CUDA.
        self._bf16 = engine.precision == "bfloat16"

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Warnings off, and the engine's autocast."""
        with warnings.catch_warnings(), contextlib.ExitStack() as stack:
            warnings.simplefilter("ignore")
            if self._bf16:
                stack.enter_context(self.torch.autocast("cuda", dtype=self.torch.bfloat16))
            yield

    def start(self, image: np.ndarray) -> None:
        from PIL import Image

        folder = Path(self._tmp.name) / f"run{time.monotonic_ns()}"
        folder.mkdir()
        for i, sl in enumerate(np.round(image * 255).astype(np.uint8)):
            Image.fromarray(sl).save(folder / f"{i:05d}.jpg")
        with self.quiet():
            self.state = self.predictor.init_state(video_path=str(folder))
        self.points: dict[int, tuple[list[list[float]], list[int]]] = {}

    def prompt_mask(self, s: int, mask: np.ndarray) -> None:
        with self.quiet():
            self.predictor.add_new_mask(self.state, s, 1, mask)

    def click(self, s: int, row: int, col: int, positive: bool) -> None:
        pts, labels = self.points.setdefault(s, ([], []))
        pts.append([float(col), float(row)])
        labels.append(int(positive))
        with self.quiet():
            self.predictor.add_new_points_or_box(
                self.state, s, 1, points=np.array(pts, np.float32), labels=np.array(labels)
            )

    def propagate(self, start: int, out: np.ndarray) -> Iterator[None]:
        for reverse in (False, True):
            frames = self.predictor.propagate_in_video(
                self.state, start_frame_idx=start, reverse=reverse
            )
            while True:
                with self.quiet():  # per slice: our engine runs in between
                    frame = next(frames, None)
                if frame is None:
                    break
                s, _, logits = frame
                out[s] = (logits[0, 0] > 0).cpu().numpy()
                yield


# ----- tasks -----------------------------------------------------------------------------------
# A task is a generator of steps: setup, a prompt, or one slice of a propagation. It yields
# True where a propagation ends, False after any other step.
Steps = Iterator[bool]


def one_propagation(
    pipe: Any, image: np.ndarray, truth: np.ndarray, key: int, pred: np.ndarray | None = None
) -> Steps:
    """One propagation from a mask (into ``pred``, when given)."""
    pred = np.zeros(truth.shape, bool) if pred is None else pred
    pipe.start(image)
    yield False
    pipe.prompt_mask(key, truth[key])
    yield False
    for _ in pipe.propagate(key, pred):
        yield False
    yield True


def iterative(pipe: Any, image: np.ndarray, truth: np.ndarray, key: int, rounds: int) -> Steps:
    """He et al.'s protocol: a mask, then ``rounds - 1`` rounds of a click and re-propagation."""
    pred = np.zeros(truth.shape, bool)
    yield from one_propagation(pipe, image, truth, key, pred)
    done = {key}
    for _ in range(rounds - 1):
        s, row, col, positive = next_correction(pred, truth, done)
        done.add(s)
        pipe.click(s, row, col, positive)
        yield False
        for _ in pipe.propagate(key, pred):
            yield False
        yield True


def lockstep(task: str, pipes: list[Any], make: Callable[[Any], Steps]) -> list[Timing]:
    """Run the pipelines' steps in turn, a slice at a time, so a busy machine slows both alike."""
    runs = [make(pipe) for pipe in pipes]
    timings = [Timing(task, pipe.name, 0.0, 0, 0.0, 0) for pipe in pipes]
    active = list(range(len(pipes)))
    while active:
        for i in list(active):
            encoder = pipes[i].encoder
            slices, seconds = encoder.slices, encoder.seconds
            t0 = time.perf_counter()
            try:
                ended = next(runs[i])
            except StopIteration:
                active.remove(i)
                continue
            timings[i].seconds += time.perf_counter() - t0
            timings[i].encoded += encoder.slices - slices
            timings[i].encode_seconds += encoder.seconds - seconds
            timings[i].propagations += int(ended)
    for t in timings:
        print(f"  {t.task:<12} {t.pipeline:<9} {t.seconds:8.1f} s  ({t.encoded} slices encoded)")
    return timings


def encode_once_ceiling(ours: Timing, official: Timing) -> float:
    """The speed-up from encoding each slice once, the official's other work unchanged."""
    return official.seconds / (ours.encode_seconds + official.other_seconds)


def click_latency(args: argparse.Namespace) -> float:
    """Click-to-mask time on a slice not touched yet, without and with background encoding.

    Without it the click waits for the image encoder; with it (started when the
    volume opens, a few slices away, the user idle for as long as it takes to
    reach the slice) the click only runs the prompt encoder and mask decoder.
    Returns the ratio cold / warm.
    """
    image, truth = synthetic_volume(args.slices, args.slice_size)
    ours = Ours(args.checkpoint, args.image_size, args.device)
    engine = ours.engine
    target = args.slices // 2 + 3
    rows, cols = np.nonzero(truth[target])
    prompt = SlicePrompts()
    prompt.add_point(int(rows.mean()), int(cols.mean()), True)
    engine.set_image(image[:2], (1.0, 1.0, 1.0))  # warm-up of the model
    engine.predict_slice(0, prompt, object_id=1)
    times = {}
    for mode in ("cold", "background", "background done"):
        engine.set_image(image, (1.0, 1.0, 1.0))
        if mode != "cold":
            engine.start_background_encoding(center=args.slices // 2)
            idle = time.perf_counter()
            while target not in engine.cache:  # the user looks at the slices meanwhile
                time.sleep(0.01)
            while mode == "background done" and engine._prefetch.is_alive():
                time.sleep(0.01)  # ... until every slice is encoded
            print(f"  {mode}: idle until slice {target} was encoded: "
                  f"{time.perf_counter() - idle:.1f} s")  # fmt: skip
        t0 = time.perf_counter()
        engine.predict_slice(target, prompt, object_id=1)
        times[mode] = time.perf_counter() - t0
        engine.stop_background_encoding()
        print(f"  click on untouched slice {target}, {mode}: {times[mode] * 1000:.0f} ms")
    ratio = times["cold"] / times["background"]
    done = times["cold"] / times["background done"]
    print(f"click_to_mask_speedup_once_all_slices_are_encoded={done:.1f}")
    print(f"click_to_mask_speedup_with_background_encoding={ratio:.1f}")
    return ratio


# Ways our engine can walk, as engine settings (toggled on one engine: same weights, same cache).
WALK_MODES: dict[str, dict[str, bool]] = {
    "sequential": {"overlap_walks": False, "batch_objects": False, "pad_memories": False},
    "batched": {"overlap_walks": False, "batch_objects": True, "pad_memories": False},
    "overlapped": {"overlap_walks": True, "batch_objects": False, "pad_memories": False},
    "both": {"overlap_walks": True, "batch_objects": True, "pad_memories": False},
    # Both, and rows whose memories differ in length padded into one attention call.
    "padded": {"overlap_walks": True, "batch_objects": True, "pad_memories": True},
}


def steady_malloc() -> bool:
    """Fix glibc's mmap threshold, so that a run's speed does not depend on the run before it.

    glibc raises its mmap threshold to the largest block freed so far: after a
    run with larger tensors (a batch), the next run allocates from the heap
    instead of fresh pages, and is faster for that alone. Measured here: with
    one object, where the ``batched`` mode takes the same path as
    ``sequential``, ``batched`` read 1.19-1.20x in two runs with the
    threshold left dynamic, and 1.00x with it fixed. Returns whether it
    could (glibc only).
    """
    import ctypes
    import ctypes.util

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    m_trim_threshold, m_mmap_threshold = -1, -3
    # Setting either turns the dynamic threshold off; 32 MiB is glibc's largest mmap threshold.
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(
        libc.mallopt(m_trim_threshold, 1 << 30)
    )


@contextlib.contextmanager
def attention_calls(predictor: Any) -> Iterator[list[int]]:
    """Counts the memory-attention calls (of any batch) made inside the block."""
    count = [0]

    def hook(*_: Any) -> None:
        count[0] += 1

    # The first layer's first norm runs once per call, official or padded.
    handle = predictor.memory_attention.layers[0].norm1.register_forward_pre_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def walks(args: argparse.Namespace) -> float:
    """Re-propagation both ways by walk mode, 1 and 3 objects, against the official predictor.

    Every slice is encoded first (as in every round of the iterative protocol
    after the first), so our modes differ only in how they track; the
    official predictor keeps only the last slice's features and re-encodes.
    Each mode runs ``--repeats`` times in turn, each round starting with the
    next mode; the median counts. With one object ``batched`` takes the
    sequential path: its ratio shows the noise. With ``--walk-corrections``
    each object also has a mask prompt a quarter of the volume away from the
    start (objects alternate sides), as in the iterative protocols: the two
    walks' memories then differ in length on every shared step. Each mode's
    memory-attention calls per propagation are counted too (what a GPU, where
    a call costs about the same for any batch, pays for). Returns the last
    speed-up of the last mode over ``sequential``.
    """
    import statistics

    steady = steady_malloc()
    image, truth = synthetic_volume(args.slices, args.slice_size)
    key = args.slices // 2
    shift = args.slice_size // 5
    masks = [np.roll(truth[key], d, axis=1) for d in (0, shift, -shift)]
    ours = Ours(args.checkpoint, args.image_size, args.device, compile=args.compile)
    engine = ours.engine
    official = None if args.skip_official else Official(ours)
    print(
        f"walks: {args.slices} slices of {args.slice_size} px, image size {args.image_size}, "
        f"{args.checkpoint}, start {key}, features cached, median of {args.repeats}, "
        f"mmap threshold {'fixed' if steady else 'dynamic'}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    ratio = float("nan")
    for n_obj in args.walk_objects:
        engine.set_image(image, (1.0, 1.0, 1.0))
        objects = {}
        for oid in range(1, n_obj + 1):
            p = SlicePrompts()
            p.mask = masks[(oid - 1) % len(masks)]
            p.result = engine.predict_slice(key, p, object_id=oid)
            objects[oid] = {key: p}
            if args.walk_corrections:
                at = key + (1 if oid % 2 else -1) * (args.slices // 4)
                fix = SlicePrompts()
                fix.mask = np.roll(truth[at], (oid - 1) * shift, axis=1)
                fix.result = engine.predict_slice(at, fix, object_id=oid)
                objects[oid][at] = fix
        engine.encode_all()
        list(engine.propagate(objects, start=key))  # warm-up
        seconds: dict[str, list[float]] = {mode: [] for mode in WALK_MODES}
        calls: dict[str, int] = {}
        modes = list(WALK_MODES.items())
        for repeat in range(args.repeats):
            # Each repeat starts with another mode, so no mode always runs first.
            first = repeat % len(modes)
            for mode, settings in modes[first:] + modes[:first]:
                for name, value in settings.items():
                    setattr(engine, name, value)
                with attention_calls(engine.predictor) as count:
                    t0 = time.perf_counter()
                    for _ in engine.propagate(objects, start=key):
                        pass
                    seconds[mode].append(time.perf_counter() - t0)
                calls[mode] = count[0]
        median = {mode: statistics.median(v) for mode, v in seconds.items()}
        line = "  ".join(f"{mode} {t:.1f} s" for mode, t in median.items())
        print(
            f"  objects={n_obj} memory-attention calls: "
            + "  ".join(f"{mode} {n}" for mode, n in calls.items()),
            flush=True,
        )
        if official is not None:
            official.start(image)
            with official.quiet():
                for oid, prompts in objects.items():
                    for at, prompt in prompts.items():
                        official.predictor.add_new_mask(official.state, at, oid, prompt.mask)
            t0 = time.perf_counter()
            for _ in official.propagate(key, np.zeros(truth.shape, bool)):
                pass
            median["official"] = time.perf_counter() - t0
            line += f"  official {median['official']:.1f} s (one run)"
        print(f"  objects={n_obj}: {line}", flush=True)
        for mode in list(WALK_MODES)[1:]:
            ratio = median["sequential"] / median[mode]
            versus = ""
            if official is not None:
                versus = f" {mode}_vs_official={median['official'] / median[mode]:.2f}"
            print(f"  objects={n_obj} {mode}_vs_sequential={ratio:.2f}{versus}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"{list(WALK_MODES)[-1]}_vs_sequential_objects_{args.walk_objects[-1]}={ratio:.2f}")
    return ratio


def rss_run(args: argparse.Namespace) -> None:
    """One propagation by one pipeline in this process; prints its peak RSS in MiB."""
    import resource

    image, truth = synthetic_volume(args.slices, args.slice_size)
    ours = Ours(args.checkpoint, args.image_size, args.device)
    pipe: Any = ours if args.rss_run == "sam2vol" else Official(ours)
    if pipe is not ours:
        del ours.engine  # only the official pipeline's model stays (the weights were copied)
    for _ in one_propagation(pipe, image, truth, args.slices // 2):
        pass
    print(f"peak_rss_mib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def memory_slope(args: argparse.Namespace, lengths: tuple[int, int]) -> None:
    """Peak RSS of one propagation per pipeline at two volume lengths, and the slope."""
    import subprocess

    print(f"peak RSS of one propagation, {args.checkpoint}, slices {args.slice_size} px")
    for size in args.memory_sizes:
        peaks: dict[tuple[str, int], float] = {}
        for pipeline in ("sam2vol", "official"):
            for n in lengths:
                cmd = [
                    sys.executable, __file__, "--rss-run", pipeline, "--slices", str(n),
                    "--image-size", str(size), "--slice-size", str(args.slice_size),
                    "--checkpoint", args.checkpoint, "--device", args.device,
                ]  # fmt: skip
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                peaks[(pipeline, n)] = float(out.rsplit("peak_rss_mib=", 1)[1])
        for pipeline in ("sam2vol", "official"):
            a, b = (peaks[(pipeline, n)] for n in lengths)
            slope = (b - a) / (lengths[1] - lengths[0])
            print(
                f"  image size {size}, {pipeline:<9} {lengths[0]} slices {a:.0f} MiB, "
                f"{lengths[1]} slices {b:.0f} MiB: {slope:.1f} MiB per slice"
            )


# ----- several objects: batched against sequential tracking ---------------------------------
class ManyObjects:
    """Our engine with several objects, batched or tracked one after the other."""

    def __init__(self, engine: Any, encoder: EncoderMeter, name: str) -> None:
        self.engine, self.encoder, self.name = engine, encoder, name

    def start(self, image: np.ndarray) -> None:
        self.engine.set_image(image, (1.0, 1.0, 1.0))
        self.objects: dict[int, dict[int, SlicePrompts]] = {}

    def prompt_masks(self, s: int, masks: list[np.ndarray]) -> None:
        for oid, mask in enumerate(masks, start=1):
            p = SlicePrompts()
            p.mask = mask
            p.result = self.engine.predict_slice(s, p, object_id=oid)
            self.objects[oid] = {s: p}

    def propagate(self, start: int) -> Iterator[None]:
        for _ in self.engine.propagate(self.objects, start=start, direction="both"):
            yield


class OfficialObjects(Official):
    """The official pipeline with several objects in one state (tracked one after the other)."""

    def prompt_masks(self, s: int, masks: list[np.ndarray]) -> None:
        with self.quiet():
            for oid, mask in enumerate(masks, start=1):
                self.predictor.add_new_mask(self.state, s, oid, mask)

    def propagate(self, start: int) -> Iterator[None]:  # type: ignore[override]
        for reverse in (False, True):
            frames = self.predictor.propagate_in_video(
                self.state, start_frame_idx=start, reverse=reverse
            )
            while True:
                with self.quiet():
                    frame = next(frames, None)
                if frame is None:
                    break
                _ = (frame[2] > 0).cpu().numpy()  # every object's mask, as a caller reads them
                yield


def object_masks(truth: np.ndarray, n: int) -> list[np.ndarray]:
    """``n`` different masks on one slice: the organ, then shifted copies of it."""
    size = truth.shape[-1]
    return [np.roll(truth, (k * size // 5, -k * size // 7), axis=(0, 1)) for k in range(n)]


def many_objects(pipe: Any, image: np.ndarray, masks: list[np.ndarray], key: int) -> Steps:
    """One propagation, both ways, of several objects prompted by masks on the key slice."""
    pipe.start(image)
    yield False
    pipe.prompt_masks(key, masks)
    yield False
    for _ in pipe.propagate(key):
        yield False
    yield True


def batched_objects(args: argparse.Namespace) -> None:
    """Batched tracking of 1 and 3 objects against our sequential path and the official one.

    The three pipelines take turns a slice at a time. Prints, per object count,
    total-time ratios and the ratio without the image encoder (tracking alone).
    """
    from sam2vol.engines.sam2 import Sam2Engine

    print(f"mmap threshold {'fixed' if steady_malloc() else 'dynamic'}")
    image, truth = synthetic_volume(args.slices, args.slice_size)
    key = args.slices // 2
    ours = Ours(args.checkpoint, args.image_size, args.device)
    ours.engine.batch_objects = True  # the default on an accelerator only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sequential = Sam2Engine(
            checkpoint=args.checkpoint,
            image_size=args.image_size,
            device=args.device,
            batch_objects=False,
        )
    assert sequential.predictor is ours.engine.predictor  # one model: one encoder meter
    pipes: list[Any] = [
        ManyObjects(ours.engine, ours.encoder, "batched"),
        ManyObjects(sequential, ours.encoder, "sequential"),
        OfficialObjects(ours),
    ]
    small_image, small_truth = synthetic_volume(6, args.slice_size, seed=1)
    for n in (1, 3):  # warm-up, every pipeline and batch shape
        masks = object_masks(small_truth[3], n)
        lockstep("warm-up", pipes, lambda p, m=masks: many_objects(p, small_image, m, 3))
    lines = []
    for n in (1, 3):
        masks = object_masks(truth[key], n)
        runs: dict[str, list[Timing]] = {}
        for _ in range(args.repeats):
            task = f"objects={n}"
            for t in lockstep(task, pipes, lambda p, m=masks: many_objects(p, image, m, key)):
                runs.setdefault(t.pipeline, []).append(t)
        pairs = zip(runs["batched"], runs["sequential"], strict=True)
        per_run = " ".join(f"{s.seconds / b.seconds:.2f}" for b, s in pairs)
        print(f"  objects={n} batched_vs_sequential per run: {per_run}")
        total = {k: sum(t.seconds for t in v) for k, v in runs.items()}
        tracking = {k: sum(t.other_seconds for t in v) for k, v in runs.items()}
        lines.append(
            f"objects={n} batched_vs_sequential={total['sequential'] / total['batched']:.2f} "
            f"batched_vs_official={total['official'] / total['batched']:.2f} "
            f"without_encoder_batched_vs_sequential="
            f"{tracking['sequential'] / tracking['batched']:.2f}"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    for line in lines:
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=60)
    parser.add_argument("--slice-size", type=int, default=512, help="in-plane size of the volume")
    parser.add_argument("--image-size", type=int, default=512, help="SAM 2 input size")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--checkpoint", default="random:sam2.1_hiera_t")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile our image encoder (CUDA)"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run to check the script")
    parser.add_argument(
        "--click-latency",
        action="store_true",
        help="only time a click on an untouched slice, without and with background encoding",
    )
    parser.add_argument(
        "--memory-slope",
        default=None,
        help="only measure peak RSS per slice at two lengths, e.g. 8,16 (one process per run)",
    )
    parser.add_argument("--memory-sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument(
        "--walks",
        action="store_true",
        help="only time re-propagation by walk mode (batched, overlapped) against sequential",
    )
    parser.add_argument("--walk-objects", type=int, nargs="+", default=[1, 3])
    parser.add_argument(
        "--walk-corrections",
        action="store_true",
        help="with --walks: a second prompt per object, a quarter of the volume from the start",
    )
    parser.add_argument(
        "--batched-objects",
        action="store_true",
        help="only time 1 and 3 objects: batched tracking against sequential and official",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of --walks, --batched-objects")
    parser.add_argument("--rss-run", choices=["sam2vol", "official"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.slices, args.slice_size, args.image_size, args.rounds = 8, 96, 128, 3

    os.environ.setdefault("TQDM_DISABLE", "1")  # the official loops' progress bars
    import torch

    if args.click_latency:
        click_latency(args)
        return 0
    if args.walks:
        walks(args)
        return 0
    if args.rss_run:
        rss_run(args)
        return 0
    if args.batched_objects:
        batched_objects(args)
        return 0
    if args.memory_slope:
        a, b = (int(v) for v in args.memory_slope.split(","))
        memory_slope(args, (a, b))
        return 0

    image, truth = synthetic_volume(args.slices, args.slice_size)
    key = args.slices // 2
    print(
        f"volume {args.slices}x{args.slice_size}x{args.slice_size}, image size {args.image_size}, "
        f"{args.checkpoint}, rounds {args.rounds}, compiled {args.compile}; "
        f"torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    ours = Ours(args.checkpoint, args.image_size, args.device, compile=args.compile)
    pipes: list[Any] = [ours]
    if not args.skip_official:
        pipes.append(Official(ours))

    # Warm up both (first calls on new shapes are slow on a CPU).
    small_image, small_truth = synthetic_volume(4, args.slice_size, seed=1)
    lockstep("warm-up", pipes, lambda p: one_propagation(p, small_image, small_truth, 2))

    results: list[Timing] = []
    results += lockstep("propagation", pipes, lambda p: one_propagation(p, image, truth, key))
    results += lockstep("iterative", pipes, lambda p: iterative(p, image, truth, key, args.rounds))
    load = os.getloadavg()[0]
    print(f"load average after: {load:.1f} (about 2 from this run; more: the CPU was shared)")

    print()
    print(
        f"{'task':<12} {'pipeline':<9} {'seconds':>9} {'encoded':>8} {'encode s':>9} "
        f"{'other s':>8} {'s/slice enc':>11} {'props':>6}"
    )
    for t in results:
        per_slice = t.encode_seconds / t.encoded if t.encoded else float("nan")
        print(
            f"{t.task:<12} {t.pipeline:<9} {t.seconds:9.1f} {t.encoded:8d} {t.encode_seconds:9.1f} "
            f"{t.other_seconds:8.1f} {per_slice:11.2f} {t.propagations:6d}"
        )
    if args.skip_official:
        return 0
    by = {(t.task, t.pipeline): t for t in results}
    print()
    for task in ("propagation", "iterative"):
        ours_t, official_t = by[(task, "sam2vol")], by[(task, "official")]
        ceiling = encode_once_ceiling(ours_t, official_t)
        print(f"{task}_encode_once_ceiling={ceiling:.2f}")
    single = by[("propagation", "official")].seconds / by[("propagation", "sam2vol")].seconds
    iterated = by[("iterative", "official")].seconds / by[("iterative", "sam2vol")].seconds
    print(f"propagation_speedup_vs_official={single:.2f}")
    print(f"iterative_speedup_vs_official={iterated:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
