"""A session's whole state as plain data: the reference is the original session itself."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sam2vol import InputError, Volume
from sam2vol.prompts import event_to_dict
from sam2vol.session import Session
from sam2vol.session_state import read_snapshot, write_snapshot
from tests.helpers import ThresholdEngine


@pytest.fixture
def volume() -> Volume:
    """Two bright tubes along axis k (as in test_session)."""
    data = np.zeros((30, 20, 20), np.float32)
    data[5:12, 4:9, 5:15] = 1000.0
    data[18:24, 10:16, 8:12] = 1000.0
    return Volume(data, np.diag([1.0, 1.0, 2.0, 1.0]), "tubes")


def fresh(volume, axis="axial") -> Session:
    return Session(volume, ThresholdEngine(), axis=axis, intensity="mr-percentile")


def seen(session: Session) -> dict:
    """Everything a user can see or undo to, as comparable plain values."""
    prompts = {}
    for oid in session.objects:
        for s, p in session.prompts(oid).items():
            prompts[(oid, s)] = (
                p.points.tolist(),
                p.labels.tolist(),
                p.box,
                None if p.mask is None else p.mask.tolist(),
                None if p.result is None else p.result.tolist(),
            )
    return {
        "objects": {oid: (o.name, tuple(o.color)) for oid, o in session.objects.items()},
        "prompts": prompts,
        "masks": {oid: session.mask_stack(oid).tolist() for oid in session.objects},
        "events": [event_to_dict(e) for e in session.events],
        "redo": [event_to_dict(e) for e in session.redo_events],
    }


def worked(volume) -> Session:
    """A session with every kind of change in its history, and two changes to redo."""
    session = fresh(volume)
    session.add_object("tube", (10, 20, 30))
    session.add_point((8, 6, 10), object_id=1)
    session.add_box((17, 9, 9), (25, 17, 9), object_id=2)
    plane = volume.data[:, :, 12] > 0
    session.add_mask(plane, 12, object_id=1)
    list(session.propagate())
    session.add_point((8, 6, 11), positive=False, object_id=1)
    session.edit_object(2, name="other", color=(1, 2, 3))
    session.clear(1, 13)
    edited = session.slice_mask(1, 10).copy()
    edited[0, 0] = True
    session.edit_slice(edited, 10, object_id=1)  # issue 15's events: an edit,
    imported = np.zeros(volume.shape, bool)
    imported[19:23, 11:15, 8:11] = True
    session.import_mask(imported, name="imported")  # an import as a new object,
    session.import_mask(imported, object_id=2)  # over an existing one,
    list(session.propagate(slice_range=(8, 12), object_ids=(1,)))  # a limited run,
    steps = session.propagate(slice_range=(7, 13), object_ids=(1,))
    next(steps), next(steps)
    steps.close()  # and a stopped one
    session.add_object("gone")
    session.add_point((20, 12, 9), object_id=4)
    session.remove_object(4)
    session.add_point((19, 11, 10), object_id=2)
    session.undo()
    session.undo()
    return session


def test_round_trip_through_a_file_restores_everything_undo_and_redo(volume, tmp_path):
    original = worked(volume)
    path = write_snapshot(tmp_path / "state.npz", original.export_state())
    restored = fresh(volume)
    restored.restore_state(read_snapshot(path))
    assert seen(restored) == seen(original)
    assert len(original.redo_events) == 2
    while original.redo_events:  # redo, then undo back to the start: step by step alike
        original.redo(), restored.redo()
        assert seen(restored) == seen(original)
    while original.events:
        original.undo(), restored.undo()
        assert seen(restored) == seen(original)
    assert not restored.events and not restored.objects


def test_a_restored_session_goes_on_like_the_original(volume, tmp_path):
    original = worked(volume)
    restored = fresh(volume)
    restored.restore_state(
        read_snapshot(write_snapshot(tmp_path / "s.npz", original.export_state()))
    )
    for session in (original, restored):
        session.add_point((9, 7, 7), object_id=1)
        list(session.propagate(direction="forward"))
        session.undo()
    assert seen(restored) == seen(original)


def test_export_copies_the_masks(volume):
    session = worked(volume)
    snapshot = session.export_state()
    before = {k: a.copy() for k, a in snapshot.arrays.items()}
    session.add_point((20, 12, 9), object_id=2)
    list(session.propagate())
    assert all(np.array_equal(snapshot.arrays[k], a) for k, a in before.items())


def test_another_axis_or_engine_is_refused(volume, tmp_path):
    snapshot = worked(volume).export_state()
    with pytest.raises(InputError, match="does not fit"):
        fresh(volume, axis="coronal").restore_state(snapshot)
    snapshot.record["engine"] = "sam2"
    with pytest.raises(InputError, match="does not fit"):
        fresh(volume).restore_state(snapshot)


def test_damaged_or_pickled_files_are_refused_without_running_code(volume, tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("code ran",))

    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(pickle.dumps({"record": Payload()}))
    with pytest.raises(InputError, match="cannot read the session state"):
        read_snapshot(pickled)
    assert not marker.exists()
    good = write_snapshot(tmp_path / "good.npz", worked(volume).export_state())
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="cannot read the session state"):
        read_snapshot(cut)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(volume, tmp_path, monkeypatch):
    path = write_snapshot(tmp_path / "state.npz", worked(volume).export_state())
    old = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    with pytest.raises(InputError, match="cannot write the session state"):
        write_snapshot(path, fresh(volume).export_state())
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]
