"""He et al. (2024): clicks on the start slice, then the worst slice corrected, 8 rounds.

Yufan He et al., "A Short Review and Evaluation of SAM2's Performance in 3D CT
Image Segmentation"; released code: Project-MONAI/VISTA
``vista3d/scripts/validation/val_multigpu_sam2_point_iterative.py`` (f73d7c2).
The paper's description and the code differ in the number of initial clicks
and in how a region's "centre" is found; both are offered (``variant``), see
``docs/protocols.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2vol.errors import InputError
from sam2vol.protocols.base import Protocol, ProtocolRun
from sam2vol.protocols.rules import CENTRES, Click

# Initial prompting rounds on the start slice, each re-sending every point so far.
INITIAL_CLICKS = {"paper": 5, "code": 4}


@dataclass
class He2024(Protocol):
    """Start voxel clicked, initial clicks, then the worst slice each round, 8 rounds.

    Attributes:
        variant: ``paper`` (5 initial points, centre = region pixel nearest its
            centroid) or ``code`` (4 initial points, centre = region pixel
            nearest ``(m, m)``, ``m`` the mean of all coordinates).
        initial_clicks: Override the variant's number of initial points.
        max_slices: Rounds: the initial one and ``max_slices - 1`` corrections
            (the released config's ``max_iter: 8``; He et al.'s "annotated
            slices", a slice prompted again counting again).
        bg_removal: Background-slice removal (the config's ``saliency: true``):
            the engine's video holds only the slices showing the object (the
            start voxel's component is found there too), and the headline Dice
            scores only them. Both scopes are always recorded.
    """

    name = "he2024"
    paper_intensity = ("ct-he2024", "auto")
    variant: str = "paper"
    initial_clicks: int | None = None
    max_slices: int = 8
    bg_removal: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variant not in CENTRES:
            raise InputError(f"he2024 variant must be one of {', '.join(CENTRES)}")
        if self.max_slices < 1:
            raise InputError(f"he2024 max_slices must be >= 1, got {self.max_slices}")

    @property
    def eval_slices(self) -> str:
        return "foreground" if self.bg_removal else "all"

    def video_slices(self, reference: np.ndarray) -> np.ndarray | None:
        """With ``bg_removal``: the slices showing the object (``z_slice``)."""
        return np.flatnonzero(reference.any(axis=(1, 2))) if self.bg_removal else None

    def interact(self, run: ProtocolRun) -> str | None:
        user, centre = run.user, self.variant
        s, row, col = user.start_voxel()
        points = [Click(s, row, col, True)]
        rounds = self.initial_clicks or INITIAL_CLICKS[self.variant]
        for n in range(rounds):
            if n:
                run.clear()  # reset_state, then every point again
            for i, c in enumerate(points):
                run.click(c, new=i == len(points) - 1)
            if n == rounds - 1:
                break
            click = user.eroded_error_click(s, run.prediction(s), centre)
            if click is None:
                break
            points.append(click)
        run.propagate()
        run.end_round()
        for _ in range(self.max_slices - 1):
            prediction = run.prediction()
            worst = user.worst_slice(prediction)
            if worst is None:
                break
            w = worst[0]
            clicks = user.correction_clicks(w, prediction[w], run.rng, centre)
            if not clicks:
                run.stop(f"no point left after erosion on the worst slice {w}")
                break
            run.clear_slice(w)  # add_new_points replaces the slice's points
            for click in clicks:
                run.click(click)
            run.propagate()
            run.end_round()
        return None
