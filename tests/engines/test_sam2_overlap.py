"""Overlapped forward and backward walks against the official predictor and our own sequential path.

40 slices with the start at slice 6, so the forward walk passes its 15-slice
horizon and the backward walk's slices then share the forward walk's tracking
steps (one batch per step). Random weights at 128 px.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sam2")

from tests.engines.sam2_helpers import (
    ATOL,
    DEVICE,
    as_np,
    bf16_engine,
    close,
    compare,
    compare_outputs,
    make_engine,
    object_scores_shifted,
    official_both,
    official_predictor,
    official_state,
    points,
    run_official,
    volume,
    xy,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N, START = 40, 6
# This model's object scores here are about 0.17-0.18 (lower on bright slices): shifted to
# straddle 0, so objects go absent and stop.
SCORE_SHIFT = 0.172


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return volume(n_slices=N)


@pytest.fixture
def batches(monkeypatch):
    """The (slice, reverse) rows of every batched tracking step."""
    from sam2vol.engines.sam2 import batched

    seen: list[list[tuple[int, bool]]] = []
    track_batch = batched._track_batch

    def spy(predictor, rows, *args):
        seen.append([(row.frame_idx, row.reverse) for row in rows])
        return track_batch(predictor, rows, *args)

    monkeypatch.setattr(batched, "_track_batch", spy)
    return seen


def two_objects(eng, official, state) -> tuple:
    """Object 1 by a click and object 2 by a box on the start slice, ours and official."""
    a = points((36, 44, True))
    a.result = eng.predict_slice(START, a, object_id=1)
    official.add_new_points_or_box(state, START, 1, points=xy(a)[0], labels=xy(a)[1])
    b = points()
    b.box = (10, 8, 40, 36)
    b.result = eng.predict_slice(START, b, object_id=2)
    official.add_new_points_or_box(state, START, 2, box=np.array([8, 10, 36, 40], np.float32))
    return a, b


@pytest.mark.parametrize(
    ("batched", "pad"),
    [(False, False), (True, False), (True, True)],
    ids=["one-by-one", "batched", "batched-padded"],
)
def test_overlapped_walks_match_official(image, monkeypatch, batches, groups, batched, pad):
    eng = make_engine(batch_objects=batched)
    eng.pad_memories = pad
    eng.set_image(image, (2.0, 1.0, 1.0))
    official = official_predictor(eng)
    state = official_state(official, eng, monkeypatch)
    a, b = two_objects(eng, official, state)

    objects = {1: {START: a}, 2: {START: b}}
    results = list(eng.propagate(objects, start=START))
    assert eng.overlap_stats.started_after == START + eng.predictor.walk_horizon() == START + 15
    # Every backward slice (START..0) went in a forward step, from slice START + 16 on.
    assert eng.overlap_stats.ahead == START + 1 and eng.overlap_stats.undone == 0
    # Slice START is a conditioning slice (read, not tracked); slices START-1..0 were tracked
    # in the steps of forward slices START+17.., per object (one-by-one) or all in one batch.
    paired = [rows for rows in batches if len({r for _, r in rows}) == 2]
    per_step = [[(START + 17 + i, False), (START - 1 - i, True)] for i in range(START)]
    if batched:
        expect = [[fwd, fwd, back, back] for fwd, back in per_step]
    else:
        expect = [pair for pair in per_step for _ in (1, 2)]
    assert paired == expect
    # The backward rows' memories are a pointer short (the start slice is a conditioning
    # slice, not a tracked one): attended apart from the forward rows unless padded.
    shared = [g for rows, g in zip(batches, groups, strict=True) if len({r for _, r in rows}) == 2]
    n = len(paired[0])
    assert shared == [
        [list(range(n))] if pad else [[0, 1], [2, 3]] if batched else [[0], [1]]
    ] * len(shared)
    compare(results, official_both(official, state, START), (1, 2))

    # Corrections after and before the start, then again both ways (outputs there are replaced).
    fix = points((30, 60, False))
    fix.result = eng.predict_slice(33, fix, object_id=1)
    official.add_new_points_or_box(state, 33, 1, points=xy(fix)[0], labels=xy(fix)[1])
    low = points((30, 40, True))
    low.result = eng.predict_slice(2, low, object_id=2)
    official.add_new_points_or_box(state, 2, 2, points=xy(low)[0], labels=xy(low)[1])
    objects = {1: {START: a, 33: fix}, 2: {START: b, 2: low}}
    results = list(eng.propagate(objects, start=START))
    assert eng.overlap_stats.started_after == START + 15
    compare(results, official_both(official, state, START), (1, 2))
    for oid in (1, 2):
        idx = state["obj_id_to_idx"][oid]
        same_outputs(eng._objects[oid].state, state, idx)


def test_bf16_autocast_overlapped_and_padded_stay_within_bf16_rounding(image, monkeypatch):
    """CPU bf16 autocast standing in for CUDA's (the engine's default there): objects batched,
    walks overlapped, memories padded. Batches round differently in bf16 (measured: 4.9e-3 in
    logits against the official predictor), so this guards the bf16 path against failing or
    mixing rows up (rows swapped: 0.1 apart); the float32 tests catch finer faults (an unmasked
    pad moves logits by less than 2e-2 here)."""
    eng = bf16_engine(batch_objects=True, overlap_walks=True)
    eng.pad_memories = True
    eng.set_image(image, (2.0, 1.0, 1.0))
    official = official_predictor(eng)
    state = official_state(official, eng, monkeypatch)
    a, b = two_objects(eng, official, state)
    results = list(eng.propagate({1: {START: a}, 2: {START: b}}, start=START))
    assert eng.overlap_stats.ahead == START + 1
    theirs = official_both(official, state, START)
    assert sorted(r.slice_index for r in results) == sorted(theirs)
    for r in results:
        for oid in (1, 2):
            expected = as_np(theirs[r.slice_index][state["obj_id_to_idx"][oid], 0])
            np.testing.assert_allclose(r.logits[oid], expected, atol=2e-2, rtol=0)


@pytest.mark.parametrize(
    "settings",
    [{}, {"memory_temporal_stride_for_eval": 2, "max_obj_ptrs_in_encoder": 4}],
    ids=["pointer-window", "memory-bank"],  # what sets the horizon: 15 or 14 slices
)
def test_overlap_from_a_start_one_object_has_no_prompt_on(image, monkeypatch, settings):
    """The backward walk re-tracks the start slice of object 2, which the forward walk wrote
    and the forward walk's later slices must not read: only right if the horizon is."""
    eng = make_engine()
    official = official_predictor(eng)
    for name, value in settings.items():
        monkeypatch.setattr(eng.predictor, name, value)
        monkeypatch.setattr(official, name, value)
    horizon = eng.predictor.walk_horizon()
    assert horizon == (14 if settings else 15)
    eng.set_image(image, (2.0, 1.0, 1.0))
    state = official_state(official, eng, monkeypatch)
    start = 20  # in the middle: the backward walk goes on alone after the shared steps
    a = points((36, 44, True))
    a.result = eng.predict_slice(start, a, object_id=1)
    official.add_new_points_or_box(state, start, 1, points=xy(a)[0], labels=xy(a)[1])
    b = points((30, 40, True))
    b.result = eng.predict_slice(12, b, object_id=2)
    official.add_new_points_or_box(state, 12, 2, points=xy(b)[0], labels=xy(b)[1])

    results = list(eng.propagate({1: {start: a}, 2: {12: b}}, start=start))
    stats = eng.overlap_stats
    assert stats.started_after == start + horizon and stats.ahead == N - 1 - start - horizon
    forward = run_official(official, state, start, reverse=False)
    backward = run_official(official, state, start, reverse=True)
    compare(results, {**backward, **forward}, (1, 2))  # the start slice as the forward walk gave it
    for oid in (1, 2):
        same_outputs(eng._objects[oid].state, state, state["obj_id_to_idx"][oid])


