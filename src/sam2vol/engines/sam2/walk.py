"""One walk of a propagation: its objects, its direction, and which objects have stopped."""

from __future__ import annotations

from dataclasses import dataclass, field

from sam2vol.confidence import logit_confidence
from sam2vol.engines.base import SliceResult
from sam2vol.engines.sam2.batched import Row
from sam2vol.engines.sam2.predictor import InferenceState, TrackedSlice


@dataclass
class Walk:
    """The objects of one walk (one inference state each) and where each stands.

    Attributes:
        oids: Object ids, in the order of ``states``.
        states: Each object's inference state (after ``begin_walk``).
        reverse: Whether the walk goes to lower slice indices.
        stop_after_empty: Stop an object after this many consecutive slices
            the model sees it absent on (None: never).
        absent: Per object, the slices in a row it was absent on.
        stopped: Per object, whether it stopped (the rest of the walk gets
            empty masks, until one of its conditioning slices).
    """

    oids: list[int]
    states: list[InferenceState]
    reverse: bool
    stop_after_empty: int | None = None
    absent: dict[int, int] = field(init=False)
    stopped: dict[int, bool] = field(init=False)

    def __post_init__(self) -> None:
        self.absent = dict.fromkeys(self.oids, 0)
        self.stopped = dict.fromkeys(self.oids, False)

    def rows(self, s: int) -> list[Row]:
        """What to track on slice ``s``: each object, skipped if it has stopped."""
        return [
            Row(state, s, self.reverse, self.stopped[oid])
            for oid, state in zip(self.oids, self.states, strict=True)
        ]

    def finish(self, s: int, outs: list[TrackedSlice]) -> SliceResult:
        """The result of slice ``s`` from each object's tracking output; updates the stops."""
        result = SliceResult(s, {}, {}, {})
        for oid, state, out in zip(self.oids, self.states, outs, strict=True):
            logits = out.logits[0, 0].cpu().numpy()
            result.logits[oid] = logits
            result.masks[oid] = logits > 0
            result.scores[oid] = out.object_scores[0]
            self._update_stop(oid, state, s, out.object_scores[0])
            sure = logit_confidence(logits, out.object_scores[0])
            result.confidence = min(sure, result.confidence or 1.0)
        return result

    def _update_stop(self, oid: int, state: InferenceState, s: int, score: float) -> None:
        if s in state["output_dict_per_obj"][0]["cond_frame_outputs"]:
            self.absent[oid], self.stopped[oid] = 0, False
        elif not self.stopped[oid]:
            self.absent[oid] = 0 if score > 0 else self.absent[oid] + 1
            limit = self.stop_after_empty
            self.stopped[oid] = limit is not None and self.absent[oid] >= limit
