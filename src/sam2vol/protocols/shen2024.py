"""Shen et al. (2024): a mask or clicks on the centre slice, propagated both ways.

Chuyun Shen et al., "Interactive 3D Medical Image Segmentation with SAM 2".
"""

from __future__ import annotations

from dataclasses import dataclass

from sam2vol.protocols.base import Protocol, ProtocolRun
from sam2vol.protocols.rules import SHEN_STOP_DEPTH, Click

SALIENT_PIXELS = 256


@dataclass
class _Shen2024(Protocol):
    """What both Shen et al. protocols share: the centre slice and the slice scope."""

    salient: bool = False
    min_pixels: int = 100

    @property
    def eval_slices(self) -> str:
        return "salient" if self.salient else "all"

    def centre_slice(self, run: ProtocolRun) -> tuple[int | None, str | None]:
        """The centre slice of the evaluated range, or a reason to skip the object."""
        s = run.user.extent_centre(SALIENT_PIXELS if self.salient else 0)
        if s is None:
            return None, f"no slice shows more than {SALIENT_PIXELS} pixels of the object"
        pixels = run.user.object_pixels(s)
        if pixels <= self.min_pixels:
            return (
                None,
                f"centre slice {s} shows {pixels} <= {self.min_pixels} pixels of the object",
            )
        return s, None


@dataclass
class Shen2024Mask(_Shen2024):
    """Ground-truth mask on the centre slice, propagated forward then backward without reset.

    Attributes:
        salient: Score only slices with more than 256 reference pixels (and
            take the centre of that range); else all slices.
        min_pixels: Skip objects whose centre slice shows at most this many pixels.
    """

    name = "shen2024-mask"

    def interact(self, run: ProtocolRun) -> str | None:
        s, reason = self.centre_slice(run)
        if s is None:
            return reason
        run.draw_mask(s, run.user.outline(s))
        run.propagate(s)
        run.end_round()
        return None


@dataclass
class Shen2024Clicks(_Shen2024):
    """k clicks on the centre slice, one per round at the deepest error; all re-sent each round.

    Attributes:
        clicks: At most this many clicks (rounds).
        salient: As for ``shen2024-mask``.
        min_pixels: As for ``shen2024-mask``.
    """

    name = "shen2024-clicks"
    clicks: int = 5

    def interact(self, run: ProtocolRun) -> str | None:
        s, reason = self.centre_slice(run)
        if s is None:
            return reason
        given: list[Click] = []
        for _ in range(self.clicks):
            click = run.user.farthest_error_click(s, run.prediction(s))
            if click is None:
                break
            given.append(click)
            if len(given) > 1:
                run.clear()  # re-send every click, as a fresh prompt
            for i, c in enumerate(given):
                run.click(c, new=i == len(given) - 1)
            run.propagate(s)
            run.end_round()
        if not given:
            return f"no error region deeper than {SHEN_STOP_DEPTH} pixels on slice {s}"
        return None
