"""The engine interface.

An engine sees a prepared slice stack ``image[s, row, col]`` (float32 in
[0, 1], display orientation, see :mod:`sam2vol.slicing`) and per-slice prompts
in (row, col) pixel coordinates. It answers two questions:

- :meth:`Engine.predict_slice`: the 2D mask on one prompted slice (instant
  feedback for a click);
- :meth:`Engine.propagate`: a generator yielding one :class:`SliceResult` per
  slice as the objects are tracked through the stack.

The base class does the shared work of propagation (direction handling, start
slice, slice limit, validation); a subclass writes :meth:`Engine._track`,
which walks one way from a start slice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from sam2vol.errors import InputError
from sam2vol.prompts import DIRECTIONS, Direction


@dataclass
class SlicePrompts:
    """Everything prompted on one slice for one object, in (row, col) pixels.

    Attributes:
        points: (N, 2) int array of (row, col), in click order (order matters:
            each click corrects the mask left by the ones before).
        labels: (N,) bool array, True for positive clicks.
        box: (row0, col0, row1, col1) inclusive, or None.
        mask: (H, W) bool mask prompt, or None.
        result: The engine's own 2D answer to these prompts (set by the
            session after :meth:`Engine.predict_slice`); propagation keeps it.
    """

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    box: tuple[int, int, int, int] | None = None
    mask: np.ndarray | None = None
    result: np.ndarray | None = None

    def add_point(self, row: int, col: int, positive: bool) -> None:
        self.points = np.vstack([self.points, [[row, col]]]).astype(np.int64)
        self.labels = np.append(self.labels, bool(positive))

    @property
    def is_empty(self) -> bool:
        return len(self.points) == 0 and self.box is None and self.mask is None


# Prompts of one object: slice index -> prompts on that slice.
ObjectPrompts = dict[int, SlicePrompts]


@dataclass
class SliceResult:
    """One slice's output of propagation.

    Attributes:
        slice_index: Which slice.
        masks: Object id -> (H, W) bool mask. An object left out means "no
            change on this slice"; engines yield every tracked object on every
            slice they pass, so stale masks get cleared.
        scores: Object id -> object presence score (higher = more likely
            present; engine-specific scale, 0 threshold).
        logits: Object id -> (H, W) float32 mask logits (mask = logits > 0),
            for engines that have them (SAM 2); empty otherwise.
        confidence: How sure the engine is that this slice's masks are right,
            0..1 (higher = surer; the least sure object counts), or None for
            engines that do not estimate it (see :mod:`sam2vol.confidence`).
    """

    slice_index: int
    masks: dict[int, np.ndarray]
    scores: dict[int, float] = field(default_factory=dict)
    logits: dict[int, np.ndarray] = field(default_factory=dict)
    confidence: float | None = None


@dataclass(frozen=True)
class Pass:
    """One walk of a propagation: from the start towards ``end`` (exclusive).

    Attributes:
        end: Where the walk stops (exclusive).
        reverse: Whether it walks to lower slice indices.
        fresh: Forget the memory of earlier passes first.
    """

    end: int
    reverse: bool
    fresh: bool = False


class Engine(ABC):
    """Base class of segmentation engines."""

    name: ClassVar[str] = "base"

    def __init__(self) -> None:
        self.image: np.ndarray | None = None
        self.spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def set_image(self, image: np.ndarray, spacing_mm: tuple[float, float, float]) -> None:
        """Load a prepared stack [s, row, col] in [0, 1] with its spacing (slice, row, col)."""
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 3:
            raise ValueError(f"engine input must be [s, row, col], got shape {image.shape}")
        if len(spacing_mm) != 3 or min(spacing_mm) <= 0:
            raise ValueError(f"spacing_mm must be three positive numbers, got {spacing_mm}")
        self.image = image
        self.spacing_mm = tuple(float(s) for s in spacing_mm)  # type: ignore[assignment]
        self._on_image()

    def _on_image(self) -> None:
        """Hook: precompute per-volume state (e.g. features)."""

    def forget_object(self, object_id: int) -> None:
        """Drop what the engine keeps of an object (a new or deleted one starts clean)."""

    # ----- resources (defaults for engines that keep nothing beyond the stack) -----------------
    def memory_bytes(self) -> int:
        """Host memory the engine holds for its volume beyond the stack it was given (bytes).

        Servers charge it against their memory budget. The default, 0, suits
        engines that keep nothing per volume; engines with caches or model
        state (SAM 2) report what they really hold.
        """
        return 0

    def start_background_encoding(self, center: int = 0, keep_going=None) -> None:
        """Prepare slices outward from ``center`` while idle (engines with an encoder).

        Called again when the slice in view changes. The default does nothing.
        """

    def stop_background_encoding(self) -> None:
        """Stop what :meth:`start_background_encoding` started (default: nothing)."""

    def close(self) -> None:
        """Stop background work and release per-volume memory; the engine stays usable."""
        self.stop_background_encoding()

    @property
    def n_slices(self) -> int:
        return 0 if self.image is None else self.image.shape[0]

    @abstractmethod
    def predict_slice(
        self,
        slice_index: int,
        prompts: SlicePrompts,
        *,
        current: np.ndarray | None = None,
        object_id: int = 1,
    ) -> np.ndarray:
        """The 2D bool mask that ``prompts`` ask for on ``slice_index``.

        Args:
            slice_index: The slice.
            prompts: All prompts on that slice for one object.
            current: The object's mask on that slice before this prompt (from
                propagation or earlier clicks), which clicks correct.
            object_id: The object the prompts belong to (engines with memory
                per object, like SAM 2, need it).
        """

    def propagate(
        self,
        objects: dict[int, ObjectPrompts],
        *,
        start: int | None = None,
        direction: Direction = "both",
        max_slices: int | None = None,
        reset_between: bool = False,
    ) -> Iterator[SliceResult]:
        """Track the objects through the stack, yielding slices as they are done.

        Args:
            objects: Object id -> its prompts per slice. Each prompted slice
                should carry its ``result`` (see :class:`SlicePrompts`).
            start: Slice to start from; default the first prompted slice of
                any object.
            direction: ``forward`` (increasing slice index), ``backward``, or
                ``both`` (forward, then backward from the start).
            max_slices: At most this many slices each way beyond the start.
            reset_between: With ``both``, forget the forward pass's memory
                before the backward pass (Ma et al., Dong et al.); engines
                without memory ignore it.

        Yields:
            A :class:`SliceResult` for the start slice, then each slice reached.
        """
        if self.image is None:
            raise RuntimeError("call set_image() before propagate()")
        if direction not in DIRECTIONS:
            raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        objects = {oid: p for oid, p in objects.items() if any(not q.is_empty for q in p.values())}
        if not objects:
            raise InputError("nothing to propagate: add a prompt first")
        prompted = sorted({s for p in objects.values() for s in p})
        if start is None:
            start = prompted[0]
        if not 0 <= start < self.n_slices:
            raise InputError(f"start slice {start} is outside 0..{self.n_slices - 1}")
        if max_slices is not None and max_slices < 0:
            raise InputError(f"max_slices must be >= 0, got {max_slices}")
        passes = []
        for n, reverse in enumerate(
            {"forward": [False], "backward": [True], "both": [False, True]}[direction]
        ):
            reach = self.n_slices if max_slices is None else max_slices + 1
            end = max(start - reach, -1) if reverse else min(start + reach, self.n_slices)
            passes.append(Pass(end, reverse, fresh=n > 0 and reset_between))
        walks = self._track_passes(objects, start, passes)
        try:
            for n, result in walks:
                if n > 0 and result.slice_index == start:
                    continue  # the start slice was yielded by the first pass
                yield result
        finally:
            walks.close()  # now, not when collected: undoes work done ahead (SAM 2)

    def _track_passes(
        self, objects: dict[int, ObjectPrompts], start: int, passes: list[Pass]
    ) -> Iterator[tuple[int, SliceResult]]:
        """Run the passes of a propagation in order; yields (pass number, result).

        Engines that can run a later pass while an earlier one is still going
        (SAM 2) override this; the results must come in the same order.
        """
        for n, walk in enumerate(passes):
            for result in self._track(objects, start, walk.end, walk.reverse, walk.fresh):
                yield n, result

    @abstractmethod
    def _track(
        self, objects: dict[int, ObjectPrompts], start: int, end: int, reverse: bool, fresh: bool
    ) -> Iterator[SliceResult]:
        """Walk from ``start`` towards ``end`` (exclusive), one slice at a time.

        ``reverse`` walks to lower slice indices. ``fresh`` asks to forget the
        memory of earlier passes. Must yield ``start`` first, then every slice
        up to ``end``, each with a mask for every object in ``objects`` (also
        objects not prompted at ``start``).
        """
