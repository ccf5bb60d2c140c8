"""What the web server was started with."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2vol.engines import Engine

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD_MB = 512
DEFAULT_MAX_JSON_BYTES = 1024 * 1024
DEFAULT_KEEP_DAYS = 30
MIN_BUDGET_BYTES = 256 * 1024 * 1024


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_budget() -> int:
    """Half the machine's memory (4 GB where unknown): the rest is for the OS and the engine."""
    total = machine_memory_bytes()
    return max(MIN_BUDGET_BYTES, total // 2) if total else 4 * 1024**3


def default_state_dir() -> Path:
    """Where sessions are autosaved unless ``--state-dir`` says otherwise."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "sam2vol" / "serve"


@dataclass
class ServerConfig:
    """Settings of one server.

    Attributes:
        state_dir: Sessions are autosaved under ``state_dir/sessions/<id>/``.
        data_dir: Folder volumes may be opened from (and exports saved into);
            None allows only uploads and the bundled samples.
        engine: Engine name for :func:`~sam2vol.engines.create_engine`.
        engine_options: Options for it (e.g. ``checkpoint`` for ``sam2``).
        engine_factory: Makes an engine for a new session; overrides
            ``engine`` (tests use a stand-in engine this way).
        max_upload_bytes: Larger uploads are refused with 413.
        max_live_sessions: Idle sessions beyond this many are dropped from
            memory (they stay on disk and come back when asked for).
        allowed_hosts: Host headers accepted (guards against DNS rebinding);
            None accepts any.
        token: When set, every request must carry it (remote mode).
        memory_budget_bytes: Bytes all live sessions may hold together
            (volumes, masks, engine caches); least recently used idle sessions
            are closed to disk to make room, and a session that cannot fit is
            refused with 503.
        max_json_bytes: Larger JSON bodies are refused with 413.
        keep_days: Sessions unchanged for longer are deleted at start (0 keeps them).
        background_encoding: Engines with an image encoder (SAM 2) encode
            slices outward from the one the page shows while the user is idle
            (until the memory budget is spent); others ignore it.
    """

    state_dir: Path = field(default_factory=default_state_dir)
    data_dir: Path | None = None
    engine: str = "default"
    engine_options: dict[str, Any] = field(default_factory=dict)
    engine_factory: Callable[[], Engine] | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    max_live_sessions: int = 16
    allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS
    token: str | None = None
    memory_budget_bytes: int = field(default_factory=default_memory_budget)
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    keep_days: float = DEFAULT_KEEP_DAYS
    background_encoding: bool = True

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).expanduser()
        if self.data_dir is not None:
            self.data_dir = Path(self.data_dir).expanduser().resolve()

    def make_engine(self) -> Engine:
        """A fresh engine for one session."""
        if self.engine_factory is not None:
            return self.engine_factory()
        from sam2vol.engines import create_engine

        return create_engine(self.engine, **self.engine_options)

    @property
    def engine_label(self) -> str:
        """The engine's name as shown in the page."""
        return self.engine if self.engine_factory is None else "custom"
