"""Padded memory attention against the official ``MemoryAttention``, one row at a time.

Rows with memories of different lengths (frames and object pointers) go through
one padded call; each row's output must be the official batch-1 call's on that
row. Random weights (the tiny model at 128 px: 8x8 feature tokens), on the
test device (``gpu_check.sh`` runs them on CUDA: masked attention kernels).
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("sam2")

import torch

from sam2vol.engines.sam2.padded_attention import can_pad, padded_memory_attention
from tests.engines.sam2_helpers import ATOL, BF16_RTOL, DEVICE, make_engine, official_predictor

HW, C, C_MEM = 64, 256, 64
# Other attention kernels with a mask on CUDA: the engine tests' tolerance there.
TOL = 1e-5 if DEVICE == "cpu" else ATOL


@pytest.fixture(scope="module")
def models():
    eng = make_engine(precision="float32")
    return eng.predictor, official_predictor(eng)


def row(frames: int, pointers: int, generator: torch.Generator):
    """One row's current features and memory: ``frames`` frames, then ``pointers`` tokens."""

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(DEVICE)

    n = frames * HW + pointers
    return randn(HW, 1, C), randn(HW, 1, C), randn(n, 1, C_MEM), randn(n, 1, C_MEM), pointers


def rows_of(layout: list[tuple[int, int]], seed: int) -> list[tuple]:
    g = torch.Generator().manual_seed(seed)
    return [row(f, p, g) for f, p in layout]


def padded(attention, rows: list[tuple], bf16: bool | list[bool] = False) -> torch.Tensor:
    """Our padded call on all rows (memories stored in bf16 if asked, per row or for all)."""
    as_bf16 = bf16 if isinstance(bf16, list) else [bf16] * len(rows)
    return padded_memory_attention(
        attention,
        torch.cat([r[0] for r in rows], dim=1),
        torch.cat([r[1] for r in rows], dim=1),
        [r[2].bfloat16() if b else r[2] for r, b in zip(rows, as_bf16, strict=True)],
        [r[3] for r in rows],
        [r[4] for r in rows],
    )


def alone(attention, one_row: tuple, bf16: bool = False) -> torch.Tensor:
    """The reference: one official batch-1 call on the row."""
    curr, curr_pos, memory, memory_pos, pointers = one_row
    return attention(
        curr=[curr],
        curr_pos=[curr_pos],
        memory=memory.bfloat16() if bf16 else memory,
        memory_pos=memory_pos,
        num_obj_ptr_tokens=pointers,
    )


# (frames, pointer tokens) per row: the longest row in the middle, rows without pointers, and
# rows longer in frames but shorter in pointers than another (both parts padded apart).
LAYOUTS = [
    [(2, 8), (7, 64), (1, 0)],
    [(6, 60), (7, 56), (7, 64), (3, 4)],
    [(1, 0), (2, 0)],
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=["three", "two-walks", "no-pointers"])
def test_each_row_equals_the_official_call_on_it_alone(models, layout):
    ours, official = models
    assert can_pad(official.memory_attention) and can_pad(ours.memory_attention)
    rows = rows_of(layout, seed=len(layout))
    with torch.inference_mode():
        out = padded(ours.memory_attention, rows)
        assert out.shape == (HW, len(rows), C)
        for i, r in enumerate(rows):
            expected = alone(official.memory_attention, r)
            torch.testing.assert_close(out[:, i : i + 1], expected, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("bf16", [[True, True], [True, False]], ids=["bf16", "bf16-and-float32"])
def test_bf16_memories_are_promoted_as_the_predictor_does(models, bf16):
    """Stored bf16 memories with float32 features (a slice with no pointer yet): as the
    predictor's promoted attention, also next to a float32 memory in one call."""
    ours, _ = models
    rows = rows_of([(3, 16), (2, 32)], seed=7)
    with torch.inference_mode():
        out = padded(ours.memory_attention, rows, bf16=bf16)
        assert out.dtype == torch.float32
        for i, r in enumerate(rows):
            expected = alone(ours.memory_attention, r, bf16=bf16[i])
            torch.testing.assert_close(out[:, i : i + 1], expected, atol=TOL, rtol=TOL)


def test_memories_of_dtypes_that_do_not_promote_alike_are_refused(models):
    ours, _ = models
    rows = rows_of([(1, 0), (1, 0)], seed=2)
    with torch.inference_mode(), pytest.raises(ValueError, match="dtypes"):
        padded_memory_attention(
            ours.memory_attention,
            torch.cat([r[0] for r in rows], dim=1).bfloat16(),
            torch.cat([r[1] for r in rows], dim=1).bfloat16(),
            [rows[0][2].bfloat16(), rows[1][2]],
            [r[3] for r in rows],
            [0, 0],
        )


def test_under_bf16_autocast_each_row_is_the_official_call_up_to_bf16_rounding(models):
    """As the engine runs on CUDA (CPU bf16 autocast stands in here): bf16 memories, masked
    bf16 attention; rounding differs with the key length, by about one bf16 unit."""
    ours, official = models
    rows = rows_of([(6, 60), (7, 64), (3, 4)], seed=1)
    with torch.inference_mode(), torch.autocast(torch.device(DEVICE).type, dtype=torch.bfloat16):
        out = padded(ours.memory_attention, rows, bf16=True)
        for i, r in enumerate(rows):
            expected = alone(official.memory_attention, r, bf16=True).float()
            scale = float(expected.abs().max())
            torch.testing.assert_close(
                out[:, i : i + 1].float(), expected, atol=BF16_RTOL * scale, rtol=0
            )


def test_frame_tokens_must_be_whole_frames(models):
    ours, _ = models
    g = torch.Generator().manual_seed(0)
    curr, pos, memory, memory_pos, _ = row(2, 0, g)
    with pytest.raises(ValueError, match="multiples of 64"):
        padded_memory_attention(ours.memory_attention, curr, pos, [memory], [memory_pos], [4])


def test_other_attention_modules_are_not_padded(models):
    ours, _ = models
    assert not can_pad(torch.nn.Identity())
    layer = ours.memory_attention.layers[0]
    rope_repeat = layer.cross_attn_image.rope_k_repeat
    try:
        layer.cross_attn_image.rope_k_repeat = False
        assert not can_pad(ours.memory_attention)
    finally:
        layer.cross_attn_image.rope_k_repeat = rope_repeat
    # A hook or a forward of its own (compiled, say) on a layer this code calls around.
    handle = layer.register_forward_hook(lambda *_: None)
    try:
        assert not can_pad(ours.memory_attention)
    finally:
        handle.remove()
    attention = ours.memory_attention.layers[1].cross_attn_image
    attention.forward = attention.forward
    try:
        assert not can_pad(ours.memory_attention)
    finally:
        del attention.forward
    assert can_pad(ours.memory_attention)
