"""Meta's SAM 2 video predictor, fed from memory and with a per-session feature cache.

:class:`Sam2VolPredictor` subclasses the official ``SAM2VideoPredictor`` and
changes only where frames and image features come from:

- :meth:`Sam2VolPredictor.init_state_from_frames` builds the same inference
  state as the official ``init_state`` from in-memory slices (no JPEG folder);
- :meth:`Sam2VolPredictor._get_image_feature` answers from a
  :class:`~sam2vol.engines.sam2.feature_cache.FeatureCache`, so that each slice
  goes through the image encoder once per session;
- :meth:`Sam2VolPredictor.track_slice` tracks one slice like the official
  ``propagate_in_video`` loop (same calls, same state updates), and also
  reports the object score and can leave a stopped object untracked.

Everything else (prompts, memory, tracking) is the official code.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from sam2.modeling.sam2_base import NO_OBJ_SCORE
from sam2.sam2_video_predictor import SAM2VideoPredictor

from sam2vol.engines.sam2.feature_cache import FeatureCache
from sam2vol.engines.sam2.frames import SliceFrames

InferenceState = dict[str, Any]


@dataclass
class TrackedSlice:
    """One slice of a propagation, for all objects of the state.

    Attributes:
        frame_idx: The slice.
        obj_ids: Object ids, in the order of the rows below.
        logits: ``[n_obj, 1, H, W]`` mask logits at the slice's resolution.
        object_scores: The model's object score logit per object (> 0: present).
        tracked: False for an object that stopped before this slice.
    """

    frame_idx: int
    obj_ids: list[int]
    logits: torch.Tensor
    object_scores: list[float]
    tracked: list[bool]


def promoted_dtype(memory: torch.dtype, features: torch.dtype) -> torch.dtype:
    """The dtype a memory is attended in: bf16 memories with float32 features are promoted
    (:meth:`Sam2VolPredictor._guard_memory_dtype`)."""
    if memory == torch.bfloat16 and features == torch.float32:
        return torch.float32
    return memory


class Sam2VolPredictor(SAM2VideoPredictor):
    """The official video predictor with in-memory frames and cached image features.

    Built by hydra from a packaged SAM 2 config (see
    :func:`sam2vol.engines.sam2.engine.build_predictor`); takes every
    constructor argument of ``SAM2VideoPredictor``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # bf16 autocast on CUDA (None: full precision).
        self.autocast_dtype: torch.dtype | None = None
        self._guard_memory_dtype()
        # The direction of the slice being tracked in this thread (for the cache's look-ahead).
        self._walk = threading.local()

    def _guard_memory_dtype(self) -> None:
        """Let full-precision tracking attend to a memory of bf16 features only.

        The official state stores memory features in bfloat16; they are
        promoted to float32 when concatenated with object pointers. A slice
        with no pointer yet (tracking from before an object's only prompt)
        gives the memory attention bf16 input and float32 weights, which fails
        without autocast. Promoting it first gives what the concatenation
        would have.
        """
        attention = self.memory_attention
        forward = attention.forward

        def promoted_forward(curr: Any, memory: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            ref = curr[0] if isinstance(curr, list) else curr
            memory = memory.to(promoted_dtype(memory.dtype, ref.dtype))
            return forward(curr, memory, *args, **kwargs)

        attention.forward = promoted_forward

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context of this predictor (a no-op without one)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @torch.inference_mode()
    def encode_images(self, images: torch.Tensor) -> dict[str, Any]:
        """Backbone features of a batch of normalised frames ``[B, 3, S, S]``."""
        with self.autocast():
            return self.forward_image(images)

    def init_state_from_frames(
        self,
        frames: SliceFrames,
        cache: FeatureCache | None = None,
        *,
        offload_state_to_cpu: bool = False,
    ) -> InferenceState:
        """An inference state like the official ``init_state``, on in-memory frames.

        Args:
            frames: The slices as lazily prepared frames.
            cache: Per-session image features; None encodes like the official
                predictor (last frame only).
            offload_state_to_cpu: Keep masks and memories on the CPU.
        """
        device = self.device
        state: InferenceState = {
            "images": frames,
            "num_frames": len(frames),
            "offload_video_to_cpu": True,
            "offload_state_to_cpu": offload_state_to_cpu,
            "video_height": frames.height,
            "video_width": frames.width,
            "device": device,
            "storage_device": torch.device("cpu") if offload_state_to_cpu else device,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": OrderedDict(),
            "obj_idx_to_id": OrderedDict(),
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
            # Ours: the feature cache.
            "feature_cache": cache,
        }
        return state

    def _get_image_feature(
        self, inference_state: InferenceState, frame_idx: int, batch_size: int
    ) -> Any:
        cache: FeatureCache | None = inference_state.get("feature_cache")
        if cache is not None:
            step = getattr(self._walk, "step", 1)
            n = inference_state["num_frames"]
            ahead = range(frame_idx + step, -1 if step < 0 else n, step)
            backbone_out = cache.features(frame_idx, ahead=ahead)
            # Hand it to the official code through its one-frame cache; the
            # image itself is never used downstream.
            placeholder = torch.empty(1, 3, 0, 0, device=self.device)
            inference_state["cached_features"] = {frame_idx: (placeholder, backbone_out)}
            return super()._get_image_feature(inference_state, frame_idx, batch_size)
        return super()._get_image_feature(inference_state, frame_idx, batch_size)

    def begin_walk(self, inference_state: InferenceState, reverse: bool) -> None:
        """Prepare a walk like the official ``propagate_in_video`` does before its loop."""
        self.propagate_in_video_preflight(inference_state)

    @contextlib.contextmanager
    def direction(self, reverse: bool) -> Iterator[None]:
        """Look ahead that way while encoding slices (per thread; restored after)."""
        before = getattr(self._walk, "step", 1)
        self._walk.step = -1 if reverse else 1
        try:
            yield
        finally:
            self._walk.step = before

    def walk_horizon(self) -> int:
        """How far behind its current slice a walk reads other slices' outputs.

        The memory bank (``num_maskmem - 1`` earlier slices, every
        ``memory_temporal_stride_for_eval``-th) and the object-pointer window
        (``max_obj_ptrs_in_encoder - 1`` slices), as
        ``_prepare_memory_conditioned_features`` picks them; conditioning
        slices aside, which walks never change. An upper bound: 15 with the
        usual settings.
        """
        stride = self.memory_temporal_stride_for_eval
        memory = (self.num_maskmem - 1) * stride + 2 if self.num_maskmem > 0 else 0
        pointers = self.max_obj_ptrs_in_encoder - 1 if self.use_obj_ptrs_in_encoder else 0
        return max(memory, pointers)

    @torch.inference_mode()
    def track_slice(
        self, inference_state: InferenceState, frame_idx: int, *, reverse: bool, skip: bool = False
    ) -> TrackedSlice:
        """Track every object of the state on one slice, as ``propagate_in_video`` does.

        A conditioning slice keeps its output; any other runs tracking with the
        memory encoder and stores its output as memory.

        Args:
            inference_state: The state (after :meth:`begin_walk`).
            frame_idx: The slice.
            reverse: Whether the walk goes to lower slice indices.
            skip: Leave non-conditioning slices untracked (an object that has
                stopped): they get empty masks and lose what earlier walks
                stored there.
        """
        state = inference_state
        device = state["device"]
        masks, scores, tracked = [], [], []
        with self.autocast(), self.direction(reverse):
            for obj_idx in range(self._get_obj_num(state)):
                output_dict = state["output_dict_per_obj"][obj_idx]
                if frame_idx in output_dict["cond_frame_outputs"]:
                    out = output_dict["cond_frame_outputs"][frame_idx]
                    pred_masks = out["pred_masks"].to(device, non_blocking=True)
                elif skip:
                    output_dict["non_cond_frame_outputs"].pop(frame_idx, None)
                    state["frames_tracked_per_obj"][obj_idx].pop(frame_idx, None)
                    size = self.image_size // 4
                    masks.append(torch.full((1, 1, size, size), NO_OBJ_SCORE, device=device))
                    scores.append(NO_OBJ_SCORE)
                    tracked.append(False)
                    continue
                else:
                    out, pred_masks = self._run_single_frame_inference(
                        inference_state=state,
                        output_dict=output_dict,
                        frame_idx=frame_idx,
                        batch_size=1,
                        is_init_cond_frame=False,
                        point_inputs=None,
                        mask_inputs=None,
                        reverse=reverse,
                        run_mem_encoder=True,
                    )
                    output_dict["non_cond_frame_outputs"][frame_idx] = out
                state["frames_tracked_per_obj"][obj_idx][frame_idx] = {"reverse": reverse}
                masks.append(pred_masks)
                scores.append(float(out["object_score_logits"].float().flatten()[0]))
                tracked.append(True)
            _, video_res = self._get_orig_video_res_output(state, torch.cat(masks, dim=0))
        return TrackedSlice(
            frame_idx=frame_idx,
            obj_ids=list(state["obj_ids"]),
            logits=video_res.float(),
            object_scores=scores,
            tracked=tracked,
        )

    @staticmethod
    @contextlib.contextmanager
    def hide_memory(state: InferenceState, keep: Callable[[int], bool]) -> Iterator[None]:
        """Hide every non-conditioning output whose slice fails ``keep(slice)``, then restore.

        Used to run the backward pass without the forward pass's memory (the
        reset of Ma et al. and Dong et al.) while keeping both passes' results.
        """
        hidden: list[dict[int, Any]] = []
        for output_dict in state["output_dict_per_obj"].values():
            outputs = output_dict["non_cond_frame_outputs"]
            gone = {t: outputs.pop(t) for t in list(outputs) if not keep(t)}
            hidden.append(gone)
        try:
            yield
        finally:
            for output_dict, gone in zip(
                state["output_dict_per_obj"].values(), hidden, strict=False
            ):
                for t, out in gone.items():
                    output_dict["non_cond_frame_outputs"].setdefault(t, out)
