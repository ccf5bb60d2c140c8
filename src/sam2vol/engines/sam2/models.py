"""SAM 2 models: built from a packaged config, and shared by the engines of a process.

A web server holds one engine per open session; building a model per session
would hold the same weights many times over. :func:`shared_predictor` hands
every engine with the same checkpoint and settings the same model (the model
keeps no per-volume state: that lives in each engine's inference states). A
model is freed with the last engine using it, except the most recently used
one, which is kept for the next engine.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import torch

from sam2vol.engines.sam2.checkpoints import ModelSource, load_weights

PREDICTOR_TARGET = "sam2vol.engines.sam2.predictor.Sam2VolPredictor"

_LOCK = threading.Lock()
_MODELS: weakref.WeakValueDictionary[tuple[Any, ...], Any] = weakref.WeakValueDictionary()
_LAST: list[Any] = []  # a strong reference to the most recently used model


def has_sam2_extension() -> bool:
    """Whether SAM 2's optional CUDA extension (hole filling) is built."""
    try:
        from sam2 import _C  # noqa: F401
    except ImportError:
        return False
    return True


def build_predictor(
    source: ModelSource,
    *,
    image_size: int,
    device: torch.device,
    correction_as_cond: bool = True,
    predictor_target: str = PREDICTOR_TARGET,
) -> Any:
    """A SAM 2 video predictor with the official post-processing settings.

    Built like ``sam2.build_sam.build_sam2_video_predictor`` from the packaged
    config; random weights are drawn under ``source.seed`` without touching
    the global random state.

    Args:
        source: The config and weights.
        image_size: The model's input size (a multiple of 32).
        device: Where the model runs.
        correction_as_cond: ``add_all_frames_to_correct_as_cond``.
        predictor_target: The predictor class (ours, or the official one for
            comparisons).
    """
    from sam2.build_sam import build_sam2_video_predictor

    overrides = [
        f"++model._target_={predictor_target}",
        f"++model.image_size={int(image_size)}",
        f"++model.add_all_frames_to_correct_as_cond={str(bool(correction_as_cond)).lower()}",
    ]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(source.seed)
        model = build_sam2_video_predictor(
            source.hydra_config, ckpt_path=None, device="cpu", hydra_overrides_extra=overrides
        )
    load_weights(model, source)
    if not has_sam2_extension():
        # The official code would try, warn and skip on every slice.
        model.fill_hole_area = 0
    return model.to(device).eval()


def model_key(source: ModelSource, **settings: Any) -> tuple[Any, ...]:
    """What makes two models the same: the weights (file, size, time) and the settings."""
    if source.path is None:
        weights: tuple[Any, ...] = ("random", source.config, source.seed)
    else:
        stat = source.path.stat()
        weights = (str(source.path.resolve()), stat.st_size, stat.st_mtime_ns, source.config)
    return (weights, *sorted((k, str(v)) for k, v in settings.items()))


def shared_predictor(
    source: ModelSource,
    *,
    image_size: int,
    device: torch.device,
    correction_as_cond: bool,
    autocast_dtype: torch.dtype | None,
    compile_image_encoder: bool,
) -> Any:
    """The model of :func:`build_predictor` for these settings, built once per process.

    Args:
        source: The config and weights.
        image_size: The model's input size.
        device: Where the model runs.
        correction_as_cond: ``add_all_frames_to_correct_as_cond``.
        autocast_dtype: Autocast dtype of tracking and encoding (None: full precision).
        compile_image_encoder: ``torch.compile`` the image encoder (CUDA).
    """
    key = model_key(
        source,
        image_size=image_size,
        device=device,
        correction_as_cond=correction_as_cond,
        autocast_dtype=autocast_dtype,
        compile_image_encoder=compile_image_encoder,
    )
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = build_predictor(
                source, image_size=image_size, device=device, correction_as_cond=correction_as_cond
            )
            model.autocast_dtype = autocast_dtype
            if compile_image_encoder:
                encoder = model.image_encoder
                encoder.forward = torch.compile(encoder.forward, dynamic=False)
            _MODELS[key] = model
        _LAST[:] = [model]
    return model
