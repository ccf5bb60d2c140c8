"""Our SAM 2 engine against the official ``SAM2VideoPredictor`` on a longer session.

24 slices, so the memory bank (6 frames) and the object-pointer window (16
frames) fill up; two objects, one from a box and one from a mask plus clicks,
corrected forwards and backwards, a correction undone, ``max_slices``, slices
where an object is absent (negative object score), bf16 autocast on both
sides, and slice preparation against the official ``load_video_frames``.
Random weights at 128 px; both sides get the same frames, prompts and weights.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sam2")

from tests.engines.sam2_helpers import (
    bf16_engine,
    close,
    compare,
    make_engine,
    object_scores_shifted,
    official_both,
    official_predictor,
    official_state,
    points,
    volume,
    xy,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N = 24  # >= 16 + 6: the pointer window and the 6-frame memory bank are full
OBJECT_SCORE_SHIFT = 0.029  # seed 3: tracked slices on both sides of 0 (0.05 left all absent)


@pytest.fixture(scope="module")
def long_engine():
    eng = make_engine()
    eng.set_image(volume(n_slices=N), (2.0, 1.0, 1.0))
    return eng


def test_long_session_two_objects_box_mask_clicks_corrections_undo(long_engine, monkeypatch):
    eng = long_engine
    eng.set_image(eng.image, eng.spacing_mm)
    official = official_predictor(eng)
    state = official_state(official, eng, monkeypatch)
    start = 12
    # Object 1: a box. Object 2: a mask plus clicks on the same slice.
    a = points()
    a.box = (30, 34, 62, 70)
    a.result = eng.predict_slice(start, a, object_id=1)
    _, _, theirs = official.add_new_points_or_box(
        state, start, 1, box=np.array([34, 30, 70, 62], np.float32)
    )
    close(eng.last_logits, theirs[0, 0])
    b = points((10, 12, True), (60, 80, False))
    b.mask = np.zeros((72, 88), bool)
    b.mask[5:20, 5:30] = True
    b.result = eng.predict_slice(start, b, object_id=2)
    official.add_new_mask(state, start, 2, b.mask)
    pts, labels = xy(b)
    _, _, theirs = official.add_new_points_or_box(state, start, 2, points=pts, labels=labels)
    close(eng.last_logits, theirs[1, 0])

    objects = {1: {start: a}, 2: {start: b}}
    compare(
        list(eng.propagate(objects, start=start)), official_both(official, state, start), (1, 2)
    )

    # Corrections both ways of the start: object 1 after it, object 2 before it.
    fix_a = points((50, 30, False))
    fix_a.result = eng.predict_slice(21, fix_a, object_id=1)
    pts, labels = xy(fix_a)
    _, _, theirs = official.add_new_points_or_box(state, 21, 1, points=pts, labels=labels)
    close(eng.last_logits, theirs[0, 0])
    fix_b = points((14, 20, True), (40, 40, False))
    fix_b.result = eng.predict_slice(3, fix_b, object_id=2)
    pts, labels = xy(fix_b)
    _, _, theirs = official.add_new_points_or_box(state, 3, 2, points=pts, labels=labels)
    close(eng.last_logits, theirs[1, 0])
    objects = {1: {start: a, 21: fix_a}, 2: {start: b, 3: fix_b}}
    compare(
        list(eng.propagate(objects, start=start)), official_both(official, state, start), (1, 2)
    )

    # Undo object 2's correction: its prompts leave the model on both sides.
    objects = {1: {start: a, 21: fix_a}, 2: {start: b}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        official.clear_all_prompts_in_frame(state, 3, 2, need_output=False)
    compare(
        list(eng.propagate(objects, start=start)), official_both(official, state, start), (1, 2)
    )


def test_max_slices_and_absent_objects_match_official(long_engine, monkeypatch):
    # A model of its own whose object score straddles 0 on this volume (random weights
    # give small positive scores everywhere): some slices have no object.
    eng = make_engine(seed=3)
    with object_scores_shifted(eng, OBJECT_SCORE_SHIFT):
        eng.set_image(long_engine.image, long_engine.spacing_mm)
        official = official_predictor(eng)
        state = official_state(official, eng, monkeypatch)
        start = 8
        prompt = points((44, 36, True))
        prompt.result = eng.predict_slice(start, prompt, object_id=1)
        pts, labels = xy(prompt)
        official.add_new_points_or_box(state, start, 1, points=pts, labels=labels)
        results = list(eng.propagate({1: {start: prompt}}, max_slices=5))
        theirs = official_both(official, state, start, max_frames=5)
        assert sorted(theirs) == list(range(3, 14))
        compare(results, theirs, (1,))

        # Without a limit, through slices where the model sees no object (score < 0).
        results = list(eng.propagate({1: {start: prompt}}))
        compare(results, official_both(official, state, start), (1,))
        tracked = [r.scores[1] for r in results if r.slice_index != start]
        assert min(tracked) < 0 < max(tracked), tracked  # tracked slices absent and present


def test_bf16_autocast_matches_official_under_the_same_autocast(monkeypatch):
    """CPU bfloat16 autocast stands in for CUDA's: newly prompted slices get bf16 memories."""
    import torch

    eng = bf16_engine()
    n = 20
    eng.set_image(volume(n_slices=n), (2.0, 1.0, 1.0))
    official = official_predictor(eng)
    assert official.autocast_dtype == torch.bfloat16
    state = official_state(official, eng, monkeypatch)
    start = 6
    first = points((40, 40, True))
    first.result = eng.predict_slice(start, first, object_id=1)
    pts, labels = xy(first)
    _, _, theirs = official.add_new_points_or_box(state, start, 1, points=pts, labels=labels)
    close(eng.last_logits, theirs[0, 0])
    compare(list(eng.propagate({1: {start: first}})), official_both(official, state, start), (1,))
    # A new prompt: its memory is made in begin_walk (the official preflight).
    fix = points((30, 60, False))
    fix.result = eng.predict_slice(15, fix, object_id=1)
    pts, labels = xy(fix)
    official.add_new_points_or_box(state, 15, 1, points=pts, labels=labels)
    results = list(eng.propagate({1: {start: first, 15: fix}}, start=start))
    compare(results, official_both(official, state, start), (1,))


def test_slices_match_load_video_frames_on_a_jpeg_folder(tmp_path):
    """Our float frames against the official loader on slices written as 8-bit JPEGs."""
    from PIL import Image
    from sam2.utils.misc import load_video_frames

    from sam2vol.engines.sam2.frames import SliceFrames

    image = volume(n_slices=4)
    for i, sl in enumerate(np.round(image * 255).astype(np.uint8)):
        Image.fromarray(sl).save(tmp_path / f"{i:05d}.jpg")  # as MedSAM2's scripts write them
    for size in (128, 96):
        theirs, h, w = load_video_frames(str(tmp_path), size, offload_video_to_cpu=True)
        ours = SliceFrames(image, size).batch(range(4))
        assert (h, w) == image.shape[1:]
        assert ours.shape == theirs.shape
        diff = (ours - theirs).abs() * 0.226  # back to [0, 1] intensity units (ImageNet std)
        # JPEG, 8-bit rounding and PIL's bicubic against our antialiased bilinear resize.
        assert float(diff.mean()) < 0.02, float(diff.mean())
        # The same picture: a correlation near 1 and the same bright blob.
        corr = np.corrcoef(ours.flatten().numpy(), theirs.flatten().numpy())[0, 1]
        assert corr > 0.97, corr
