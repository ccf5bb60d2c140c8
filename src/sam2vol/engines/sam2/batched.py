"""Batched tracking: several objects through one tracking step per slice.

The official SAM 2.1 ``propagate_in_video`` tracks every object at batch 1.
:func:`track_objects` runs the same official code once for all objects that
need tracking on a slice, with only the memory attention regrouped:

- each object's memories and pointers are gathered by the official
  ``_prepare_memory_conditioned_features`` on that object's own output dict,
  with the attention call recorded instead of run (:class:`_Recorder`);
- objects whose attention inputs have the same layout (memory length, object
  pointer tokens, shapes, dtypes) are attended in one ``memory_attention`` call,
  concatenated along the batch dimension (RoPE attention has no mask: nothing
  is padded; an object with a layout of its own is a group of one);
- the rest of the official ``_run_single_frame_inference`` / ``track_step``
  (SAM heads, memory encoder, bf16 memories, storage device, hole filling)
  runs once for the batch; its outputs are split back per object and stored
  as the official per-object call stores them.

The results equal the per-object ones up to floating-point rounding (batched
kernels may sum in another order). A slice with one object to track, and
models that couple the objects of a batch (``non_overlap_masks_for_mem_enc``),
take the official per-object path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sam2vol.engines.sam2.predictor import InferenceState, Sam2VolPredictor, TrackedSlice


@dataclass
class _AttentionCall:
    """The inputs of one object's ``memory_attention`` call (batch 1)."""

    curr: torch.Tensor
    curr_pos: torch.Tensor
    memory: torch.Tensor
    memory_pos: torch.Tensor
    num_obj_ptr_tokens: int

    @property
    def layout(self) -> tuple[Any, ...]:
        """What must agree for calls to share one batched attention."""
        tensors = (self.curr, self.curr_pos, self.memory, self.memory_pos)
        return (self.num_obj_ptr_tokens, *((tuple(t.shape), t.dtype) for t in tensors))


class _Proxy:
    """Stands in for the model inside official methods; everything not overridden is the model's."""

    def __init__(self, model: Sam2VolPredictor) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class _Recorder(_Proxy):
    """The model, with its memory attention recorded instead of run."""

    call: _AttentionCall | None = None

    def memory_attention(
        self,
        curr: list[torch.Tensor],
        curr_pos: list[torch.Tensor],
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int = 0,
    ) -> torch.Tensor:
        self.call = _AttentionCall(curr[0], curr_pos[0], memory, memory_pos, num_obj_ptr_tokens)
        return torch.empty(curr[0].shape, dtype=curr[0].dtype, device=curr[0].device)


class _BatchedModel(_Proxy):
    """The model, tracking a batch whose rows are different objects (one output dict each).

    The official ``_run_single_frame_inference``, ``track_step`` and
    ``_track_step`` run on this proxy (so that they call the override below);
    the other methods they call are the model's own.
    """

    def __init__(self, model: Sam2VolPredictor, output_dicts: Sequence[dict[str, Any]]) -> None:
        super().__init__(model)
        self._output_dicts = output_dicts
        self.groups: list[list[int]] = []  # rows attended together (for tests and reports)

    def _run_single_frame_inference(self, **kwargs: Any) -> Any:
        return type(self._model)._run_single_frame_inference(self, **kwargs)

    def track_step(self, *args: Any, **kwargs: Any) -> Any:
        return type(self._model).track_step(self, *args, **kwargs)

    def _track_step(self, *args: Any, **kwargs: Any) -> Any:
        return type(self._model)._track_step(self, *args, **kwargs)

    def _prepare_memory_conditioned_features(
        self,
        frame_idx: int,
        is_init_cond_frame: bool,
        current_vision_feats: list[torch.Tensor],
        current_vision_pos_embeds: list[torch.Tensor],
        feat_sizes: list[tuple[int, int]],
        output_dict: Any,
        num_frames: int,
        track_in_reverse: bool = False,
    ) -> torch.Tensor:
        """The official one per row (object), with one memory attention per layout group."""
        model = self._model
        official = type(model)._prepare_memory_conditioned_features
        n = current_vision_feats[-1].size(1)
        assert n == len(self._output_dicts)
        pix_feats: list[torch.Tensor | None] = [None] * n
        groups: dict[tuple[Any, ...], list[tuple[int, _AttentionCall]]] = {}
        for row, obj_output_dict in enumerate(self._output_dicts):
            recorder = _Recorder(model)
            pix_feat = official(
                recorder,
                frame_idx=frame_idx,
                is_init_cond_frame=is_init_cond_frame,
                current_vision_feats=[x[:, row : row + 1] for x in current_vision_feats],
                current_vision_pos_embeds=[x[:, row : row + 1] for x in current_vision_pos_embeds],
                feat_sizes=feat_sizes,
                output_dict=obj_output_dict,
                num_frames=num_frames,
                track_in_reverse=track_in_reverse,
            )
            if recorder.call is None:  # no memory attention (a model without memory)
                pix_feats[row] = pix_feat
            else:
                groups.setdefault(recorder.call.layout, []).append((row, recorder.call))
        channels, (h, w) = model.hidden_dim, feat_sizes[-1]
        for members in groups.values():
            calls = [call for _, call in members]
            # Concatenated along the batch dimension (dim 1 of [HW, B, C]); nothing padded.
            out = model.memory_attention(
                curr=[torch.cat([c.curr for c in calls], dim=1)],
                curr_pos=[torch.cat([c.curr_pos for c in calls], dim=1)],
                memory=torch.cat([c.memory for c in calls], dim=1),
                memory_pos=torch.cat([c.memory_pos for c in calls], dim=1),
                num_obj_ptr_tokens=calls[0].num_obj_ptr_tokens,
            )
            # (HW)BC => BCHW, as the official function reshapes it.
            out = out.permute(1, 2, 0).view(len(calls), channels, h, w)
            for i, (row, _) in enumerate(members):
                pix_feats[row] = out[i : i + 1]
            self.groups.append([row for row, _ in members])
        return torch.cat(pix_feats, dim=0)  # type: ignore[arg-type]


