"""Next slice to check: a simulated user who corrects only the slice the tool suggests.

The start is He et al.'s (clicks on the start slice from the 3D centroid,
then propagation). Each later round the user corrects one slice, chosen by:

- ``suggest``: the least sure slice (:mod:`sam2vol.confidence`; no reference used);
- ``oracle``: He et al.'s worst slice (largest error against the reference);
- ``centre``: the not yet corrected slice nearest the centre of the predicted
  extent (no reference used; the naive choice).

The correction itself is He et al.'s (clicks at the error regions of that
slice), then propagation. Dice after each correction shows how much each
choice of slice is worth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2vol.confidence import next_slice_to_check, session_confidence
from sam2vol.errors import InputError
from sam2vol.protocols.base import OBJECT_ID, Protocol, ProtocolRun
from sam2vol.protocols.rules import Click, worst_slice

CHOOSERS = ("suggest", "oracle", "centre")
INITIAL_CLICKS = 5


@dataclass
class Suggest(Protocol):
    """Correct only the suggested slice (or the oracle's worst, or the centre), round by round.

    Attributes:
        chooser: ``suggest``, ``oracle`` or ``centre``.
        corrections: Number of corrected slices after the start.
    """

    name = "suggest"
    chooser: str = "suggest"
    corrections: int = 5

    def __post_init__(self) -> None:
        if self.chooser not in CHOOSERS:
            raise InputError(f"suggest chooser must be one of {', '.join(CHOOSERS)}")
        if self.corrections < 0:
            raise InputError(f"suggest corrections must be >= 0, got {self.corrections}")

    def interact(self, run: ProtocolRun) -> str | None:
        user = run.user
        first, row, col = user.start_voxel()
        run.click(Click(first, row, col, True))
        for _ in range(INITIAL_CLICKS - 1):
            click = user.eroded_error_click(first, run.prediction(first), "paper")
            if click is None:
                break
            run.click(click)
        run.propagate()
        run.end_round()
        for _ in range(self.corrections):
            s = self.choose(run)
            if s is None:
                break
            for click in user.correction_clicks(s, run.prediction(s), run.rng, "paper"):
                run.click(click)
            run.propagate()
            run.end_round()
        return None

    def choose(self, run: ProtocolRun) -> int | None:
        """The slice to correct next (None: nothing left to choose)."""
        if self.chooser == "oracle":
            return self._worst(run)
        if self.chooser == "suggest":
            s = next_slice_to_check(session_confidence(run.session), exclude=run.prompted)
            return s if s is not None else self._centre(run)
        return self._centre(run)

    @staticmethod
    def _worst(run: ProtocolRun) -> int | None:
        """He et al.'s worst slice among the slices not corrected yet."""
        reference = run.user.reference_stack
        left = [s for s in np.flatnonzero(reference.any(axis=(1, 2))) if s not in run.prompted]
        if not left:
            return None
        worst = worst_slice(reference[left], run.prediction()[left])
        return None if worst is None else int(left[worst[0]])

    @staticmethod
    def _centre(run: ProtocolRun) -> int | None:
        covered = np.flatnonzero(run.session.mask_stack(OBJECT_ID).any(axis=(1, 2)))
        if not covered.size:
            return None
        middle = (covered[0] + covered[-1]) / 2
        left = [int(s) for s in range(covered[0], covered[-1] + 1) if s not in run.prompted]
        return min(left, key=lambda s: (abs(s - middle), s)) if left else None
