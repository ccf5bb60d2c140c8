"""Image features of every slice, encoded once per session.

The official predictor keeps the features of the last frame only, so every
propagation re-runs the image encoder on every slice; the iterative protocol
re-propagates up to 8 times. This cache keeps each slice's backbone features
and encodes missing slices in batches, looking ahead in the direction of
travel. Where they are kept:

- on the accelerator, while they fit (GPU memory to spare after the budget);
- else in CPU memory, pinned when an accelerator will read it (fast copies);
- in the encoder's own dtype (bfloat16 under autocast stays bfloat16), or
  float16 when float32 features of the whole volume would not fit the budget.

The budget counts the bytes really stored, and is shared by every cache of
the process with the same limit (every session of a web server), so sixteen
sessions hold one budget's worth of features, not sixteen. Slices past the
budget are re-encoded when needed (the last one is kept). The features of the
last two slices handed out stay on the compute device, so several objects
tracked on the same slice share one copy (also when the two walks of a
propagation take turns). All methods are thread-safe (a background thread may
encode while the user acts); a background batch (:meth:`FeatureCache.encode_some`)
runs the encoder outside the lock, so the user's look-ups of other slices do
not wait for it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sam2vol.engines.sam2.frames import SliceFrames

CACHE_DTYPES = {"auto": None, "float32": torch.float32, "float16": torch.float16}

# Slices whose features stay on the compute device once handed out: the slices of the two
# walks an overlapped propagation tracks in one step.
DEVICE_SLOTS = 2

# GPU memory left free when features are stored on the accelerator.
DEVICE_HEADROOM_BYTES = 4 << 30

BackboneOut = dict[str, Any]


class ByteBudget:
    """A thread-safe count of bytes held against a limit.

    Args:
        limit: Most bytes that may be held.
    """

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.used = 0
        self._lock = threading.Lock()

    def reserve(self, nbytes: int) -> bool:
        """Take ``nbytes`` if they fit; returns whether they were taken."""
        with self._lock:
            if self.used + nbytes > self.limit:
                return False
            self.used += nbytes
            return True

    def release(self, nbytes: int) -> None:
        """Give back ``nbytes`` taken earlier."""
        with self._lock:
            self.used = max(0, self.used - int(nbytes))


_BUDGETS: dict[int, ByteBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def process_budget(limit: int) -> ByteBudget:
    """The one budget of this process for caches with this limit (every session shares it)."""
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(int(limit))
        if budget is None:
            budget = _BUDGETS[int(limit)] = ByteBudget(limit)
        return budget


@dataclass
class CacheStats:
    """Counters of one session.

    Attributes:
        encoded: Slices run through the image encoder.
        batches: Encoder calls.
        hits: Look-ups answered from the cache.
        stored: Slices held now.
        bytes: Memory they take (bytes really stored).
        device_bytes: Of those, bytes kept on the accelerator.
    """

    encoded: int = 0
    batches: int = 0
    hits: int = 0
    stored: int = 0
    bytes: int = 0
    device_bytes: int = 0


def _give_back(budget: ByteBudget, held: list[int]) -> None:
    budget.release(held[0])
    held[0] = 0


def _nbytes(levels: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in levels)


class FeatureCache:
    """Per-slice backbone features, encoded lazily and kept within a budget.

    Args:
        frames: The slices as frames.
        encode: The image encoder: ``[B, 3, S, S]`` on the compute device -> a
            backbone output dict (``backbone_fpn`` and ``vision_pos_enc`` lists).
        device: The compute device (features are returned there).
        storage_device: ``auto`` (the accelerator while features fit there,
            else CPU memory, pinned for an accelerator), or a device to keep
            every feature on.
        dtype: ``auto`` (the encoder's dtype, or float16 for float32 features
            when the whole volume would not fit the budget), ``float32`` or
            ``float16``.
        budget_bytes: Most memory stored features may take, in all caches of
            the process with the same limit together.
        batch_size: Slices per encoder call.
        pad_batch: Always call the encoder with ``batch_size`` slices (the last
            one repeated), so a compiled encoder sees one shape only.
    """

    def __init__(
        self,
        frames: SliceFrames,
        encode: Callable[[torch.Tensor], BackboneOut],
        *,
        device: torch.device,
        storage_device: torch.device | str = "auto",
        dtype: str = "auto",
        budget_bytes: int = 4 << 30,
        batch_size: int = 1,
        pad_batch: bool = False,
    ) -> None:
        if dtype not in CACHE_DTYPES:
            raise ValueError(f"cache dtype must be one of {', '.join(CACHE_DTYPES)}, got {dtype}")
        self.frames = frames
        self.encode = encode
        self.device = torch.device(device)
        self.auto_storage = storage_device == "auto"
        self.storage_device = torch.device("cpu" if self.auto_storage else storage_device)
        self.pin = self.device.type == "cuda" and self.storage_device.type == "cpu"
        self.requested_dtype = dtype
        self.budget = process_budget(budget_bytes)
        self.batch_size = max(1, int(batch_size))
        self.pad_batch = bool(pad_batch)
        self.stats = CacheStats()
        self._store: dict[int, list[torch.Tensor]] = {}
        self._recent: tuple[int, list[torch.Tensor]] | None = None
        # The slices last handed out, on the compute device (one per walk of a propagation).
        self._on_device: OrderedDict[int, list[torch.Tensor]] = OrderedDict()
        self._pos_enc: list[torch.Tensor] | None = None  # the same for every slice
        self._out_dtypes: list[torch.dtype] = []
        self._level_dtypes: list[torch.dtype] = []
        self._storage_dtype: torch.dtype | None = CACHE_DTYPES[dtype]
        self._lock = threading.RLock()
        # Slices a background batch is encoding outside the lock -> set when they are stored.
        self._pending: dict[int, threading.Event] = {}
        # Whatever happens to this cache, its bytes go back to the budget.
        self._held = [0]
        weakref.finalize(self, _give_back, self.budget, self._held)

    @property
    def storage_dtype(self) -> torch.dtype | None:
        """The dtype the finest-level features are kept in (None before the first encode)."""
        return self._storage_dtype

    def has_room(self) -> bool:
        """Whether the budget can take one more slice as large as those stored (True before any)."""
        if self.stats.stored == 0:
            return True
        per_slice = self.stats.bytes // self.stats.stored
        return self.budget.limit - self.budget.used >= per_slice

    def __contains__(self, index: int) -> bool:
        return index in self._store

    def features(self, index: int, ahead: Iterable[int] = ()) -> BackboneOut:
        """The backbone output of slice ``index`` with batch size 1, on the compute device.

        Args:
            index: The slice.
            ahead: Slices likely needed next; missing ones are encoded in the
                same batch as ``index``.
        """
        while True:
            with self._lock:
                pending = self._pending.get(index)
                if pending is None:
                    return self._features(index, ahead)
            pending.wait()  # a background batch is encoding it: sooner than starting anew

    def _features(self, index: int, ahead: Iterable[int]) -> BackboneOut:
        with self._lock:
            if index in self._on_device:
                self.stats.hits += 1
                self._on_device.move_to_end(index)
                return self._backbone(self._on_device[index])
            levels = self._store.get(index)
            if levels is None and self._recent is not None and self._recent[0] == index:
                levels = self._recent[1]
            if levels is None:
                batch = [index]
                for other in ahead:
                    if len(batch) >= self.batch_size:
                        break
                    taken = other in self._store or other in self._pending
                    if not taken and other not in batch:
                        batch.append(other)
                self._encode(batch)
                levels = self._store.get(index) or self._recent[1]  # type: ignore[index]
            else:
                self.stats.hits += 1
            fpn = self._unpack(levels)
            self._on_device[index] = fpn
            while len(self._on_device) > DEVICE_SLOTS:
                self._on_device.popitem(last=False)
            return self._backbone(fpn)

    def encode_all(self, indices: Sequence[int] | None = None) -> None:
        """Encode every slice (or ``indices``) not stored yet, in batches."""
        todo = list(range(len(self.frames)) if indices is None else indices)
        todo = [i for i in todo if i not in self._store]
        for start in range(0, len(todo), self.batch_size):
            with self._lock:
                self._encode(todo[start : start + self.batch_size])

    def encode_some(self, indices: Sequence[int]) -> int:
        """Encode the first batch of ``indices`` not stored yet; returns how many were encoded.

        For a background thread: the encoder runs outside the lock, so a look-up
        of another slice meanwhile does not wait for it (one of a slice in this
        batch waits for the batch). A padded (compiled) encoder runs under the lock.
        """
        with self._lock:
            batch = [i for i in indices if i not in self._store and i not in self._pending]
            batch = batch[: self.batch_size]
            if not batch:
                return 0
            if self.pad_batch:
                self._encode(batch)
                return len(batch)
            done = threading.Event()
            self._pending.update(dict.fromkeys(batch, done))
        try:
            out = self.encode(self.frames.batch(batch).to(self.device, non_blocking=True))
            with self._lock:
                self._keep(batch, out)
        finally:
            with self._lock:
                for index in batch:
                    self._pending.pop(index, None)
            done.set()
        return len(batch)

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor the cache holds now (for memory accounting; does not wait for the lock)."""
        held = [t for levels in list(self._store.values()) for t in levels]
        if self._recent is not None:
            held += self._recent[1]
        for fpn in list(self._on_device.values()):
            held += fpn
        return held + list(self._pos_enc or [])

    def clear(self) -> None:
        """Drop every stored feature (and give its memory back to the budget)."""
        with self._lock:
            self._store.clear()
            self._recent = None
            self._on_device.clear()
            _give_back(self.budget, self._held)
            self.stats.stored = 0
            self.stats.bytes = 0
            self.stats.device_bytes = 0

    # ----- internals ---------------------------------------------------------------------------
    def _encode(self, indices: list[int]) -> None:
        n = len(indices)
        padded = indices + [indices[-1]] * (self.batch_size - n) if self.pad_batch else indices
        images = self.frames.batch(padded).to(self.device, non_blocking=True)
        self._keep(indices, self.encode(images))

    def _keep(self, indices: list[int], out: BackboneOut) -> None:
        """Store the encoder's output for ``indices`` (under the lock)."""
        self.stats.encoded += len(indices)
        self.stats.batches += 1
        fpn = out["backbone_fpn"]
        if self._pos_enc is None:
            self._pos_enc = [p[:1].detach().clone() for p in out["vision_pos_enc"]]
            self._out_dtypes = [f.dtype for f in fpn]
            if self._storage_dtype is None:
                # auto: each level in its own dtype (under autocast some levels are bf16, some
                # float32), unless float32 features of the whole volume cannot fit.
                out_bytes = sum(f[:1].numel() * f.element_size() for f in fpn)
                free = self.budget.limit - self.budget.used
                self._level_dtypes = [
                    torch.float16
                    if f.dtype == torch.float32 and out_bytes * len(self.frames) > free
                    else f.dtype
                    for f in fpn
                ]
                self._storage_dtype = self._level_dtypes[-1]
            else:
                self._level_dtypes = [self._storage_dtype] * len(fpn)
        kept_recent = False
        for k, index in enumerate(indices):
            if index in self._store:
                continue  # stored meanwhile (encode_all beside a background batch)
            on_device = self._device_fits([f[k : k + 1] for f in fpn])
            levels = [
                self._pack(f[k : k + 1], dtype, on_device)
                for f, dtype in zip(fpn, self._level_dtypes, strict=True)
            ]
            nbytes = _nbytes(levels)
            if self.budget.reserve(nbytes):
                self._held[0] += nbytes
                self._store[index] = levels
                self.stats.stored += 1
                self.stats.bytes += nbytes
                if on_device:
                    self.stats.device_bytes += nbytes
            elif not kept_recent:
                # Over the budget: keep the first such slice of the batch (the one a look-up
                # asked for comes first), not the last.
                self._recent = (index, levels)
                kept_recent = True

    def _device_fits(self, levels: list[torch.Tensor]) -> bool:
        if not self.auto_storage or self.device.type != "cuda":
            return self.storage_device == self.device and self.device.type != "cpu"
        need = sum(t.numel() * t.element_size() for t in levels)
        free, _ = torch.cuda.mem_get_info(self.device)
        return free - need > DEVICE_HEADROOM_BYTES

    def _pack(self, feature: torch.Tensor, dtype: torch.dtype, on_device: bool) -> torch.Tensor:
        target = self.device if on_device else self.storage_device
        source = feature.detach()
        if dtype == torch.float16 and not torch.isfinite(source.to(dtype)).all():
            dtype = source.dtype  # out of float16's range: keep it as it came
        packed = source.to(target, dtype=dtype)
        if packed.device.type == "cpu" and self.pin:
            packed = packed.pin_memory()
        # A copy, so that a slice of a batch does not keep the whole batch alive.
        return packed.clone() if packed.data_ptr() == feature.data_ptr() else packed

    def _unpack(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        # Copy first, convert on the compute device.
        return [
            level.to(self.device, non_blocking=True).to(dtype)
            for level, dtype in zip(levels, self._out_dtypes, strict=True)
        ]

    def _backbone(self, fpn: list[torch.Tensor]) -> BackboneOut:
        assert self._pos_enc is not None
        return {"backbone_fpn": list(fpn), "vision_pos_enc": list(self._pos_enc)}
