"""Ma et al. (2024): a box on the middle slice, forward, reset, backward.

Jun Ma et al., "Segment Anything in Medical Images and Videos: Benchmark and
Deployment" (MedSAM2); released code: bowang-lab/MedSAM, branch MedSAM2,
``exp_inference/infer_SAM2_3D_npz.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sam2vol.errors import InputError
from sam2vol.protocols.base import Protocol, ProtocolRun

BOXES = ("3d", "slice")


@dataclass
class Ma2024(Protocol):
    """Box on the middle slice ``z_min + n // 2`` of the extent; only its slices scored.

    Attributes:
        box: ``3d``: the in-plane extent of the object's 3D bounding box (the
            dataset's ``boxes``, as the released code reads them); ``slice``:
            the tight box of the object on the middle slice.
    """

    name = "ma2024"
    paper_intensity = ("ct-abdomen", "mr-percentile")
    box: str = "3d"

    def __post_init__(self) -> None:
        if self.box not in BOXES:
            raise InputError(f"ma2024 box must be one of {', '.join(BOXES)}, got {self.box!r}")

    @property
    def eval_slices(self) -> str:
        return "foreground"

    def interact(self, run: ProtocolRun) -> str | None:
        first, last = run.user.extent()
        s = first + (last - first + 1) // 2  # z_min + int(len / 2)
        if self.box == "3d":
            run.draw_box(s, run.user.bounding_box())
        else:
            s = run.user.nearest_nonempty(s)
            run.draw_box(s, run.user.bounding_box(s))
        run.propagate(s, reset_between=True)
        run.end_round()
        return None
