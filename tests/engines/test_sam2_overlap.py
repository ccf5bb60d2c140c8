"""Overlapped forward and backward walks against the official predictor and our own sequential path.

40 slices with the start at slice 6, so the forward walk passes its 15-slice
horizon and the backward walk runs in a second thread while the forward walk
still goes. Random weights at 128 px.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

pytest.importorskip("sam2")

from tests.engines.sam2_helpers import (
    compare,
    make_engine,
    official_both,
    official_predictor,
    official_state,
    points,
    volume,
    xy,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N, START = 40, 6


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return volume(n_slices=N)


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
def test_overlapped_walks_match_official(image, monkeypatch, batched):
    eng = make_engine(batch_objects=batched)
    eng.set_image(image, (2.0, 1.0, 1.0))
    official = official_predictor(eng)
    state = official_state(official, eng, monkeypatch)
    a = points((36, 44, True))
    a.result = eng.predict_slice(START, a, object_id=1)
    official.add_new_points_or_box(state, START, 1, points=xy(a)[0], labels=xy(a)[1])
    b = points()
    b.box = (10, 8, 40, 36)
    b.result = eng.predict_slice(START, b, object_id=2)
    official.add_new_points_or_box(state, START, 2, box=np.array([8, 10, 36, 40], np.float32))

    objects = {1: {START: a}, 2: {START: b}}
    results = list(eng.propagate(objects, start=START))
    assert eng.overlap_stats.started_after == START + eng.predictor.walk_horizon() == START + 15
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


def outputs(eng, oid: int) -> dict[int, torch.Tensor]:
    state = eng._objects[oid].state
    tracked = state["frames_tracked_per_obj"][0]
    stored = state["output_dict_per_obj"][0]["non_cond_frame_outputs"]
    assert set(stored) <= set(tracked)
    return {s: out["pred_masks"] for s, out in stored.items()}


def wait_for(predicate) -> None:
    deadline = time.monotonic() + 120
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


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

    # The overlapped engine: stop once its backward walk has done some slices, during the
    # forward results or after two backward ones were handed out (the rest are undone).
    ours, sequential = engines
    run = ours.propagate(objects, start=START)
    taken = handed = 0
    for result in run:
        taken += 1
        if where == "forward" and result.slice_index == START + 20:
            wait_for(lambda: ours.overlap_stats.done >= 3)
            break
        if taken > N - START:  # a backward result
            handed += 1
            if where == "backward" and handed == 2:
                wait_for(lambda: ours.overlap_stats.done >= 5)
                break
    run.close()
    stats = ours.overlap_stats
    # The backward walk's start slice was taken too (the caller does not see it twice).
    taken_back = handed + 1 if handed else 0
    assert stats.done >= 3 and stats.undone == stats.done - taken_back >= 1, stats
    for _ in zip(range(taken), sequential.propagate(objects, start=START), strict=False):
        pass

    # Same outputs kept on every slice as the sequential run stopped at the same place.
    mine, theirs = outputs(ours, 1), outputs(sequential, 1)
    assert sorted(mine) == sorted(theirs)
    for s in theirs:
        assert torch.equal(mine[s], theirs[s]), s
    # And the next propagation gives the same masks.
    again = {r.slice_index: r.logits[1] for r in ours.propagate(objects, start=START)}
    for r in sequential.propagate(objects, start=START):
        np.testing.assert_allclose(again[r.slice_index], r.logits[1], atol=1e-5)


def test_short_or_reset_walks_run_one_after_the_other(image):
    eng = make_engine()
    eng.set_image(image[:20], (2.0, 1.0, 1.0))
    a = points((36, 44, True))
    a.result = eng.predict_slice(10, a, object_id=1)
    results = list(eng.propagate({1: {10: a}}, start=10))
    assert [r.slice_index for r in results] == [*range(10, 20), *range(9, -1, -1)]
    assert eng.overlap_stats.started_after is None  # 10 + 15 is past the end
    list(eng.propagate({1: {10: a}}, start=0, reset_between=True))
    assert eng.overlap_stats.started_after is None
