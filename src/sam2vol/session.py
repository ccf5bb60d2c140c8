"""The interactive session: one volume, its objects, their prompts and masks.

All changes go through events (:mod:`sam2vol.prompts`), which are logged, so
a session can be undone, redone, saved, and replayed to the same masks.

Example:
    >>> from sam2vol.io import read_volume
    >>> from sam2vol.samples import sample_path
    >>> session = Session(read_volume(sample_path("lung2")))
    >>> session.add_point((130, 122, 20), object_id=1).shape
    (224, 224)
    >>> n = sum(1 for _ in session.propagate())
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sam2vol.engines import Engine, SlicePrompts, SliceResult, create_engine
from sam2vol.errors import InputError
from sam2vol.intensity import prepare_stack, resolve_preset
from sam2vol.prompts import (
    AddObject,
    BoxPrompt,
    ClearPrompts,
    Direction,
    EditObject,
    Event,
    ImportMask,
    MaskPrompt,
    PointPrompt,
    Propagate,
    RemoveObject,
    event_from_dict,
    event_to_dict,
)
from sam2vol.slicing import Axis, SliceGeometry
from sam2vol.volume import Volume

# Distinct colours for new objects (RGB), cycled.
PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
)
LOG_FORMAT = "sam2vol-prompt-log/1"


@dataclass
class SegObject:
    """One object (label) being segmented."""

    id: int
    name: str
    color: tuple[int, int, int]


@dataclass
class ObjectSummary:
    """Size and extent of one object's current mask."""

    id: int
    name: str
    voxels: int
    volume_ml: float
    first_slice: int | None
    last_slice: int | None
    slices: tuple[int, ...] = ()  # every slice the mask covers

    @property
    def n_slices(self) -> int:
        return 0 if self.first_slice is None else self.last_slice - self.first_slice + 1


@dataclass
class _Step:
    """What one event changed, so it can be undone: only the parts it changed.

    Attributes:
        event: The event.
        objects_before: The object table before (small: names and colours).
        prompt_sets_before: Object id -> its whole prompt table before, for
            events that add or remove an object's table (None: it had none).
        prompts_before: (object, slice) -> that slice's prompts before the
            event changed them (None: there were none).
        mask_backup: (object, slice) -> the slice mask before, bit-packed
            (None: it was empty).
        removed_masks: Mask stacks of removed objects.
    """

    event: Event
    objects_before: dict[int, SegObject]
    prompt_sets_before: dict[int, dict[int, SlicePrompts] | None] = field(default_factory=dict)
    prompts_before: dict[tuple[int, int], SlicePrompts | None] = field(default_factory=dict)
    mask_backup: dict[tuple[int, int], np.ndarray | None] = field(default_factory=dict)
    removed_masks: dict[int, np.ndarray] = field(default_factory=dict)


