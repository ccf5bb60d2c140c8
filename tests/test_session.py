"""Session behaviour with a simple threshold engine (engine quality is tested elsewhere)."""

from __future__ import annotations

import json
from copy import deepcopy

import numpy as np
import pytest

from sam2vol import InputError, Volume
from sam2vol.prompts import (
    EditObject,
    MaskPrompt,
    PointPrompt,
    Propagate,
    RemoveObject,
    event_from_dict,
    event_to_dict,
)
from sam2vol.session import Session, read_log
from tests.helpers import ThresholdEngine


@pytest.fixture
def volume() -> Volume:
    """Two bright tubes: A on slices 5-14 (axis k), B on slices 8-11; 1 mm x 1 mm x 2 mm."""
    data = np.zeros((30, 20, 20), np.float32)
    data[5:12, 4:9, 5:15] = 1000.0  # tube A
    data[18:24, 10:16, 8:12] = 1000.0  # tube B
    return Volume(data, np.diag([1.0, 1.0, 2.0, 1.0]), "tubes")


@pytest.fixture
def session(volume) -> Session:
    return Session(volume, ThresholdEngine(), intensity="mr-percentile")


def test_point_prompt_maps_voxels_and_propagates(session):
    mask2d = session.add_point((8, 6, 10))
    assert mask2d.sum() == 7 * 5  # the whole cross-section of tube A
    results = list(session.propagate())
    assert [r.slice_index for r in results] == [10, *range(11, 20), *range(9, -1, -1)]
    mask = session.mask(1)
    assert mask.shape == session.volume.shape
    np.testing.assert_array_equal(np.flatnonzero(mask.any(axis=(0, 1))), np.arange(5, 15))
    assert mask[8, 6, 10] and not mask[20, 12, 10]
    info = session.summary(1)
    assert (info.first_slice, info.last_slice, info.voxels) == (5, 14, 350)
    assert info.volume_ml == pytest.approx(350 * 2 / 1000)


def test_negative_click_and_box(session):
    session.add_box((17, 9, 9), (25, 17, 9), object_id=2)
    assert session.slice_mask(2, 9).sum() == 6 * 6
    session.add_point((20, 12, 9), positive=False, object_id=2)
    assert not session.slice_mask(2, 9).any()
    assert session.objects[2].name == "object 2"


def test_mask_prompt_in_file_index_order(session, volume):
    plane = volume.data[:, :, 12] > 0
    session.add_mask(plane, 12)
    np.testing.assert_array_equal(session.mask(1)[:, :, 12], plane)
    with pytest.raises(InputError, match="empty"):
        session.add_mask(np.zeros_like(plane), 3)
    with pytest.raises(InputError, match="shape"):
        session.add_mask(np.ones((3, 3), bool), 3)


def test_undo_redo_and_clear(session):
    session.add_point((8, 6, 10))
    list(session.propagate())
    full = session.mask(1).copy()
    session.clear(1)
    assert not session.mask(1).any()
    session.undo()
    np.testing.assert_array_equal(session.mask(1), full)
    session.undo()  # the propagation
    assert np.flatnonzero(session.mask(1).any(axis=(0, 1))).tolist() == [10]
    session.redo()
    np.testing.assert_array_equal(session.mask(1), full)
    assert isinstance(session.events[-1], Propagate)
    while session.undo():
        pass
    assert not session.objects and session.events == []


def test_failed_prompt_changes_nothing(session):
    session.add_point((8, 6, 10))
    before = list(session.events)
    with pytest.raises(InputError, match="outside the volume"):
        session.add_point((99, 0, 0))
    with pytest.raises(InputError, match="one axial slice"):
        session.add_box((0, 0, 1), (3, 3, 2))
    assert session.events == before


