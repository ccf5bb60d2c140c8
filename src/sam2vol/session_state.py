"""A session's whole state (objects, prompts, masks, undo and redo) as plain data.

:func:`export_state` turns a :class:`~sam2vol.session.Session` into a
:class:`SessionSnapshot`: a JSON-ready record plus named numpy arrays (masks
bit-packed), and :func:`restore_state` puts it back into a fresh session of the
same volume. :func:`write_snapshot` / :func:`read_snapshot` keep it in one
``.npz`` file (the record as JSON bytes inside), loaded without pickle, so a
damaged or hostile file can fail to load but never run code.

The session also offers these as :meth:`Session.export_state` and
:meth:`Session.restore_state`.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam2vol.engines import SlicePrompts
from sam2vol.errors import InputError
from sam2vol.prompts import Event, event_from_dict, event_to_dict

SNAPSHOT_FORMAT = "sam2vol-session-state/1"
RECORD_KEY = "record"


@dataclass
class SessionSnapshot:
    """A session's state: a JSON-ready record and the arrays it names.

    Attributes:
        events: The undo history's events, oldest first (the prompt log).
        redo: Events redo would bring back, the next one last.
        record: Objects, prompts, mask and undo-step layout (JSON-ready); the
            arrays are named by string keys into ``arrays``.
        arrays: Named arrays (bit-packed masks, prompt points and labels).
    """

    events: list[Event]
    redo: list[Event]
    record: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_events(self) -> int:
        return len(self.events)


class _Packer:
    """Gives arrays names (``a0``, ``a1``, ...) as they are stored."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, array: np.ndarray | None) -> str | None:
        if array is None:
            return None
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.asarray(array)
        return key

    def bits(self, mask: np.ndarray | None) -> str | None:
        return None if mask is None else self.put(np.packbits(np.asarray(mask, dtype=bool)))

    def prompts(self, p: SlicePrompts | None) -> dict | None:
        if p is None:
            return None
        return {
            "points": self.put(np.asarray(p.points, dtype=np.int64)),
            "labels": self.put(np.asarray(p.labels, dtype=bool)),
            "box": None if p.box is None else [int(v) for v in p.box],
            "mask": self.bits(p.mask),
            "result": self.bits(p.result),
        }

    def table(self, table: dict[int, SlicePrompts] | None) -> list | None:
        if table is None:
            return None
        return [[int(s), self.prompts(p)] for s, p in sorted(table.items())]


class _Unpacker:
    def __init__(self, arrays: dict[str, np.ndarray], slice_shape: tuple[int, int]) -> None:
        self.arrays = arrays
        self.slice_shape = slice_shape

    def get(self, key: str | None) -> np.ndarray | None:
        return None if key is None else self.arrays[key]

    def bits(self, key: str | None, shape: tuple[int, ...]) -> np.ndarray | None:
        if key is None:
            return None
        count = int(np.prod(shape))
        return np.unpackbits(self.arrays[key], count=count).astype(bool).reshape(shape)

    def prompts(self, rec: dict | None) -> SlicePrompts | None:
        if rec is None:
            return None
        points = np.asarray(self.get(rec["points"]), dtype=np.int64).reshape(-1, 2)
        labels = np.asarray(self.get(rec["labels"]), dtype=bool).reshape(-1)
        if len(points) != len(labels):
            raise ValueError("prompt points and labels differ in length")
        box = tuple(int(v) for v in rec["box"]) if rec["box"] is not None else None
        return SlicePrompts(
            points,
            labels,
            box,  # type: ignore[arg-type]
            self.bits(rec["mask"], self.slice_shape),
            self.bits(rec["result"], self.slice_shape),
        )

    def table(self, rec: list | None) -> dict[int, SlicePrompts] | None:
        if rec is None:
            return None
        return {int(s): self.prompts(p) for s, p in rec}


def _objects_rec(objects) -> list:
    return [[int(o.id), str(o.name), [int(c) for c in o.color]] for o in objects.values()]


def export_state(session) -> SessionSnapshot:
    """The session's state as plain data (copies of the masks: take it under the session's lock).

    Args:
        session: A :class:`~sam2vol.session.Session`.
    """
    pack = _Packer()
    g = session.geometry
    steps = []
    for step in session._done:
        steps.append(
            {
                "objects_before": _objects_rec(step.objects_before),
                "prompt_sets_before": [
                    [int(oid), pack.table(t)] for oid, t in step.prompt_sets_before.items()
                ],
                "prompts_before": [
                    [int(oid), int(s), pack.prompts(p)]
                    for (oid, s), p in step.prompts_before.items()
                ],
                "mask_backup": [
                    [int(oid), int(s), pack.put(b)] for (oid, s), b in step.mask_backup.items()
                ],
                "removed_masks": [
                    [int(oid), pack.bits(m)] for oid, m in step.removed_masks.items()
                ],
            }
        )
    record = {
        "format": SNAPSHOT_FORMAT,
        "shape": [int(n) for n in session.volume.shape],
        "stack_shape": [int(g.n_slices), *(int(n) for n in g.slice_shape)],
        "axis": g.axis,
        "engine": session.engine.name,
        "objects": _objects_rec(session.objects),
        "prompts": [[int(oid), pack.table(t)] for oid, t in session._prompts.items()],
        "masks": [[int(oid), pack.bits(m)] for oid, m in session._masks.items()],
        "steps": steps,
    }
    return SessionSnapshot(
        [step.event for step in session._done], list(session._undone), record, pack.arrays
    )


