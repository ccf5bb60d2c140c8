"""The shared machinery of every protocol: run a session, log prompts, score each round.

A protocol is a small dataclass (its fields are its options) with one method,
:meth:`Protocol.interact`, which plays the user: it asks the
:class:`~sam2vol.protocols.user.SimulatedUser` where to prompt, prompts
through the :class:`ProtocolRun` it is given, propagates, and closes each round
with :meth:`ProtocolRun.end_round`. The base class does the rest: the
session, the seed, timing, scoring (Dice after every round, all metrics at
the end) and the result, whose ``events`` replay the run exactly.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from sam2vol.engines import Engine
from sam2vol.errors import InputError
from sam2vol.protocols.frame import ArrayFrame
from sam2vol.protocols.rules import Click
from sam2vol.protocols.scoring import SCOPES, Scorer
from sam2vol.protocols.user import SimulatedUser
from sam2vol.session import Session
from sam2vol.slicing import SliceGeometry
from sam2vol.volume import Volume

OBJECT_ID = 1
# Bumped whenever a protocol's prompts, slices or scores change; every result line carries it.
PROTOCOL_VERSION = 2


@dataclass(frozen=True)
class PaperNSD:
    """A paper's own NSD: tolerance in voxels of unit spacing (e.g. Shen et al.: 1 pixel)."""

    tolerance: float
    units: str = "voxel"


@dataclass
class RoundResult:
    """Scores after one round of prompting and propagation.

    Attributes:
        prompted_slices: Slices prompted so far.
        clicks: Clicks (or other prompts) given so far.
        dice: Volume Dice in the protocol's slice scope.
        dice_by_scope: Volume Dice per slice scope (``all``, ``foreground``, ...).
        seconds: Wall time of the round.
    """

    prompted_slices: int
    clicks: int
    dice: float
    dice_by_scope: dict[str, float]
    seconds: float


