"""The two training-time heads of SAM2-3dMed: SRPP and BD.

Both read the memory-conditioned slice features (the output of SAM 2's memory
attention, ``[B, 256, S/16, S/16]``, what the mask decoder reads), so their
losses reach the trained parts of SAM 2. Neither is needed at inference and
neither is stored in ``best.pt``.
"""

from __future__ import annotations

import torch
from torch import nn


class SRPPHead(nn.Module):
    """Slice relative position prediction: for every ordered pair (i, j), the offset j - i.

    Per-slice features are average-pooled over space, projected, passed through
    a small Transformer encoder without positional encoding (the order must
    come from the content), and an MLP reads each ordered pair of slice
    embeddings.

    Args:
        in_dim: Channels of the slice features.
        dim: Width of the Transformer encoder.
        layers: Encoder layers.
        heads: Attention heads.
    """

    def __init__(self, in_dim: int = 256, dim: int = 128, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.proj = nn.Linear(in_dim, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.pair_mlp = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted offsets.

        Args:
            features: ``[B, D, C, h, w]`` slice features of B clips of D slices.

        Returns:
            ``[B, D, D]``: entry (i, j) predicts position(j) - position(i).
        """
        pooled = features.float().mean(dim=(-2, -1))  # [B, D, C]
        tokens = self.encoder(self.proj(self.norm(pooled)))  # [B, D, dim]
        b, d, c = tokens.shape
        first = tokens[:, :, None].expand(b, d, d, c)
        second = tokens[:, None].expand(b, d, d, c)
        return self.pair_mlp(torch.cat([first, second], dim=-1)).squeeze(-1)


class BoundaryHead(nn.Module):
    """Boundary detection: learnt boundary queries cross-attend to a slice's features.

    The queries (after cross-attention and an MLP) become dynamic 1x1 kernels
    applied to the features upsampled 4x by two transposed convolutions that
    add SAM 2's high-resolution image features on the way, as SAM's mask
    decoder does; a 1x1 convolution mixes the per-query maps into one boundary
    logit map at 1/4 of the input size (the resolution of SAM's low-resolution
    masks).

    Args:
        dim: Channels of the slice features.
        queries: Number of boundary queries.
        heads: Attention heads.
    """

    def __init__(self, dim: int = 256, queries: int = 4, heads: int = 8) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, dim) * 0.02)
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.up1 = nn.ConvTranspose2d(dim, dim // 4, 2, stride=2)
        self.norm_up = nn.GroupNorm(1, dim // 4)
        self.up2 = nn.ConvTranspose2d(dim // 4, dim // 8, 2, stride=2)
        self.act = nn.GELU()
        self.hyper = nn.Linear(dim, dim // 8)
        self.mix = nn.Conv2d(queries, 1, 1)

    def forward(
        self,
        features: torch.Tensor,
        pos: torch.Tensor,
        high_res: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Boundary logits.

        Args:
            features: ``[N, C, h, w]`` slice features.
            pos: ``[1 or N, C, h, w]`` their positional encoding (added to the keys).
            high_res: SAM 2's high-resolution features ``[N, C/8, 4h, 4w]`` and
                ``[N, C/4, 2h, 2w]`` (its mask decoder's ``conv_s0``/``conv_s1``
                outputs), or None.

        Returns:
            ``[N, 1, 4h, 4w]`` logits.
        """
        n = features.shape[0]
        tokens = features.flatten(2).transpose(1, 2)  # [N, hw, C]
        keys = tokens + pos.flatten(2).transpose(1, 2).to(tokens.dtype)
        q = self.queries.to(tokens.dtype)[None].expand(n, -1, -1)
        q = self.norm1(q + self.cross(q, keys, tokens, need_weights=False)[0])
        q = self.norm2(q + self.mlp(q))
        s0, s1 = high_res if high_res is not None else (0, 0)
        up = self.act(self.norm_up(self.up1(features) + s1))
        up = self.act(self.up2(up) + s0)  # [N, C/8, 4h, 4w]
        maps = torch.einsum("nqc,nchw->nqhw", self.hyper(q), up)
        return self.mix(maps)
