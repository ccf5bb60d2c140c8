"""Request bodies of the web API (validated by pydantic; unknown fields are refused)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sam2vol.prompts import Direction
from sam2vol.slicing import Axis

MAX_INDEX = 1_000_000


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Versioned(Request):
    """A change; ``version`` (the session's ``revision`` the page shows) refuses stale edits.

    A change sent with an older version than the session's is refused with 409:
    another tab changed the session meanwhile. Without it, the change applies.
    """

    version: int | None = Field(None, ge=0)


class Focus(Versioned):
    """The slice in view, whose overlay comes back inline with a change."""

    view: Axis | None = None
    slice: int | None = Field(None, ge=0, le=MAX_INDEX)


class OpenRequest(Request):
    """Open a bundled sample or a path inside the data folder."""

    sample: str | None = Field(None, max_length=64)
    path: str | None = Field(None, max_length=1024)
    axis: Axis = "axial"
    intensity: str = Field("auto", max_length=64)
    channel: int | None = Field(None, ge=0, le=1000)


class PromptRequest(Versioned):
    """A click (``point``) or a box on a slice of the working view, in (row, col) pixels."""

    kind: Literal["point", "box"] = "point"
    object_id: int = Field(1, ge=1, le=255)
    view: Axis
    slice: int = Field(ge=0, le=MAX_INDEX)
    row: int = Field(ge=0, le=MAX_INDEX)
    col: int = Field(ge=0, le=MAX_INDEX)
    positive: bool = True
    row2: int | None = Field(None, ge=0, le=MAX_INDEX)
    col2: int | None = Field(None, ge=0, le=MAX_INDEX)


class ObjectRequest(Focus):
    """A new object, or new name and/or colour of an object (None keeps them)."""

    name: str | None = Field(None, max_length=200)
    color: str | None = Field(None, max_length=16)


class ClearRequest(Focus):
    """Clear one object (``object_id``), or all (None); on one working slice or all."""

    object_id: int | None = Field(None, ge=1, le=255)
    only_slice: int | None = Field(None, ge=0, le=MAX_INDEX)


class PropagateRequest(Versioned):
    """Propagate; ``first``..``last`` (both or neither) limit the objects to those slices;
    ``object_ids`` propagates only those objects (the others, e.g. locked ones, stay)."""

    direction: Direction = "both"
    first: int | None = Field(None, ge=0, le=MAX_INDEX)
    last: int | None = Field(None, ge=0, le=MAX_INDEX)
    object_ids: list[int] | None = Field(None, max_length=255)


class SaveRequest(Request):
    """Save the label map into the data folder under a new name."""

    save_as: str = Field(max_length=1024)