@dataclass
class ProtocolResult:
    """What one protocol run on one object produced.

    Attributes:
        protocol: The protocol's spec string (name and non-default options).
        status: ``ok``, or ``skipped`` when the protocol's rules exclude the object.
        reason: Why it was skipped.
        eval_slices: The protocol's slice scope for ``dice`` and ``best_dice``.
        rounds: Scores after every round.
        metrics: Final metrics per slice scope (:meth:`MetricResult.to_json_dict`).
        prompted_slices: Slices prompted, in the order they were prompted.
        stopped_early: Why the run ended before its last round (None: it did not).
        video_slices: The slices the engine was given, when the protocol removes
            the others from the video (He et al.'s background removal); the
            ``events`` then index this video, the rest of the result the volume.
        slice_dice: ``[slice, 2D Dice, reference pixels]`` of every reference slice (final).
        extent: First and last reference slice.
        axis: Slicing view.
        intensity: Intensity preset the session used.
        engine: Engine name.
        nsd_paper: The paper's own NSD (its tolerance and units) in the headline
            scope, beside the 2 mm ``nsd``; None where the paper reports none.
        events: The session's event log (JSON dicts); replaying it reproduces the masks.
        timings: Wall times in seconds (``total``, ``set_image``, ``rounds``).
        mask: The final mask on the volume grid (not serialised).
    """

    protocol: str
    status: str
    reason: str | None = None
    eval_slices: str = "all"
    rounds: list[RoundResult] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    prompted_slices: list[int] = field(default_factory=list)
    stopped_early: str | None = None
    video_slices: list[int] | None = None
    slice_dice: list[list[float]] = field(default_factory=list)
    extent: tuple[int, int] | None = None
    axis: str = "axial"
    intensity: str = "auto"
    engine: str = ""
    nsd_paper: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, Any] = field(default_factory=dict)
    mask: np.ndarray | None = field(default=None, repr=False)

    @property
    def dice(self) -> float | None:
        """Final Dice in the protocol's scope (None when skipped)."""
        return self.rounds[-1].dice if self.rounds else None

    @property
    def best_dice(self) -> float | None:
        """Best Dice over the rounds, in the protocol's scope."""
        return max(r.dice for r in self.rounds) if self.rounds else None

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; timings are all under ``timings``."""
        final = self.metrics.get(self.eval_slices, {})
        return {
            "protocol": self.protocol,
            "protocol_version": PROTOCOL_VERSION,
            "status": self.status,
            "reason": self.reason,
            "eval_slices": self.eval_slices,
            **{k: final.get(k) for k in ("dice", "iou", "hd95_mm", "nsd", "assd_mm")},
            "dice_all": self.metrics.get("all", {}).get("dice"),
            "dice_foreground": self.metrics.get("foreground", {}).get("dice"),
            "best_dice": self.best_dice,
            "round_dice": [r.dice for r in self.rounds],
            "round_dice_by_scope": {
                scope: [r.dice_by_scope[scope] for r in self.rounds]
                for scope in (self.rounds[0].dice_by_scope if self.rounds else {})
            },
            "round_prompted_slices": [r.prompted_slices for r in self.rounds],
            "round_clicks": [r.clicks for r in self.rounds],
            "metrics": self.metrics,
            "prompted_slices": self.prompted_slices,
            "stopped_early": self.stopped_early,
            "video_slices": self.video_slices,
            "extent": list(self.extent) if self.extent else None,
            "slice_dice": self.slice_dice,
            "axis": self.axis,
            "intensity": self.intensity,
            "engine": self.engine,
            "nsd_paper": self.nsd_paper,
            "events": self.events,
            "timings": {**self.timings, "rounds": [r.seconds for r in self.rounds]},
        }


class ProtocolRun:
    """What a protocol's :meth:`Protocol.interact` works with during one run.

    Every slice, row and column it takes or returns is in the array frame
    (:class:`~sam2vol.protocols.frame.ArrayFrame`), as the released code used.

    Attributes:
        user: The simulated user (the only view of the reference).
        rng: The run's random generator (seeded).
        session: The session (its events are the log).
        frame: The array frame.
    """

    def __init__(
        self, session: Session, user: SimulatedUser, scorer: Scorer, rng, eval_slices: str
    ):
        self.session = session
        self.frame = ArrayFrame(session.geometry)
        self.user = user
        self.rng = rng
        self._scorer = scorer
        self._eval_slices = eval_slices
        self.rounds: list[RoundResult] = []
        self.prompted: list[int] = []
        self.clicks = 0
        self.stop_reason: str | None = None
        self._round_start = time.perf_counter()

    # ----- prompting ----------------------------------------------------------------------
    def _prompted(self, s: int, new: bool = True) -> None:
        if s not in self.prompted:
            self.prompted.append(s)
        self.clicks += int(new)

    def click(self, click: Click, *, new: bool = True) -> None:
        """Click on the session (the engine answers on that slice at once).

        ``new=False`` marks a click re-sent after :meth:`clear` (not counted again).
        """
        self.session.add_point(
            self.frame.voxel(click.slice_index, click.row, click.col),
            positive=click.positive,
            object_id=OBJECT_ID,
        )
        self._prompted(click.slice_index, new)

    def draw_mask(self, s: int, mask: np.ndarray) -> None:
        """A mask prompt on slice ``s`` (``mask`` in the array frame)."""
        self.session.add_mask(mask, s, object_id=OBJECT_ID)
        self._prompted(s)

    def draw_box(self, s: int, box: tuple[int, int, int, int]) -> None:
        """A box prompt ``(row0, col0, row1, col1)`` on slice ``s``, inclusive corners."""
        r0, c0, r1, c1 = box
        self.session.add_box(
            self.frame.voxel(s, r0, c0), self.frame.voxel(s, r1, c1), object_id=OBJECT_ID
        )
        self._prompted(s)

    def display_box(self, s: int, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """An array-frame box ``(row0, col0, row1, col1)`` in the engine's display pixels."""
        g = self.session.geometry
        corners = [g.voxel_to_slice(self.frame.voxel(s, r, c)) for r, c in (box[:2], box[2:])]
        rows, cols = [c[1] for c in corners], [c[2] for c in corners]
        return min(rows), min(cols), max(rows), max(cols)

    def clear(self) -> None:
        """Forget every prompt and mask of the object (prompts are then re-sent)."""
        self.session.clear(OBJECT_ID)

    def clear_slice(self, s: int) -> None:
        """Forget the object's prompts (and mask) on slice ``s`` only."""
        self.session.clear(OBJECT_ID, s)

    def stop(self, reason: str) -> None:
        """End the run before its last round (the released code's ``break``), saying why."""
        self.stop_reason = reason

    def define_scope(self, name: str, keep: np.ndarray) -> None:
        """Score a protocol-defined slice set (a bool per slice) as scope ``name``."""
        self._scorer.add_scope(name, keep)

    def propagate(
        self, start: int | None = None, *, direction="both", reset_between: bool = False
    ) -> None:
        """Propagate through the whole stack."""
        for _ in self.session.propagate(start, direction, reset_between=reset_between):
            pass

    # ----- state --------------------------------------------------------------------------
    def prediction(self, s: int | None = None) -> np.ndarray:
        """The current mask (array frame): of slice ``s``, or the whole stack."""
        stack = self.session.mask_stack(OBJECT_ID)
        if s is None:
            return np.ascontiguousarray(self.frame.from_display(stack))
        return np.ascontiguousarray(self.frame.slice_from_display(stack[s]))

    def end_round(self) -> float:
        """Score the current mask as one round; returns its Dice in the protocol's scope."""
        by_scope = self._scorer.round_dice(self.session.mask_stack(OBJECT_ID))
        now = time.perf_counter()
        self.rounds.append(
            RoundResult(
                prompted_slices=len(self.prompted),
                clicks=self.clicks,
                dice=by_scope[self._eval_slices],
                dice_by_scope=by_scope,
                seconds=round(now - self._round_start, 4),
            )
        )
        self._round_start = now
        return by_scope[self._eval_slices]


