"""One browser session: a :class:`~sam2vol.session.Session` with its lock, job and autosave.

Every change takes the session's lock; a running job (loading, propagating)
refuses changes with 409 but lets the page read slices and overlays between
propagation steps. Each change bumps ``revision`` and asks for a mask autosave.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam2vol.errors import InputError
from sam2vol.prompts import Direction, Propagate
from sam2vol.session import Session
from sam2vol.web.display import WINDOWS, Display
from sam2vol.web.errors import Busy, NotFound
from sam2vol.web.jobs import Job, run_job
from sam2vol.web.meta import SessionMeta
from sam2vol.web.state import (
    ChangeResult,
    ObjectState,
    OverlayImage,
    PromptMarks,
    SessionState,
)

# How long a request waits for a session another request is changing.
LOCK_TIMEOUT_S = 10.0
MAX_NAME_CHARS = 60
MAX_OBJECTS = 255
EXPORT_FORMATS = {"nii.gz": ".nii.gz", "nii": ".nii", "nrrd": ".nrrd"}


def parse_color(text: str | None) -> tuple[int, int, int] | None:
    """'#rrggbb' -> (r, g, b); None stays None.

    Example:
        >>> parse_color("#ff8000")
        (255, 128, 0)
    """
    if text is None or text == "":
        return None
    value = text.strip().lstrip("#")
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise InputError(f"colour must look like '#rrggbb', got {text!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def color_hex(color) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in color))


def clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = "".join(c for c in name if c.isprintable()).strip()
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"object names are at most {MAX_NAME_CHARS} characters")
    return name or None


@dataclass
class WebSession:
    """A browser session's server-side state.

    Attributes:
        sid: Its id (an unguessable token).
        folder: Autosave folder (``meta.json``, ``prompts.json``, ``masks.npz``).
        meta: What it was opened from.
        engine_label: The engine's name, shown until the session is ready.
        session: The segmentation session, once loaded.
        display: Slice and overlay rendering, once loaded.
        job: The running or last job.
        error: Why loading failed.
        notice: A message for the page (e.g. how the session was recovered).
        revision: Grows with every change of the masks.
        saved_revision: Revision of the last mask autosave.
        on_change: Called after every change (the store's autosave hook).
        last_used: When a request last asked for it (monotonic seconds).
        cost_bytes: Memory it is charged against the server's budget.
        deleted: Deleted by the user (nothing more is written for it).
        snapshot_events: Events covered by the last state snapshot on disk.
    """

    sid: str
    folder: Path
    meta: SessionMeta
    engine_label: str = ""
    session: Session | None = None
    display: Display | None = None
    job: Job | None = None
    error: str | None = None
    notice: str | None = None
    revision: int = 0
    saved_revision: int = 0
    on_change: Callable[[WebSession], None] | None = None
    last_used: float = field(default_factory=time.monotonic)
    cost_bytes: int = 0
    deleted: bool = False
    snapshot_events: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # ----- files ---------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.folder / "prompts.json"

    @property
    def masks_path(self) -> Path:
        return self.folder / "masks.npz"

    @property
    def exports_dir(self) -> Path:
        return self.folder / "exports"

    # ----- locking ---------------------------------------------------------------------------
    @contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the session's lock; :class:`Busy` if another request keeps it too long."""
        if not self.lock.acquire(timeout=timeout):
            raise Busy("the session is busy with another request; try again in a moment")
        try:
            yield
        finally:
            self.lock.release()

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.running

    def _ready(self) -> Session:
        if self.session is None:
            if self.error:
                raise InputError(f"this session could not be opened: {self.error}")
            raise Busy("the volume is still loading; wait for it to finish")
        return self.session

    def _mutable(self) -> Session:
        session = self._ready()
        if self.busy:
            raise Busy(f"{self.job.kind} is running; wait for it or press Stop")
        return session

    def check_version(self, version: int | None) -> None:
        """Refuse a change made against an older version (another tab changed the session).

        Call it holding the lock, right before the change.
        """
        from sam2vol.web.errors import Stale

        if version is not None and version != self.revision:
            raise Stale(
                f"this session changed in another tab (now at version {self.revision}, your "
                f"page shows {version}); the page reloads it, then try again"
            )

    def _changed(self) -> None:
        from sam2vol.web.autosave import save_redo

        self.revision += 1  # (the session keeps its own redo list; it is saved for restarts)
        if not self.deleted:
            save_redo(self)
        if self.on_change is not None:
            self.on_change(self)

    # ----- changes ---------------------------------------------------------------------------
    def add_object(self, name: str | None, color: str | None) -> int:
        """A new object; returns its id."""
        name, rgb = clean_name(name), parse_color(color)
        with self.locked():
            session = self._mutable()
            if len(session.objects) >= MAX_OBJECTS:
                raise InputError(f"at most {MAX_OBJECTS} objects per session")
            oid = session.add_object(name, rgb)
            self._changed()
            return oid

    def edit_object(self, object_id: int, name: str | None, color: str | None) -> None:
        """Rename and/or recolour an object."""
        name, rgb = clean_name(name), parse_color(color)
        if name is None and rgb is None:
            raise InputError("give a new name or colour")
        with self.locked():
            session = self._mutable()
            self._require_object(session, object_id)
            session.edit_object(object_id, name=name, color=rgb)
            self._changed()

    def remove_object(self, object_id: int) -> None:
        """Delete an object with its prompts and mask (undo brings it back)."""
        with self.locked():
            session = self._mutable()
            self._require_object(session, object_id)
            session.remove_object(object_id)
            self._changed()

    @staticmethod
    def _require_object(session: Session, object_id: int) -> None:
        if object_id not in session.objects:
            raise NotFound(f"no object {object_id}")

    def _check_object(self, session: Session, object_id: int) -> None:
        """Prompts go to an existing object or create the next one."""
        if object_id in session.objects:
            return
        next_id = max(session.objects, default=0) + 1
        if object_id != next_id:
            raise NotFound(f"no object {object_id}; add it first (next id is {next_id})")

    def _working_slice(self, view: str, s: int, row: int, col: int) -> tuple[int, int, int]:
        session = self._ready()
        if view != session.geometry.axis:
            axis = session.geometry.axis
            raise InputError(
                f"prompts go on {axis} slices (this session segments along {axis}); "
                f"switch to the {axis} view"
            )
        _, working = self.display.to_working(view, s, row, col)
        return working

    def add_point(
        self, view: str, s: int, row: int, col: int, *, positive: bool, object_id: int
    ) -> None:
        """A click on a slice of the working view."""
        with self.locked():
            session = self._mutable()
            self._check_object(session, object_id)
            s, row, col = self._working_slice(view, s, row, col)
            voxel = session.geometry.slice_to_voxel(s, row, col)
            session.add_point(voxel, positive=positive, object_id=object_id)
            self._changed()

    def add_box(
        self, view: str, s: int, corners: tuple[int, int, int, int], *, object_id: int
    ) -> None:
        """A box (row0, col0, row1, col1) on a slice of the working view."""
        r0, c0, r1, c1 = corners
        with self.locked():
            session = self._mutable()
            self._check_object(session, object_id)
            a = self._working_slice(view, s, r0, c0)
            b = self._working_slice(view, s, r1, c1)
            if abs(a[1] - b[1]) < 2 or abs(a[2] - b[2]) < 2:
                raise InputError("the box is too small: drag over the object")
            g = session.geometry
            session.add_box(g.slice_to_voxel(*a), g.slice_to_voxel(*b), object_id=object_id)
            self._changed()

    def clear(self, object_id: int | None, slice_index: int | None) -> None:
        """Clear an object (on one working slice), or every object."""
        with self.locked():
            session = self._mutable()
            if slice_index is not None:
                session.geometry.check_slice(slice_index)
            if object_id is not None:
                self._require_object(session, object_id)
            session.clear(object_id, slice_index)
            self._changed()

    def undo(self) -> bool:
        """Undo the last change; False if there was none."""
        with self.locked():
            session = self._mutable()
            event = session.undo()
            if event is None:
                return False
            self._changed()
            return True

    def redo(self) -> bool:
        """Redo the last undone change; a propagation is redone as a job. False if none."""
        with self.locked():
            session = self._mutable()
            if not session.can_redo:
                return False
            event = session.redo_events[-1]
            if not isinstance(event, Propagate):
                session.redo()
                self._changed()
                return True
            job = Job("redo", message="redoing the propagation")
            self.job = job

        def work(job: Job) -> str:
            with self.locked(timeout=3600):
                try:
                    session.redo()
                finally:
                    self._changed()
            return "propagation redone"

        run_job(job, work, f"redo-{self.sid[:6]}")
        return True

    # ----- propagation -------------------------------------------------------------------------
    def propagate(
        self,
        direction: Direction = "both",
        slice_range: tuple[int, int] | None = None,
        object_ids: list[int] | None = None,
    ) -> Job:
        """Start propagating every prompted object; progress goes to the returned job.

        ``slice_range`` ``(first, last)`` limits the objects to those slices;
        ``object_ids`` propagates only those objects.
        """
        with self.locked():
            session = self._mutable()
            oids = tuple(session.objects) if object_ids is None else tuple(object_ids)
            for oid in oids:
                self._require_object(session, oid)
            prompted = sorted({s for oid in oids for s in session.prompts(oid)})
            if not prompted:
                raise InputError("nothing to propagate: click on the object first")
            n = session.geometry.n_slices
            if slice_range is not None:
                first, last = slice_range
                if not 0 <= first <= last < n:
                    raise InputError(f"slice limit {first}..{last} must lie within 0..{n - 1}")
                inside = [s for s in prompted if first <= s <= last]
                if not inside:
                    raise InputError(
                        f"no prompt on slices {first}..{last}: prompt inside the limit"
                    )
                prompted, n = [inside[0] - first], last - first + 1
            total = {"forward": n - prompted[0], "backward": prompted[0] + 1}.get(direction, n)
            job = Job("propagate", total=total, message=f"propagating ({direction})")
            self.job = job
        run_job(
            job,
            lambda job: self._propagate(
                session, direction, job, slice_range, None if object_ids is None else oids
            ),
            f"prop-{self.sid[:6]}",
        )
        return job

    def _propagate(
        self,
        session: Session,
        direction: Direction,
        job: Job,
        slice_range: tuple[int, int] | None = None,
        object_ids: tuple[int, ...] | None = None,
    ) -> str:
        with self.locked():
            n_before = len(session.events)
            steps = session.propagate(
                direction=direction, slice_range=slice_range, object_ids=object_ids
            )
        finished = False
        try:
            while not job.cancel_requested:
                with self.locked():
                    try:
                        result = next(steps)
                    except StopIteration:
                        finished = True
                        break
                    self.revision += 1
                covered = tuple(oid for oid, m in result.masks.items() if np.any(m))
                job.advance(result.slice_index, covered)
        finally:
            with self.locked():
                if not finished:  # stopped or failed: take the partial propagation back
                    steps.close()  # the session logs a stopped run (with the slices reached)
                    if len(session.events) > n_before:
                        session.undo()  # ... and undo puts it on the session's redo list
                self._changed()
        if not finished:
            job.finish("cancelled", "stopped: the propagation was taken back")
        return f"propagated through {job.n_reached} slices"

    def stop(self) -> bool:
        """Ask a running propagation to stop (it is then undone); False if none runs."""
        job = self.job
        if job is None or not job.running or job.kind != "propagate":
            return False
        job.cancel_requested = True
        return True

    # ----- reading ---------------------------------------------------------------------------
    def image_png(self, view: str, s: int, window: str) -> bytes:
        """A slice in a display window (the volume never changes, so no lock)."""
        display = self.display
        if display is None:
            with self.locked():
                self._ready()
                display = self.display
        return display.image_png(view, s, window)

    def view(self, view: str, s: int) -> bool:
        """The page shows slice ``s`` of ``view``: background encoding re-centres there.

        Only slices of the working view count; returns whether background
        encoding is on for the session (engines without an encoder ignore it).
        No lock: it does not change the session, and may come during a job.
        """
        session = self.session
        if session is None or view != session.geometry.axis:
            return False
        session.view(s)
        return session.background_encoding

    def overlay_png(self, view: str, s: int) -> tuple[bytes, int]:
        """The overlay of a slice and the revision it shows."""
        with self.locked():
            session = self._ready()
            layers = [(session.mask_stack(oid), obj.color) for oid, obj in session.objects.items()]
            return self.display.overlay_png(view, s, layers), self.revision

    def locate(self, view: str, s: int, row: int, col: int):
        """A pixel of any view -> (voxel, (slice, row, col) in the working view)."""
        with self.locked():
            self._ready()
            return self.display.to_working(view, s, row, col)

    def change_result(self, view: str | None, s: int | None) -> ChangeResult:
        """The state, with the overlay of ``(view, s)`` inline when given."""
        overlay = None
        if view is not None and s is not None and self.session is not None:
            png, revision = self.overlay_png(view, s)
            data = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            overlay = OverlayImage(view, s, revision, data)
        return ChangeResult(self.state(), overlay)

    def state(self) -> SessionState:
        """Everything the page needs except pixels."""
        with self.locked():
            session, display, job = self.session, self.display, self.job
            objects: list[ObjectState] = []
            marks: list[PromptMarks] = []
            status = "ready" if session is not None else "failed" if self.error else "loading"
            if session is not None:
                for oid, obj in session.objects.items():
                    info = session.summary(oid)
                    prompts = session.prompts(oid)
                    objects.append(
                        ObjectState(
                            oid,
                            obj.name,
                            color_hex(obj.color),
                            info.voxels,
                            round(info.volume_ml, 4),
                            info.first_slice,
                            info.last_slice,
                            info.slices,
                            tuple(sorted(prompts)),
                        )
                    )
                    for s, p in sorted(prompts.items()):
                        points = tuple(
                            (int(r), int(c), bool(pos))
                            for (r, c), pos in zip(p.points, p.labels, strict=True)
                        )
                        box = tuple(int(v) for v in p.box) if p.box is not None else None
                        marks.append(PromptMarks(oid, int(s), points, box))
            volume = session.volume if session is not None else None
            return SessionState(
                sid=self.sid,
                status=status,
                error=self.error,
                notice=self.notice,
                source=self.meta.source,
                kind=self.meta.kind,
                engine=session.engine.name if session is not None else self.engine_label,
                axis=self.meta.axis,
                intensity=session.intensity if session is not None else self.meta.intensity,
                shape=volume.shape if volume is not None else (),
                spacing_mm=tuple(round(x, 4) for x in volume.spacing_mm) if volume else (),
                orientation=volume.orientation if volume is not None else "",
                windows=WINDOWS,
                default_window=display.default_window if display else WINDOWS[0],
                views=tuple(display.infos()) if display else (),
                objects=tuple(objects),
                prompts=tuple(marks),
                can_undo=bool(session is not None and session.events),
                can_redo=bool(session is not None and session.can_redo),
                n_events=len(session.events) if session is not None else 0,
                revision=self.revision,
                job=job.snapshot() if job is not None else None,
            )

    # ----- export ----------------------------------------------------------------------------
    def label_map(self):
        """The label map (object ids) on the source grid, taken under the lock."""
        with self.locked():
            session = self._ready()
            if self.busy:
                raise Busy(f"{self.job.kind} is running; export when it is done")
            if not session.objects:
                raise InputError("nothing to export yet: add an object and click on it")
            return session.label_map(), session.volume

    def export(self, fmt: str, target: Path | None = None) -> Path:
        """Write the label map as NIfTI or NRRD with the source geometry, atomically."""
        from sam2vol.io import write_mask

        if fmt not in EXPORT_FORMATS:
            raise InputError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        labels, volume = self.label_map()
        if target is None:
            self.exports_dir.mkdir(exist_ok=True)
            target = self.exports_dir / f"{self.meta.stem}_labels{EXPORT_FORMATS[fmt]}"
        return write_mask(labels.data, volume, target)

    def log_dict(self) -> dict:
        with self.locked():
            return self._ready().log_dict()
