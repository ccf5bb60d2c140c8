"""The SAM 2 feature cache with a toy encoder: dtypes, real bytes, one process budget,
one device copy per slice, and a compiled encoder that compiles once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam2vol.engines.sam2.feature_cache import FeatureCache, process_budget
from sam2vol.engines.sam2.frames import SliceFrames


def toy_encoder(dtypes=(torch.bfloat16, torch.float32)):
    """Two levels, like SAM 2's under autocast: a bf16 one and a float32 one."""
    calls = []

    def encode(images: torch.Tensor) -> dict:
        calls.append(len(images))
        return features(images, dtypes)

    return encode, calls


def features(images: torch.Tensor, dtypes=(torch.bfloat16, torch.float32)) -> dict:
    """The toy encoder's output (no side effects: fit for torch.compile)."""
    b = len(images)
    base = images.mean(dim=(1, 2, 3))[:, None, None, None]
    fpn = [(base + torch.arange(16.0).reshape(1, 1, 4, 4)).to(d) for d in dtypes]
    return {"backbone_fpn": fpn, "vision_pos_enc": [torch.zeros(b, 1, 4, 4)] * len(fpn)}


def frames(n: int = 6) -> SliceFrames:
    rng = np.random.default_rng(0)
    return SliceFrames(rng.random((n, 8, 8), dtype=np.float32), 32)


def test_levels_keep_their_dtype_and_bytes_are_real():
    encode, _ = toy_encoder()
    cache = FeatureCache(frames(), encode, device=torch.device("cpu"), budget_bytes=10_000)
    out = cache.features(0)
    assert [f.dtype for f in out["backbone_fpn"]] == [torch.bfloat16, torch.float32]
    # 16 bf16 values + 16 float32 values.
    assert cache.stats.bytes == 16 * 2 + 16 * 4
    again = encode(frames().batch([0]))["backbone_fpn"]
    for ours, theirs in zip(out["backbone_fpn"], again, strict=True):
        assert torch.equal(ours, theirs)


def test_one_budget_for_every_cache_with_the_same_limit():
    limit = 3 * 64 + 1  # room for three slices of 64 bytes
    budget = process_budget(limit)
    a_enc, _ = toy_encoder((torch.bfloat16, torch.bfloat16))
    a = FeatureCache(frames(), a_enc, device=torch.device("cpu"), budget_bytes=limit)
    b = FeatureCache(frames(), a_enc, device=torch.device("cpu"), budget_bytes=limit)
    a.encode_all([0, 1])
    b.encode_all([0, 1])
    assert a.stats.stored + b.stats.stored == 3 and budget.used == 3 * 64
    a.clear()
    assert budget.used == 64
    b.encode_all([2, 3])
    assert b.stats.stored == 3
    del b
    import gc

    gc.collect()
    assert budget.used == 0  # a cache that goes away gives its bytes back


def test_objects_on_the_same_slice_share_one_copy():
    encode, calls = toy_encoder()
    cache = FeatureCache(frames(), encode, device=torch.device("cpu"))
    copies = []
    unpack = cache._unpack
    cache._unpack = lambda levels: copies.append(1) or unpack(levels)  # counts device copies
    first = cache.features(2)
    second = cache.features(2)  # the next object on the same slice
    assert all(x is y for x, y in zip(first["backbone_fpn"], second["backbone_fpn"], strict=True))
    assert calls == [1] and len(copies) == 1
    cache.features(3)
    assert len(copies) == 2


def test_padded_batches_compile_the_encoder_once():
    compiles = []

    def counting_backend(gm, example_inputs):
        compiles.append(tuple(example_inputs[0].shape) if example_inputs else ())
        return gm.forward

    def compiled_encoder():
        inner = torch.compile(features, backend=counting_backend, dynamic=False)
        calls: list[int] = []

        def encode(images):
            calls.append(len(images))
            return inner(images)

        return encode, calls

    torch._dynamo.reset()
    compiled, calls = compiled_encoder()
    cache = FeatureCache(
        frames(7), compiled, device=torch.device("cpu"), batch_size=4, pad_batch=True
    )
    cache.features(3, ahead=[4, 5, 6])  # a full batch
    cache.features(0, ahead=[])  # one slice, padded to 4
    cache.encode_all()  # the rest: 2 slices, padded
    assert calls == [4, 4, 4]
    assert len(compiles) == 1, compiles
    assert cache.stats.encoded == 7

    # Without padding every new batch size is a new compilation.
    compiles.clear()
    torch._dynamo.reset()
    compiled, calls = compiled_encoder()
    cache = FeatureCache(frames(7), compiled, device=torch.device("cpu"), batch_size=4)
    cache.features(3, ahead=[4, 5, 6])
    cache.features(0, ahead=[])
    cache.encode_all()
    assert calls == [4, 1, 2]
    assert len(compiles) == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_features_stay_on_the_device():
    encode, _ = toy_encoder()
    dev = torch.device("cuda")

    def on_device(images):
        out = encode(images.cpu())
        return {k: [t.to(dev) for t in v] for k, v in out.items()}

    cache = FeatureCache(frames(), on_device, device=dev)
    cache.features(0)
    assert cache.stats.device_bytes == cache.stats.bytes > 0


def test_a_background_batch_does_not_hold_up_other_slices():
    """``encode_some`` (the background thread's call) runs the encoder outside the lock: a
    look-up of a stored slice answers at once, one of the slice in flight waits for that
    batch instead of encoding it again."""
    import threading
    import time

    gate, started = threading.Event(), threading.Event()
    encode, calls = toy_encoder()

    def slow(images: torch.Tensor) -> dict:
        if threading.current_thread().name == "background":
            started.set()
            assert gate.wait(30)
        return encode(images)

    cache = FeatureCache(frames(), slow, device=torch.device("cpu"), budget_bytes=100_000)
    cache.features(0)
    worker = threading.Thread(target=cache.encode_some, args=([3],), name="background")
    worker.start()
    assert started.wait(30)
    t0 = time.perf_counter()
    cache.features(0)  # stored: no wait for the batch in flight
    cache.features(1)  # not stored, not in flight: encoded now, beside the batch
    assert time.perf_counter() - t0 < 5 and 1 in cache and 3 not in cache
    waiting = threading.Thread(target=cache.features, args=(3,))
    waiting.start()
    time.sleep(0.2)
    assert waiting.is_alive()  # slice 3 is in flight: it waits for it
    gate.set()
    worker.join(30)
    waiting.join(30)
    assert calls == [1, 1, 1] and cache.stats.encoded == 3  # slice 3 encoded once
    expected = encode(frames().batch([3]))["backbone_fpn"]
    for ours, theirs in zip(cache.features(3)["backbone_fpn"], expected, strict=True):
        assert torch.equal(ours, theirs)


def test_over_the_budget_a_look_up_gets_its_own_slice():
    """With the budget spent, a batch encoded ahead must not hand out another slice's features."""
    encode, calls = toy_encoder((torch.float32, torch.float32))
    f = frames()
    cache = FeatureCache(
        f, encode, device=torch.device("cpu"), dtype="float32", budget_bytes=1, batch_size=4
    )
    out = cache.features(0, ahead=[1, 2, 3])
    assert calls == [4] and cache.stats.stored == 0
    for i in range(4):
        own = features(f.batch([i]), (torch.float32, torch.float32))["backbone_fpn"]
        same = all(torch.equal(a, b) for a, b in zip(out["backbone_fpn"], own, strict=True))
        assert same == (i == 0), i
