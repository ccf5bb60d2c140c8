"""Ma et al.'s box prompt with SAM 2: the image predictor's mask of a box.

MedSAM2's ``infer_SAM2_3D_npz.py`` does not give the box to the video
predictor: ``SAM2ImagePredictor.predict(box=..., multimask_output=False)``
turns it into a mask on the middle slice, and that mask is the video's prompt
(``add_new_mask``). This module computes the same mask from an engine's model
and frame, following ``SAM2ImagePredictor.set_image`` and ``_predict``
(without torchvision, which the image predictor needs only to resize and
normalise: the engine's frame is used as it is).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def box_to_mask(engine: Any, slice_index: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """The image predictor's single mask for a box on one slice of the engine's stack.

    Args:
        engine: A :class:`~sam2vol.engines.sam2.Sam2Engine` with its image set.
        slice_index: The slice.
        box: ``(row0, col0, row1, col1)`` in the engine's (display) pixels, inclusive.

    Returns:
        The bool mask ``(H, W)`` at the slice's resolution (logits > 0).
    """
    import torch
    import torch.nn.functional as F

    model, frames = engine.predictor, engine.frames
    if frames is None:
        raise RuntimeError("set the engine's image before box_to_mask()")
    size, (h, w) = model.image_size, (frames.height, frames.width)
    device = model.device
    with torch.inference_mode(), model.autocast():
        # set_image: backbone features, no-memory embedding, features per level
        backbone_out = model.forward_image(frames.batch([slice_index]).to(device))
        _, vision_feats, _, _ = model._prepare_backbone_features(backbone_out)
        if model.directly_add_no_mem_embed:
            vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
        sizes = [(size // 4, size // 4), (size // 8, size // 8), (size // 16, size // 16)]
        feats = [
            feat.permute(1, 2, 0).view(1, -1, *fs)
            for feat, fs in zip(vision_feats[::-1], sizes[::-1], strict=True)
        ][::-1]
        image_embed, high_res = feats[-1], feats[:-1]
        # _predict: the box as two corner points labelled 2 and 3, normalised then scaled
        r0, c0, r1, c1 = box
        coords = torch.tensor([[[c0, r0], [c1, r1]]], dtype=torch.float32, device=device)
        coords = coords / torch.tensor([w, h], dtype=torch.float32, device=device) * size
        labels = torch.tensor([[2, 3]], dtype=torch.int, device=device)
        sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        low_res, _, _, _ = model.sam_mask_decoder(
            image_embeddings=image_embed,
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
            repeat_image=False,
            high_res_features=high_res,
        )
    low_res = torch.clamp(low_res.float(), -32.0, 32.0)
    masks = F.interpolate(low_res, (h, w), mode="bilinear", align_corners=False)
    return (masks[0, 0] > 0).cpu().numpy()
