"""The sessions of one server: opened, looked up by id, recovered from disk, evicted when idle.

Live sessions share one memory budget: each is charged an estimate of what
it holds (volume, engine copy, display cache, masks) plus what its engine
reports holding now (:meth:`~sam2vol.engines.base.Engine.memory_bytes`: SAM 2's
cached features and inference states), read afresh whenever the budget is
checked, so the charge follows the engine as it grows. A session that does not
fit closes the least recently used idle sessions to disk (they reopen on
demand, and their engine memory is given back); when even that leaves no
room, opening is refused with 503.

Engines with an image encoder (SAM 2) encode slices in the background from the
slice the page shows while the user is idle (``ServerConfig.background_encoding``);
that encoding stops when the budget is spent, and when the session is closed
or deleted.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sam2vol.errors import InputError
from sam2vol.intensity import resolve_preset
from sam2vol.session import Session
from sam2vol.slicing import AXES
from sam2vol.volume import Volume
from sam2vol.web.autosave import MaskSaver, masks_meta, recover, save_masks, save_snapshot
from sam2vol.web.config import ServerConfig
from sam2vol.web.display import Display
from sam2vol.web.errors import Busy, NotFound, ServerFull
from sam2vol.web.jobs import Job, run_job
from sam2vol.web.limits import session_cost, whole_mb
from sam2vol.web.meta import META_FILE, SessionMeta, SourceKind, open_source
from sam2vol.web.paths import suffix_of
from sam2vol.web.websession import WebSession

SID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
STALE_UPLOAD_S = 3600
DAY_S = 86400
log = logging.getLogger("sam2vol.web")


class SessionStore:
    """Holds the live sessions of a server; each lives in ``state_dir/sessions/<id>/`` on disk.

    Args:
        config: The server's settings.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.sessions_dir = config.state_dir / "sessions"
        self.uploads_dir = config.state_dir / "uploads"
        for folder in (self.sessions_dir, self.uploads_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._drop_stale_uploads()
        self._live: dict[str, WebSession] = {}
        self._lock = threading.Lock()
        # One volume in memory at a time that is not yet charged to the budget: reading a file
        # and building its session (the engine's float copy, the display) happen under it.
        self.loading = threading.Lock()
        self.saver = MaskSaver()
        self.closed_for_memory = 0
        # Set when the server stops: event streams and long polls end, so it stops promptly.
        self.closing = threading.Event()
        self.drop_expired()

    # ----- opening ---------------------------------------------------------------------------
    def upload_path(self, suffix: str) -> Path:
        """A fresh file name for an upload in progress."""
        return self.uploads_dir / f"{secrets.token_hex(12)}{suffix}"

    def open(
        self,
        kind: SourceKind,
        source: str,
        volume: Volume,
        *,
        axis: str = "axial",
        intensity: str = "auto",
        upload: Path | None = None,
        channel: int | None = None,
    ) -> WebSession:
        """Start a session on ``volume``; it is prepared for the engine by a job.

        Args:
            kind: Where the volume came from (see :class:`SessionMeta`).
            source: Its name as the user knows it.
            volume: The volume, already read (bad files fail before a session exists).
            axis: Slicing axis to segment along.
            intensity: Intensity preset the engine sees.
            upload: An uploaded file to keep in the session folder (moved there).
            channel: The channel taken from a 4D volume (kept to reopen it).
        """
        if axis not in AXES:
            raise InputError(f"axis must be one of {', '.join(AXES)}, got {axis!r}")
        resolve_preset(intensity, volume.data)  # an unknown preset is a 400 now, not a failed job
        cost = session_cost(volume.data.size, volume.data.itemsize)
        sid = secrets.token_urlsafe(18)
        self.make_room(cost)
        folder = self.sessions_dir / sid
        folder.mkdir(mode=0o700)
        stored = ""
        if upload is not None:
            stored = "upload" + suffix_of(upload.name)
            os.replace(upload, folder / stored)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        meta = SessionMeta(sid, kind, source, stored, axis, intensity, created, channel)  # type: ignore[arg-type]
        meta.save(folder)
        ws = self._new(meta, folder)
        ws.cost_bytes = cost
        engine = self.config.engine_label
        ws.job = Job("load", message=f"preparing {source} for the {engine} engine")
        self._add(ws)
        run_job(ws.job, lambda job: self._load(ws, volume), f"load-{sid[:6]}")
        return ws

    def _new(self, meta: SessionMeta, folder: Path) -> WebSession:
        label, hook = self.config.engine_label, self.saver.request
        return WebSession(meta.sid, folder, meta, engine_label=label, on_change=hook)

    def _make_session(self, ws: WebSession, volume: Volume) -> Session:
        engine = self.config.make_engine()
        # Background encoding starts once the session is ready (not while a log replays).
        return Session(
            volume,
            engine,
            axis=ws.meta.axis,
            intensity=ws.meta.intensity,
            background_encoding=False,
        )

    def _start_background(self, session: Session) -> None:
        """Let the engine encode slices from the one the page opens on, while there is room."""
        if not self.config.background_encoding:
            return
        prompted = sorted({s for oid in session.objects for s in session.prompts(oid)})
        if prompted:
            session.view(prompted[0])  # the page opens on the first prompted slice
        session.encode_in_background(keep_going=self._has_room)

    def _has_room(self) -> bool:
        return self.used_bytes() < self.config.memory_budget_bytes

    def _load(self, ws: WebSession, volume: Volume) -> str:
        try:
            with self.loading:
                session = self._make_session(ws, volume)
                display = Display(volume, session.geometry)
            session.autosave = ws.log_path
            session.save_log(ws.log_path)
        except InputError as exc:
            ws.error = str(exc).splitlines()[0]
            raise
        except Exception:
            ws.error = "the engine could not prepare this volume (see the server log)"
            raise
        with ws.locked():
            ws.session, ws.display = session, display
            ws.cost_bytes = _charged(session)
        self._start_background(session)
        return f"{ws.meta.source} is ready"

    # ----- lookup and recovery -------------------------------------------------------------------
    def get(self, sid: str) -> WebSession:
        """A session by id; one not in memory is recovered from disk by a job."""
        if not SID_PATTERN.fullmatch(sid or ""):
            raise NotFound("no such session")
        with self._lock:
            ws = self._live.get(sid)
            if ws is not None:
                ws.last_used = time.monotonic()
                return ws
            folder = self.sessions_dir / sid
            if not (folder / META_FILE).is_file():
                raise NotFound("no such session (it may have been deleted); open a volume")
            meta = SessionMeta.load(folder)
            if meta.sid != sid:
                raise InputError(f"session {sid}: its meta.json is damaged")
            ws = self._new(meta, folder)
            ws.job = Job("recover", message="restoring the session after a restart")
        live = self._recover_charged(ws)
        if live is not ws:  # another request brought it back meanwhile
            return live
        run_job(ws.job, lambda job: self._recover(ws, job), f"recover-{sid[:6]}")
        return ws

    def _recover(self, ws: WebSession, job: Job) -> str:
        try:
            with self.loading:
                volume = open_source(ws.meta, ws.folder, self.config.data_dir)
                session, how = recover(ws, lambda: self._make_session(ws, volume), job)
                display = Display(volume, session.geometry)
        except InputError as exc:
            ws.error = f"could not restore the session: {str(exc).splitlines()[0]}"
            raise
        except Exception:
            ws.error = "could not restore the session (see the server log)"
            raise
        saved = masks_meta(ws.masks_path) if ws.masks_path.exists() else None
        with ws.locked():
            ws.session, ws.display, ws.notice = session, display, how
            ws.cost_bytes = _charged(session)
            # the version pages know carries on where the saved masks left it
            current = saved is not None and saved.get("n_events") == len(session.events)
            ws.saved_revision = int(saved["revision"]) if current else 0
            ws.revision = max(ws.revision + 1, ws.saved_revision + (0 if current else 1))
        if not current:
            self.saver.request(ws)
        self._start_background(session)
        return how

    def peek(self, sid: str) -> WebSession | None:
        """The live session ``sid``, without reopening it or counting it as used."""
        with self._lock:
            return self._live.get(sid)

    def live_ids(self) -> list[str]:
        with self._lock:
            return list(self._live)

    def used_bytes(self) -> int:
        """Bytes charged to the live sessions (their engines' memory read now)."""
        with self._lock:
            return sum(_cost(ws) for ws in self._live.values())

    def _recover_charged(self, ws: WebSession) -> WebSession:
        """Charge a session coming back from disk and make it live; returns the live one."""
        try:
            volume_cost = self._cost_on_disk(ws)
        except InputError:
            volume_cost = 0  # the recovery job reports what is wrong
        self.make_room(volume_cost, reopening=True)
        ws.cost_bytes = volume_cost
        with self._lock:
            return self._live.setdefault(ws.sid, ws)

    def _cost_on_disk(self, ws: WebSession) -> int:
        from sam2vol.web.limits import declared_volume
        from sam2vol.web.meta import source_path

        declared = declared_volume(source_path(ws.meta, ws.folder, self.config.data_dir))
        return session_cost(declared.voxels, declared.itemsize)

    def make_room(self, cost: int, *, reopening: bool = False) -> None:
        """Close least recently used idle sessions to disk until ``cost`` more bytes fit.

        Raises:
            ServerFull: Busy sessions hold the budget (503).
        """
        budget = self.config.memory_budget_bytes
        if cost > budget:
            raise ServerFull(
                f"this volume needs about {whole_mb(cost)}, over the server's whole "
                f"{whole_mb(budget)} memory budget (--memory-budget-mb)"
            )
        with self._lock:
            costs = {ws.sid: _cost(ws) for ws in self._live.values()}
            used = sum(costs.values())
            idle = sorted(
                (ws for ws in self._live.values() if not ws.busy and ws.session is not None),
                key=lambda ws: ws.last_used,
            )
            closing: list[WebSession] = []
            while used + cost > budget and idle:
                ws = idle.pop(0)
                closing.append(ws)
                used -= costs[ws.sid]
                del self._live[ws.sid]
            if used + cost > budget:
                for ws in closing:  # nothing closed after all: they stay
                    self._live[ws.sid] = ws
                what = "reopen this session" if reopening else "open another volume"
                raise ServerFull(
                    f"the server's memory budget ({whole_mb(budget)}) is held by sessions that are "
                    f"busy; cannot {what} now, try again in a minute"
                )
            self.closed_for_memory += len(closing)
        for ws in closing:
            self._close(ws)

    def _close(self, ws: WebSession) -> None:
        """Write a session's masks before it leaves memory (it reopens from disk)."""
        try:
            save_masks(ws)
            save_snapshot(ws)  # it reopens from here, without replaying its history
        except Exception:
            log.exception("saving session %s before closing it failed", ws.sid)
        _release(ws)
        log.info("session %s closed to disk to free memory", ws.sid)

    def _add(self, ws: WebSession) -> None:
        with self._lock:
            self._live[ws.sid] = ws
        self._evict()

    def _evict(self) -> None:
        """Drop the least recently used idle sessions beyond the count limit (they stay on disk)."""
        with self._lock:
            extra = len(self._live) - self.config.max_live_sessions
            if extra <= 0:
                return
            idle = sorted(
                (ws for ws in self._live.values() if not ws.busy and ws.session is not None),
                key=lambda ws: ws.last_used,
            )
            dropped = idle[:extra]
            for ws in dropped:
                del self._live[ws.sid]
        for ws in dropped:
            self._close(ws)

    # ----- the sessions on disk ------------------------------------------------------------------
    def list_sessions(self) -> list[SessionSummary]:
        """Every session on disk, most recently changed first."""
        found = []
        for folder in self.sessions_dir.iterdir():
            if not SID_PATTERN.fullmatch(folder.name) or not (folder / META_FILE).is_file():
                continue
            try:
                meta = SessionMeta.load(folder)
            except InputError:
                continue
            with self._lock:
                ws = self._live.get(folder.name)
            if ws is not None and ws.session is not None:
                n_objects = len(ws.session.objects)
            else:
                n_objects = _objects_on_disk(folder)
            changed = _last_change(folder)
            when = datetime.fromtimestamp(changed, UTC).isoformat(timespec="seconds")
            found.append(
                SessionSummary(meta.sid, meta.source, meta.kind, n_objects, when, ws is not None)
            )
        return sorted(found, key=lambda s: s.last_change, reverse=True)

    def delete(self, sid: str) -> None:
        """Delete a session from memory and disk (refused while it runs a job)."""
        if not SID_PATTERN.fullmatch(sid or ""):
            raise NotFound("no such session")
        folder = self.sessions_dir / sid
        with self._lock:
            ws = self._live.get(sid)
            if ws is not None and ws.busy:
                raise Busy(f"{ws.job.kind} is running; stop it before deleting the session")
            if not folder.is_dir():
                raise NotFound("no such session (it may have been deleted already)")
            self._live.pop(sid, None)
        if ws is not None:
            with ws.locked():
                ws.deleted = True
                if ws.session is not None:
                    ws.session.autosave = None
            _release(ws)
        shutil.rmtree(folder, ignore_errors=True)

    def drop_expired(self) -> int:
        """Delete sessions unchanged for more than ``keep_days``; how many went."""
        if self.config.keep_days <= 0:
            return 0
        limit = time.time() - self.config.keep_days * DAY_S
        dropped = 0
        for folder in self.sessions_dir.iterdir():
            if folder.is_dir() and SID_PATTERN.fullmatch(folder.name):
                if _last_change(folder) < limit:
                    shutil.rmtree(folder, ignore_errors=True)
                    dropped += 1
        if dropped:
            log.info("deleted %d sessions unchanged for %s days", dropped, self.config.keep_days)
        return dropped

    def _drop_stale_uploads(self) -> None:
        now = time.time()
        for path in self.uploads_dir.iterdir():
            try:
                if now - path.stat().st_mtime > STALE_UPLOAD_S:
                    path.unlink()
            except OSError:
                pass

    def shutdown(self) -> None:
        """Write pending autosaves; stop background encoding."""
        self.saver.stop()
        with self._lock:
            live = list(self._live.values())
        for ws in live:
            _release(ws)


@dataclass(frozen=True)
class SessionSummary:
    """A session on disk, as the sessions list shows it.

    Attributes:
        sid: Its id.
        source: What it was opened from (sample name, relative path, uploaded name).
        kind: ``sample``, ``data`` or ``upload``.
        objects: How many objects it has.
        last_change: When it last changed (ISO 8601, UTC).
        live: Whether it is in memory now.
    """

    sid: str
    source: str
    kind: str
    objects: int
    last_change: str
    live: bool


def _last_change(folder: Path) -> float:
    times = []
    for name in (META_FILE, "prompts.json", "masks.npz"):
        try:
            times.append((folder / name).stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def _objects_on_disk(folder: Path) -> int:
    """Objects in the saved prompt log (without replaying it)."""
    from sam2vol.web.autosave import count_objects

    try:
        return count_objects(folder)
    except Exception:
        return 0


def _charged(session: Session) -> int:
    """The fixed part of a loaded session's charge: its volume estimate (see :func:`_cost`)."""
    data = session.volume.data
    return session_cost(data.size, data.itemsize)


def _cost(ws: WebSession) -> int:
    """What a live session is charged now: its fixed part plus what its engine holds now."""
    session = ws.session
    report = getattr(session.engine, "memory_bytes", None) if session is not None else None
    if not callable(report):
        return ws.cost_bytes
    try:
        return ws.cost_bytes + int(report())
    except Exception:
        return ws.cost_bytes  # an engine that cannot tell is charged its volume only


def _release(ws: WebSession) -> None:
    """Stop a session's background encoding and give its engine memory back (it leaves memory)."""
    if ws.session is not None:
        try:
            ws.session.close()
        except Exception:
            log.exception("closing the engine of session %s failed", ws.sid)
