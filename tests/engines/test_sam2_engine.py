"""The SAM 2 engine's behaviour: checkpoints, options, prompts, state, stopping (random weights)."""

from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sam2")

from sam2vol.confidence import logit_confidence  # noqa: E402
from sam2vol.engines import create_engine  # noqa: E402
from sam2vol.engines.base import SliceResult  # noqa: E402
from sam2vol.engines.sam2 import Sam2Engine  # noqa: E402
from sam2vol.engines.sam2.checkpoints import (  # noqa: E402
    RandomWeightsWarning,
    config_name,
    detect_config,
)
from sam2vol.engines.sam2.feature_cache import FeatureCache  # noqa: E402
from sam2vol.engines.sam2.frames import IMAGENET_MEAN, IMAGENET_STD, SliceFrames  # noqa: E402
from sam2vol.errors import InputError  # noqa: E402
from tests.engines.sam2_helpers import (  # noqa: E402
    HEIGHT,
    IMAGE_SIZE,
    N_SLICES,
    WIDTH,
    make_engine,
    points,
    volume,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def checkpoint_file(engine, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "sam2.1_hiera_tiny_finetuned.pt"
    torch.save({"model": engine.predictor.state_dict()}, path)
    return path


# ----- checkpoints and options -----------------------------------------------------------------
@pytest.mark.filterwarnings("default::UserWarning")
def test_random_weights_warn_loudly(capsys):
    with pytest.warns(RandomWeightsWarning, match="RANDOM weights"):
        eng = create_engine(
            "sam2", checkpoint="random:sam2.1_hiera_t", image_size=IMAGE_SIZE, device="cpu"
        )
    assert isinstance(eng, Sam2Engine)
    assert "RANDOM weights" in capsys.readouterr().err
    assert eng.describe()["checkpoint"] == "random"


def test_checkpoint_config_is_detected_and_loaded(engine, checkpoint_file):
    loaded = Sam2Engine(checkpoint=checkpoint_file, image_size=IMAGE_SIZE, device="cpu")
    assert loaded.describe()["config"] == "sam2.1_hiera_t"
    key = "sam_mask_decoder.iou_prediction_head.layers.0.weight"
    assert torch.equal(loaded.predictor.state_dict()[key], engine.predictor.state_dict()[key])


def test_mismatched_config_is_a_clear_error(checkpoint_file):
    with pytest.raises(InputError, match=r"does not match config sam2.1_hiera_s.*--config"):
        Sam2Engine(checkpoint=checkpoint_file, config="sam2.1_hiera_s", image_size=IMAGE_SIZE)
    with pytest.raises(InputError, match="does not match config sam2_hiera_t"):
        Sam2Engine(checkpoint=checkpoint_file, config="sam2_hiera_t", image_size=IMAGE_SIZE)


def test_bad_checkpoints_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="needs --checkpoint"):
        Sam2Engine()
    with pytest.raises(InputError, match="no such file"):
        Sam2Engine(checkpoint=tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read"):
        Sam2Engine(checkpoint=junk)
    other = tmp_path / "other.pt"
    torch.save({"model": {"weight": torch.zeros(2)}}, other)
    with pytest.raises(InputError, match="not a SAM 2 checkpoint"):
        Sam2Engine(checkpoint=other)


def test_config_detection_covers_versions_and_sizes(engine):
    sd = engine.predictor.state_dict()
    assert detect_config(sd) == "sam2.1_hiera_t"
    v20 = {k: v for k, v in sd.items() if k != "no_obj_embed_spatial"}
    assert detect_config(v20) == "sam2_hiera_t"
    large = dict(sd)
    large["image_encoder.trunk.patch_embed.proj.weight"] = torch.zeros(144, 3, 7, 7)
    for n in range(12, 48):
        large[f"image_encoder.trunk.blocks.{n}.norm1.weight"] = torch.zeros(1)
    assert detect_config(large) == "sam2.1_hiera_l"
    odd = dict(sd)
    odd["image_encoder.trunk.patch_embed.proj.weight"] = torch.zeros(80, 3, 7, 7)
    with pytest.raises(InputError, match="--config"):
        detect_config(odd)


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("sam2.1_hiera_t", "sam2.1_hiera_t"),
        ("sam2.1_hiera_base_plus", "sam2.1_hiera_b+"),
        ("configs/sam2/sam2_hiera_l.yaml", "sam2_hiera_l"),
        ("sam2_hiera_small.yaml", "sam2_hiera_s"),
    ],
)
def test_config_names(name, short):
    assert config_name(name) == short