class Session:
    """An interactive segmentation of one volume.

    Args:
        volume: The image.
        engine: An :class:`~sam2vol.engines.Engine` or an engine name.
        axis: Slicing axis (``axial``, ``coronal``, ``sagittal``).
        intensity: Intensity preset name (see :mod:`sam2vol.intensity`).
        autosave: A JSON file the prompt log is rewritten to (atomically)
            after every change, so a crash loses nothing.
        engine_options: The options the engine was made with, written to the
            log so a replay can make the same engine.
        background_encoding: Let an engine with an image encoder (SAM 2)
            encode slices outward from the one in view while the user is idle
            (see :meth:`view`, :meth:`encode_in_background`); engines without
            one ignore it. :meth:`close` stops it.
    """

    def __init__(
        self,
        volume: Volume,
        engine: Engine | str = "default",
        *,
        axis: Axis = "axial",
        intensity: str = "auto",
        autosave: str | Path | None = None,
        engine_options: dict | None = None,
        background_encoding: bool = True,
    ) -> None:
        self.volume = volume
        self.geometry = SliceGeometry.for_volume(volume, axis)
        self.intensity = resolve_preset(intensity, volume.data).name
        self.engine = create_engine(engine) if isinstance(engine, str) else engine
        stack = self.geometry.to_stack(volume.data)
        self.engine.set_image(prepare_stack(stack, self.intensity), self.geometry.stack_spacing_mm)
        self.objects: dict[int, SegObject] = {}
        self._prompts: dict[int, dict[int, SlicePrompts]] = {}
        self._masks: dict[int, np.ndarray] = {}
        self._done: list[_Step] = []
        self._undone: list[Event] = []
        # Engine-reported confidence (0..1) of each slice from the last propagation.
        self.slice_confidence: dict[int, float] = {}
        self.autosave = Path(autosave) if autosave else None
        # What replay needs to rebuild the engine (logged; names only, e.g. a checkpoint path).
        self.engine_options: dict = dict(engine_options or {})
        # The working slice in view; background encoding works outward from it.
        self.viewed = self.geometry.n_slices // 2
        self.background_encoding = False
        self._keep_going = None
        # view() may come from another thread than close() (a web request): one at a time.
        self._background_lock = threading.Lock()
        if background_encoding:
            self.encode_in_background()

    # ----- background encoding ---------------------------------------------------------------
    def view(self, slice_index: int) -> None:
        """The user looks at working slice ``slice_index``: background encoding re-centres there."""
        self.geometry.check_slice(slice_index)
        with self._background_lock:
            self.viewed = int(slice_index)
            if self.background_encoding:
                self._engine_call("start_background_encoding", self.viewed, self._keep_going)

    def encode_in_background(self, on: bool = True, *, keep_going=None) -> None:
        """Turn background encoding on (from the slice in view) or off.

        Args:
            on: Whether the engine may encode slices while idle.
            keep_going: Asked before each batch; False ends the encoding until
                the next :meth:`view` (e.g. a server whose memory budget is spent).
        """
        with self._background_lock:
            self.background_encoding = bool(on)
            if on:
                self._keep_going = keep_going
                self._engine_call("start_background_encoding", self.viewed, keep_going)
            else:
                self._engine_call("stop_background_encoding")

    def close(self) -> None:
        """Stop background work and free the engine's per-volume memory (masks stay).

        The session stays usable; the engine re-encodes slices when needed.
        """
        with self._background_lock:
            self.background_encoding = False
            self._engine_call("close")

    def _engine_call(self, name: str, *args) -> None:
        """Call an optional engine method (engines not built on :class:`Engine` may lack it)."""
        method = getattr(self.engine, name, None)
        if method is not None:
            method(*args)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- objects -------------------------------------------------------------------------
    def add_object(self, name: str | None = None, color=None, *, object_id: int | None = None):
        """Add an object; returns its id."""
        oid = object_id if object_id is not None else max(self.objects, default=0) + 1
        if oid in self.objects:
            raise InputError(f"object {oid} already exists")
        color = tuple(color) if color else PALETTE[(oid - 1) % len(PALETTE)]
        self._record(AddObject(oid, name or f"object {oid}", color))
        return oid

    def edit_object(self, object_id: int, *, name: str | None = None, color=None) -> SegObject:
        """Rename and/or recolour an object; returns it."""
        self._require_object(object_id)
        if name is not None and not name.strip():
            raise InputError("an object name cannot be empty")
        rgb = None if color is None else tuple(int(c) for c in color)
        if rgb is not None and (len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb)):
            raise InputError(f"colour must be three values in 0..255, got {color}")
        self._record(EditObject(object_id, name, rgb))  # type: ignore[arg-type]
        return self.objects[object_id]

    def remove_object(self, object_id: int) -> None:
        """Delete an object with its prompts and mask (undo brings them back)."""
        self._require_object(object_id)
        self._record(RemoveObject(object_id))

    def _require_object(self, object_id: int) -> None:
        if object_id not in self.objects:
            raise InputError(f"no object {object_id}")

    def _ensure_object(self, object_id: int) -> None:
        if object_id < 1:
            raise InputError(f"object ids start at 1, got {object_id}")
        if object_id not in self.objects:
            self.add_object(object_id=object_id)

    # ----- prompts -------------------------------------------------------------------------
    def add_point(self, voxel, *, positive: bool = True, object_id: int = 1) -> np.ndarray:
        """Click at voxel (i, j, k); returns the updated 2D mask of that slice."""
        voxel = tuple(int(v) for v in voxel)
        self.geometry.check_voxel(voxel)
        self._ensure_object(object_id)
        self._record(PointPrompt(object_id, voxel, bool(positive)))
        return self._masks[object_id][self.geometry.voxel_to_slice(voxel)[0]]

    def add_box(self, corner_a, corner_b, *, object_id: int = 1) -> np.ndarray:
        """Box between two opposite corner voxels on one slice; returns that slice's mask."""
        a, b = tuple(int(v) for v in corner_a), tuple(int(v) for v in corner_b)
        self.geometry.check_voxel(a)
        self.geometry.check_voxel(b)
        if a[self.geometry.slice_axis] != b[self.geometry.slice_axis]:
            raise InputError(f"box corners {a} and {b} must lie on one {self.geometry.axis} slice")
        self._ensure_object(object_id)
        self._record(BoxPrompt(object_id, a, b))
        return self._masks[object_id][a[self.geometry.slice_axis]]

    def add_mask(self, mask_slice: np.ndarray, slice_index: int, *, object_id: int = 1):
        """A 2D mask on a slice, in the file's index order (``data.take(s, axis)``)."""
        self.geometry.check_slice(slice_index)
        mask_slice = np.asarray(mask_slice, dtype=bool)
        self.geometry.plane_to_slice(mask_slice)  # shape check
        if not mask_slice.any():
            raise InputError(f"mask prompt on slice {slice_index} is empty")
        self._ensure_object(object_id)
        axis = self.geometry.slice_axis
        self._record(MaskPrompt.from_array(object_id, axis, slice_index, mask_slice))
        return self._masks[object_id][slice_index]

    def edit_slice(self, mask_slice: np.ndarray, slice_index: int, *, object_id: int = 1):
        """Replace an object's mask on one working slice (``mask_slice`` in display
        orientation, e.g. after brush or eraser); the slice becomes a mask prompt
        that propagation starts from. Returns the new mask there."""
        g = self.geometry
        mask_slice = np.asarray(mask_slice, dtype=bool)
        if mask_slice.shape != g.slice_shape:
            raise InputError(f"edit of shape {mask_slice.shape}, expected {g.slice_shape}")
        if not mask_slice.any():
            raise InputError(
                f"the edit leaves slice {slice_index} empty: use Clear slice, or a slice limit"
            )
        return self.add_mask(g.slice_to_plane(mask_slice), slice_index, object_id=object_id)

    def import_mask(self, mask, *, name: str | None = None, color=None, object_id=None) -> int:
        """Import a 3D mask on the volume grid as an object (new, or replacing one); its id."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.volume.shape:
            raise InputError(f"imported mask shape {mask.shape} != image {self.volume.shape}")
        if not mask.any():
            raise InputError("the imported mask is empty")
        oid = object_id if object_id is not None else max(self.objects, default=0) + 1
        old = self.objects.get(oid)
        name = name or (old.name if old else f"object {oid}")
        color = tuple(color) if color else old.color if old else PALETTE[(oid - 1) % len(PALETTE)]
        self._record(ImportMask.from_array(oid, name, color, mask))
        return oid

    def clear(self, object_id: int | None = None, slice_index: int | None = None) -> None:
        """Remove prompts and masks: of one object (on one slice), or of all objects."""
        if object_id is not None:
            self._require_object(object_id)
        self._record(ClearPrompts(object_id, slice_index))

    def reset(self) -> None:
        """Clear every prompt and mask (objects stay)."""
        self.clear()

    def propagate(
        self,
        start: int | None = None,
        direction: Direction = "both",
        *,
        max_slices: int | None = None,
        object_ids: tuple[int, ...] | None = None,
        reset_between: bool = False,
        slice_range: tuple[int, int] | None = None,
    ) -> Iterator[SliceResult]:
        """Propagate the prompted objects; a generator yielding each slice as it is done.

        A transaction: the event enters the log (and undo history) only when the
        run ends. Stopped early (the generator closed), it is logged with the
        number of slices it reached, so a replay stops at the same place; failed
        (the engine raised), the masks are rolled back and nothing is logged.

        ``reset_between`` (with ``both``) forgets the forward pass's memory before
        the backward pass. ``slice_range`` ``(first, last)`` limits the objects to
        those slices (unprompted slices outside it are cleared).
        """
        oids = tuple(object_ids) if object_ids else None
        if slice_range is not None:
            first, last = (int(v) for v in slice_range)
            self.geometry.check_slice(first)
            self.geometry.check_slice(last)
            if first > last:
                raise InputError(f"slice limit {first}..{last}: the first slice is after the last")
            slice_range = (first, last)
        event = Propagate(
            start, direction, max_slices, oids, bool(reset_between), slice_range=slice_range
        )
        yield from self._run_propagation(event)

    def run(self, event: Event) -> None:
        """Apply any event (e.g. from a log), running propagation to the end."""
        if isinstance(event, Propagate):
            for _ in self._run_propagation(event):
                pass
        else:
            self._record(event)

    # ----- undo / redo -----------------------------------------------------------------------
    def undo(self) -> Event | None:
        """Undo the last change; returns its event (None if nothing to undo)."""
        if not self._done:
            return None
        step = self._done.pop()
        self._revert(step)
        self._undone.append(step.event)
        self._autosave()
        return step.event

    def redo(self) -> Event | None:
        """Redo the last undone change."""
        if not self._undone:
            return None
        event = self._undone.pop()
        undone = list(self._undone)  # running the event clears the redo stack
        self.run(event)
        self._undone = undone
        return event

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def redo_events(self) -> list[Event]:
        """Events :meth:`redo` would bring back, the next one last."""
        return list(self._undone)

    # ----- whole state (see sam2vol.session_state) --------------------------------------------
    def export_state(self):
        """Objects, prompts, masks, undo and redo as plain data (a ``SessionSnapshot``)."""
        from sam2vol.session_state import export_state

        return export_state(self)

    def restore_state(self, snapshot) -> None:
        """Take the state of :meth:`export_state` (of this volume, axis and engine)."""
        from sam2vol.session_state import restore_state

        restore_state(self, snapshot)

    # ----- state -----------------------------------------------------------------------------
    @property
    def events(self) -> list[Event]:
        """The log: every change in order (undone ones excluded)."""
        return [step.event for step in self._done]

    def prompts(self, object_id: int) -> dict[int, SlicePrompts]:
        return self._prompts.get(object_id, {})

    def slice_mask(self, object_id: int, slice_index: int) -> np.ndarray:
        """2D mask of an object on a slice, in display orientation (row, col)."""
        return self._masks[object_id][slice_index]

    def mask_stack(self, object_id: int) -> np.ndarray:
        """Object mask as a slice stack [s, row, col]."""
        return self._masks[object_id]

    def mask(self, object_id: int = 1) -> np.ndarray:
        """Object mask as a bool array [i, j, k] on the volume's grid."""
        if object_id not in self._masks:
            raise InputError(f"no object {object_id}")
        return self.geometry.from_stack(self._masks[object_id])

    def label_map(self) -> Volume:
        """All objects as one label volume (value = object id; later ids win overlaps)."""
        dtype = np.uint16 if max(self.objects, default=0) > 255 else np.uint8
        stack = np.zeros(self._stack_shape, dtype=dtype)
        for oid in sorted(self._masks):
            stack[self._masks[oid]] = oid
        return self.volume.with_data(self.geometry.from_stack(stack))

    def summary(self, object_id: int = 1) -> ObjectSummary:
        """Size and extent of an object's mask (counted on the slices it covers only)."""
        self._require_object(object_id)
        masks = self._masks[object_id]
        covered = np.flatnonzero(masks.any(axis=(1, 2)))
        voxels = int(np.count_nonzero(masks[covered])) if covered.size else 0
        return ObjectSummary(
            object_id,
            self.objects[object_id].name,
            voxels,
            voxels * self.volume.voxel_volume_ml,
            int(covered[0]) if covered.size else None,
            int(covered[-1]) if covered.size else None,
            tuple(int(s) for s in covered),
        )

    # ----- logs ------------------------------------------------------------------------------
    def log_dict(self) -> dict:
        return {
            "format": LOG_FORMAT,
            "source": self.volume.source,
            "shape": list(self.volume.shape),
            "axis": self.geometry.axis,
            "intensity": self.intensity,
            "engine": self.engine.name,
            "engine_options": dict(self.engine_options),
            "events": [event_to_dict(e) for e in self.events],
        }

    def save_log(self, path: str | Path) -> Path:
        """Write the prompt log as JSON, atomically."""
        from sam2vol.io.write import remove_stale_temps, temp_path

        path = Path(path)
        text = json.dumps(self.log_dict(), indent=1)
        remove_stale_temps(path.parent)
        tmp = temp_path(path)
        try:
            with open(tmp, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if tmp.stat().st_size != len(text.encode()):
                raise InputError(f"{path}: the prompt log was not written in full (disk full?)")
            os.replace(tmp, path)
        except OSError as exc:
            reason = exc.strerror or exc
            raise InputError(f"{path}: cannot write the prompt log ({reason})") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def replay(self, events: list[Event] | str | Path) -> None:
        """Apply logged events (a list, or a log file written by :meth:`save_log`)."""
        if not isinstance(events, list):
            events = read_log(events)
        for event in events:
            self.run(event)

    # ----- internals -------------------------------------------------------------------------
    @property
    def _stack_shape(self) -> tuple[int, int, int]:
        return (self.geometry.n_slices, *self.geometry.slice_shape)

    def _begin(self, event: Event) -> _Step:
        step = _Step(event, dict(self.objects))
        self._done.append(step)
        self._undone.clear()
        return step

    def _set_slice(self, step: _Step, oid: int, s: int, mask: np.ndarray) -> None:
        key = (oid, s)
        if key not in step.mask_backup:
            before = self._masks[oid][s]
            step.mask_backup[key] = np.packbits(before) if before.any() else None
        self._masks[oid][s] = mask

    def _touch_prompts(self, step: _Step, oid: int, s: int) -> SlicePrompts:
        """The prompts of (object, slice), saved for undo first (a shallow copy: the
        prompt arrays are replaced, never changed in place)."""
        table = self._prompts[oid]
        if (oid, s) not in step.prompts_before:
            before = table.get(s)
            step.prompts_before[(oid, s)] = copy.copy(before) if before is not None else None
        return table.setdefault(s, SlicePrompts())

    def _save_prompt_set(self, step: _Step, oid: int) -> None:
        if oid not in step.prompt_sets_before:
            step.prompt_sets_before[oid] = self._prompts.get(oid)

    def _revert(self, step: _Step) -> None:
        """Take back what ``step`` changed."""
        self.objects = step.objects_before
        for oid, table in step.prompt_sets_before.items():
            if table is None:
                self._prompts.pop(oid, None)
            else:
                self._prompts[oid] = table
        for (oid, s), before in step.prompts_before.items():
            table = self._prompts.setdefault(oid, {})
            if before is None:
                table.pop(s, None)
            else:
                table[s] = before
        for oid in list(self._masks):
            if oid not in self.objects:
                del self._masks[oid]
        self._masks.update(step.removed_masks)
        shape = self.geometry.slice_shape
        for (oid, s), packed in step.mask_backup.items():
            if packed is None:
                self._masks[oid][s] = False
            else:
                self._masks[oid][s] = np.unpackbits(packed, count=shape[0] * shape[1]).reshape(
                    shape
                )

    def _record(self, event: Event) -> None:
        step = self._begin(event)
        try:
            self._apply(event, step)
        except Exception:
            self.undo()
            self._undone.pop()
            raise
        self._autosave()

    def _apply(self, event: Event, step: _Step) -> None:
        if isinstance(event, AddObject):
            self.engine.forget_object(event.object_id)  # a reused id starts clean
            self._save_prompt_set(step, event.object_id)
            self.objects[event.object_id] = SegObject(event.object_id, event.name, event.color)
            self._masks.setdefault(event.object_id, np.zeros(self._stack_shape, dtype=bool))
            self._prompts.setdefault(event.object_id, {})
        elif isinstance(event, EditObject):
            obj = self.objects.get(event.object_id)
            if obj is None:
                raise InputError(f"edit of object {event.object_id}, which does not exist")
            self.objects[event.object_id] = SegObject(
                obj.id, event.name or obj.name, event.color or obj.color
            )
        elif isinstance(event, RemoveObject):
            oid = event.object_id
            if oid not in self.objects:
                raise InputError(f"removal of object {oid}, which does not exist")
            del self.objects[oid]
            self._save_prompt_set(step, oid)
            self._prompts.pop(oid, None)
            step.removed_masks[oid] = self._masks.pop(oid)
            self.engine.forget_object(oid)
        elif isinstance(event, ImportMask):
            self._apply_import(event, step)
        elif isinstance(event, ClearPrompts):
            oids = list(self.objects) if event.object_id is None else [event.object_id]
            for oid in oids:
                slices = range(self.geometry.n_slices)
                if event.slice_index is not None:
                    slices = [event.slice_index]
                for s in slices:
                    if s in self._prompts[oid]:
                        self._touch_prompts(step, oid, s)
                        self._prompts[oid].pop(s)
                    if self._masks[oid][s].any():
                        self._set_slice(step, oid, s, np.zeros(self.geometry.slice_shape, bool))
        else:
            self._apply_prompt(event, step)

    def _apply_import(self, event: ImportMask, step: _Step) -> None:
        oid = event.object_id
        stack = self.geometry.to_stack(event.to_array())
        if stack.shape != self._stack_shape:
            raise InputError(f"imported mask shape {event.shape} != image {self.volume.shape}")
        new = oid not in self.objects
        if new:  # undo drops the whole object, so no slice backups
            self.engine.forget_object(oid)
            self._masks[oid] = np.zeros(self._stack_shape, dtype=bool)
        self.objects[oid] = SegObject(oid, event.name, tuple(event.color))
        self._save_prompt_set(step, oid)  # undo restores the old table
        self._prompts[oid] = {}
        for s in range(self.geometry.n_slices):
            mask = np.ascontiguousarray(stack[s])
            if mask.any():
                self._prompts[oid][s] = SlicePrompts(mask=mask, result=mask.copy())
            if new:
                self._masks[oid][s] = mask
            elif mask.any() or self._masks[oid][s].any():
                self._set_slice(step, oid, s, mask.copy())

    def _apply_prompt(self, event: Event, step: _Step) -> None:
        g = self.geometry
        oid = event.object_id
        if oid not in self.objects:
            raise InputError(f"prompt for object {oid}, which does not exist")
        if isinstance(event, PointPrompt):
            s, row, col = g.voxel_to_slice(event.voxel)
            prompts = self._touch_prompts(step, oid, s)
            prompts.add_point(row, col, event.positive)
        elif isinstance(event, BoxPrompt):
            s, r0, c0 = g.voxel_to_slice(event.corner_a)
            _, r1, c1 = g.voxel_to_slice(event.corner_b)
            prompts = self._touch_prompts(step, oid, s)
            prompts.box = (min(r0, r1), min(c0, c1), max(r0, r1), max(c0, c1))
        elif isinstance(event, MaskPrompt):
            if event.array_axis != g.slice_axis:
                raise InputError(
                    f"mask prompt lies across array axis {event.array_axis}, but this session "
                    f"slices along axis {g.slice_axis} ({g.axis})"
                )
            s = event.index
            g.check_slice(s)
            # A mask states the whole slice: it replaces the slice's earlier prompts
            # (saved first, for undo).
            self._touch_prompts(step, oid, s)
            prompts = self._prompts[oid][s] = SlicePrompts()
            prompts.mask = np.ascontiguousarray(g.plane_to_slice(event.to_array()))
        else:
            raise TypeError(f"not a prompt: {event!r}")
        current = self._masks[oid][s].copy()
        result = self.engine.predict_slice(s, prompts, current=current, object_id=oid)
        prompts.result = np.asarray(result, dtype=bool)
        self._set_slice(step, oid, s, prompts.result)

    def _run_propagation(self, event: Propagate) -> Iterator[SliceResult]:
        oids = event.object_ids or tuple(self.objects)
        objects = {oid: self._prompts[oid] for oid in oids if self._prompts.get(oid)}
        if not objects:
            raise InputError("nothing to propagate: add a prompt first")
        start, max_slices, inside = event.start, event.max_slices, None
        if event.slice_range is not None:
            first, last = event.slice_range
            inside = range(first, last + 1)
            if start is None:
                anchors = sorted(s for p in objects.values() for s in p if s in inside)
                if not anchors:
                    raise InputError(
                        f"no prompt on slices {first}..{last}: prompt inside the limit"
                    )
                start = anchors[0]
            reach = max(last - start, start - first, 0)
            max_slices = reach if max_slices is None else min(max_slices, reach)
        step = _Step(event, dict(self.objects))
        results = self.engine.propagate(
            objects,
            start=start,
            direction=event.direction,
            max_slices=max_slices,
            reset_between=event.reset_between,
        )
        reached, outcome = 0, "failed"
        try:
            for result in results:
                if inside is not None and result.slice_index not in inside:
                    continue
                if event.stopped_after is not None and reached >= event.stopped_after:
                    break
                for oid, mask in result.masks.items():
                    self._set_slice(step, oid, result.slice_index, np.asarray(mask, dtype=bool))
                if result.confidence is not None:
                    self.slice_confidence[result.slice_index] = float(result.confidence)
                reached += 1
                yield result
            outcome = "done"
        except GeneratorExit:
            outcome = "stopped"
            raise
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
            if outcome == "failed" or reached == 0:
                self._revert(step)  # nothing, or a failed run: leave no trace
            else:
                if inside is not None:  # stopped or not, as a replay (which stops) does
                    self._clear_outside(step, objects, inside)
                if outcome == "stopped":
                    step.event = replace(event, stopped_after=reached)
                self._done.append(step)
                self._undone.clear()
                self._autosave()

    def _clear_outside(self, step: _Step, objects, inside: range) -> None:
        """The slice limit: nothing of these objects outside it but their prompted slices."""
        for oid in objects:
            for s in np.flatnonzero(self._masks[oid].any(axis=(1, 2))):
                if int(s) not in inside and int(s) not in self._prompts[oid]:
                    self._set_slice(step, oid, int(s), np.zeros(self.geometry.slice_shape, bool))

    def _autosave(self) -> None:
        if self.autosave is not None:
            self.save_log(self.autosave)


@dataclass(frozen=True)
class LogSettings:
    """What a prompt log says about how it was made (None: the log does not say).

    Attributes:
        format: The log format version.
        axis: Slicing axis.
        intensity: Intensity preset.
        engine: Engine name.
        engine_options: Options the engine was made with.
    """

    format: str | None = None
    axis: str | None = None
    intensity: str | None = None
    engine: str | None = None
    engine_options: dict | None = None


def _load_log(path: Path):
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read prompt log ({exc})") from exc
    if isinstance(data, list):
        return {"events": data}
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        fmt = data.get("format")
        if fmt is not None and fmt != LOG_FORMAT:
            raise InputError(f"{path}: prompt log format {fmt!r}; this version reads {LOG_FORMAT}")
        return data
    raise InputError(f"{path}: expected a prompt log with an 'events' list")


def read_log(path: str | Path) -> list[Event]:
    """Events of a prompt log file (see :meth:`Session.save_log`)."""
    path = Path(path)
    return [event_from_dict(e) for e in _load_log(path)["events"]]


def read_log_settings(path: str | Path) -> LogSettings:
    """The settings a prompt log was made with (axis, intensity, engine and its options)."""
    data = _load_log(Path(path))
    options = data.get("engine_options")
    return LogSettings(
        data.get("format"),
        data.get("axis"),
        data.get("intensity"),
        data.get("engine"),
        dict(options) if isinstance(options, dict) else None,
    )
