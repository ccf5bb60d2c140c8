"""Slices as SAM 2 frames, prepared from memory on demand.

SAM 2 expects RGB frames resized to ``image_size`` square and normalised with
the ImageNet mean and std. A slice in [0, 1] is replicated to three channels
and resized in float32: no JPEG and no 8-bit rounding. Frames are prepared
when the image encoder asks for them and not kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SliceFrames:
    """A lazy sequence of normalised frames ``[3, image_size, image_size]`` (float32).

    It stands in for the ``images`` tensor of an official inference state.

    Args:
        image: The stack ``[s, row, col]`` in [0, 1] (kept by reference).
        image_size: The model's square input size.
    """

    def __init__(self, image: np.ndarray, image_size: int) -> None:
        if image.ndim != 3:
            raise ValueError(f"expected [s, row, col], got shape {image.shape}")
        self.image = image
        self.image_size = int(image_size)
        self._mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
        self._std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]

    def __len__(self) -> int:
        return self.image.shape[0]

    @property
    def height(self) -> int:
        return self.image.shape[1]

    @property
    def width(self) -> int:
        return self.image.shape[2]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.batch([index])[0]

    def batch(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames ``[len(indices), 3, image_size, image_size]``, normalised."""
        slices = np.ascontiguousarray(self.image[list(indices)], dtype=np.float32)
        gray = torch.from_numpy(slices)[:, None]  # [B, 1, H, W]
        size = self.image_size
        if gray.shape[-2:] != (size, size):
            # Antialiased bilinear resize, the float analogue of a PIL resize.
            gray = F.interpolate(
                gray, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        gray = gray.clamp_(0.0, 1.0)
        return (gray - self._mean) / self._std  # broadcasts 1 -> 3 channels
