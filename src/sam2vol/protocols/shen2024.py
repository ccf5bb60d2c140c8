"""Shen et al. (2024): a mask or clicks on the centre frame, propagated both ways.

Chuyun Shen et al., "Interactive 3D Medical Image Segmentation with SAM 2";
released code: Chuyun-Shen/SAM_2_Medical_3D (8a2b771): ``nii_2_video.py``
(which slices become the video), ``segment_any_image.py`` (mask) and
``segment_any_image_with_clicks.py`` (clicks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2vol.errors import InputError
from sam2vol.protocols.base import PaperNSD, Protocol, ProtocolRun
from sam2vol.protocols.rules import SHEN_STOP_DEPTH

SALIENT_PIXELS = 256
# nii_2_video.py with threshold 0: np.random.randint(5, 10) slices each side.
MARGIN_RANGE = (5, 10)
CROPS = ("random", "none")
SCOPE = "video"


@dataclass
class _Shen2024(Protocol):
    """What both Shen et al. protocols share: the video's slices and its centre frame.

    Attributes:
        salient: The video is ``range(first, last)`` of the slices with more than
            256 object pixels (``--threshold 256``; the last one left out, smaller
            slices in between kept); else the object's extent widened by a random
            5-9 slices each side (``--threshold 0``).
        crop: For ``salient=false``: ``random`` (the seeded random margins, as
            released) or ``none`` (no margin: ``range(first, last + 1)``).
    """

    paper_intensity = ("slice-minmax", "slice-minmax")
    paper_nsd = PaperNSD(tolerance=1.0, units="voxel")
    salient: bool = False
    crop: str = "random"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.crop not in CROPS:
            raise InputError(f"shen2024 crop must be one of {', '.join(CROPS)}, got {self.crop!r}")

    @property
    def eval_slices(self) -> str:
        return SCOPE

    def video(self, run: ProtocolRun) -> tuple[int, int] | None:
        """The video ``range(lo, hi)`` as nii_2_video.py cuts it, or None when empty."""
        counts = run.user.pixel_counts()
        positive = np.flatnonzero(counts > (SALIENT_PIXELS if self.salient else 0))
        if positive.size == 0:
            return None
        lo, hi = int(positive[0]), int(positive[-1])
        if not self.salient:
            if self.crop == "random":
                lo = max(0, lo - int(run.rng.integers(*MARGIN_RANGE)))
                hi = min(counts.size, hi + int(run.rng.integers(*MARGIN_RANGE)))
            else:
                hi += 1
        return (lo, hi) if hi > lo else None

    def centre_frame(self, run: ProtocolRun) -> tuple[int | None, str | None]:
        """The video's centre frame ``lo + len // 2``, its slices scored; or a reason to skip."""
        video = self.video(run)
        if video is None:
            return None, f"no video: no slice range with more than {SALIENT_PIXELS} pixels"
        lo, hi = video
        keep = np.zeros(run.user.pixel_counts().size, bool)
        keep[lo:hi] = True
        run.define_scope(SCOPE, keep)
        return lo + (hi - lo) // 2, None


@dataclass
class Shen2024Mask(_Shen2024):
    """Reference mask on the video's centre frame, propagated forward then backward, no reset.

    Attributes:
        salient: As for the base.
        crop: As for the base.
    """

    name = "shen2024-mask"

    def interact(self, run: ProtocolRun) -> str | None:
        s, reason = self.centre_frame(run)
        if s is None:
            return reason
        if run.user.object_pixels(s) == 0:
            return f"centre frame {s} is empty (sam2vol takes no empty mask prompt)"
        run.draw_mask(s, run.user.outline(s))
        run.propagate(s)
        run.end_round()
        return None


PROPAGATE = ("end", "each")


@dataclass
class Shen2024Clicks(_Shen2024):
    """k clicks on the centre frame, each at the deepest error, then propagation both ways.

    Each click is added to the frame's earlier ones (SAM 2 gets them all again
    with ``clear_old_points=True`` and the frame's previous mask logits, as
    ``add_new_points`` does in the released script); nothing is cleared.

    Attributes:
        clicks: At most this many clicks (the script's ``--steps``).
        min_pixels: Skip objects whose centre frame shows at most this many
            pixels (the clicks script's ``gt.sum() <= 100``).
        propagate: ``end``: one propagation after the last click, one round
            (as released); ``each``: propagate and score after every click (a
            departure, for a Dice-per-click curve in one run: later clicks then
            see a frame SAM 2 has tracked).
        salient: As for the base.
        crop: As for the base.
    """

    name = "shen2024-clicks"
    clicks: int = 5
    min_pixels: int = 100
    propagate: str = "end"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.propagate not in PROPAGATE:
            raise InputError(
                f"shen2024-clicks propagate must be end or each, got {self.propagate!r}"
            )

    def interact(self, run: ProtocolRun) -> str | None:
        s, reason = self.centre_frame(run)
        if s is None:
            return reason
        pixels = run.user.object_pixels(s)
        if pixels <= self.min_pixels:
            return f"centre frame {s} shows {pixels} <= {self.min_pixels} pixels of the object"
        given = 0
        for _ in range(self.clicks):
            click = run.user.farthest_error_click(s, run.prediction(s))
            if click is None:
                if given:
                    run.stop(f"no error region deeper than {SHEN_STOP_DEPTH} pixels")
                break
            run.click(click)
            given += 1
            if self.propagate == "each":
                run.propagate(s)
                run.end_round()
        if not given:
            return f"no error region deeper than {SHEN_STOP_DEPTH} pixels on slice {s}"
        if self.propagate == "end":
            run.propagate(s)
            run.end_round()
        return None