def test_replay_gives_the_same_mask(session, volume, tmp_path):
    session.add_point((8, 6, 10))
    list(session.propagate(direction="forward"))
    session.add_point((8, 6, 13), positive=False)  # correction on a tracked slice
    session.add_point((20, 12, 9), object_id=2)
    list(session.propagate())
    log = session.save_log(tmp_path / "log.json")
    assert json.loads(log.read_text())["events"][0]["kind"] == "add_object"
    again = Session(volume, ThresholdEngine(), intensity="mr-percentile")
    again.replay(read_log(log))
    np.testing.assert_array_equal(again.label_map().data, session.label_map().data)
    assert not again.mask(1)[:, :, 13].any()  # the correction stuck through propagation


def test_autosave_keeps_every_change(volume, tmp_path):
    path = tmp_path / "auto.json"
    s = Session(volume, ThresholdEngine(), intensity="mr-percentile", autosave=path)
    s.add_point((8, 6, 10))
    assert [e["kind"] for e in json.loads(path.read_text())["events"]] == ["add_object", "point"]
    s.undo()
    assert [e["kind"] for e in json.loads(path.read_text())["events"]] == ["add_object"]


def test_propagate_needs_prompts_and_valid_args(session):
    with pytest.raises(InputError, match="nothing to propagate"):
        list(session.propagate())
    session.add_point((8, 6, 10))
    with pytest.raises(InputError, match="direction"):
        list(session.propagate(direction="sideways"))
    limited = list(session.propagate(max_slices=2))
    assert sorted(r.slice_index for r in limited) == [8, 9, 10, 11, 12]


def test_event_json_round_trip():
    events = [
        PointPrompt(1, (1, 2, 3), False),
        MaskPrompt.from_array(2, 2, 5, np.eye(4, dtype=bool)),
        Propagate(start=3, direction="forward", max_slices=4, object_ids=(1, 2)),
        EditObject(2, "liver", (10, 20, 30)),
        EditObject(2, None, None),
        RemoveObject(3),
    ]
    for event in events:
        assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event
    with pytest.raises(InputError, match="unknown prompt kind"):
        event_from_dict({"kind": "lasso"})


def test_objects_are_renamed_recoloured_and_removed_with_undo(session, volume, tmp_path):
    session.add_point((8, 6, 10))
    session.add_point((20, 12, 9), object_id=2)
    list(session.propagate())
    tube_b = session.mask(2).copy()
    session.edit_object(2, name="tube B")
    session.edit_object(2, color=(1, 2, 3))
    assert (session.objects[2].name, session.objects[2].color) == ("tube B", (1, 2, 3))
    session.remove_object(2)
    assert list(session.objects) == [1] and session.prompts(2) == {}
    assert session.label_map().data.max() == 1
    with pytest.raises(InputError, match="no object 2"):
        session.mask(2)
    log = session.save_log(tmp_path / "log.json")
    again = Session(volume, ThresholdEngine(), intensity="mr-percentile")
    again.replay(log)
    np.testing.assert_array_equal(again.label_map().data, session.label_map().data)

    session.undo()  # the removal: object, prompts and mask come back
    np.testing.assert_array_equal(session.mask(2), tube_b)
    assert session.objects[2].name == "tube B" and 9 in session.prompts(2)
    session.undo()
    assert session.objects[2].color != (1, 2, 3)
    session.redo()
    session.redo()
    assert 2 not in session.objects


def test_object_edits_are_checked(session):
    session.add_point((8, 6, 10))
    for call, message in (
        (lambda: session.edit_object(5, name="x"), "no object 5"),
        (lambda: session.edit_object(1, name="  "), "cannot be empty"),
        (lambda: session.edit_object(1, color=(0, 0, 256)), "0..255"),
        (lambda: session.remove_object(5), "no object 5"),
    ):
        with pytest.raises(InputError, match=message):
            call()
    assert len(session.events) == 2


def test_a_reused_object_id_starts_clean_in_the_engine(session):
    forgotten = []
    session.engine.forget_object = forgotten.append
    session.add_point((8, 6, 10), object_id=2)
    session.remove_object(2)
    session.add_point((20, 12, 9), object_id=2)  # a new object 2
    assert forgotten == [2, 2, 2]  # added, removed, added again
    assert session.slice_mask(2, 9).any() and not session.slice_mask(2, 10).any()


