"""Edits, imported masks and slice limits as session events (threshold engine, tube volume)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sam2vol import InputError, Volume
from sam2vol.confidence import mask_confidence, next_slice_to_check
from sam2vol.prompts import event_from_dict, event_to_dict
from sam2vol.session import Session
from tests.helpers import ThresholdEngine


@pytest.fixture
def volume() -> Volume:
    """Tube A on slices 5-14 (axis k): i 5..11, j 4..8; 1 x 1 x 2 mm."""
    data = np.zeros((30, 20, 20), np.float32)
    data[5:12, 4:9, 5:15] = 1000.0
    return Volume(data, np.diag([1.0, 1.0, 2.0, 1.0]), "tube")


def new_session(volume) -> Session:
    return Session(volume, ThresholdEngine(), intensity="mr-percentile")


def replayed(volume, session) -> Session:
    events = json.loads(json.dumps([event_to_dict(e) for e in session.events]))
    again = new_session(volume)
    again.replay([event_from_dict(e) for e in events])
    return again


def test_an_edit_replaces_the_slice_and_replays(volume):
    session = new_session(volume)
    session.add_point((8, 6, 10))
    g = session.geometry
    edited = session.slice_mask(1, 10).copy()
    rows, cols = np.nonzero(edited)
    edited[rows[0], cols[0]] = False  # erase one pixel
    edited[0, 0] = True  # paint one far away
    session.edit_slice(edited, 10)
    np.testing.assert_array_equal(session.slice_mask(1, 10), edited)
    prompts = session.prompts(1)[10]
    assert len(prompts.points) == 0 and prompts.mask is not None  # the edit states the slice
    for _ in session.propagate():
        pass
    np.testing.assert_array_equal(session.slice_mask(1, 10), edited)  # an anchor: it stays
    np.testing.assert_array_equal(replayed(volume, session).mask(1), session.mask(1))
    session.undo()
    session.undo()
    assert session.slice_mask(1, 10)[0, 0] == False  # noqa: E712
    with pytest.raises(InputError, match="empty"):
        session.edit_slice(np.zeros(g.slice_shape, bool), 10)


def test_import_is_one_undoable_object(volume):
    session = new_session(volume)
    session.add_point((8, 6, 10))
    mask = np.zeros(volume.shape, bool)
    mask[6:9, 5:7, 3:6] = True
    oid = session.import_mask(mask, name="label 7")
    assert oid == 2 and session.objects[2].name == "label 7"
    np.testing.assert_array_equal(session.mask(2), mask)
    assert sorted(session.prompts(2)) == [3, 4, 5]
    np.testing.assert_array_equal(replayed(volume, session).mask(2), mask)
    session.undo()
    assert list(session.objects) == [1]
    with pytest.raises(InputError, match="shape"):
        session.import_mask(mask[:, :, :5])


def test_slice_limit_keeps_the_object_inside(volume):
    session = new_session(volume)
    session.add_point((8, 6, 10))
    for _ in session.propagate():
        pass
    assert session.summary(1).first_slice == 5 and session.summary(1).last_slice == 14
    seen = [r.slice_index for r in session.propagate(slice_range=(8, 12))]
    assert sorted(seen) == list(range(8, 13))
    summary = session.summary(1)
    assert (summary.first_slice, summary.last_slice) == (8, 12)
    assert session.events[-1].slice_range == (8, 12)
    np.testing.assert_array_equal(replayed(volume, session).mask(1), session.mask(1))
    with pytest.raises(InputError, match="no prompt on slices"):
        list(session.propagate(slice_range=(0, 3)))
    with pytest.raises(InputError, match="after the last"):
        list(session.propagate(slice_range=(12, 8)))


def test_confidence_points_at_the_odd_slice():
    stack = np.zeros((6, 10, 10), bool)
    stack[1:5, 3:7, 3:7] = True
    stack[3, 0:10, 0:10] = True  # a leak on slice 3
    conf = mask_confidence(stack, prompted=[2])
    assert next_slice_to_check(conf) == 3
    assert conf[2] == 1.0 and conf[0] == 1.0  # prompted and empty slices are sure
    assert next_slice_to_check(conf, exclude=[3]) in (1, 4)
    assert next_slice_to_check(np.ones(4)) is None


def state(session: Session) -> dict:
    """Objects, prompts and masks as plain values (what undo must bring back)."""
    prompts = {
        (oid, s): (
            p.points.tolist(),
            p.labels.tolist(),
            p.box,
            None if p.mask is None else p.mask.tolist(),
        )
        for oid in session.objects
        for s, p in session.prompts(oid).items()
    }
    masks = {oid: session.mask_stack(oid).tolist() for oid in session.objects}
    return {"objects": dict(session.objects), "prompts": prompts, "masks": masks}


def test_undo_of_edits_imports_and_limited_runs_restores_the_state_before(volume):
    session = new_session(volume)
    session.add_point((8, 6, 10))
    session.add_point((2, 2, 10), positive=False)  # background: the tube stays
    list(session.propagate())
    mask = np.zeros(volume.shape, bool)
    mask[6:9, 5:7, 3:6] = True
    edited = session.slice_mask(1, 10).copy()
    edited[0, 0] = True

    def check(change):
        before = state(session)
        change()
        assert state(session) != before
        session.undo()
        assert state(session) == before

    check(lambda: session.edit_slice(edited, 10))  # replaces two clicks by a mask
    check(lambda: session.import_mask(mask, name="over 1", object_id=1))  # replaces object 1
    check(lambda: session.import_mask(mask))  # a new object
    check(lambda: list(session.propagate(slice_range=(8, 12))))


def test_a_stopped_limited_propagation_replays_exactly(volume):
    session = new_session(volume)
    session.add_point((8, 6, 10))
    list(session.propagate())  # slices 5..14
    session.add_point((8, 6, 11))
    steps = session.propagate(slice_range=(7, 13))
    for _ in range(3):
        next(steps)
    steps.close()  # stopped after 3 slices of the limit
    event = session.events[-1]
    assert (event.stopped_after, event.slice_range) == (3, (7, 13))
    live = session.mask(1)
    covered = np.flatnonzero(live.any(axis=(0, 1)))
    assert covered.min() >= 7 and covered.max() <= 13  # cleared outside, even when stopped
    np.testing.assert_array_equal(replayed(volume, session).mask(1), live)