def same_outputs(ours: dict, theirs: dict, idx: int = 0) -> None:
    """One object's stored tracking outputs and tracked marks, ours against another state's."""
    compare_outputs(
        ours["output_dict_per_obj"][0]["non_cond_frame_outputs"],
        theirs["output_dict_per_obj"][idx]["non_cond_frame_outputs"],
        ours["constants"]["maskmem_pos_enc"],
    )
    assert ours["frames_tracked_per_obj"][0] == theirs["frames_tracked_per_obj"][idx]


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_stopping_early_undoes_the_backward_slices_not_handed_out(image, where):
    engines = [make_engine(overlap_walks=on) for on in (True, False)]
    first = points((36, 44, True))
    fix = points((40, 40, False))
    for eng in engines:
        eng.set_image(image, (2.0, 1.0, 1.0))
        first.result = eng.predict_slice(START, first, object_id=1)
        list(eng.propagate({1: {START: first}}, start=START))  # outputs on every slice
        fix.result = eng.predict_slice(20, fix, object_id=1)
    objects = {1: {START: first, 20: fix}}

    # The overlapped engine: stop while it hands out forward results (the backward walk
    # has done 5 slices by then), or after two backward ones (of the 7 it did).
    ours, sequential = engines
    run = ours.propagate(objects, start=START)
    taken = handed = 0
    for result in run:
        taken += 1
        if where == "forward" and result.slice_index == START + 20:
            break
        if taken > N - START:  # a backward result
            handed += 1
            if where == "backward" and handed == 2:
                break
    run.close()
    stats = ours.overlap_stats
    # The backward walk's start slice was handed out too (the caller does not see it twice).
    assert (stats.ahead, stats.undone) == ((5, 5) if where == "forward" else (7, 7 - 3)), stats
    for _ in zip(range(taken), sequential.propagate(objects, start=START), strict=False):
        pass

    # The same outputs kept on every slice as the sequential run stopped at the same place.
    same_outputs(ours._objects[1].state, sequential._objects[1].state)
    # And the next propagation gives the same masks.
    again = {r.slice_index: r.logits[1] for r in ours.propagate(objects, start=START)}
    for r in sequential.propagate(objects, start=START):
        np.testing.assert_allclose(again[r.slice_index], r.logits[1], atol=ATOL)


