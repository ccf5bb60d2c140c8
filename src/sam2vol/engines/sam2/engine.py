"""The SAM 2 engine: Meta's video predictor on a slice stack.

Each object has its own inference state (the official predictor tracks the
objects of one state independently anyway), all sharing one feature cache, so
every slice goes through the image encoder at most once per
:meth:`~sam2vol.engines.base.Engine.set_image`. With ``batch_objects`` (the
default on an accelerator) the objects to track on a slice go through one
batched tracking step (:mod:`sam2vol.engines.sam2.batched`); with
``overlap_walks`` (likewise) a propagation both ways also batches the backward
walk's slices with the forward walk's once that is safe
(:mod:`sam2vol.engines.sam2.overlap`).

Prompts reach the model as in the official interactive flow: a prompt on a
slice the object was never tracked on starts from that slice alone; a prompt
on a tracked slice corrects the tracked mask there, with memory. With
``correction_as_cond`` (the default) a corrected slice becomes a conditioning
slice, so the correction sticks through later propagations.

The engine keeps the model's state between calls. Before each propagation it
brings that state in line with the prompts it is given (prompts changed,
added or removed since, e.g. by undo), so the same sequence of calls always
gives the same masks.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from sam2vol.engines.base import Engine, ObjectPrompts, Pass, SlicePrompts, SliceResult
from sam2vol.engines.sam2.background import BackgroundEncoder
from sam2vol.engines.sam2.batched import Row, track_rows
from sam2vol.engines.sam2.checkpoints import resolve_source
from sam2vol.engines.sam2.device import pick_device
from sam2vol.engines.sam2.feature_cache import CACHE_DTYPES, FeatureCache
from sam2vol.engines.sam2.frames import SliceFrames
from sam2vol.engines.sam2.models import shared_predictor
from sam2vol.engines.sam2.overlap import OverlapStats, Undo, overlapped
from sam2vol.engines.sam2.predictor import InferenceState, Sam2VolPredictor, TrackedSlice
from sam2vol.engines.sam2.walk import Walk
from sam2vol.errors import InputError

PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class _Fingerprint:
    """What was applied on one slice for one object, to notice changes."""

    points: bytes
    labels: bytes
    box: tuple[int, int, int, int] | None
    mask: str | None

    @classmethod
    def of(cls, prompts: SlicePrompts) -> _Fingerprint:
        mask = None
        if prompts.mask is not None:
            m = np.ascontiguousarray(prompts.mask, dtype=bool)
            mask = f"{m.shape}:{hashlib.sha1(np.packbits(m).tobytes()).hexdigest()}"
        box = None if prompts.box is None else tuple(int(v) for v in prompts.box)
        return cls(
            np.asarray(prompts.points, dtype=np.int64).tobytes(),
            np.asarray(prompts.labels, dtype=bool).tobytes(),
            box,  # type: ignore[arg-type]
            mask,
        )


@dataclass
class _ObjectTrack:
    """One object's inference state and the prompts applied to it."""

    state: InferenceState
    applied: dict[int, _Fingerprint] = field(default_factory=dict)
    logits: dict[int, np.ndarray] = field(default_factory=dict)


