"""The session state the page draws from, as typed records (sent as JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sam2vol.web.display import ViewInfo
from sam2vol.web.jobs import JobSnapshot

Status = Literal["loading", "ready", "failed"]


@dataclass(frozen=True)
class ObjectState:
    """One object: its look, size and extent in the working view.

    Attributes:
        covered: Working-view slices where its mask is not empty.
        prompted: Working-view slices holding its prompts.
    """

    id: int
    name: str
    color: str
    voxels: int
    volume_ml: float
    first_slice: int | None
    last_slice: int | None
    covered: tuple[int, ...]
    prompted: tuple[int, ...]


@dataclass(frozen=True)
class PromptMarks:
    """Prompts of one object on one working-view slice, to draw as markers.

    Attributes:
        points: (row, col, positive) of each click.
        box: (row0, col0, row1, col1) or None.
    """

    object_id: int
    slice: int
    points: tuple[tuple[int, int, bool], ...]
    box: tuple[int, int, int, int] | None


@dataclass(frozen=True)
class SessionState:
    """Everything the page shows about a session except pixels.

    Attributes:
        sid: Session id.
        status: ``loading`` (a job is preparing it), ``ready`` or ``failed``.
        error: Why loading failed.
        notice: Something to tell the user once (e.g. how it was recovered).
        source: What was opened (sample name, relative path, uploaded name).
        axis: The working view: prompts go on its slices.
        revision: Grows with every change of the masks.
        job: The running (or last) job's progress.
    """

    sid: str
    status: Status
    error: str | None
    notice: str | None
    source: str
    kind: str
    engine: str
    axis: str
    intensity: str
    shape: tuple[int, ...]
    spacing_mm: tuple[float, ...]
    orientation: str
    windows: tuple[str, ...]
    default_window: str
    views: tuple[ViewInfo, ...]
    objects: tuple[ObjectState, ...]
    prompts: tuple[PromptMarks, ...]
    can_undo: bool
    can_redo: bool
    n_events: int
    revision: int
    job: JobSnapshot | None


@dataclass(frozen=True)
class OverlayImage:
    """An overlay PNG sent inline with a change, so one round trip redraws the slice."""

    view: str
    slice: int
    revision: int
    png: str


@dataclass(frozen=True)
class ChangeResult:
    """Answer to a change: the new state and the overlay of the slice in view."""

    state: SessionState
    overlay: OverlayImage | None
