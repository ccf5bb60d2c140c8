"""Dong et al. (2024): one point at the deepest pixel of the middle slice(s).

Haoyu Dong et al., "Segment anything model 2: an application to 2D and 3D
medical images"; released code: mazurowski-lab/segment-anything2-medical-evaluation
(1d72cc1), ``prompt_funcs.py`` and ``eval_sam2_3d.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sam2vol.errors import InputError
from sam2vol.protocols.base import Protocol, ProtocolRun


@dataclass
class Dong2024(Protocol):
    """A positive point at the deepest pixel of the largest 8-connected component.

    Attributes:
        slices: Prompted slices: 1 (the middle object slice) or 3 (Dong et
            al.'s frame mode 4, see :func:`sam2vol.protocols.rules.dong_slices`).
    """

    name = "dong2024"
    slices: int = 1

    def __post_init__(self) -> None:
        if self.slices not in (1, 3):
            raise InputError(f"dong2024 slices must be 1 or 3, got {self.slices}")

    def interact(self, run: ProtocolRun) -> str | None:
        picks = run.user.dong_slices(self.slices)
        for s in picks:
            run.click(run.user.deepest_point(s))
        # eval_sam2_3d.py: in frame mode 4 the middle pick (pidx = 1) starts propagation
        run.propagate(picks[1] if len(picks) > 1 else picks[-1], reset_between=True)
        run.end_round()
        return None