def test_unknown_config_is_an_input_error():
    with pytest.raises(InputError, match="--config must be one of"):
        config_name("sam3_hiera_t")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"precision": "bfloat16"}, "needs CUDA"),
        ({"precision": "fp8"}, "--precision"),
        ({"image_size": 100}, "multiple of 32"),
        ({"device": "tpu"}, "--device"),
        ({"stop_after_empty": 0}, ">= 1"),
        ({"feature_cache_dtype": "int8"}, "dtype"),
    ],
)
def test_bad_options_are_input_errors(options, message):
    with pytest.raises(InputError, match=message):
        make_engine(**options)


def test_medsam2_file_name_defaults_to_512(engine, tmp_path):
    path = tmp_path / "MedSAM2_latest.pt"
    torch.save(engine.predictor.state_dict(), path)  # a bare state dict works too
    eng = Sam2Engine(checkpoint=path, device="cpu")
    assert eng.image_size == 512


def test_image_size_recorded_in_the_checkpoint_is_the_default(engine, tmp_path):
    path = tmp_path / "best.pt"
    weights = engine.predictor.state_dict()
    torch.save({"model": weights, "config": "sam2.1_hiera_t", "image_size": 96}, path)
    assert Sam2Engine(checkpoint=path, device="cpu").image_size == 96
    assert Sam2Engine(checkpoint=path, device="cpu", image_size=64).image_size == 64
    torch.save({"model": weights, "image_size": 100}, path)
    with pytest.raises(InputError, match=r"best\.pt: records image_size 100, expected a multiple"):
        Sam2Engine(checkpoint=path, device="cpu")


def test_engines_with_the_same_model_share_it(engine, checkpoint_file):
    same = make_engine()
    assert same.predictor is engine.predictor
    assert make_engine(seed=1).predictor is not engine.predictor
    assert make_engine(image_size=IMAGE_SIZE + 32).predictor is not engine.predictor
    assert make_engine(correction_as_cond=False).predictor is not engine.predictor
    a = Sam2Engine(checkpoint=checkpoint_file, image_size=IMAGE_SIZE, device="cpu")
    b = Sam2Engine(checkpoint=checkpoint_file, image_size=IMAGE_SIZE, device="cpu")
    assert a.predictor is b.predictor is not engine.predictor  # a file, not the random model
    assert a.source.state_dict is None  # the model holds the weights, once
    assert a.describe()["checkpoint"] == str(checkpoint_file)


def test_a_model_goes_with_its_last_engine():
    first = make_engine(seed=11)
    gone = weakref.ref(first.predictor)
    make_engine(seed=12)  # now the most recently used model
    del first
    gc.collect()
    assert gone() is None


def test_sessions_on_a_shared_model_stay_apart(engine):
    def run(eng, seed: int) -> dict[int, np.ndarray]:
        eng.set_image(volume(seed), (1.0, 1.0, 1.0))
        prompt = points((36, 40, True))
        prompt.result = eng.predict_slice(4, prompt, object_id=1)
        return {r.slice_index: r.logits[1] for r in eng.propagate({1: {4: prompt}})}

    a, b = make_engine(), make_engine()
    assert a.predictor is b.predictor
    first = run(a, 0)
    other = run(b, 1)
    again = run(a, 0)
    assert sorted(first) == sorted(again) == list(range(N_SLICES))
    for s in first:
        np.testing.assert_array_equal(first[s], again[s])
    assert any(not np.array_equal(first[s], other[s]) for s in first)


