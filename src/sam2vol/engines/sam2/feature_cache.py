"""Image features of every slice, encoded once per session.

The official predictor keeps the features of the last frame only, so every
propagation re-runs the image encoder on every slice; the iterative protocol
re-propagates up to 8 times. This cache keeps each slice's backbone features
(float32, or float16 when the volume would not fit the memory budget) and
encodes missing slices in batches, looking ahead in the direction of travel.
Slices past the budget are re-encoded when needed (the last one is kept).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sam2vol.engines.sam2.frames import SliceFrames

CACHE_DTYPES = {"auto": None, "float32": torch.float32, "float16": torch.float16}

BackboneOut = dict[str, Any]


@dataclass
class CacheStats:
    """Counters of one session.

    Attributes:
        encoded: Slices run through the image encoder.
        batches: Encoder calls.
        hits: Look-ups answered from the cache.
        stored: Slices held now.
        bytes: Memory they take.
    """

    encoded: int = 0
    batches: int = 0
    hits: int = 0
    stored: int = 0
    bytes: int = 0


class FeatureCache:
    """Per-slice backbone features, encoded lazily and kept within a budget.

    Args:
        frames: The slices as frames.
        encode: The image encoder: ``[B, 3, S, S]`` on the compute device -> a
            backbone output dict (``backbone_fpn`` and ``vision_pos_enc`` lists).
        device: The compute device (features are returned there).
        storage_device: Where the features are kept.
        dtype: ``auto`` (float32 if the whole volume fits the budget, else
            float16), ``float32`` or ``float16``.
        budget_bytes: Most memory the stored features may take.
        batch_size: Slices per encoder call.
    """

    def __init__(
        self,
        frames: SliceFrames,
        encode: Callable[[torch.Tensor], BackboneOut],
        *,
        device: torch.device,
        storage_device: torch.device | str = "cpu",
        dtype: str = "auto",
        budget_bytes: int = 4 << 30,
        batch_size: int = 1,
    ) -> None:
        if dtype not in CACHE_DTYPES:
            raise ValueError(f"cache dtype must be one of {', '.join(CACHE_DTYPES)}, got {dtype}")
        self.frames = frames
        self.encode = encode
        self.device = torch.device(device)
        self.storage_device = torch.device(storage_device)
        self.requested_dtype = dtype
        self.budget_bytes = int(budget_bytes)
        self.batch_size = max(1, int(batch_size))
        self.stats = CacheStats()
        self._store: dict[int, list[torch.Tensor]] = {}
        self._recent: tuple[int, list[torch.Tensor]] | None = None
        self._pos_enc: list[torch.Tensor] | None = None  # the same for every slice
        self._out_dtypes: list[torch.dtype] = []
        self._storage_dtype: torch.dtype | None = CACHE_DTYPES[dtype]
        self._frame_bytes = 0

    @property
    def storage_dtype(self) -> torch.dtype | None:
        """The dtype features are kept in (None before the first encode)."""
        return self._storage_dtype

    def __contains__(self, index: int) -> bool:
        return index in self._store

    def features(self, index: int, ahead: Iterable[int] = ()) -> BackboneOut:
        """The backbone output of slice ``index`` with batch size 1, on the compute device.

        Args:
            index: The slice.
            ahead: Slices likely needed next; missing ones are encoded in the
                same batch as ``index``.
        """
        levels = self._store.get(index)
        if levels is None and self._recent is not None and self._recent[0] == index:
            levels = self._recent[1]
        if levels is None:
            batch = [index]
            for other in ahead:
                if len(batch) >= self.batch_size:
                    break
                if other not in self._store and other not in batch:
                    batch.append(other)
            self._encode(batch)
            levels = self._store.get(index) or self._recent[1]  # type: ignore[index]
        else:
            self.stats.hits += 1
        return self._unpack(levels)

    def encode_all(self, indices: Sequence[int] | None = None) -> None:
        """Encode every slice (or ``indices``) not stored yet, in batches."""
        todo = [i for i in (range(len(self.frames)) if indices is None else indices)]
        todo = [i for i in todo if i not in self._store]
        for start in range(0, len(todo), self.batch_size):
            self._encode(todo[start : start + self.batch_size])

    def clear(self) -> None:
        """Drop every stored feature."""
        self._store.clear()
        self._recent = None
        self.stats.stored = 0
        self.stats.bytes = 0

    def _encode(self, indices: list[int]) -> None:
        images = self.frames.batch(indices).to(self.device, non_blocking=True)
        out = self.encode(images)
        self.stats.encoded += len(indices)
        self.stats.batches += 1
        fpn = out["backbone_fpn"]
        if self._pos_enc is None:
            self._pos_enc = [p[:1].detach().clone() for p in out["vision_pos_enc"]]
            self._out_dtypes = [f.dtype for f in fpn]
            fp32_bytes = sum(f[:1].numel() * 4 for f in fpn)
            if self._storage_dtype is None:  # auto
                whole = fp32_bytes * len(self.frames)
                self._storage_dtype = torch.float32 if whole <= self.budget_bytes else torch.float16
            self._frame_bytes = fp32_bytes * self._storage_dtype.itemsize // 4
        for n, index in enumerate(indices):
            levels = [self._pack(f[n : n + 1]) for f in fpn]
            if self.stats.bytes + self._frame_bytes <= self.budget_bytes:
                self._store[index] = levels
                self.stats.stored += 1
                self.stats.bytes += self._frame_bytes
            else:
                self._recent = (index, levels)

    def _pack(self, feature: torch.Tensor) -> torch.Tensor:
        packed = feature.detach().to(self.storage_device, dtype=self._storage_dtype)
        if packed.dtype == torch.float16 and not torch.isfinite(packed).all():
            packed = feature.detach().to(self.storage_device, dtype=torch.float32)
        # A clone, so that a slice of a batch does not keep the whole batch alive.
        return packed.clone() if packed.data_ptr() == feature.data_ptr() else packed

    def _unpack(self, levels: list[torch.Tensor]) -> BackboneOut:
        fpn = [
            level.to(self.device, dtype=dtype, non_blocking=True)
            for level, dtype in zip(levels, self._out_dtypes, strict=True)
        ]
        assert self._pos_enc is not None
        return {"backbone_fpn": fpn, "vision_pos_enc": list(self._pos_enc)}