def test_a_stopped_propagation_replays_to_the_slices_it_reached(session, volume, tmp_path):
    session.add_point((8, 6, 10))
    steps = session.propagate()
    for _ in range(3):
        next(steps)
    steps.close()  # the user stops after 3 slices
    live = session.label_map().data.copy()
    assert np.count_nonzero(live) == 3 * 35
    assert session.events[-1].stopped_after == 3
    again = Session(volume, ThresholdEngine(), intensity="mr-percentile")
    again.replay(session.save_log(tmp_path / "log.json"))
    np.testing.assert_array_equal(again.label_map().data, live)


def test_a_propagation_abandoned_before_its_first_slice_leaves_no_trace(session):
    session.add_point((8, 6, 10))
    steps = session.propagate()
    steps.close()
    assert not any(isinstance(e, Propagate) for e in session.events)


def test_a_failed_propagation_is_rolled_back_and_not_logged(session, volume, tmp_path):
    session.add_point((8, 6, 10))
    before = session.label_map().data.copy()
    original = session.engine.propagate

    def breaks_after_two(*args, **kwargs):
        for n, result in enumerate(original(*args, **kwargs)):
            if n == 2:
                raise RuntimeError("out of memory")
            yield result

    session.engine.propagate = breaks_after_two
    with pytest.raises(RuntimeError, match="out of memory"):
        list(session.propagate())
    np.testing.assert_array_equal(session.label_map().data, before)
    assert [e.kind for e in session.events] == ["add_object", "point"]
    again = Session(volume, ThresholdEngine(), intensity="mr-percentile")
    again.replay(session.save_log(tmp_path / "log.json"))
    np.testing.assert_array_equal(again.label_map().data, before)


def test_the_log_is_not_written_with_a_propagation_still_running(volume, tmp_path):
    path = tmp_path / "auto.json"
    s = Session(volume, ThresholdEngine(), intensity="mr-percentile", autosave=path)
    s.add_point((8, 6, 10))
    steps = s.propagate()
    next(steps)
    assert [e["kind"] for e in json.loads(path.read_text())["events"]] == ["add_object", "point"]
    list(steps)
    assert json.loads(path.read_text())["events"][-1]["kind"] == "propagate"


def test_undo_history_grows_with_what_changed_not_with_the_number_of_events():
    """120 mask prompts on 120 slices: history must stay near one mask stack, not n^2 copies."""
    import tracemalloc

    data = np.zeros((128, 128, 120), np.float32)
    data[30:90, 30:90, :] = 1000.0
    s = Session(Volume(data, np.eye(4), "square"), ThresholdEngine(), intensity="mr-percentile")
    plane = data[:, :, 0] > 0
    s.add_mask(plane, 0)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for k in range(1, 120):
        s.add_mask(plane, k)
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    stack_bytes = 128 * 128 * 120  # one bool mask stack
    # live state: each slice's prompt mask and result (2 stacks); history adds little on top
    assert grown < 3 * stack_bytes, f"{grown / 2**20:.1f} MiB for {stack_bytes / 2**20:.1f}"
    while s.undo():
        pass
    assert not s.objects


def test_undo_restores_prompts_and_masks_exactly(session):
    session.add_point((8, 6, 10))
    list(session.propagate())
    session.add_point((8, 6, 12), positive=False)
    states = []
    for _ in range(3):
        states.append((session.label_map().data.copy(), deepcopy(session.prompts(1))))
        session.add_box((0, 0, 12), (29, 19, 12))
    for mask, prompts in reversed(states):
        session.undo()
        np.testing.assert_array_equal(session.label_map().data, mask)
        assert session.prompts(1).keys() == prompts.keys()
        for s, p in prompts.items():
            np.testing.assert_array_equal(session.prompts(1)[s].points, p.points)
            assert session.prompts(1)[s].box == p.box