@dataclass
class Protocol(ABC):
    """Base class of the protocols; subclasses are dataclasses whose fields are options.

    Attributes:
        intensity: Intensity preset; ``paper``: as the paper prepared its images.
        quantize: ``uint8``: round the prepared image to 8 bits (floor, as the
            papers' ``astype(np.uint8)`` before JPEG); ``none``: keep floats.
    """

    name: ClassVar[str] = "base"
    intensity: str = "paper"
    quantize: str = "none"
    # Intensity preset as the paper prepared its images: (for CT, otherwise).
    paper_intensity: ClassVar[tuple[str, str]] = ("auto", "auto")
    # The paper's own NSD, recorded beside the 2 mm figure (None: the paper has none).
    paper_nsd: ClassVar[PaperNSD | None] = None

    def __post_init__(self) -> None:
        if self.quantize not in ("none", "uint8"):
            raise InputError(
                f"--protocol option quantize: expected none or uint8, got {self.quantize!r}"
            )

    def intensity_for(self, data: np.ndarray) -> str:
        """The paper's intensity preset for this volume (``quantize`` applied)."""
        from sam2vol.intensity import looks_like_ct

        if self.quantize not in ("none", "uint8"):
            raise InputError(
                f"--protocol option quantize: expected none or uint8, got {self.quantize!r}"
            )
        ct, other = self.paper_intensity
        preset = (
            self.intensity if self.intensity != "paper" else (ct if looks_like_ct(data) else other)
        )
        return preset + ("+uint8" if self.quantize == "uint8" else "")

    @property
    def eval_slices(self) -> str:
        """Slice scope of the protocol's headline Dice."""
        return "all"

    @property
    def options(self) -> dict[str, Any]:
        """The protocol's options (its dataclass fields) and their values."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @property
    def spec(self) -> str:
        """The registered name with the other options, e.g. ``he2024-code:max_slices=4``."""
        from sam2vol.protocols.registry import protocol_spec

        return protocol_spec(self)

    def video_slices(self, reference: np.ndarray) -> np.ndarray | None:
        """Slices to keep in the engine's video (None: all), from the array-frame reference."""
        return None

    @abstractmethod
    def interact(self, run: ProtocolRun) -> str | None:
        """Play the user; return a reason to skip the object, or None when done."""

    def run(
        self,
        volume: Volume,
        reference: np.ndarray,
        engine: Engine | str,
        *,
        seed: int = 0,
        axis: str = "axial",
        intensity: str | None = None,
    ) -> ProtocolResult:
        """Run the protocol on one object.

        Args:
            volume: The image.
            reference: The object's reference mask on the volume grid.
            engine: An engine (or its name).
            seed: Seed of the run's random generator.
            axis: Slicing view.
            intensity: Intensity preset; None: the protocol's own (its
                ``intensity`` option, ``paper`` by default).
        """
        reference = np.asarray(reference, dtype=bool)
        if reference.shape != volume.shape:
            raise InputError(f"reference shape {reference.shape} != image {volume.shape}")
        if intensity is None:
            intensity = self.intensity_for(volume.data)
        start = time.perf_counter()
        full = SliceGeometry.for_volume(volume, axis)  # type: ignore[arg-type]
        kept = self.video_slices(ArrayFrame(full).to_stack(reference)) if reference.any() else None
        video, video_reference = volume, reference
        if kept is not None:  # the engine sees only these slices, as a shorter video
            video = Volume(
                np.take(volume.data, kept, axis=full.slice_axis), volume.affine, volume.source
            )
            video_reference = np.take(reference, kept, axis=full.slice_axis)
        # No background encoding: a simulated user is never idle, and on a GPU the batches it
        # would form depend on timing (rounding too), so a run would not replay exactly.
        session = Session(
            video,
            engine,
            axis=axis,
            intensity=intensity,
            background_encoding=False,
        )
        set_image = time.perf_counter() - start
        g = session.geometry
        scopes = tuple(dict.fromkeys(("all", "foreground", self.eval_slices)))
        scorer = Scorer(video_reference, g, scopes)
        user = SimulatedUser(ArrayFrame(g).to_stack(video_reference), g.slice_axis)
        session.add_object("object", object_id=OBJECT_ID)
        run = ProtocolRun(session, user, scorer, np.random.default_rng(seed), self.eval_slices)
        reason = self.interact(run) if reference.any() else "the object is absent"
        result = ProtocolResult(
            protocol=self.spec,
            status="ok" if reason is None else "skipped",
            reason=reason,
            eval_slices=self.eval_slices,
            axis=g.axis,
            intensity=session.intensity,
            engine=session.engine.name,
            prompted_slices=[int(s if kept is None else kept[s]) for s in run.prompted],
            stopped_early=run.stop_reason,
            video_slices=None if kept is None else [int(s) for s in kept],
        )
        if kept is not None:  # score on the whole volume: nothing predicted off the video
            scorer = Scorer(reference, full, tuple(s for s in scopes if s in SCOPES))
        result.extent = scorer.extent if reference.any() else None
        if reason is None:
            if not run.rounds:
                raise RuntimeError(f"protocol {self.name} ended without scoring a round")
            mask = session.mask(OBJECT_ID)
            if kept is not None:
                whole = np.zeros(reference.shape, dtype=bool)
                index: list[Any] = [slice(None)] * 3
                index[full.slice_axis] = kept
                whole[tuple(index)] = mask
                mask = whole
            result.rounds = run.rounds
            result.metrics = scorer.final(mask)
            if self.paper_nsd is not None:
                result.nsd_paper = {
                    "tolerance": self.paper_nsd.tolerance,
                    "units": self.paper_nsd.units,
                    "nsd": scorer.unit_nsd(mask, self.eval_slices, self.paper_nsd.tolerance),
                }
            result.slice_dice = scorer.slice_dice(full.to_stack(mask), self.eval_slices)
            result.mask = mask
        result.events = session.log_dict()["events"]
        result.timings = {
            "total": round(time.perf_counter() - start, 4),
            "set_image": round(set_image, 4),
        }
        return result


def replay(
    volume: Volume,
    events: list[dict[str, Any]],
    engine: Engine | str,
    *,
    axis: str = "axial",
    intensity: str = "auto",
) -> Session:
    """A new session with a logged run's events applied: the same masks, bit for bit.

    Usage::

        result = create_protocol("dong2024").run(volume, gt, engine)
        session = replay(volume, result.events, engine, axis=result.axis)
        assert (session.mask(1) == result.mask).all()
    """
    from sam2vol.prompts import event_from_dict

    session = Session(
        volume,
        engine,
        axis=axis,
        intensity=intensity,
        background_encoding=False,
    )
    session.replay([event_from_dict(e) for e in events])
    return session