def test_overlapped_equals_sequential_when_objects_stop(image):
    """``stop_after_empty``: stopped objects skip their rows in the shared steps, both walks."""
    engines = [make_engine(overlap_walks=on, stop_after_empty=2) for on in (True, False)]
    # Scores straddle 0: the objects absent on some slices.
    with object_scores_shifted(engines[0], SCORE_SHIFT):
        # Bright slices at both ends: lower scores there (the objects go absent and stop during
        # the shared steps, forward from slice 24, backward below slice 3).
        image = image.copy()
        image[24:] = image[:3] = 1.0
        runs = []
        for eng in engines:
            eng.set_image(image, (2.0, 1.0, 1.0))
            # Masks at the start (present there, whatever the scores), a click on slice 2.
            a, b = points(), points()
            a.mask = np.zeros(image.shape[1:], bool)
            a.mask[25:45, 35:55] = True
            b.mask = np.zeros(image.shape[1:], bool)
            b.mask[8:36, 10:40] = True
            a.result = eng.predict_slice(START, a, object_id=1)
            b.result = eng.predict_slice(START, b, object_id=2)
            c = points((30, 40, True))
            c.result = eng.predict_slice(2, c, object_id=2)
            runs.append(list(eng.propagate({1: {START: a}, 2: {START: b, 2: c}}, start=START)))
        assert engines[0].overlap_stats.ahead == START + 1
        ours, theirs = runs
        assert [r.slice_index for r in ours] == [r.slice_index for r in theirs]
        for r, q in zip(ours, theirs, strict=True):
            for oid in (1, 2):
                close(r.logits[oid], q.logits[oid])
                np.testing.assert_allclose(r.scores[oid], q.scores[oid], atol=ATOL)
        # While the walks shared steps (forward slices 22..28, backward START..0) stopped objects
        # were skipped in both walks, and objects stopped in the backward walk. The shift is tuned
        # on the CPU; on CUDA (gpu_check.sh) the scores land a little apart.
        if DEVICE == "cpu":
            skipped = {(r.slice_index, o) for r in ours for o in (1, 2) if r.scores[o] == -1024}
            assert all((s, 1) in skipped for s in range(22, 29)), sorted(skipped)
            for oid in (1, 2):  # tracked on slice START-1, later skipped: the stop came in between
                assert (START - 1, oid) not in skipped and (3, oid) in skipped, sorted(skipped)
        for oid in (1, 2):
            same_outputs(engines[0]._objects[oid].state, engines[1]._objects[oid].state)


