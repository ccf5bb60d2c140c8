"""Autosave of masks beside the prompt log, and recovery after a restart.

The session itself rewrites ``prompts.json`` (atomically) after every change.
Masks are saved to ``masks.npz`` by a background thread shortly after each
change, so a click never waits for disk. Every few changes, after each
propagation and when a session is closed to disk, a snapshot of the whole
session state (objects, prompts, masks, undo and redo steps) is written too.
After a restart a session comes back from its snapshot plus the logged events
after it, so restart time does not grow with history; without a usable
snapshot the whole prompt log is replayed; if that fails (damaged log, engine
gone) the saved masks are loaded instead.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sam2vol.errors import InputError
from sam2vol.session import Session, read_log
from sam2vol.session_state import read_snapshot, set_redo, write_snapshot
from sam2vol.web.jobs import Job

MASKS_FORMAT = "sam2vol-web-masks/1"
SAVE_DELAY_S = 0.3
REDO_FILE = "redo.json"
SNAPSHOT_FILE = "snapshot.npz"  # see sam2vol.session_state (arrays + JSON, no pickle)
SNAPSHOT_EVERY = 5  # events between snapshots (a propagation always gets one)
log = logging.getLogger("sam2vol.web")


@dataclass(frozen=True)
class SavedObject:
    """An object as saved with the masks."""

    id: int
    name: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class SavedMasks:
    """Masks read back from ``masks.npz``: working-view stacks per object."""

    revision: int
    n_events: int
    objects: tuple[SavedObject, ...]
    stacks: dict[int, np.ndarray]


def save_masks(ws) -> bool:
    """Write a session's masks to ``masks.npz`` (atomically) if they changed since the last save."""
    with ws.locked(timeout=60):
        session = ws.session
        if session is None or ws.saved_revision == ws.revision or ws.deleted:
            return False
        revision = ws.revision
        shape = (session.geometry.n_slices, *session.geometry.slice_shape)
        objects = [SavedObject(o.id, o.name, tuple(o.color)) for o in session.objects.values()]
        bits = {f"object_{o.id}": np.packbits(session.mask_stack(o.id).ravel()) for o in objects}
        n_events = len(session.events)
    meta = {
        "format": MASKS_FORMAT,
        "revision": revision,
        "n_events": n_events,
        "stack_shape": list(shape),
        "objects": [{"id": o.id, "name": o.name, "color": list(o.color)} for o in objects],
    }
    tmp = ws.masks_path.with_name(f".{ws.masks_path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **bits)
    os.replace(tmp, ws.masks_path)
    ws.saved_revision = max(ws.saved_revision, revision)
    if snapshot_due(ws, n_events):
        save_snapshot(ws)
    return True


def snapshot_due(ws, n_events: int) -> bool:
    """A snapshot is due every few events, and after a propagation."""
    from sam2vol.prompts import Propagate

    session = ws.session
    if session is None or n_events == ws.snapshot_events:
        return False
    last = session.events[-1] if session.events else None
    return n_events - ws.snapshot_events >= SNAPSHOT_EVERY or isinstance(last, Propagate)


def save_snapshot(ws) -> bool:
    """Write the session's whole state (``snapshot.npz``, atomically); False if not possible."""
    with ws.locked(timeout=60):
        session = ws.session
        if session is None or ws.deleted or ws.busy:
            return False
        snapshot = session.export_state()  # masks copied (bit-packed) under the lock
    write_snapshot(ws.folder / SNAPSHOT_FILE, snapshot)
    ws.snapshot_events = snapshot.n_events
    return True


def _from_snapshot(ws, session: Session, events: list) -> int:
    """Put a snapshot's state into a fresh session if it matches the log; events it covers.

    The snapshot is used only when the events it holds equal the first events
    of the log (and it is of the same volume, axis and engine).
    """
    from sam2vol.prompts import event_to_dict

    path = ws.folder / SNAPSHOT_FILE
    if not path.exists():
        return 0
    try:
        snapshot = read_snapshot(path)
        n = snapshot.n_events
        held = [event_to_dict(e) for e in snapshot.events]
        if not (0 < n <= len(events)) or held != [event_to_dict(e) for e in events[:n]]:
            return 0
        session.restore_state(snapshot)  # all or nothing: a failure leaves the session fresh
    except Exception as exc:  # a damaged snapshot only costs the replay of the log
        log.warning("ignoring snapshot %s: %s", path, exc)
        return 0
    return n


def masks_meta(path: Path) -> dict | None:
    """The small ``meta`` record of ``masks.npz`` (revision, events, objects), or None."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            return json.loads(bytes(saved["meta"]).decode())
    except (OSError, KeyError, ValueError):
        return None


def count_objects(folder: Path) -> int:
    """Objects of a session on disk: from its saved masks, else from its prompt log."""
    masks = folder / "masks.npz"
    if masks.exists():
        with np.load(masks, allow_pickle=False) as saved:
            return len(json.loads(bytes(saved["meta"]).decode())["objects"])
    log_path = folder / "prompts.json"
    if not log_path.exists():
        return 0
    events = json.loads(log_path.read_text()).get("events", [])
    return len({e.get("object_id") for e in events if e.get("object_id") is not None})


def save_redo(ws) -> None:
    """Write the events undo took back (``redo.json``), so redo survives a restart."""
    from sam2vol.prompts import event_to_dict

    path = ws.folder / REDO_FILE
    redo = ws.session.redo_events if ws.session is not None else []
    if not redo:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{REDO_FILE}.tmp")
    tmp.write_text(json.dumps([event_to_dict(e) for e in redo]))
    os.replace(tmp, path)


def load_redo(folder: Path) -> list:
    """Events to redo, latest last; empty if none were saved (or the file is damaged)."""
    from sam2vol.prompts import event_from_dict

    path = folder / REDO_FILE
    if not path.exists():
        return []
    try:
        return [event_from_dict(e) for e in json.loads(path.read_text())]
    except Exception as exc:
        log.warning("ignoring damaged %s: %s", path, exc)
        return []


def load_masks(path: Path) -> SavedMasks:
    """Read ``masks.npz``; :class:`InputError` if it is missing or damaged."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            meta = json.loads(bytes(saved["meta"]).decode())
            if meta.get("format") != MASKS_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            shape = tuple(int(n) for n in meta["stack_shape"])
            objects = tuple(
                SavedObject(int(o["id"]), str(o["name"]), tuple(int(c) for c in o["color"]))
                for o in meta["objects"]
            )
            size = int(np.prod(shape))
            stacks = {
                o.id: np.unpackbits(saved[f"object_{o.id}"], count=size).astype(bool).reshape(shape)
                for o in objects
            }
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"saved masks are missing or damaged ({exc})") from exc
    return SavedMasks(int(meta["revision"]), int(meta["n_events"]), objects, stacks)


