"""Dong et al. (2024): one point at the deepest pixel of the middle slice(s).

Haoyu Dong et al., "Segment anything model 2: an application to 2D and 3D
medical images".
"""

from __future__ import annotations

from dataclasses import dataclass

from sam2vol.errors import InputError
from sam2vol.protocols.base import Protocol, ProtocolRun


@dataclass
class Dong2024(Protocol):
    """A positive point at the deepest pixel of the largest 8-connected component.

    Attributes:
        slices: Prompted slices: 1 (the middle object slice) or 3 (evenly
            spaced object slices, at the quartiles of the object's slices).
    """

    name = "dong2024"
    slices: int = 1

    def __post_init__(self) -> None:
        if self.slices < 1:
            raise InputError(f"dong2024 slices must be >= 1, got {self.slices}")

    def interact(self, run: ProtocolRun) -> str | None:
        picks = run.user.evenly_spaced_nonempty(self.slices)
        for s in picks:
            run.click(run.user.deepest_point(s))
        run.propagate(picks[len(picks) // 2], reset_between=True)
        run.end_round()
        return None
