"""Ma et al. (2024): a box on the middle slice, forward, reset, backward.

Jun Ma et al., "Segment Anything in Medical Images and Videos: Benchmark and
Deployment" (MedSAM2).
"""

from __future__ import annotations

from dataclasses import dataclass

from sam2vol.protocols.base import Protocol, ProtocolRun


@dataclass
class Ma2024(Protocol):
    """Bounding box of the reference on the middle slice of its extent; only its slices scored."""

    name = "ma2024"

    @property
    def eval_slices(self) -> str:
        return "foreground"

    def interact(self, run: ProtocolRun) -> str | None:
        s = run.user.nearest_nonempty(run.user.extent_centre())
        run.draw_box(s, run.user.bounding_box(s))
        run.propagate(s, reset_between=True)
        run.end_round()
        return None
