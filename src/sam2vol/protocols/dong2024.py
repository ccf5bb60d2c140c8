"""Dong et al. (2024): one point at the deepest pixel of the middle slice(s).

Haoyu Dong et al., "Segment anything model 2: an application to 2D and 3D
medical images"; released code: mazurowski-lab/segment-anything2-medical-evaluation
(1d72cc1), ``prompt_funcs.py`` and ``eval_sam2_3d.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2vol.errors import InputError
from sam2vol.protocols.base import Protocol, ProtocolRun

PROPAGATIONS = ("fixed", "released")
RELEASED_SCOPE = "dong-released"


@dataclass
class Dong2024(Protocol):
    """A positive point at the deepest pixel of the largest 8-connected component.

    Attributes:
        slices: Prompted slices: 1 (the middle object slice) or 3 (Dong et
            al.'s frame mode 4, see :func:`sam2vol.protocols.rules.dong_slices`).
        propagation: ``fixed``: both ways from the middle pick, reset between;
            ``released`` (3 slices): as ``eval_sam2_3d.py`` runs it, backward
            from the middle pick, reset, the prompts again, forward from after
            the *last* pick (the loop variable ``pidx`` is reused), so the
            slices after the middle pick up to the last one are neither
            propagated to nor scored (scope ``dong-released``).
    """

    name = "dong2024"
    slices: int = 1
    propagation: str = "fixed"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.slices not in (1, 3):
            raise InputError(f"dong2024 slices must be 1 or 3, got {self.slices}")
        if self.propagation not in PROPAGATIONS:
            raise InputError(
                f"dong2024 propagation must be fixed or released, got {self.propagation!r}"
            )

    @property
    def eval_slices(self) -> str:
        return RELEASED_SCOPE if self._released else "all"

    @property
    def _released(self) -> bool:
        return self.propagation == "released" and self.slices == 3

    def interact(self, run: ProtocolRun) -> str | None:
        picks = run.user.dong_slices(self.slices)
        clicks = [run.user.deepest_point(s) for s in picks]
        for click in clicks:
            run.click(click)
        if self._released and len(picks) > 1:
            n = run.user.pixel_counts().size
            keep = np.ones(n, bool)
            keep[picks[1] + 1 : picks[-1] + 1] = False  # never predicted, never scored
            run.define_scope(RELEASED_SCOPE, keep)
            run.propagate(picks[1], direction="backward")
            run.clear()  # reset_state, then the prompts again
            for click in clicks:
                run.click(click, new=False)
            if picks[-1] + 1 < n:
                run.propagate(picks[-1] + 1, direction="forward")
            run.end_round()
            return None
        if self._released:  # fewer than 3 object slices: one pick, one scope
            run.define_scope(RELEASED_SCOPE, np.ones(run.user.pixel_counts().size, bool))
        # eval_sam2_3d.py: in frame mode 4 the middle pick (pidx = 1) starts propagation
        run.propagate(picks[1] if len(picks) > 1 else picks[-1], reset_between=True)
        run.end_round()
        return None