def restore_state(session, snapshot: SessionSnapshot) -> None:
    """Put a snapshot into a fresh session of the same volume, axis and engine.

    Raises:
        InputError: The snapshot is of another volume, axis or engine, or damaged.
    """
    from sam2vol.session import SegObject, _Step

    rec = snapshot.record
    g = session.geometry
    stack_shape = (g.n_slices, *g.slice_shape)
    want = {
        "format": SNAPSHOT_FORMAT,
        "shape": list(session.volume.shape),
        "axis": g.axis,
        "engine": session.engine.name,
    }
    got = {k: rec.get(k) for k in want}
    if got != want:
        raise InputError(f"the saved session state does not fit this session ({got} != {want})")
    try:
        un = _Unpacker(snapshot.arrays, tuple(g.slice_shape))

        def objects(items) -> dict:
            return {
                int(i): SegObject(int(i), str(n), tuple(int(c) for c in rgb)) for i, n, rgb in items
            }

        if len(rec["steps"]) != len(snapshot.events):
            raise ValueError("undo steps and events differ in number")
        done = []
        for event, s in zip(snapshot.events, rec["steps"], strict=True):
            step = _Step(event, objects(s["objects_before"]))
            step.prompt_sets_before = {int(o): un.table(t) for o, t in s["prompt_sets_before"]}
            step.prompts_before = {
                (int(o), int(k)): un.prompts(p) for o, k, p in s["prompts_before"]
            }
            step.mask_backup = {(int(o), int(k)): un.get(b) for o, k, b in s["mask_backup"]}
            step.removed_masks = {int(o): un.bits(m, stack_shape) for o, m in s["removed_masks"]}
            done.append(step)
        state = (
            objects(rec["objects"]),
            {int(o): un.table(t) for o, t in rec["prompts"]},
            {int(o): un.bits(m, stack_shape) for o, m in rec["masks"]},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the saved session state is damaged ({exc})") from exc
    session.objects, session._prompts, session._masks = state
    session._done = done
    session._undone = list(snapshot.redo)


def set_redo(session, events: list[Event]) -> None:
    """Give a session a redo list (e.g. kept across a restart), the next one last."""
    session._undone = list(events)


def write_snapshot(path: str | Path, snapshot: SessionSnapshot) -> Path:
    """Write a snapshot as one ``.npz`` (record as JSON inside), verified, then renamed."""
    from sam2vol.io.write import remove_stale_temps, temp_path

    path = Path(path)
    record = dict(
        snapshot.record,
        events=[event_to_dict(e) for e in snapshot.events],
        redo=[event_to_dict(e) for e in snapshot.redo],
    )
    blob = np.frombuffer(json.dumps(record).encode(), np.uint8)
    remove_stale_temps(path.parent)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **{RECORD_KEY: blob}, **snapshot.arrays)
            handle.flush()
            os.fsync(handle.fileno())
        with np.load(tmp, allow_pickle=False) as check:  # the archive's directory is complete
            if set(check.files) != {RECORD_KEY, *snapshot.arrays}:
                raise InputError(f"{path}: the session state was not written in full")
            if bytes(check[RECORD_KEY]) != blob.tobytes():
                raise InputError(f"{path}: the session state was not written in full")
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the session state ({exc.strerror or exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_snapshot(path: str | Path) -> SessionSnapshot:
    """Read a snapshot written by :func:`write_snapshot` (no pickle).

    Raises:
        InputError: The file is missing, damaged or of another format.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as saved:
            record = json.loads(bytes(saved[RECORD_KEY]).decode())
            if not isinstance(record, dict) or record.get("format") != SNAPSHOT_FORMAT:
                raise ValueError("not a sam2vol session state")
            arrays = {k: saved[k] for k in saved.files if k != RECORD_KEY}
        events = [event_from_dict(e) for e in record.pop("events")]
        redo = [event_from_dict(e) for e in record.pop("redo")]
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot read the session state ({exc})") from exc
    return SessionSnapshot(events, redo, record, arrays)
