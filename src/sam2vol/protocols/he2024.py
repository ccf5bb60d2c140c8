"""He et al. (2024): iterative clicks on up to 8 slices, the worst slice corrected next.

Yufan He et al., "A Short Review and Evaluation of SAM2's Performance in 3D CT
Image Segmentation". The paper's description and the authors' released code
differ in the number of initial clicks and in how a region's "centre" is
found; both are offered (``variant``), see ``docs/protocols.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sam2vol.errors import InputError
from sam2vol.protocols.base import Protocol, ProtocolRun
from sam2vol.protocols.rules import CENTRES

INITIAL_CLICKS = {"paper": 5, "code": 4}


@dataclass
class He2024(Protocol):
    """Start slice from the 3D centroid, initial clicks, then the worst slice, up to 8 slices.

    Attributes:
        variant: ``paper`` (5 initial clicks, centre = region pixel nearest its
            centroid) or ``code`` (4 initial clicks, centre = region pixel
            nearest ``(m, m)``, ``m`` the mean of all coordinates).
        initial_clicks: Override the variant's number of initial clicks.
        max_slices: Stop after this many prompted slices.
        bg_removal: Headline Dice with background-slice removal (only
            reference-foreground slices scored). Both are always recorded.
    """

    name = "he2024"
    variant: str = "paper"
    initial_clicks: int | None = None
    max_slices: int = 8
    bg_removal: bool = False

    def __post_init__(self) -> None:
        if self.variant not in CENTRES:
            raise InputError(f"he2024 variant must be one of {', '.join(CENTRES)}")
        if self.max_slices < 1:
            raise InputError(f"he2024 max_slices must be >= 1, got {self.max_slices}")

    @property
    def eval_slices(self) -> str:
        return "foreground" if self.bg_removal else "all"

    def interact(self, run: ProtocolRun) -> str | None:
        user, centre = run.user, self.variant
        first = user.start_voxel()[0]
        n_initial = self.initial_clicks or INITIAL_CLICKS[self.variant]
        for n in range(n_initial):
            click = user.eroded_error_click(
                first, run.prediction(first), centre, uneroded_fallback=n == 0
            )
            if click is None:
                break
            run.click(click)
        run.propagate()
        run.end_round()
        while len(run.prompted) < self.max_slices:
            s = user.worst_slice(run.prediction(), exclude=run.prompted)
            if s is None:
                break
            clicks = user.correction_clicks(s, run.prediction(s), run.rng, centre)
            for click in clicks:
                run.click(click)
            run.propagate()
            run.end_round()
        return None
