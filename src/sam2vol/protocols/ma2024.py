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
BOX_PROMPTS = ("auto", "box", "mask")


@dataclass
class Ma2024(Protocol):
    """Box on the middle slice ``z_min + n // 2`` of the extent; only its slices scored.

    Attributes:
        box: ``3d``: the in-plane extent of the object's 3D bounding box (the
            dataset's ``boxes``, as the released code reads them); ``slice``:
            the tight box of the object on the middle slice.
        box_prompt: ``mask``: SAM 2's image predictor turns the box into a mask,
            which is the prompt (as released; needs the SAM 2 engine); ``box``:
            the box goes to the engine; ``auto``: ``mask`` with SAM 2, else ``box``.
    """

    name = "ma2024"
    paper_intensity = ("ct-abdomen", "mr-percentile")
    box: str = "3d"
    box_prompt: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.box not in BOXES:
            raise InputError(f"ma2024 box must be one of {', '.join(BOXES)}, got {self.box!r}")
        if self.box_prompt not in BOX_PROMPTS:
            raise InputError(
                f"ma2024 box_prompt must be one of {', '.join(BOX_PROMPTS)}, "
                f"got {self.box_prompt!r}"
            )

    @property
    def eval_slices(self) -> str:
        return "foreground"

    def interact(self, run: ProtocolRun) -> str | None:
        first, last = run.user.extent()
        s = first + (last - first + 1) // 2  # z_min + int(len / 2)
        if self.box == "3d":
            box = run.user.bounding_box()
        else:
            s = run.user.nearest_nonempty(s)
            box = run.user.bounding_box(s)
        engine = run.session.engine
        as_mask = self.box_prompt == "mask" or (self.box_prompt == "auto" and engine.name == "sam2")
        if not as_mask:
            run.draw_box(s, box)
        else:
            if engine.name != "sam2":
                raise InputError("ma2024:box_prompt=mask needs --engine sam2")
            from sam2vol.engines.sam2.box_mask import box_to_mask

            mask = run.frame.slice_from_display(box_to_mask(engine, s, run.display_box(s, box)))
            if not mask.any():
                return f"SAM 2's mask of the box on slice {s} is empty"
            run.draw_mask(s, mask)
        run.propagate(s, reset_between=True)
        run.end_round()
        return None
