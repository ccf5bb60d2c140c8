"""SAM 2 on clips of slices for training: frozen (and cached) image encoder, tracked clip, heads.

The model is the SAM 2 engine's own predictor (same config, same weights, same
key names), so the weights it learns load straight back into the engine. A
clip is tracked as SAM 2's training does (``SAM2Train.forward_tracking``): the
prompted slice first, as a conditioning frame, then each next slice with
memory of the previous ones, every prediction encoded into memory. A reversed
clip is tracked in the order of its slices; SAM 2 only uses relative frame
positions, so this is the same as tracking "in reverse".

Frozen: the image encoder (its features are computed without gradients and
may be cached across epochs), the prompt encoder, the object-pointer
projections and, unless asked, the memory encoder. Trained: memory attention
and the mask decoder (including its two high-resolution feature projections,
applied here after the cache).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sam2vol.engines.sam2.checkpoints import ModelSource
from sam2vol.engines.sam2.frames import SliceFrames
from sam2vol.finetune.clips import ClipData, boundary_labels
from sam2vol.finetune.heads import BoundaryHead, SRPPHead
from sam2vol.finetune.losses import balanced_bce, segmentation_loss, srpp_loss

SRPP_FEATURES = ("memory", "encoder")

TRAINED_PARTS = ("memory_attention", "sam_mask_decoder")


def build_sam2(source: ModelSource, image_size: int, device: torch.device) -> Any:
    """The engine's SAM 2 predictor (see :func:`sam2vol.engines.sam2.engine.build_predictor`)."""
    from sam2vol.engines.sam2.models import build_predictor

    return build_predictor(source, image_size=image_size, device=device)


