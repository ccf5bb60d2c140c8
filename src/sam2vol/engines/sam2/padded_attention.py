"""SAM 2's memory attention for a batch of rows whose memories differ in length.

The official ``MemoryAttention`` takes one memory tensor for the whole batch,
so rows can share a call only where their memories have the same number of
frames and object pointers. Rows of two walks going opposite ways, or objects
corrected on different slices, rarely do. :func:`padded_memory_attention`
runs the official layers' own modules on the rows' memories padded to the
longest (frame tokens and pointer tokens apart, each row's tokens first) and
masks the padding out of the cross-attention's softmax: each row attends to
exactly its own tokens, so its output is the official batch-1 call's up to
floating-point rounding. It pays where a batch costs about what one row
costs (an accelerator); on a CPU a padded call costs what the official calls
on its rows cost (``benchmarks/batch_cost.py``).

The code mirrors ``MemoryAttention.forward``, ``MemoryAttentionLayer.forward``
and ``RoPEAttention.forward`` of SAM 2.1 (``sam2/modeling``), with the
``attn_mask`` of ``scaled_dot_product_attention`` added.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from sam2vol.engines.sam2.predictor import promoted_dtype


def can_pad(attention: Any) -> bool:
    """Whether :func:`padded_memory_attention` reproduces this memory attention."""
    from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
    from sam2.modeling.sam.transformer import RoPEAttention

    if type(attention) is not MemoryAttention or not attention.batch_first:
        return False
    return all(
        type(layer) is MemoryAttentionLayer
        and type(layer.cross_attn_image) is RoPEAttention
        and layer.cross_attn_image.rope_k_repeat
        and _plain(layer)
        and _plain(layer.cross_attn_image)
        for layer in attention.layers
    )


def _plain(module: Any) -> bool:
    """No forward of its own (a compiled one, say) and no hooks: what this code calls around."""
    return (
        "forward" not in vars(module)
        and not module._forward_hooks
        and not module._forward_pre_hooks
    )


def padded_memory_attention(
    attention: Any,
    curr: torch.Tensor,
    curr_pos: torch.Tensor,
    memories: Sequence[torch.Tensor],
    memory_pos: Sequence[torch.Tensor],
    pointer_tokens: Sequence[int],
) -> torch.Tensor:
    """One memory-attention call for rows with memories of their own lengths.

    Args:
        attention: The model's ``memory_attention`` (see :func:`can_pad`).
        curr: The rows' current features ``[HW, B, C]``.
        curr_pos: Their position encodings, same shape.
        memories: Per row, its memory ``[L_i, 1, C_mem]``: frame tokens (a
            multiple of ``HW``) then ``pointer_tokens[i]`` object-pointer tokens;
            of one dtype once promoted (:func:`promoted_dtype`).
        memory_pos: Per row, the memory's position encodings, same shapes.
        pointer_tokens: Per row, its number of object-pointer tokens.

    Returns:
        ``[HW, B, C]``, row ``i`` equal (up to rounding) to the official call
        on row ``i`` alone.
    """
    hw, batch = curr.shape[:2]
    if len(memories) != batch or len(memory_pos) != batch or len(pointer_tokens) != batch:
        raise ValueError(f"{batch} rows of current features, {len(memories)} memories")
    frames = [m.shape[0] - p for m, p in zip(memories, pointer_tokens, strict=True)]
    if any(f % hw for f in frames):
        raise ValueError(f"memory frame tokens {frames} are not multiples of {hw}")
    n_frames, n_ptrs = max(frames), max(pointer_tokens)
    length = n_frames + n_ptrs
    dtypes = {promoted_dtype(m.dtype, curr.dtype) for m in memories}
    if len(dtypes) != 1:
        raise ValueError(f"memories of dtypes {sorted(map(str, dtypes))} in one call")
    memory = memories[0].new_zeros((batch, length, memories[0].shape[-1]), dtype=dtypes.pop())
    pos = memory_pos[0].new_zeros((batch, length, memory_pos[0].shape[-1]))
    keep = torch.zeros((batch, 1, 1, length), dtype=torch.bool, device=curr.device)
    for i, (m, p, f, n) in enumerate(
        zip(memories, memory_pos, frames, pointer_tokens, strict=True)
    ):
        for dst, src in ((memory, m), (pos, p)):
            dst[i, :f] = src[:f, 0]
            dst[i, n_frames : n_frames + n] = src[f:, 0]
        keep[i, ..., :f] = True
        keep[i, ..., n_frames : n_frames + n] = True

    # MemoryAttention.forward (batch first).
    output = curr
    if attention.pos_enc_at_input:
        output = output + 0.1 * curr_pos
    output, query_pos = output.transpose(0, 1), curr_pos.transpose(0, 1)
    for layer in attention.layers:
        # MemoryAttentionLayer.forward
        output = layer._forward_sa(output, query_pos)
        tgt2 = layer.norm2(output)
        tgt2 = _masked_rope_attention(
            layer.cross_attn_image,
            q=tgt2 + query_pos if layer.pos_enc_at_cross_attn_queries else tgt2,
            k=memory + pos if layer.pos_enc_at_cross_attn_keys else memory,
            v=memory,
            num_k_exclude_rope=n_ptrs,
            keep=keep,
        )
        output = output + layer.dropout2(tgt2)
        tgt2 = layer.norm3(output)
        tgt2 = layer.linear2(layer.dropout(layer.activation(layer.linear1(tgt2))))
        output = output + layer.dropout3(tgt2)
    return attention.norm(output).transpose(0, 1)


def _masked_rope_attention(
    module: Any,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_k_exclude_rope: int,
    keep: torch.Tensor,
) -> torch.Tensor:
    """``RoPEAttention.forward`` with the keys outside ``keep`` masked out."""
    from sam2.modeling.position_encoding import apply_rotary_enc

    q = module._separate_heads(module.q_proj(q), module.num_heads)
    k = module._separate_heads(module.k_proj(k), module.num_heads)
    v = module._separate_heads(module.v_proj(v), module.num_heads)
    w = h = math.sqrt(q.shape[-2])
    module.freqs_cis = module.freqs_cis.to(q.device)
    if module.freqs_cis.shape[0] != q.shape[-2]:
        module.freqs_cis = module.compute_cis(end_x=w, end_y=h).to(q.device)
    num_k_rope = k.size(-2) - num_k_exclude_rope
    q, k[:, :, :num_k_rope] = apply_rotary_enc(
        q, k[:, :, :num_k_rope], freqs_cis=module.freqs_cis, repeat_freqs_k=True
    )
    dropout_p = module.dropout_p if module.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=dropout_p)
    return module.out_proj(module._recombine_heads(out))
