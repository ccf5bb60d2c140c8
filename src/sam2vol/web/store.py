"""The sessions of one server: opened, looked up by id, recovered from disk, evicted when idle."""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sam2vol.errors import InputError
from sam2vol.intensity import resolve_preset
from sam2vol.session import Session
from sam2vol.slicing import AXES
from sam2vol.volume import Volume
from sam2vol.web.autosave import MaskSaver, recover, save_masks
from sam2vol.web.config import ServerConfig
from sam2vol.web.display import Display
from sam2vol.web.errors import NotFound
from sam2vol.web.jobs import Job, run_job
from sam2vol.web.meta import META_FILE, SessionMeta, SourceKind, open_source
from sam2vol.web.paths import suffix_of
from sam2vol.web.websession import WebSession

SID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
STALE_UPLOAD_S = 3600
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
        self.saver = MaskSaver()

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
        sid = secrets.token_urlsafe(18)
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
        return Session(volume, engine, axis=ws.meta.axis, intensity=ws.meta.intensity)

    def _load(self, ws: WebSession, volume: Volume) -> str:
        try:
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
            self._live[sid] = ws
        self._evict()
        run_job(ws.job, lambda job: self._recover(ws, job), f"recover-{sid[:6]}")
        return ws

    def _recover(self, ws: WebSession, job: Job) -> str:
        try:
            volume = open_source(ws.meta, ws.folder, self.config.data_dir)
            session, how = recover(ws, lambda: self._make_session(ws, volume), job)
            display = Display(volume, session.geometry)
        except InputError as exc:
            ws.error = f"could not restore the session: {str(exc).splitlines()[0]}"
            raise
        except Exception:
            ws.error = "could not restore the session (see the server log)"
            raise
        with ws.locked():
            ws.session, ws.display, ws.notice = session, display, how
            ws.revision += 1
            ws.saved_revision = ws.revision if ws.masks_path.exists() else 0
        if not ws.masks_path.exists():
            self.saver.request(ws)
        return how

    def live_ids(self) -> list[str]:
        with self._lock:
            return list(self._live)

    def _add(self, ws: WebSession) -> None:
        with self._lock:
            self._live[ws.sid] = ws
        self._evict()

    def _evict(self) -> None:
        """Drop the least recently used idle sessions beyond the limit (they stay on disk)."""
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
            try:
                save_masks(ws)
            except Exception:
                log.exception("saving session %s before evicting it failed", ws.sid)

    def _drop_stale_uploads(self) -> None:
        now = time.time()
        for path in self.uploads_dir.iterdir():
            try:
                if now - path.stat().st_mtime > STALE_UPLOAD_S:
                    path.unlink()
            except OSError:
                pass

    def shutdown(self) -> None:
        """Write pending autosaves."""
        self.saver.stop()
