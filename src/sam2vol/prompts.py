"""Prompts as plain records that serialise to and from JSON.

Every prompt is stored in voxel indices (i, j, k) of the file's own index
order, so a logged interaction replays exactly whatever view it was made in.
A mask prompt holds one array slice (``array_axis``, ``index``) of the file,
run-length encoded.

Example:
    >>> p = PointPrompt(object_id=1, voxel=(10, 20, 5), positive=False)
    >>> prompt_from_dict(p.to_dict()) == p
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from sam2vol.errors import InputError

Direction = Literal["forward", "backward", "both"]
DIRECTIONS: tuple[Direction, ...] = ("forward", "backward", "both")


def rle_encode(mask: np.ndarray) -> list[int]:
    """Run lengths of a flattened (C order) boolean mask, starting with a run of False."""
    flat = np.asarray(mask, dtype=bool).ravel()
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat.size == 0 or not flat[0] else [0, *runs]


def rle_decode(runs: list[int], shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`rle_encode`."""
    values = np.arange(len(runs)) % 2 == 1
    flat = np.repeat(values, runs)
    if flat.size != int(np.prod(shape)):
        raise InputError(f"mask run lengths cover {flat.size} pixels, expected shape {shape}")
    return flat.reshape(shape)


class _Record:
    """Shared JSON round trip of the event records."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return event_to_dict(self)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PointPrompt(_Record):
    """A click at a voxel: positive adds to the object, negative removes."""

    kind: ClassVar[str] = "point"
    object_id: int
    voxel: tuple[int, int, int]
    positive: bool = True


@dataclass(frozen=True)
class BoxPrompt(_Record):
    """A box given by two opposite corner voxels lying on one slice."""

    kind: ClassVar[str] = "box"
    object_id: int
    corner_a: tuple[int, int, int]
    corner_b: tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class MaskPrompt(_Record):
    """A 2D mask on one array slice: ``data.take(index, axis=array_axis)`` of the file."""

    kind: ClassVar[str] = "mask"
    object_id: int
    array_axis: int
    index: int
    shape: tuple[int, int]
    rle: tuple[int, ...] = field(repr=False)

    @classmethod
    def from_array(cls, object_id: int, array_axis: int, index: int, mask: np.ndarray):
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise InputError(f"a mask prompt must be 2D, got shape {mask.shape}")
        return cls(object_id, array_axis, index, mask.shape, tuple(rle_encode(mask)))

    def to_array(self) -> np.ndarray:
        return rle_decode(list(self.rle), tuple(self.shape))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MaskPrompt) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.object_id, self.array_axis, self.index, self.rle))


@dataclass(frozen=True)
class ClearPrompts(_Record):
    """Remove prompts and the masks they made.

    ``object_id=None`` clears every object (a reset); ``slice_index=None``
    clears every slice of the object.
    """

    kind: ClassVar[str] = "clear"
    object_id: int | None = None
    slice_index: int | None = None


@dataclass(frozen=True)
class Propagate(_Record):
    """Propagate every object with prompts from ``start`` (default: its prompted slice).

    ``reset_between`` forgets the forward pass's memory before the backward one.
    ``stopped_after`` is set when the run was stopped after that many slices
    (engine results); a replay stops there too.
    ``slice_range`` ``(first, last)`` limits the objects to those slices: propagation
    writes only inside it, and clears their unprompted slices outside it.
    """

    kind: ClassVar[str] = "propagate"
    start: int | None = None
    direction: Direction = "both"
    max_slices: int | None = None
    object_ids: tuple[int, ...] | None = None
    reset_between: bool = False
    stopped_after: int | None = None
    slice_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class AddObject(_Record):
    """A new object (label) with a name and an RGB colour."""

    kind: ClassVar[str] = "add_object"
    object_id: int
    name: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class EditObject(_Record):
    """Rename and/or recolour an object (None keeps that attribute)."""

    kind: ClassVar[str] = "edit_object"
    object_id: int
    name: str | None = None
    color: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class RemoveObject(_Record):
    """Delete an object with its prompts and mask."""

    kind: ClassVar[str] = "remove_object"
    object_id: int


@dataclass(frozen=True, eq=False)
class ImportMask(_Record):
    """A whole 3D mask (file index order, run-length encoded) imported as one object.

    The object is created when it does not exist; every slice holding the mask
    becomes a mask prompt, the rest of the object is cleared.
    """

    kind: ClassVar[str] = "import_mask"
    object_id: int
    name: str
    color: tuple[int, int, int]
    shape: tuple[int, int, int]
    rle: tuple[int, ...] = field(repr=False)

    @classmethod
    def from_array(cls, object_id: int, name: str, color, mask: np.ndarray):
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 3:
            raise InputError(f"an imported mask must be 3D, got shape {mask.shape}")
        rgb = tuple(int(c) for c in color)
        return cls(object_id, name, rgb, mask.shape, tuple(rle_encode(mask)))

    def to_array(self) -> np.ndarray:
        return rle_decode(list(self.rle), tuple(self.shape))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImportMask) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.object_id, self.shape, self.rle))


Prompt = PointPrompt | BoxPrompt | MaskPrompt
ObjectEvent = AddObject | EditObject | RemoveObject
Event = PointPrompt | BoxPrompt | MaskPrompt | ClearPrompts | Propagate | ObjectEvent | ImportMask
_EVENT_TYPES: dict[str, type] = {
    t.kind: t
    for t in (
        PointPrompt,
        BoxPrompt,
        MaskPrompt,
        ClearPrompts,
        Propagate,
        AddObject,
        EditObject,
        RemoveObject,
        ImportMask,
    )
}


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with a ``kind`` key."""
    return {"kind": event.kind, **{k: _to_jsonable(v) for k, v in asdict(event).items()}}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from :func:`event_to_dict` output."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in _EVENT_TYPES:
        raise InputError(f"unknown prompt kind {kind!r}; expected one of {', '.join(_EVENT_TYPES)}")
    cls = _EVENT_TYPES[kind]
    try:
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        if kind in ("add_object", "edit_object", "import_mask") and fixed.get("color") is not None:
            fixed["color"] = tuple(int(c) for c in fixed["color"])
        return cls(**fixed)
    except TypeError as exc:
        raise InputError(f"bad {kind} prompt {data}: {exc}") from exc


prompt_from_dict = event_from_dict