class MaskSaver:
    """A background thread saving the masks of sessions that changed (coalescing bursts)."""

    def __init__(self, delay_s: float = SAVE_DELAY_S) -> None:
        self.delay_s = delay_s
        self._pending: dict[str, object] = {}
        self._saving = 0
        self._urgent = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def request(self, ws) -> None:
        """Save ``ws``'s masks soon."""
        with self._cond:
            if self._stopped:
                return
            self._pending[ws.sid] = ws
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sam2vol-autosave")
                self._thread.daemon = True
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Write every requested save now; True if done in time."""
        with self._cond:
            self._urgent += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(
                    lambda: not self._pending and not self._saving, timeout=timeout
                )
            finally:
                self._urgent -= 1

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is pending, then end the thread."""
        self.flush(timeout)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopped)
                if not self._pending:
                    return
                # let a burst of changes settle, unless someone waits for the save
                self._cond.wait_for(lambda: self._urgent or self._stopped, timeout=self.delay_s)
                batch, self._pending = list(self._pending.values()), {}
                self._saving = len(batch)
            for ws in batch:
                try:
                    save_masks(ws)
                except Exception:
                    log.exception("autosave of session %s failed", getattr(ws, "sid", "?"))
            with self._cond:
                self._saving = 0
                self._cond.notify_all()


def _restore_masks(session: Session, saved: SavedMasks) -> None:
    """Put saved masks into a fresh session, as mask prompts on each slice they cover."""
    g = session.geometry
    shape = (g.n_slices, *g.slice_shape)
    for obj in saved.objects:
        stack = saved.stacks[obj.id]
        if stack.shape != shape:
            raise InputError(f"saved masks have shape {stack.shape}, the volume {shape}")
        session.add_object(obj.name, obj.color, object_id=obj.id)
        for s in np.flatnonzero(stack.any(axis=(1, 2))):
            session.add_mask(g.slice_to_plane(stack[s]), int(s), object_id=obj.id)


def recover(ws, session_factory, job: Job) -> tuple[Session, str]:
    """Bring a session back from its folder: replay the log, else load the saved masks.

    Args:
        ws: The :class:`~sam2vol.web.websession.WebSession` (without a session yet).
        session_factory: Makes a fresh :class:`Session` of the session's volume.
        job: Progress (events replayed).

    Returns:
        The session (autosaving again) and how it was recovered, for the page.
    """
    session = session_factory()
    how = "restored: nothing was saved yet"
    if ws.log_path.exists():
        try:
            events = read_log(ws.log_path)
            start = _from_snapshot(ws, session, events)
            job.total = len(events) - start
            for event in events[start:]:
                session.run(event)
                job.advance()
            ws.snapshot_events = start
            how = f"restored by replaying {len(events)} saved changes"
            if start:
                how = (
                    f"restored by replaying {len(events) - start} saved changes after a "
                    f"snapshot of {start} (of {len(events)})"
                )
        except Exception as exc:
            log.warning("replaying %s failed: %s", ws.log_path, exc)
            reason = str(exc).splitlines()[0] if isinstance(exc, InputError) else "replay failed"
            why = f"the prompt log could not be replayed ({reason})"
            session, how = _from_masks(ws, session_factory, why)
    elif ws.masks_path.exists():
        session, how = _from_masks(ws, session_factory, "no prompt log")
    redo = load_redo(ws.folder) if session.events or not ws.log_path.exists() else []
    if redo:
        set_redo(session, redo)  # the session's redo list, as before the restart
    session.autosave = ws.log_path
    session.save_log(ws.log_path)
    return session, how


def _from_masks(ws, session_factory, why: str) -> tuple[Session, str]:
    session = session_factory()
    try:
        _restore_masks(session, load_masks(ws.masks_path))
    except InputError as exc:
        for path in (ws.log_path, ws.masks_path):
            if path.exists():
                os.replace(path, path.with_name(path.name + ".broken"))
        message = f"could not restore: {why}; {exc}. Starting empty (old files kept as *.broken)"
        return session_factory(), message
    return session, f"{why}; restored the saved masks (undo history is lost)"
