"""Losses: segmentation (Dice + BCE, with SAM 2's own head terms), SRPP (MSE), BD (balanced BCE).

Segmentation, per tracked slice and clip, as SAM 2 is trained (its
``MultiStepMultiMasksAndIous``) with the paper's Dice + BCE as the mask loss:

- mask loss = BCE + Dice of the decoder's mask logits (before the object-score
  gate, upsampled to the input size); with several candidate masks, the lowest
  one counts (SAM's multimask rule); only on slices showing the object;
- IoU loss = L1 between the predicted IoU of that mask and its real IoU; only
  on slices showing the object;
- object-score loss = BCE of the object score against "the slice shows the object".

The last two keep the heads that pick and gate SAM 2's output mask in step
with the masks; without them a slice the model wrongly calls empty gets no
gradient at all. The mean over slices and clips is the segmentation loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss per map over the last two axes (smoothed by ``eps``)."""
    prob = logits.sigmoid()
    inter = (prob * target).sum(dim=(-2, -1))
    total = prob.sum(dim=(-2, -1)) + target.sum(dim=(-2, -1))
    return 1 - (2 * inter + eps) / (total + eps)


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy per map over the last two axes."""
    return F.binary_cross_entropy_with_logits(
        logits, target.expand_as(logits), reduction="none"
    ).mean(dim=(-2, -1))


def segmentation_loss(
    mask_logits: list[torch.Tensor],
    ious: list[torch.Tensor],
    object_scores: torch.Tensor,
    target: torch.Tensor,
) -> torch.Tensor:
    """The segmentation loss of a batch of clips (see the module docstring).

    Args:
        mask_logits: Per slice, ``[B, M, h, w]`` candidate mask logits.
        ious: Per slice, ``[B, M]`` predicted IoUs.
        object_scores: ``[L, B]`` object score logits.
        target: ``[L, B, S, S]`` reference masks (0/1) at the input size.
    """
    size = target.shape[-2:]
    present = (target.flatten(2).amax(dim=-1) > 0).float()  # [L, B]
    per_slice = []
    for t, (logits, iou_pred) in enumerate(zip(mask_logits, ious, strict=True)):
        logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
        gt = target[t][:, None]  # [B, 1, S, S]
        combo = bce_loss(logits, gt) + dice_loss(logits, gt)  # [B, M]
        best = combo.argmin(dim=1, keepdim=True)
        with torch.no_grad():
            hard = logits > 0
            inter = (hard & (gt > 0)).flatten(2).sum(-1).float()
            union = (hard | (gt > 0)).flatten(2).sum(-1).float()
            real_iou = inter / union.clamp(min=1)
        iou_term = (iou_pred.float() - real_iou).abs().gather(1, best).squeeze(1)
        mask_term = combo.gather(1, best).squeeze(1)
        object_term = F.binary_cross_entropy_with_logits(
            object_scores[t].float(), present[t], reduction="none"
        )
        per_slice.append(present[t] * (mask_term + iou_term) + object_term)
    return torch.stack(per_slice).mean()


def srpp_loss(pred: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """MSE over the D(D-1) ordered pairs i != j of predicted against true offsets j - i.

    Args:
        pred: ``[B, D, D]`` predictions (entry (i, j) for position(j) - position(i)).
        positions: ``[B, D]`` slice positions.
    """
    positions = positions.float()
    target = positions[:, None, :] - positions[:, :, None]
    d = pred.shape[-1]
    off = ~torch.eye(d, dtype=torch.bool, device=pred.device)
    return F.mse_loss(pred.float()[:, off], target[:, off])


BD_LOSSES = ("normalised", "unnormalised")


def balanced_bce(
    logits: torch.Tensor, labels: torch.Tensor, normalise: bool = True
) -> torch.Tensor:
    """Class-balanced BCE: boundary pixels weighted by the share of non-boundary pixels
    and non-boundary pixels by the share of boundary pixels (over the whole batch).

    Normalised (the default), the weighted sum is divided by the sum of the
    weights: the loss is then the mean BCE on boundary pixels and the mean BCE
    elsewhere, averaged (ln 2 = 0.69 for an uninformed head), on the scale of
    the segmentation term's BCE, so a weight of 0.1 makes it count a tenth of
    that. Unnormalised (the earlier form, for ablations), it is divided by the
    number of pixels: about 2p(1-p) times that, p the boundary share, which is
    a few percent of it on CT-sized slices.
    """
    labels = labels.float()
    n = labels.numel()
    positive = labels.sum()
    w_pos = (n - positive) / n
    w_neg = positive / n
    weights = labels * w_pos + (1 - labels) * w_neg
    if not normalise:
        return F.binary_cross_entropy_with_logits(logits.float(), labels, weight=weights)
    per_pixel = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    return (weights * per_pixel).sum() / weights.sum().clamp(min=1e-12)