def test_short_or_reset_walks_run_one_after_the_other(image):
    eng = make_engine()
    eng.set_image(image[:20], (2.0, 1.0, 1.0))
    a = points((36, 44, True))
    a.result = eng.predict_slice(10, a, object_id=1)
    results = list(eng.propagate({1: {10: a}}, start=10))
    assert [r.slice_index for r in results] == [*range(10, 20), *range(9, -1, -1)]
    assert eng.overlap_stats.started_after is None  # 10 + 15 is past the end
    assert eng.overlap_stats.ahead == 0
    list(eng.propagate({1: {10: a}}, start=0, reset_between=True))
    assert eng.overlap_stats.started_after is None


def test_rows_of_one_state_on_one_slice_are_refused(image):
    from sam2vol.engines.sam2.batched import Row, track_rows

    eng = make_engine()
    eng.set_image(image[:8], (2.0, 1.0, 1.0))
    a = points((36, 44, True))
    a.result = eng.predict_slice(3, a, object_id=1)
    state = eng._objects[1].state
    with pytest.raises(ValueError, match="twice on one slice"):
        track_rows(eng.predictor, [Row(state, 4, False), Row(state, 4, True)])


def test_undo_leaves_a_newer_output_alone_and_a_failed_step_is_undone(image, monkeypatch):
    eng = make_engine(overlap_walks=True)
    eng.set_image(image, (2.0, 1.0, 1.0))
    a = points((36, 44, True))
    a.result = eng.predict_slice(START, a, object_id=1)
    objects = {1: {START: a}}
    list(eng.propagate(objects, start=START))  # outputs on every slice
    state = eng._objects[1].state
    outputs = state["output_dict_per_obj"][0]["non_cond_frame_outputs"]
    tracked = state["frames_tracked_per_obj"][0]
    before = dict(outputs)

    # Undo after a newer write: the newer output stays.
    seal = eng._snapshot([1], 3)
    outputs[3], tracked[3] = "tracked", "mark"
    undo = seal()
    outputs[3] = "newer"
    undo()
    assert outputs[3] == "newer" and tracked[3] == {"reverse": True}

    # A step that fails after the backward row was written leaves that slice as it was.
    outputs[3] = before[3]
    real = eng._track_rows

    shared = []

    def failing(*walks):
        outs = real(*walks)
        shared.extend(walks[1:])
        if len(shared) == 2:  # the second shared step (the first: the conditioning slice)
            raise RuntimeError("boom")
        return outs

    monkeypatch.setattr(eng, "_track_rows", failing)
    with pytest.raises(RuntimeError, match="boom"):
        list(eng.propagate(objects, start=START))
    assert outputs[START - 1] is before[START - 1]  # its backward slice: as it was
    assert outputs[START + 17] is not before[START + 17]  # its forward slice: written


def test_objects_one_by_one_share_each_slices_features_in_the_shared_steps(image, monkeypatch):
    """Objects tracked one by one take turns between the two walks' slices: the cache keeps
    both on the compute device, so each slice's features are fetched once per walk."""
    eng = make_engine(overlap_walks=True, batch_objects=False)
    eng.set_image(image, (2.0, 1.0, 1.0))
    objects = {}
    for oid, click in ((1, (36, 44, True)), (2, (30, 40, True))):
        p = points(click)
        p.result = eng.predict_slice(START, p, object_id=oid)
        objects[oid] = {START: p}
    eng.encode_all()
    fetched = []
    unpack = eng.cache._unpack
    monkeypatch.setattr(eng.cache, "_unpack", lambda levels: fetched.append(1) or unpack(levels))
    list(eng.propagate(objects, start=START))
    assert eng.overlap_stats.ahead == START + 1
    assert len(fetched) == N - 1  # every slice but the (conditioning) start, once