class Sam2Engine(Engine):
    """SAM 2 (or MedSAM2) video predictor, with every slice encoded once per session.

    Args:
        checkpoint: Weights file (SAM 2.0/2.1 any size, or MedSAM2), or
            ``random:CONFIG`` (e.g. ``random:sam2.1_hiera_t``) for random weights
            (tests and benchmarks only; warns loudly).
        config: Config name (e.g. ``sam2.1_hiera_t``); default detected from
            the checkpoint.
        image_size: Model input size, a multiple of 32; default the size a
            ``sam2vol train`` checkpoint records, else 512 when the file name
            says MedSAM2, else 1024.
        device: ``auto`` (CUDA, else MPS, else CPU), ``cpu``, ``cuda``, ``mps``.
        precision: ``auto`` (bfloat16 autocast on CUDA, float32 elsewhere),
            ``float32`` or ``bfloat16`` (CUDA only).
        correction_as_cond: A corrected slice becomes a conditioning slice, so
            corrections stick through re-propagation
            (``add_all_frames_to_correct_as_cond``).
        stop_after_empty: Stop tracking an object after this many consecutive
            slices where the model sees no object (its object score <= 0); the
            rest of that pass gets empty masks. None: never stop.
        feature_cache_gb: Memory budget of the per-slice feature cache, one for
            the whole process (every session with this setting shares it).
        feature_cache_dtype: ``auto`` (the encoder's dtype: bfloat16 under
            autocast, else float32, or float16 when the volume would not fit
            the budget), ``float32`` or ``float16``.
        encode_batch_size: Slices per image-encoder call; default 1 on the CPU
            (batching does not pay there), more on a GPU.
        offload_state_to_cpu: Keep masks and memories on the CPU (saves GPU
            memory).
        compile_image_encoder: ``torch.compile`` the image encoder (CUDA only);
            it is always called with ``encode_batch_size`` slices (padded), so
            it compiles once.
        overlap_walks: In a propagation both ways, once the forward walk is
            past the slices the backward walk reads, track the next slice of
            each walk in one batch (:mod:`~sam2vol.engines.sam2.overlap`);
            the same results up to rounding, in fewer steps. Not with
            ``reset_between``. While the caller pauses between results, the
            state already holds backward slices not handed out: finish or
            close a propagation before the next call on the same objects
            (``Session`` does). None (default): on for an accelerator and at
            image sizes up to 256 on the CPU; off at larger sizes on the CPU,
            where a batch costs what its rows cost (``benchmarks/RESULTS.md``).
        seed: Seed of a ``random:`` initialisation.
        batch_objects: Track several objects through one tracking step per
            slice (one memory-attention call, memories of different lengths
            padded: ``pad_memories``; SAM heads and memory encoder run once
            for all); the same results as tracking them one after the other (the
            official 2.1 loop, ``False``) up to rounding. None (default): on
            for an accelerator (2.04x for 3 objects on an H200) and at image
            sizes up to 256 on the CPU, else off.

    Attributes:
        pad_memories: In batched steps (``batch_objects``, ``overlap_walks``),
            rows whose memories differ in length (the two walks' rows, objects
            corrected on different slices) still share one memory-attention
            call, padded and masked
            (:mod:`~sam2vol.engines.sam2.padded_attention`); the same results
            up to rounding. False: each memory layout is a call of its own
            (as before 2026-11-30; for comparison). Default True, except on
            MPS (masked attention there is untested).
    """

    name: ClassVar[str] = "sam2"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        config: str | None = None,
        image_size: int | None = None,
        device: str = "auto",
        precision: str = "auto",
        correction_as_cond: bool = True,
        stop_after_empty: int | None = None,
        feature_cache_gb: float = 4.0,
        feature_cache_dtype: str = "auto",
        encode_batch_size: int | None = None,
        offload_state_to_cpu: bool = False,
        compile_image_encoder: bool = False,
        overlap_walks: bool | None = None,
        seed: int = 0,
        batch_objects: bool | None = None,
    ) -> None:
        super().__init__()
        if checkpoint is None or str(checkpoint).strip() == "":
            raise InputError(
                "engine sam2 needs --checkpoint PATH (a SAM 2 or MedSAM2 weights file)"
            )
        if precision not in PRECISIONS:
            raise InputError(
                f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
            )
        if feature_cache_dtype not in CACHE_DTYPES:
            raise InputError(
                f"feature cache dtype must be one of {', '.join(CACHE_DTYPES)}, "
                f"got {feature_cache_dtype!r}"
            )
        if stop_after_empty is not None and stop_after_empty < 1:
            raise InputError(f"stop after empty slices must be >= 1, got {stop_after_empty}")
        if feature_cache_gb < 0:
            raise InputError(f"feature cache budget must be >= 0 GB, got {feature_cache_gb}")
        self.device = pick_device(device)
        source = resolve_source(checkpoint, config, seed)
        if image_size is None:
            image_size = source.default_image_size
        if image_size < 64 or image_size % 32:
            raise InputError(f"--image-size must be a multiple of 32 and >= 64, got {image_size}")
        self.image_size = int(image_size)
        if precision == "bfloat16" and self.device.type != "cuda":
            raise InputError("--precision bfloat16 needs CUDA (it is much slower on a CPU)")
        use_bf16 = self.device.type == "cuda" and precision in ("auto", "bfloat16")
        self.precision = "bfloat16" if use_bf16 else "float32"
        self.correction_as_cond = bool(correction_as_cond)
        self.stop_after_empty = stop_after_empty
        self.feature_cache_bytes = int(feature_cache_gb * (1 << 30))
        self.feature_cache_dtype = feature_cache_dtype
        if encode_batch_size is None:
            encode_batch_size = {"cuda": 8 if self.image_size <= 512 else 4, "mps": 2}.get(
                self.device.type, 1
            )
        if encode_batch_size < 1:
            raise InputError(f"encode batch size must be >= 1, got {encode_batch_size}")
        self.encode_batch_size = int(encode_batch_size)
        self.offload_state_to_cpu = bool(offload_state_to_cpu)
        # Batches pay on an accelerator, and on the CPU at small image sizes only (at 512 a
        # batch costs what its rows cost, or a little more: benchmarks/RESULTS.md).
        batches_pay = self.device.type != "cpu" or self.image_size <= 256
        self.batch_objects = batches_pay if batch_objects is None else bool(batch_objects)
        # Batched rows whose memories differ in length share one memory attention, padded.
        # Not on MPS: its masked attention kernels had broadcast-mask bugs, and it is untested.
        self.pad_memories = self.device.type != "mps"

        if compile_image_encoder and self.device.type != "cuda":
            warnings.warn(
                "compile_image_encoder is for CUDA only; ignored", UserWarning, stacklevel=2
            )
            compile_image_encoder = False
        self.compile_image_encoder = bool(compile_image_encoder)
        self.overlap_walks = batches_pay if overlap_walks is None else bool(overlap_walks)
        self.overlap_stats = OverlapStats()  # of the last propagation both ways
        self.predictor: Sam2VolPredictor = shared_predictor(
            source,
            image_size=self.image_size,
            device=self.device,
            correction_as_cond=self.correction_as_cond,
            autocast_dtype=torch.bfloat16 if use_bf16 else None,
            compile_image_encoder=compile_image_encoder,
        )
        self.source = source.without_weights()  # the model holds them
        self.frames: SliceFrames | None = None
        self.cache: FeatureCache | None = None
        self._objects: dict[int, _ObjectTrack] = {}
        self._last_objects: dict[int, ObjectPrompts] = {}
        self.last_logits: np.ndarray | None = None
        self._busy = 0  # foreground calls running (background encoding waits)
        self._prefetch: BackgroundEncoder | None = None
        self._prefetch_lock = threading.Lock()  # start, re-centre and stop come from any thread

    # ----- session ---------------------------------------------------------------------------
    def _on_image(self) -> None:
        assert self.image is not None
        self.stop_background_encoding()
        self.frames = SliceFrames(self.image, self.image_size)
        if self.cache is not None:
            self.cache.clear()  # its memory goes back to the process's budget
        self.cache = FeatureCache(
            self.frames,
            self.predictor.encode_images,
            device=self.device,
            dtype=self.feature_cache_dtype,
            budget_bytes=self.feature_cache_bytes,
            batch_size=self.encode_batch_size,
            pad_batch=self.compile_image_encoder,
        )
        self._objects.clear()
        self._last_objects = {}
        self.last_logits = None

    def describe(self) -> dict[str, Any]:
        """The settings in use (for logs and reports)."""
        return {
            "config": self.source.config,
            "checkpoint": "random" if self.source.is_random else str(self.source.path),
            "image_size": self.image_size,
            "device": str(self.device),
            "precision": self.precision,
            "correction_as_cond": self.correction_as_cond,
            "stop_after_empty": self.stop_after_empty,
            "batch_objects": self.batch_objects,
            "overlap_walks": self.overlap_walks,
            "pad_memories": self.pad_memories,
        }

    def forget_object(self, object_id: int) -> None:
        """Drop the object's inference state (its id may come back as a new object)."""
        self._objects.pop(int(object_id), None)
        self._last_objects.pop(int(object_id), None)

    def encode_all(self) -> None:
        """Encode every slice now (otherwise slices are encoded when first needed)."""
        self._require_image()
        assert self.cache is not None
        self.cache.encode_all()

    def start_background_encoding(
        self, center: int = 0, keep_going: Callable[[], bool] | None = None
    ) -> None:
        """Encode slices outward from ``center`` in a background thread while the engine is idle.

        Call it when a volume opens and again when the slice in view changes;
        it pauses while :meth:`predict_slice` or a propagation runs, keeps
        within the cache's memory budget, and stops at :meth:`set_image` or
        :meth:`stop_background_encoding`. A click on a slice it has reached
        skips the image encoder. Thread-safe.

        Args:
            center: The slice in view.
            keep_going: Asked before each batch; False ends the encoding (e.g.
                a server whose memory budget is spent). Kept when re-centring.
        """
        self._require_image()
        assert self.cache is not None
        n = self.n_slices
        center = min(max(int(center), 0), n - 1)
        order = [center]
        for d in range(1, n):
            order += [s for s in (center + d, center - d) if 0 <= s < n]
        with self._prefetch_lock:
            running = self._prefetch
            if running is not None and running.cache is self.cache and running.is_alive():
                running.order = order  # same volume: just re-centre
                if keep_going is not None:
                    running.keep_going = keep_going
                return
            if running is not None:
                # Ended (all encoded, or the budget was spent: memory may have been freed since;
                # if not, a new thread would only encode a batch it cannot keep).
                if running.cache is self.cache and not self.cache.has_room():
                    return
                keep_going = keep_going or running.keep_going
                self._stop_prefetch()
            self._prefetch = BackgroundEncoder(self, self.cache, order, keep_going)
            self._prefetch.start()

    def stop_background_encoding(self) -> None:
        """Stop the background encoding (waits for the batch in progress)."""
        with self._prefetch_lock:
            self._stop_prefetch()

    def _stop_prefetch(self) -> None:
        if self._prefetch is not None:
            self._prefetch.stop()
            self._prefetch = None

    @property
    def background_encoding(self) -> bool:
        """Whether the background encoding thread is running now."""
        running = self._prefetch
        return running is not None and running.is_alive()

    def memory_bytes(self) -> int:
        """Host (CPU) memory this engine holds for its volume, in bytes.

        Counts, once each (tensors sharing storage are counted once), the CPU
        tensors of the feature cache (accelerator memory is not counted) and
        of every object's inference state (mask memories, predicted masks,
        object pointers), plus the logits kept per prompted slice. Not
        counted: the model (shared by every engine of the process) and the
        prepared slice stack (the caller's to count). Safe to call from any
        thread while the engine works; never waits for it.
        """
        seen: set[int] = set()
        total = 0
        if self.cache is not None:
            total += _host_bytes(self.cache.tensors(), seen)
        for track in list(self._objects.values()):
            total += _host_bytes(track.state, seen)
            total += sum(a.nbytes for a in list(track.logits.values()))
        return total

    def close(self) -> None:
        """Stop background encoding and give the cached features back to the memory budget.

        The engine stays usable: slices are encoded again when needed.
        """
        self.stop_background_encoding()
        if self.cache is not None:
            self.cache.clear()

    @contextlib.contextmanager
    def _foreground(self) -> Iterator[None]:
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1

    # ----- prompts ---------------------------------------------------------------------------
    def predict_slice(
        self,
        slice_index: int,
        prompts: SlicePrompts,
        *,
        current: np.ndarray | None = None,
        object_id: int | None = None,
    ) -> np.ndarray:
        """The mask SAM 2 gives for ``prompts`` on one slice.

        On a slice the object was tracked on, the prompts correct the tracked
        mask (SAM 2 keeps that mask in its state, so ``current`` is not used).

        Args:
            slice_index: The slice.
            prompts: Every prompt of the object on that slice.
            current: Ignored (see above).
            object_id: The object; default the one these prompts belong to in
                the last propagation, else the only object, else 1.
        """
        self._require_image()
        if not 0 <= slice_index < self.n_slices:
            raise InputError(f"slice {slice_index} is outside 0..{self.n_slices - 1}")
        oid = self._object_of(prompts) if object_id is None else int(object_id)
        with self._foreground():
            track = self._track_of(oid)
            if prompts.is_empty:
                self._clear_slice(oid, track, slice_index)
                h, w = self.frames.height, self.frames.width  # type: ignore[union-attr]
                logits = np.full((h, w), -1024.0, np.float32)
            else:
                logits = self._apply(oid, track, slice_index, prompts)
        self.last_logits = logits
        return logits > 0

    def _object_of(self, prompts: SlicePrompts) -> int:
        for oid, per_slice in self._last_objects.items():
            if any(p is prompts for p in per_slice.values()):
                return oid
        if len(self._objects) == 1:
            return next(iter(self._objects))
        return 1

    def _track_of(self, oid: int) -> _ObjectTrack:
        track = self._objects.get(oid)
        if track is None:
            assert self.frames is not None
            state = self.predictor.init_state_from_frames(
                self.frames, self.cache, offload_state_to_cpu=self.offload_state_to_cpu
            )
            track = self._objects[oid] = _ObjectTrack(state)
        return track

    def _apply(
        self, oid: int, track: _ObjectTrack, slice_index: int, prompts: SlicePrompts
    ) -> np.ndarray:
        """Bring one slice's prompts into the state; returns the slice's logits."""
        fingerprint = _Fingerprint.of(prompts)
        before = track.applied.get(slice_index)
        if before == fingerprint and slice_index in track.logits:
            return track.logits[slice_index]
        self._check_prompts(prompts)
        predictor, state = self.predictor, track.state
        logits = None
        has_points = len(prompts.points) > 0 or prompts.box is not None
        with predictor.autocast():
            # A changed mask, or a mask left alone (clicks undone), restarts from the mask.
            changed = before is None or before.mask != fingerprint.mask or not has_points
            if prompts.mask is not None and changed:
                _, _, logits = predictor.add_new_mask(
                    state, slice_index, oid, np.asarray(prompts.mask, dtype=bool)
                )
            if has_points:
                points = labels = box = None
                if len(prompts.points):
                    rc = np.asarray(prompts.points, dtype=np.float32)
                    points = rc[:, ::-1].copy()  # (row, col) -> (x, y)
                    labels = np.asarray(prompts.labels, dtype=np.int32)
                if prompts.box is not None:
                    r0, c0, r1, c1 = prompts.box
                    box = np.array([c0, r0, c1, r1], dtype=np.float32)
                _, _, logits = predictor.add_new_points_or_box(
                    state, slice_index, oid, points=points, labels=labels, box=box
                )
        assert logits is not None
        out = logits[0, 0].float().cpu().numpy()
        track.applied[slice_index] = fingerprint
        track.logits[slice_index] = out
        return out

    def _check_prompts(self, prompts: SlicePrompts) -> None:
        assert self.frames is not None
        h, w = self.frames.height, self.frames.width
        if prompts.mask is not None and np.shape(prompts.mask) != (h, w):
            raise InputError(f"mask prompt has shape {np.shape(prompts.mask)}, expected {(h, w)}")
        if len(prompts.points) != len(prompts.labels):
            raise InputError("each point prompt needs a label")

    def _clear_slice(self, oid: int, track: _ObjectTrack, slice_index: int) -> None:
        if slice_index in track.applied:
            self.predictor.clear_all_prompts_in_frame(
                track.state, slice_index, oid, need_output=False
            )
            del track.applied[slice_index]
            track.logits.pop(slice_index, None)

    def _sync(self, objects: dict[int, ObjectPrompts]) -> None:
        """Make the model's prompts those of ``objects`` (for the objects given)."""
        for oid, per_slice in objects.items():
            track = self._track_of(oid)
            wanted = {s: p for s, p in per_slice.items() if not p.is_empty}
            for s in sorted(set(track.applied) - set(wanted)):
                self._clear_slice(oid, track, s)
            for s in sorted(wanted):
                self._apply(oid, track, s, wanted[s])
        self._last_objects = dict(objects)

    # ----- propagation -----------------------------------------------------------------------
    def _track(
        self, objects: dict[int, ObjectPrompts], start: int, end: int, reverse: bool, fresh: bool
    ) -> Iterator[SliceResult]:
        with self._foreground():
            walk = self._begin_walk(objects, reverse)
            with contextlib.ExitStack() as stack:
                if fresh:
                    # Forget the other side of the start (the earlier pass), keep its results.
                    def keep(t: int) -> bool:
                        return t <= start if reverse else t >= start

                    for state in walk.states:
                        stack.enter_context(self.predictor.hide_memory(state, keep))
                for s in range(start, end, -1 if reverse else 1):
                    (outs,) = self._track_rows(walk.rows(s))
                    yield walk.finish(s, outs)

    def _track_passes(
        self, objects: dict[int, ObjectPrompts], start: int, passes: list[Pass]
    ) -> Iterator[tuple[int, SliceResult]]:
        if not self.overlap_walks or len(passes) != 2 or passes[1].fresh:
            yield from super()._track_passes(objects, start, passes)
            return
        forward, backward = passes
        self.overlap_stats = OverlapStats()
        with self._foreground():
            yield from overlapped(
                self._begin_walk(objects, False),
                lambda: self._begin_walk(objects, True),
                forward_frames=range(start, forward.end),
                backward_frames=range(start, backward.end, -1),
                horizon=self.predictor.walk_horizon(),
                track=self._track_rows,
                snapshot=lambda s: self._snapshot(list(objects), s),
                stats=self.overlap_stats,
            )

    def _begin_walk(self, objects: dict[int, ObjectPrompts], reverse: bool) -> Walk:
        """Bring the model in line with the prompts and prepare each object's walk."""
        self._sync(objects)
        oids = list(objects)
        states = [self._objects[oid].state for oid in oids]
        for oid, state in zip(oids, states, strict=True):
            try:
                # Under the predictor's autocast, as the official propagate_in_video runs its
                # preflight: newly prompted slices get their memories in the same precision.
                with self.predictor.autocast():
                    self.predictor.begin_walk(state, reverse)
            except RuntimeError as exc:  # the official "no input points or masks"
                raise InputError(
                    f"object {oid} has no prompt on a slice it was not tracked on, so SAM 2 "
                    "has nothing to start from: prompt such a slice, or keep correction_as_cond"
                ) from exc
        return Walk(oids, states, reverse, self.stop_after_empty)

    def _track_rows(self, *walks: list[Row]) -> list[list[TrackedSlice]]:
        """One slice of each walk for every object; returns the outputs per walk.

        All rows in one batch (``batch_objects``), else object by object (an
        object's slices of two walks still share a batch).
        """
        pad = self.pad_memories
        if self.batch_objects:
            flat = track_rows(
                self.predictor, [row for rows in walks for row in rows], pad_memories=pad
            )
            n = len(walks[0])
            return [flat[w * n : (w + 1) * n] for w in range(len(walks))]
        per_object = [
            track_rows(self.predictor, rows, pad_memories=pad) for rows in zip(*walks, strict=True)
        ]
        return [list(outs) for outs in zip(*per_object, strict=True)]

    def _snapshot(self, oids: list[int], s: int) -> Callable[[], Undo]:
        """Slice ``s``'s tracking outputs now; called again after tracking, what undoes it.

        The undo puts back the earlier output and mark of each object where
        the state still holds what the tracking wrote (not a newer one).
        """
        missing = object()
        saved = []
        for oid in oids:
            state = self._objects[oid].state
            outputs = state["output_dict_per_obj"][0]["non_cond_frame_outputs"]
            tracked = state["frames_tracked_per_obj"][0]
            saved.append((outputs, tracked, outputs.get(s, missing), tracked.get(s, missing)))

        def seal() -> Undo:
            written = [
                (outputs.get(s, missing), tracked.get(s, missing)) for outputs, tracked, *_ in saved
            ]

            def undo() -> None:
                for (outputs, tracked, out, mark), wrote in zip(saved, written, strict=True):
                    for store, before, after in (
                        (outputs, out, wrote[0]),
                        (tracked, mark, wrote[1]),
                    ):
                        if store.get(s, missing) is not after:
                            continue  # changed since: not ours to undo
                        if before is missing:
                            store.pop(s, None)
                        else:
                            store[s] = before

            return undo

        return seal

    def _require_image(self) -> None:
        if self.image is None or self.frames is None:
            raise RuntimeError("call set_image() first")


def _host_bytes(obj: Any, seen: set[int]) -> int:
    """Bytes of the CPU tensors in nested dicts, lists and tuples; each storage counted once."""
    if isinstance(obj, torch.Tensor):
        if obj.device.type != "cpu":
            return 0
        storage = obj.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()
    if isinstance(obj, dict):
        obj = list(obj.values())  # a snapshot: the engine may be changing it
    if isinstance(obj, list | tuple):
        return sum(_host_bytes(item, seen) for item in list(obj))
    return 0