class FeatureStore:
    """Frozen image-encoder outputs per slice, kept on the CPU within a byte budget.

    Args:
        budget_bytes: Most memory the stored features may take (0: keep none).
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = int(budget_bytes)
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._store: dict[Hashable, list[torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._store)

    def get(self, key: Hashable) -> list[torch.Tensor] | None:
        levels = self._store.get(key)
        if levels is None:
            self.misses += 1
        else:
            self.hits += 1
        return levels

    def put(self, key: Hashable, levels: list[torch.Tensor]) -> None:
        size = sum(t.numel() * t.element_size() for t in levels)
        if key not in self._store and self.bytes + size <= self.budget_bytes:
            self._store[key] = [t.detach().to("cpu").clone() for t in levels]
            self.bytes += size


@dataclass
class ClipInputs:
    """A batch of B clips of L slices, ready for the model.

    Attributes:
        features: Per feature level, ``[L, B, C, h, w]`` image-encoder outputs.
        pos: Per level, ``[1, C, h, w]`` positional encodings.
        points: ``[B, 1, 2]`` prompt (x, y) in input pixels on each clip's first slice.
        labels: ``[B, 1]`` point labels (1: positive).
        target: ``[L, B, S, S]`` reference masks (0/1) at the input size.
        positions: ``[B, L]`` slice positions along the volume.
    """

    features: list[torch.Tensor]
    pos: list[torch.Tensor]
    points: torch.Tensor
    labels: torch.Tensor
    target: torch.Tensor
    positions: torch.Tensor


@dataclass
class ClipOutput:
    """What the model gives for a batch of clips.

    Attributes:
        mask_logits: Per slice, ``[B, M, S/4, S/4]`` candidate mask logits before the
            object-score gate.
        ious: Per slice, ``[B, M]`` predicted IoUs of the candidates.
        object_scores: ``[L, B]`` object score logits.
        masks: ``[L, B, S/4, S/4]`` the output mask logits (what inference gives).
        slice_features: ``[L, B, C, S/16, S/16]`` memory-conditioned slice features
            (what the mask decoder and both heads read).
        srpp: ``[B, L, L]`` predicted offsets, or None.
        boundary: ``[L, B, S/4, S/4]`` boundary logits, or None.
    """

    mask_logits: list[torch.Tensor]
    ious: list[torch.Tensor]
    object_scores: torch.Tensor
    masks: torch.Tensor
    slice_features: torch.Tensor
    srpp: torch.Tensor | None
    boundary: torch.Tensor | None


@dataclass
class LossTerms:
    """The losses of one batch (``srpp`` and ``bd`` None when the head is off)."""

    total: torch.Tensor
    seg: torch.Tensor
    srpp: torch.Tensor | None
    bd: torch.Tensor | None


class ClipModel(nn.Module):
    """SAM 2 plus the SRPP and BD heads, trained on clips.

    Args:
        sam: A SAM 2 model (``SAM2Base`` subclass, e.g. the engine's predictor).
        srpp: Add the SRPP head.
        bd: Add the BD head.
        train_memory_encoder: Train the memory encoder too.
        seed: Seed of the heads' initialisation.
        feature_cache_bytes: Budget of the encoder feature cache.
        srpp_features: What SRPP reads per slice: ``memory`` (the
            memory-conditioned features, so its gradient reaches memory
            attention) or ``encoder`` (the frozen image encoder's top-level
            features, as secondary summaries of the paper describe; with a
            frozen encoder its gradient reaches the SRPP head only).
    """

    def __init__(
        self,
        sam: Any,
        *,
        srpp: bool = True,
        bd: bool = True,
        train_memory_encoder: bool = False,
        seed: int = 0,
        feature_cache_bytes: int = 0,
        srpp_features: str = "memory",
    ) -> None:
        super().__init__()
        if srpp_features not in SRPP_FEATURES:
            raise ValueError(f"srpp_features must be one of {SRPP_FEATURES}, got {srpp_features!r}")
        self.srpp_features = srpp_features
        self.sam = sam
        dim = int(sam.hidden_dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.srpp_head = SRPPHead(dim) if srpp else None
            self.bd_head = BoundaryHead(dim) if bd else None
        device = next(sam.parameters()).device
        for head in (self.srpp_head, self.bd_head):
            if head is not None:
                head.to(device)
        self.trained_parts = TRAINED_PARTS + (("memory_encoder",) if train_memory_encoder else ())
        for name, param in sam.named_parameters():
            param.requires_grad_(name.split(".")[0] in self.trained_parts)
        self.store = FeatureStore(feature_cache_bytes)
        self._pos: list[torch.Tensor] | None = None
        self._captured: list[tuple[torch.Tensor, ...]] = []
        sam.sam_mask_decoder.register_forward_hook(self._capture)

    # ----- parameters ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> ClipModel:
        super().train(mode)
        self.sam.image_encoder.eval()  # frozen: no dropout or drop-path there
        return self

    def sam_parameters(self) -> list[nn.Parameter]:
        """The SAM 2 parameters being trained."""
        return [p for p in self.sam.parameters() if p.requires_grad]

    def head_parameters(self) -> list[nn.Parameter]:
        return [
            p for head in (self.srpp_head, self.bd_head) if head is not None
            for p in head.parameters()
        ]  # fmt: skip

    def heads_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            name: head.state_dict()
            for name, head in (("srpp", self.srpp_head), ("bd", self.bd_head))
            if head is not None
        }

    def load_heads_state(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        for name, head in (("srpp", self.srpp_head), ("bd", self.bd_head)):
            if head is not None:
                head.load_state_dict(state[name])

    @property
    def device(self) -> torch.device:
        return next(self.sam.parameters()).device

    @property
    def image_size(self) -> int:
        return int(self.sam.image_size)

    # ----- inputs ---------------------------------------------------------------------------
    @torch.no_grad()
    def encode(
        self, keys: Sequence[Hashable], frames: Callable[[list[int]], torch.Tensor]
    ) -> list[torch.Tensor]:
        """Image-encoder outputs of some slices, from the cache or computed.

        Args:
            keys: One cache key per slice (e.g. ``(case_id, slice)``).
            frames: Builds the normalised frames ``[n, 3, S, S]`` of positions in ``keys``.

        Returns:
            Per level, ``[len(keys), C, h, w]`` on the model's device.
        """
        device = self.device
        found = [self.store.get(k) for k in keys]
        missing = [i for i, levels in enumerate(found) if levels is None]
        # One slice per call on the CPU (batching does not pay there, and results then
        # never depend on what else is in the batch); up to 8 on a GPU.
        chunk = 1 if device.type == "cpu" else 8
        for start in range(0, len(missing), chunk):
            todo = missing[start : start + chunk]
            images = frames(todo).to(device)
            out = self.sam.image_encoder(images)
            if self._pos is None:
                self._pos = [p[:1].detach().float() for p in out["vision_pos_enc"]]
            for n, i in enumerate(todo):
                levels = [f[n : n + 1].float() for f in out["backbone_fpn"]]
                self.store.put(keys[i], levels)
                found[i] = levels
        return [
            torch.cat([levels[k].to(device) for levels in found])  # type: ignore[index]
            for k in range(len(found[0]))  # type: ignore[arg-type]
        ]

    def prepare(self, clips: Sequence[ClipData]) -> ClipInputs:
        """Encode a batch of clips (all of one length and slice size) and build the targets."""
        size = self.image_size
        device = self.device
        per_clip, targets, points = [], [], []
        for data in clips:
            frames = SliceFrames(data.image, size)
            keys = [(data.clip.case_id, s) for s in data.clip.slices]
            per_clip.append(self.encode(keys, frames.batch))
            mask = torch.from_numpy(np.ascontiguousarray(data.mask, dtype=np.float32))[:, None]
            if mask.shape[-2:] != (size, size):
                mask = F.interpolate(mask, size=(size, size), mode="bilinear", align_corners=False)
            targets.append((mask[:, 0] >= 0.5).float())
            row, col = data.clip.point
            height, width = data.image.shape[1:]
            # As the engine does for a click: pixel coordinates scaled to the input size.
            points.append([col / width * size, row / height * size])
        features = [
            torch.stack([levels[k] for levels in per_clip], dim=1) for k in range(len(per_clip[0]))
        ]
        assert self._pos is not None
        return ClipInputs(
            features=features,
            pos=[p.to(device) for p in self._pos],
            points=torch.tensor(points, dtype=torch.float32, device=device)[:, None],
            labels=torch.ones(len(clips), 1, dtype=torch.int32, device=device),
            target=torch.stack(targets, dim=1).to(device),
            positions=torch.from_numpy(np.stack([d.clip.positions for d in clips])).to(device),
        )

    # ----- forward --------------------------------------------------------------------------
    def _capture(self, _module: nn.Module, _inputs: Any, outputs: Any) -> None:
        self._captured.append(outputs)

    def forward(self, inputs: ClipInputs) -> ClipOutput:
        """Track a batch of clips from their prompted first slice."""
        sam = self.sam
        n_frames, batch = inputs.features[0].shape[:2]
        pos = [p.expand(batch, -1, -1, -1) for p in inputs.pos]
        output_dict: dict[str, dict[int, Any]] = {
            "cond_frame_outputs": {},
            "non_cond_frame_outputs": {},
        }
        mask_logits, ious, scores, masks, pix_feats, fine = [], [], [], [], [], []
        encoder_feats = []
        for t in range(n_frames):
            fpn = [level[t] for level in inputs.features]
            if sam.use_high_res_features_in_sam:  # as SAM2Base.forward_image does
                fpn[0] = sam.sam_mask_decoder.conv_s0(fpn[0])
                fpn[1] = sam.sam_mask_decoder.conv_s1(fpn[1])
            backbone = {"backbone_fpn": fpn, "vision_pos_enc": pos}
            _, feats, feat_pos, sizes = sam._prepare_backbone_features(backbone)
            # The frozen encoder's top level, [HW, B, C] -> [B, C, h, w].
            encoder_feats.append(feats[-1].permute(1, 2, 0).reshape(batch, -1, *sizes[-1]))
            point_inputs = (
                {"point_coords": inputs.points, "point_labels": inputs.labels} if t == 0 else None
            )
            self._captured.clear()
            out, sam_outputs, _, pix_feat = sam._track_step(
                t, t == 0, feats, feat_pos, sizes, point_inputs, None, output_dict, n_frames,
                False, None,
            )  # fmt: skip
            _, _, _, low_res, high_res, obj_ptr, object_score = sam_outputs
            out["pred_masks"] = low_res
            out["pred_masks_high_res"] = high_res
            out["obj_ptr"] = obj_ptr
            sam._encode_memory_in_output(
                feats, sizes, point_inputs, True, high_res, object_score, out
            )
            kind = "cond_frame_outputs" if t == 0 else "non_cond_frame_outputs"
            output_dict[kind][t] = out
            raw_masks, raw_ious = self._captured[-1][:2]
            mask_logits.append(raw_masks)
            ious.append(raw_ious)
            scores.append(object_score.reshape(batch))
            masks.append(low_res[:, 0])
            pix_feats.append(pix_feat)
            if sam.use_high_res_features_in_sam:
                fine.append(fpn[:2])
        self._captured.clear()
        slice_feats = torch.stack(pix_feats)  # [L, B, C, h, w]
        srpp_in = slice_feats if self.srpp_features == "memory" else torch.stack(encoder_feats)
        srpp = None if self.srpp_head is None else self.srpp_head(srpp_in.transpose(0, 1))
        boundary = None
        if self.bd_head is not None:
            levels = None
            if fine:
                levels = [torch.cat([f[k] for f in fine]) for k in range(2)]
            logits = self.bd_head(slice_feats.flatten(0, 1), inputs.pos[-1], levels)
            boundary = logits.reshape(n_frames, batch, *logits.shape[-2:])
        return ClipOutput(
            mask_logits, ious, torch.stack(scores), torch.stack(masks), slice_feats, srpp, boundary
        )

    def losses(
        self,
        output: ClipOutput,
        inputs: ClipInputs,
        *,
        srpp_weight: float = 0.01,
        bd_weight: float = 0.1,
        boundary_radius: int = 2,
        bd_loss: str = "normalised",
    ) -> LossTerms:
        """Segmentation + ``srpp_weight`` * SRPP + ``bd_weight`` * BD."""
        seg = segmentation_loss(
            output.mask_logits, output.ious, output.object_scores, inputs.target
        )
        total = seg
        srpp = bd = None
        if output.srpp is not None:
            srpp = srpp_loss(output.srpp, inputs.positions)
            total = total + srpp_weight * srpp
        if output.boundary is not None:
            size = inputs.target.shape[-2:]
            logits = F.interpolate(
                output.boundary.flatten(0, 1)[:, None].float(),
                size=size,
                mode="bilinear",
                align_corners=False,
            )
            labels = boundary_labels(inputs.target.flatten(0, 1)[:, None], boundary_radius)
            bd = balanced_bce(logits, labels, normalise=bd_loss == "normalised")
            total = total + bd_weight * bd
        return LossTerms(total, seg, srpp, bd)


def dice_scores(output: ClipOutput, target: torch.Tensor) -> torch.Tensor:
    """Dice of each clip's output masks against the reference, over all its slices.

    Returns:
        ``[B]``; 1 where both are empty.
    """
    size = target.shape[-2:]
    logits = F.interpolate(output.masks.float(), size=size, mode="bilinear", align_corners=False)
    pred = logits > 0  # [L, B, S, S]
    gt = target > 0
    inter = (pred & gt).sum(dim=(0, 2, 3)).float()
    total = pred.sum(dim=(0, 2, 3)).float() + gt.sum(dim=(0, 2, 3)).float()
    return torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total))