def _row(x: torch.Tensor | None, i: int) -> torch.Tensor | None:
    """Row ``i`` of a batched output, in storage of its own (as a batch-1 call gives)."""
    return None if x is None else x[i : i + 1].clone()


def track_objects(
    predictor: Sam2VolPredictor,
    states: Sequence[InferenceState],
    frame_idx: int,
    *,
    reverse: bool,
    skip: Sequence[bool],
) -> list[TrackedSlice]:
    """Track one slice for several one-object states, batching the objects that need it.

    Returns what ``predictor.track_slice(state, frame_idx, reverse=reverse,
    skip=skip[i])`` returns for each state, and leaves each state as that call
    leaves it (up to rounding).

    Args:
        predictor: The model (shared by the states).
        states: One inference state per object, each holding one object,
            all on the same frames (after ``begin_walk``).
        frame_idx: The slice.
        reverse: Whether the walk goes to lower slice indices.
        skip: Per state: leave non-conditioning slices untracked (a stopped
            object), as ``track_slice`` does.
    """
    if len(states) != len(skip):
        raise ValueError("one skip flag per state")
    for state in states:
        if predictor._get_obj_num(state) != 1:
            raise ValueError("batched tracking takes states of one object each")
    # Objects on a slice of their own conditioning, or stopped, only read or clear their
    # state: the official per-object call does that.
    todo = [
        i
        for i, state in enumerate(states)
        if not skip[i] and frame_idx not in state["output_dict_per_obj"][0]["cond_frame_outputs"]
    ]
    results: list[TrackedSlice | None] = [None] * len(states)
    if len(todo) < 2 or predictor.non_overlap_masks_for_mem_enc:
        todo = []
    for i, state in enumerate(states):
        if i not in todo:
            results[i] = predictor.track_slice(state, frame_idx, reverse=reverse, skip=skip[i])
    if todo:
        for i, tracked in zip(
            todo,
            _track_batch(predictor, [states[i] for i in todo], frame_idx, reverse),
            strict=True,
        ):
            results[i] = tracked
    return results  # type: ignore[return-value]


@torch.inference_mode()
def _track_batch(
    predictor: Sam2VolPredictor, states: list[InferenceState], frame_idx: int, reverse: bool
) -> list[TrackedSlice]:
    """Track every state's object on a slice that is none of theirs, in one batch."""
    output_dicts = [state["output_dict_per_obj"][0] for state in states]
    batched = _BatchedModel(predictor, output_dicts)
    # A copy of the first state stands in for all in the official call (frames, features,
    # storage device), with fresh constants: each state's own are set below, as officially.
    shared = dict(states[0], constants={})
    with predictor.autocast():
        out, pred_masks = batched._run_single_frame_inference(
            inference_state=shared,
            output_dict=None,  # the rows' own dicts are in ``batched``
            frame_idx=frame_idx,
            batch_size=len(states),
            is_init_cond_frame=False,
            point_inputs=None,
            mask_inputs=None,
            reverse=reverse,
            run_mem_encoder=True,
        )
        _, video_res = predictor._get_orig_video_res_output(states[0], pred_masks)
    video_res = video_res.float()
    results = []
    for i, (state, obj_output_dict) in enumerate(zip(states, output_dicts, strict=True)):
        pos_enc = out["maskmem_pos_enc"]
        # Mirrors the compact output of the official ``_run_single_frame_inference``, one row.
        obj_out = {
            "maskmem_features": _row(out["maskmem_features"], i),
            "maskmem_pos_enc": predictor._get_maskmem_pos_enc(
                state,
                {"maskmem_pos_enc": None if pos_enc is None else [x[i : i + 1] for x in pos_enc]},
            ),
            "pred_masks": _row(out["pred_masks"], i),
            "obj_ptr": _row(out["obj_ptr"], i),
            "object_score_logits": _row(out["object_score_logits"], i),
        }
        # As the official ``propagate_in_video`` stores a tracked slice.
        obj_output_dict["non_cond_frame_outputs"][frame_idx] = obj_out
        state["frames_tracked_per_obj"][0][frame_idx] = {"reverse": reverse}
        results.append(
            TrackedSlice(
                frame_idx=frame_idx,
                obj_ids=list(state["obj_ids"]),
                logits=video_res[i : i + 1],
                object_scores=[float(obj_out["object_score_logits"].float().flatten()[0])],
                tracked=[True],
            )
        )
    return results
