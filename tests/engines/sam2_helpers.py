"""Shared pieces of the SAM 2 engine tests: a tiny random model and the official predictor."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import warnings
from typing import Any

import numpy as np

from sam2vol.engines.base import SlicePrompts

CONFIG = "sam2.1_hiera_t"
IMAGE_SIZE = 128  # the smallest size SAM 2 runs at comfortably; fast on a CPU
N_SLICES, HEIGHT, WIDTH = 10, 72, 88
# The device the engine tests run on (benchmarks/gpu_check.sh sets cuda) and its precision.
DEVICE = os.environ.get("SAM2VOL_TEST_DEVICE", "cpu")
PRECISION = os.environ.get("SAM2VOL_TEST_PRECISION", "float32")
# Slices per encoder call; 1 gives the official predictor's batch shape (on a GPU, bf16
# rounding depends on the batch size: benchmarks/RESULTS.md).
ENCODE_BATCH = (
    int(os.environ["SAM2VOL_TEST_ENCODE_BATCH"])
    if "SAM2VOL_TEST_ENCODE_BATCH" in os.environ
    else None
)


# Objects tracked in one batch (the engine's default); gpu_check.sh's bf16 run sets 0, since
# bf16 rounds differently at other batch sizes.
BATCH_OBJECTS = os.environ.get("SAM2VOL_TEST_BATCH_OBJECTS", "1") != "0"
# Backward slices tracked in the forward walk's steps (the default; batches of two walks):
# off in gpu_check.sh's bf16 run too.
OVERLAP_WALKS = os.environ.get("SAM2VOL_TEST_OVERLAP_WALKS", "1") != "0"


def volume(seed: int = 0, n_slices: int = N_SLICES) -> np.ndarray:
    """A small stack [s, row, col] in [0, 1]: a bright blob drifting over noise."""
    rng = np.random.default_rng(seed)
    s, r, c = np.meshgrid(np.arange(n_slices), np.arange(HEIGHT), np.arange(WIDTH), indexing="ij")
    blob = (r - 36 - s) ** 2 + (c - 44 + s) ** 2 < 15**2
    image = 0.2 + 0.6 * blob + rng.normal(0, 0.05, blob.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def make_engine(**options: Any):
    """Our engine with random weights (seed 0) at the test image size, on the test device."""
    from sam2vol.engines.sam2 import Sam2Engine

    options = {
        "image_size": IMAGE_SIZE,
        "device": DEVICE,
        "precision": PRECISION,
        "encode_batch_size": ENCODE_BATCH,
        "batch_objects": BATCH_OBJECTS,
        "overlap_walks": OVERLAP_WALKS,
        **options,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Sam2Engine(checkpoint=f"random:{CONFIG}", **options)


def bf16_engine(**options: Any):
    """:func:`make_engine` whose model runs under CPU bf16 autocast (standing in for CUDA's)."""
    import torch

    from sam2vol.engines.sam2.models import shared_predictor

    eng = make_engine(**options)
    eng.predictor = shared_predictor(
        eng.source,
        image_size=eng.image_size,
        device=eng.device,
        correction_as_cond=True,
        autocast_dtype=torch.bfloat16,
        compile_image_encoder=False,
    )
    return eng


def official_predictor(engine: Any) -> Any:
    """Meta's ``SAM2VideoPredictor`` built the same way, with the engine's weights."""
    import torch

    from sam2vol.engines.sam2.models import build_predictor

    weights = dataclasses.replace(engine.source, state_dict=engine.predictor.state_dict())
    official = build_predictor(
        weights,
        image_size=engine.image_size,
        device=torch.device(engine.device),
        correction_as_cond=engine.correction_as_cond,
        predictor_target="sam2.sam2_video_predictor.SAM2VideoPredictor",
    )
    official.fill_hole_area = 8  # the official setting (skipped without the CUDA extension)
    official.autocast_dtype = engine.predictor.autocast_dtype
    # Under the engine's autocast, as Meta's examples run it (``with torch.autocast(...)``).
    for name in ("add_new_points_or_box", "add_new_mask", "clear_all_prompts_in_frame"):
        setattr(official, name, _autocast(official, getattr(official, name)))
    return official


def official_autocast(official: Any) -> Any:
    """The autocast the official predictor runs under (a no-op in float32)."""
    import torch

    if official.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(official.device.type, dtype=official.autocast_dtype)


def _autocast(official: Any, method: Any) -> Any:
    @functools.wraps(method)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with official_autocast(official):
            return method(*args, **kwargs)

    return wrapped


def official_state(official: Any, engine: Any, monkeypatch: Any) -> dict:
    """The official ``init_state`` on the engine's frames (instead of a JPEG folder)."""
    import sam2.sam2_video_predictor as svp

    frames = engine.frames
    images = frames.batch(range(len(frames)))

    def load(**_kwargs: Any):
        return images.clone(), frames.height, frames.width

    monkeypatch.setattr(svp, "load_video_frames", load)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return official.init_state(video_path="in-memory")


def points(*clicks: tuple[int, int, bool]) -> SlicePrompts:
    """Prompts of (row, col, positive) clicks."""
    prompts = SlicePrompts()
    for row, col, positive in clicks:
        prompts.add_point(row, col, positive)
    return prompts


def xy(prompts: SlicePrompts) -> tuple[np.ndarray, np.ndarray]:
    """Official (x, y) points and int labels of some prompts."""
    return prompts.points[:, ::-1].astype(np.float32), prompts.labels.astype(np.int32)


def run_official(
    official: Any, state: dict, start: int, reverse: bool, max_frames: int | None = None
) -> dict[int, np.ndarray]:
    """Logits ``[n_obj, 1, H, W]`` per slice from the official ``propagate_in_video``."""
    out = {}
    with warnings.catch_warnings(), official_autocast(official):
        warnings.simplefilter("ignore")
        for s, _, logits in official.propagate_in_video(
            state, start_frame_idx=start, reverse=reverse, max_frame_num_to_track=max_frames
        ):
            out[s] = logits.float().cpu().numpy()
    return out


ATOL = 1e-4  # logits against the official predictor (float32)
BF16_RTOL = 2**-7  # memories are stored in bfloat16: one unit in the last place


def as_np(x: Any) -> np.ndarray:
    """A tensor (maybe on a GPU, maybe bf16) or array as float32 numpy."""
    return x.float().cpu().numpy() if hasattr(x, "cpu") else np.asarray(x, np.float32)


def close(ours: Any, theirs: Any, rtol: float = 1e-4) -> None:
    """Our logits equal theirs to ``ATOL`` (theirs reshaped to ours)."""
    ours = as_np(ours)
    np.testing.assert_allclose(ours, as_np(theirs).reshape(ours.shape), atol=ATOL, rtol=rtol)


def compare_outputs(ours: dict, theirs: dict, pos_enc_constant: list) -> None:
    """One object's stored outputs (per slice) against another's: keys, dtypes, devices, values."""
    assert sorted(ours) == sorted(theirs)
    for t, out in ours.items():
        ref = theirs[t]
        assert sorted(out) == sorted(ref), t
        for key in ("maskmem_features", "pred_masks", "obj_ptr", "object_score_logits"):
            assert out[key].dtype == ref[key].dtype, (t, key)
            assert out[key].shape == ref[key].shape, (t, key)
            assert out[key].device == ref[key].device, (t, key)
            close(out[key], ref[key], rtol=BF16_RTOL if key == "maskmem_features" else 1e-4)
        # The state's constant, expanded (the official storage of maskmem_pos_enc).
        for x, c in zip(out["maskmem_pos_enc"], pos_enc_constant, strict=True):
            assert x.shape[0] == 1 and x.data_ptr() == c.data_ptr(), t
        for x, r in zip(out["maskmem_pos_enc"], ref["maskmem_pos_enc"], strict=True):
            close(x, r)


def official_both(
    official: Any, state: dict, start: int, max_frames: int | None = None
) -> dict[int, np.ndarray]:
    """The official propagation forward, then backward, from ``start``."""
    out = run_official(official, state, start, reverse=False, max_frames=max_frames)
    out.update(run_official(official, state, start, reverse=True, max_frames=max_frames))
    return out


def compare(results: Any, theirs: dict[int, np.ndarray], oids: tuple[int, ...]) -> None:
    """Our propagation results against :func:`official_both` (rows in ``oids`` order)."""
    assert sorted(r.slice_index for r in results) == sorted(theirs)
    for r in results:
        for row, oid in enumerate(oids):
            close(r.logits[oid], theirs[r.slice_index][row, 0])


@contextlib.contextmanager
def object_scores_shifted(engine: Any, shift: float):
    """The engine's model with its object-score logits lowered by ``shift``, restored exactly after.

    The model is shared by every engine of the same settings (other tests too). Its
    parameter is changed in place and copied back from a saved clone (not patched with
    ``monkeypatch``: undoing a module attribute removes the parameter in pytest >= 9.2).
    """
    import torch

    head = engine.predictor.sam_mask_decoder.pred_obj_score_head
    last = head.layers[-1] if hasattr(head, "layers") else head
    saved = last.bias.detach().clone()
    with torch.no_grad():
        last.bias -= shift
    try:
        yield
    finally:
        with torch.no_grad():
            last.bias.copy_(saved)