# ----- frames and features -------------------------------------------------------------------
def test_frames_are_normalised_replicated_slices():
    image = np.full((2, 40, 60), 0.5, np.float32)
    frames = SliceFrames(image, 64)
    batch = frames.batch([0, 1])
    assert batch.shape == (2, 3, 64, 64) and batch.dtype == torch.float32
    for c in range(3):
        expected = (0.5 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        np.testing.assert_allclose(batch[:, c].numpy(), expected, rtol=1e-5)
    assert frames[1].shape == (3, 64, 64)


def test_feature_cache_keeps_what_fits_the_budget():
    frames = SliceFrames(np.zeros((5, 8, 8), np.float32), 8)
    calls = []

    def encode(images):
        calls.append(len(images))
        fpn = [images[:, :1] * 0 + n for n in range(2)]
        return {"backbone_fpn": fpn, "vision_pos_enc": [torch.zeros_like(f) for f in fpn]}

    half_frame = 2 * 64 * 2  # two float16 levels of 8x8
    cache = FeatureCache(
        frames, encode, device=torch.device("cpu"), budget_bytes=3 * half_frame, batch_size=2
    )
    cache.features(0, ahead=[1, 2])
    assert calls == [2] and 0 in cache and 1 in cache
    cache.encode_all()
    assert cache.stats.stored == 3 and cache.stats.encoded == 5
    assert cache.storage_dtype == torch.float16  # the whole volume would not fit in float32
    out = cache.features(4)  # the last one encoded is kept outside the budget
    assert out["backbone_fpn"][1].dtype == torch.float32 and cache.stats.encoded == 5
    cache.features(3)
    assert cache.stats.encoded == 6


# ----- prompts, state, propagation ---------------------------------------------------------------
def test_mask_prompt_gives_the_mask(fresh):
    mask = volume()[4] > 0.5
    prompts = points()
    prompts.mask = mask
    result = fresh.predict_slice(4, prompts, object_id=1)
    assert result.shape == (HEIGHT, WIDTH) and result.dtype == bool
    assert (result & mask).sum() / (result | mask).sum() > 0.9


def test_box_prompt(fresh):
    prompts = points()
    prompts.box = (20, 25, 50, 60)
    result = fresh.predict_slice(3, prompts, object_id=1)
    assert result.shape == (HEIGHT, WIDTH)
    assert fresh.last_logits is not None and np.array_equal(result, fresh.last_logits > 0)


def test_results_carry_logits_and_object_scores(fresh):
    prompt = points((36, 40, True))
    prompt.result = fresh.predict_slice(4, prompt)
    results = list(fresh.propagate({1: {4: prompt}}, direction="backward"))
    assert [r.slice_index for r in results] == [4, 3, 2, 1, 0]
    for r in results:
        assert isinstance(r, SliceResult)
        np.testing.assert_array_equal(r.masks[1], r.logits[1] > 0)
        assert isinstance(r.scores[1], float)
        assert r.confidence == pytest.approx(logit_confidence(r.logits[1], r.scores[1]))
        assert 0.0 <= r.confidence <= 1.0
    np.testing.assert_array_equal(results[0].masks[1], prompt.result)


def test_state_follows_the_prompts_it_is_given(fresh):
    a, b = points((36, 40, True)), points((30, 50, True))
    a.result = fresh.predict_slice(2, a, object_id=1)
    b.result = fresh.predict_slice(6, b, object_id=1)
    list(fresh.propagate({1: {2: a, 6: b}}))
    cond = fresh._objects[1].state["output_dict_per_obj"][0]["cond_frame_outputs"]
    assert sorted(cond) == [2, 6]
    # The prompt on slice 6 was undone: propagation forgets it.
    list(fresh.propagate({1: {2: a}}))
    assert sorted(cond) == [2]
    # Same prompts again: no model call, same answer.
    again = fresh.predict_slice(2, a, object_id=1)
    np.testing.assert_array_equal(again, a.result)


def test_object_of_prompts_is_found_without_an_id(fresh):
    a, b = points((36, 40, True)), points((10, 10, True))
    a.result = fresh.predict_slice(3, a, object_id=1)
    b.result = fresh.predict_slice(3, b, object_id=2)
    list(fresh.propagate({1: {3: a}, 2: {3: b}}, direction="forward", max_slices=1))
    b.add_point(12, 14, True)
    fresh.predict_slice(3, b)
    assert len(fresh._objects[2].applied[3].labels) == 2
    assert len(fresh._objects[1].applied[3].labels) == 1


def test_replay_is_deterministic(fresh):
    def run():
        fresh.set_image(fresh.image, fresh.spacing_mm)
        p = points((36, 40, True))
        p.result = fresh.predict_slice(4, p, object_id=1)
        first = [r.logits[1] for r in fresh.propagate({1: {4: p}})]
        fix = points((50, 30, False))
        fix.result = fresh.predict_slice(7, fix, object_id=1)
        return first + [r.logits[1] for r in fresh.propagate({1: {4: p, 7: fix}})]

    for x, y in zip(run(), run(), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-4)


def test_stop_where_the_object_ends(monkeypatch):
    eng = make_engine(stop_after_empty=2)
    eng.set_image(volume(), (1.0, 1.0, 1.0))
    track_slice = eng.predictor.track_slice
    skipped = []

    def scripted(state, s, *, reverse, skip=False):
        out = track_slice(state, s, reverse=reverse, skip=skip)
        skipped.append((s, skip))
        if s >= 5 and not skip:  # the model "sees no object" from slice 5 on
            out.object_scores = [-3.0]
        return out

    monkeypatch.setattr(eng.predictor, "track_slice", scripted)
    prompt = points((36, 40, True))
    prompt.result = eng.predict_slice(3, prompt, object_id=1)
    results = list(eng.propagate({1: {3: prompt}}, direction="forward"))
    assert [r.slice_index for r in results] == list(range(3, N_SLICES))
    assert [s for s, skip in skipped if skip] == [7, 8, 9]
    for r in results[4:]:
        assert not r.masks[1].any() and r.scores[1] == -1024.0
    non_cond = eng._objects[1].state["output_dict_per_obj"][0]["non_cond_frame_outputs"]
    assert sorted(non_cond) == [4, 5, 6]


def test_feature_cache_encodes_each_slice_once(fresh):
    prompt = points((36, 40, True))
    prompt.result = fresh.predict_slice(4, prompt, object_id=1)
    for _ in range(3):
        list(fresh.propagate({1: {4: prompt}}))
    assert fresh.cache.stats.encoded == N_SLICES


def test_warnings_stay_quiet_on_cpu(fresh):
    prompt = points((36, 40, True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prompt.result = fresh.predict_slice(4, prompt, object_id=1)
        list(fresh.propagate({1: {4: prompt}}, max_slices=2))


def test_background_encoding_fills_the_cache_outward_and_gives_the_same_mask(engine):
    import time

    from tests.engines.sam2_helpers import make_engine, points

    prompt = points((36, 40, True))
    engine.set_image(engine.image, engine.spacing_mm)
    expected = engine.predict_slice(7, prompt, object_id=1)

    eng = make_engine()
    eng.set_image(engine.image, engine.spacing_mm)
    eng.start_background_encoding(center=6)
    deadline = time.monotonic() + 120
    while eng._prefetch.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not eng._prefetch.is_alive()
    assert eng.cache.stats.encoded == eng.n_slices == eng.cache.stats.stored
    encoded = eng.cache.stats.encoded
    mask = eng.predict_slice(7, prompt, object_id=1)
    assert eng.cache.stats.encoded == encoded  # the click found its slice encoded
    np.testing.assert_array_equal(mask, expected)
    eng.stop_background_encoding()


def test_background_encoding_waits_while_the_user_acts(engine):
    from tests.engines.sam2_helpers import make_engine

    eng = make_engine()
    eng.set_image(engine.image, engine.spacing_mm)
    with eng._foreground():
        eng.start_background_encoding(center=0)
        import time

        time.sleep(0.5)
        assert eng.cache.stats.encoded == 0
    eng.stop_background_encoding()
