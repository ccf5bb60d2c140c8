"""Batched tracking: several objects (and slices) through one tracking step.

The official SAM 2.1 ``propagate_in_video`` tracks every object at batch 1,
one slice at a time. :func:`track_rows` runs the same official code once for
a batch of rows, each an object on a slice of its own walk (the objects of
one slice, or also the slice of a second walk going the other way,
:mod:`~sam2vol.engines.sam2.overlap`), with only the image
features gathered per row and the memory attention regrouped:

- each row's image features are the official ``_get_image_feature``'s for its
  slice (rows on one slice share one call);
- each row's memories and pointers are gathered by the official
  ``_prepare_memory_conditioned_features`` on its object's output dict, for
  its slice and direction, with the attention call recorded instead of run
  (:class:`_Recorder`);
- rows whose attention inputs have the same layout (memory length, object
  pointer tokens, shapes, dtypes) are attended in one ``memory_attention`` call,
  concatenated along the batch dimension; with ``pad_memories``, rows whose
  memories differ in length only share one call too, padded and masked
  (:mod:`~sam2vol.engines.sam2.padded_attention`); otherwise a row with a
  layout of its own is a group of one;
- the rest of the official ``_run_single_frame_inference`` / ``track_step``
  (SAM heads, memory encoder, bf16 memories, storage device, hole filling)
  runs once for the batch; its outputs are split back per object and stored
  as the official per-object call stores them.

The results equal the per-row ones up to floating-point rounding (batched
kernels may sum in another order). A batch with one row to track, and models
that couple the rows of a batch (``non_overlap_masks_for_mem_enc``), take the
official per-object path. Rows are independent as long as none reads an output
another row writes: true of the objects of one slice, and of two walks kept
apart by :mod:`~sam2vol.engines.sam2.overlap`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sam2vol.engines.sam2.padded_attention import can_pad, padded_memory_attention
from sam2vol.engines.sam2.predictor import (
    InferenceState,
    Sam2VolPredictor,
    TrackedSlice,
    promoted_dtype,
)


@dataclass(frozen=True, eq=False)
class Row:
    """One object to track on one slice.

    Attributes:
        state: The object's inference state (one object, after ``begin_walk``).
        frame_idx: The slice.
        reverse: Whether its walk goes to lower slice indices.
        skip: Leave a non-conditioning slice untracked (a stopped object), as
            ``track_slice`` does.
    """

    state: InferenceState
    frame_idx: int
    reverse: bool
    skip: bool = False


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

    @property
    def padded_layout(self) -> tuple[Any, ...]:
        """What must agree for calls to share one padded attention (all but the lengths, and
        the memory's dtype only as attended)."""
        memory_dtype = promoted_dtype(self.memory.dtype, self.curr.dtype)
        return (
            self.curr.shape[0],
            *((tuple(t.shape[1:]), t.dtype) for t in (self.curr, self.curr_pos, self.memory_pos)),
            (tuple(self.memory.shape[1:]), memory_dtype),
        )


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
    """The model, tracking a batch of rows (one object on one slice each).

    The official ``_run_single_frame_inference``, ``track_step`` and
    ``_track_step`` run on this proxy (so that they call the overrides below);
    the other methods they call are the model's own.
    """

    def __init__(self, model: Sam2VolPredictor, rows: Sequence[Row], pad: bool = False) -> None:
        super().__init__(model)
        self._rows = rows
        self._pad = pad and can_pad(model.memory_attention)
        self.groups: list[list[int]] = []  # rows attended together (for tests and reports)

    def _get_image_feature(
        self, inference_state: InferenceState, frame_idx: int, batch_size: int
    ) -> Any:
        """Each row's slice features (the official call per run of rows on one slice)."""
        assert batch_size == len(self._rows)
        runs: list[list[Row]] = []
        for row in self._rows:
            if runs and runs[-1][0].frame_idx == row.frame_idx:
                runs[-1].append(row)
            else:
                runs.append([row])
        parts = []
        for run in runs:
            with self._model.direction(run[0].reverse):  # the cache reads ahead that way
                parts.append(
                    self._model._get_image_feature(inference_state, run[0].frame_idx, len(run))
                )
        if len(parts) == 1:
            return parts[0]
        image, backbone_out, feats, pos, sizes = parts[0]
        # Flattened features are [HW, B, C]: rows along dim 1.
        feats = [torch.cat([p[2][i] for p in parts], dim=1) for i in range(len(feats))]
        pos = [torch.cat([p[3][i] for p in parts], dim=1) for i in range(len(pos))]
        return image, backbone_out, feats, pos, sizes

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
        """The official one per row (its slice and direction), one memory attention per group.

        A group holds the rows of one layout, or with padding every row
        whose inputs differ in memory length only.
        """
        model = self._model
        official = type(model)._prepare_memory_conditioned_features
        n = current_vision_feats[-1].size(1)
        assert n == len(self._rows)
        pix_feats: list[torch.Tensor | None] = [None] * n
        groups: dict[tuple[Any, ...], list[tuple[int, _AttentionCall]]] = {}
        for row, spec in enumerate(self._rows):
            recorder = _Recorder(model)
            pix_feat = official(
                recorder,
                frame_idx=spec.frame_idx,
                is_init_cond_frame=is_init_cond_frame,
                current_vision_feats=[x[:, row : row + 1] for x in current_vision_feats],
                current_vision_pos_embeds=[x[:, row : row + 1] for x in current_vision_pos_embeds],
                feat_sizes=feat_sizes,
                output_dict=spec.state["output_dict_per_obj"][0],
                num_frames=num_frames,
                track_in_reverse=spec.reverse,
            )
            if recorder.call is None:  # no memory attention (a model without memory)
                pix_feats[row] = pix_feat
            else:
                call = recorder.call
                key = call.padded_layout if self._pad else call.layout
                groups.setdefault(key, []).append((row, call))
        channels, (h, w) = model.hidden_dim, feat_sizes[-1]
        for members in groups.values():
            calls = [call for _, call in members]
            curr = torch.cat([c.curr for c in calls], dim=1)
            curr_pos = torch.cat([c.curr_pos for c in calls], dim=1)
            if len({c.layout for c in calls}) == 1:
                # Concatenated along the batch dimension (dim 1 of [HW, B, C]); nothing padded.
                out = model.memory_attention(
                    curr=[curr],
                    curr_pos=[curr_pos],
                    memory=torch.cat([c.memory for c in calls], dim=1),
                    memory_pos=torch.cat([c.memory_pos for c in calls], dim=1),
                    num_obj_ptr_tokens=calls[0].num_obj_ptr_tokens,
                )
            else:
                out = padded_memory_attention(
                    model.memory_attention,
                    curr,
                    curr_pos,
                    [c.memory for c in calls],
                    [c.memory_pos for c in calls],
                    [c.num_obj_ptr_tokens for c in calls],
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


def track_rows(
    predictor: Sam2VolPredictor, rows: Sequence[Row], *, pad_memories: bool = False
) -> list[TrackedSlice]:
    """Track each row's object on its slice, batching the rows that need tracking.

    Returns, per row, what ``predictor.track_slice(row.state, row.frame_idx,
    reverse=row.reverse, skip=row.skip)`` returns, and leaves each state as
    those calls, in row order, leave it (up to rounding). No row may read what
    another row writes (its slice's output); rows of one state on the same
    slice are refused.

    Args:
        predictor: The model (shared by the states).
        rows: The objects and their slices, each state holding one object, all
            states on the same frames.
        pad_memories: Let rows whose memories differ in length share one
            memory-attention call, padded and masked (it pays where a batch
            costs about what one row costs: an accelerator).
    """
    for row in rows:
        if predictor._get_obj_num(row.state) != 1:
            raise ValueError("batched tracking takes states of one object each")
    keys = [(id(row.state), row.frame_idx) for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError("a state appears twice on one slice")
    # Objects on a slice of their own conditioning, or stopped, only read or clear their
    # state: the official per-object call does that.
    todo = [
        i
        for i, row in enumerate(rows)
        if not row.skip
        and row.frame_idx not in row.state["output_dict_per_obj"][0]["cond_frame_outputs"]
    ]
    results: list[TrackedSlice | None] = [None] * len(rows)
    if len(todo) < 2 or predictor.non_overlap_masks_for_mem_enc:
        todo = []
    for i, row in enumerate(rows):
        if i not in todo:
            results[i] = predictor.track_slice(
                row.state, row.frame_idx, reverse=row.reverse, skip=row.skip
            )
    if todo:
        batch = [rows[i] for i in todo]
        for i, tracked in zip(todo, _track_batch(predictor, batch, pad_memories), strict=True):
            results[i] = tracked
    return results  # type: ignore[return-value]


@torch.inference_mode()
def _track_batch(
    predictor: Sam2VolPredictor, rows: list[Row], pad_memories: bool = False
) -> list[TrackedSlice]:
    """Track every row's object on its slice (none of its conditioning slices), in one batch."""
    batched = _BatchedModel(predictor, rows, pad_memories)
    states = [row.state for row in rows]
    # A copy of the first state stands in for all in the official call (frames, features,
    # storage device), with fresh constants: each state's own are set below, as officially.
    # Slice and direction there are the first row's; the overrides use each row's own.
    shared = dict(states[0], constants={})
    with predictor.autocast():
        out, pred_masks = batched._run_single_frame_inference(
            inference_state=shared,
            output_dict=None,  # the rows' own dicts are in ``batched``
            frame_idx=rows[0].frame_idx,
            batch_size=len(rows),
            is_init_cond_frame=False,
            point_inputs=None,
            mask_inputs=None,
            reverse=rows[0].reverse,
            run_mem_encoder=True,
        )
        _, video_res = predictor._get_orig_video_res_output(states[0], pred_masks)
    video_res = video_res.float()
    results = []
    for i, row in enumerate(rows):
        state = row.state
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
        state["output_dict_per_obj"][0]["non_cond_frame_outputs"][row.frame_idx] = obj_out
        state["frames_tracked_per_obj"][0][row.frame_idx] = {"reverse": row.reverse}
        results.append(
            TrackedSlice(
                frame_idx=row.frame_idx,
                obj_ids=list(state["obj_ids"]),
                logits=video_res[i : i + 1],
                object_scores=[float(obj_out["object_score_logits"].float().flatten()[0])],
                tracked=[True],
            )
        )
    return results
