"""The weights-free default engine: graph cuts with a shape prior, slice by slice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np

from sam2vol.engines.base import Engine, ObjectPrompts, SlicePrompts, SliceResult
from sam2vol.engines.default.interaction import check_mask, predict_prompts
from sam2vol.engines.default.params import DefaultParams, PixelGeometry
from sam2vol.engines.default.refine3d import refine_run
from sam2vol.engines.default.tracking import (
    ABSENT_SCORE,
    END_SURE_AFTER,
    absent_confidence,
    anchor_state,
    track_step,
)
from sam2vol.errors import InputError

# One walked slice of one object: (slice index, mask, score, confidence).
Walked = tuple[int, np.ndarray, float, float]


class DefaultEngine(Engine):
    """Interactive 3D segmentation without learned weights (see the package docstring).

    Args:
        params: Settings; default :class:`DefaultParams`.
        **overrides: Individual settings to change, by name.

    Example:
        >>> import numpy as np
        >>> from sam2vol.engines.base import SlicePrompts
        >>> rng = np.random.default_rng(0)
        >>> image = rng.normal(0.2, 0.02, (3, 40, 40)).astype(np.float32)
        >>> image[:, 10:30, 10:30] += 0.5
        >>> engine = DefaultEngine()
        >>> engine.set_image(image, (2.0, 1.0, 1.0))
        >>> prompts = SlicePrompts()
        >>> prompts.add_point(20, 20, positive=True)
        >>> mask = engine.predict_slice(1, prompts)
        >>> bool(mask[10:30, 10:30].mean() > 0.95), int(mask.sum() - mask[10:30, 10:30].sum())
        (True, 0)
    """

    name: ClassVar[str] = "default"

    def __init__(self, params: DefaultParams | None = None, **overrides: object) -> None:
        super().__init__()
        self.params = (params or DefaultParams()).updated(**overrides)

    @property
    def geometry(self) -> PixelGeometry:
        """Pixel size and slice thickness of the loaded stack."""
        thickness, row, col = self.spacing_mm
        return PixelGeometry((row, col), thickness)

    def _slice(self, slice_index: int) -> np.ndarray:
        """One slice of the loaded stack, checked."""
        if self.image is None:
            raise RuntimeError("call set_image() before predict_slice()")
        if not 0 <= slice_index < self.n_slices:
            raise InputError(f"slice {slice_index} is outside 0..{self.n_slices - 1}")
        return self.image[slice_index]

    def predict_slice(
        self,
        slice_index: int,
        prompts: SlicePrompts,
        *,
        current: np.ndarray | None = None,
        object_id: int = 1,
    ) -> np.ndarray:
        """The 2D mask that ``prompts`` ask for (see :func:`predict_prompts`).

        Objects are independent here, so ``object_id`` changes nothing.
        """
        image = self._slice(slice_index)
        return predict_prompts(image, slice_index, prompts, current, self.params, self.geometry)

    def _track(
        self, objects: dict[int, ObjectPrompts], start: int, end: int, reverse: bool, fresh: bool
    ) -> Iterator[SliceResult]:
        """Every slice from ``start`` towards ``end``, each object walked on its own.

        This engine keeps no memory between passes, so ``fresh`` changes nothing.
        """
        step = -1 if reverse else 1
        walks = {oid: self._object_walk(p, start, end, step) for oid, p in objects.items()}
        for s in range(start, end, step):
            masks, scores, confidence = {}, {}, 1.0
            for oid, walk in walks.items():
                walked, mask, scores[oid], sure = next(walk)
                assert walked == s
                masks[oid] = mask.copy()  # the caller may edit it; the walk goes on from it
                confidence = min(confidence, sure)
            yield SliceResult(s, masks, scores, confidence=confidence)

    def _object_walk(
        self, prompts: ObjectPrompts, start: int, end: int, step: int
    ) -> Iterator[Walked]:
        """One object's masks on each slice from ``start`` towards ``end``.

        From an anchor (prompted slice) at ``start``, propagation goes on as
        usual. If ``start`` is not prompted, the slices up to the first anchor
        ahead come from that anchor propagated back towards ``start``; with no
        anchor ahead, the nearest anchor behind ``start`` is propagated through
        it.
        """
        anchors = sorted(s for s, p in prompts.items() if not p.is_empty)
        ahead = [s for s in anchors[::step] if (s - start) * step >= 0 and (end - s) * step > 0]
        if ahead and ahead[0] == start:
            yield from self._walk(prompts, start, end, step)
        elif ahead:
            back = list(self._walk(prompts, ahead[0], start - step, -step))
            yield from reversed(back[1:])
            yield from self._walk(prompts, ahead[0], end, step)
        else:
            behind = min(anchors, key=lambda s: abs(s - start))
            for walked in self._walk(prompts, behind, end, step):
                if (walked[0] - start) * step >= 0:
                    yield walked

    def _walk(self, prompts: ObjectPrompts, first: int, end: int, step: int) -> Iterator[Walked]:
        """Propagate from the anchor ``first`` to ``end`` (exclusive) through later anchors.

        Between two anchors each slice comes from the nearer one (ties: the
        lower slice index), so a correction on any slice shapes its neighbours on both
        sides and never overrides slices closer to another prompt. An empty
        anchor (the object erased there) is only a stop: the slices before it
        come from the non-empty anchor.
        """
        anchors = [
            a
            for a in sorted(prompts, key=lambda a: a * step)
            if not prompts[a].is_empty and (a - first) * step >= 0 and (end - a) * step > 0
        ]
        for n, a in enumerate(anchors):
            if n + 1 == len(anchors):
                yield from self._segment(prompts[a], a, end, step)
                break
            following = anchors[n + 1]
            here, there = (self._anchor_mask(x, prompts[x]).any() for x in (a, following))
            if here and not there:
                middle = following
            elif there and not here:
                middle = a + step
            else:
                gap = abs(following - a)  # a slice at the same distance goes to the lower anchor
                middle = a + step * ((gap + 1) // 2 + (gap % 2 == 0 and step > 0))
            yield from self._segment(prompts[a], a, middle, step)
            back = list(self._segment(prompts[following], following, middle - step, -step))
            yield from reversed(back[1:])  # `following` itself starts the next round

    def _segment(self, prompt: SlicePrompts, anchor: int, end: int, step: int) -> Iterator[Walked]:
        """Track from one anchor towards ``end`` (exclusive), with no anchor in between.

        The tracked slices are then refined together in 3D (see
        :func:`~.refine3d.refine_run`) before they are handed out.
        """
        params, geo = self.params, self.geometry
        mask = self._anchor_mask(anchor, prompt)
        state, score = (None, ABSENT_SCORE)
        if mask.any():
            state, score = anchor_state(self.image[anchor], mask, params, geo)
        yield anchor, mask, score, 1.0  # the user's own answer on this slice
        model = state.model if state is not None else None
        empty = np.zeros(self.image.shape[1:], dtype=bool)
        since_end = 0 if mask.any() else END_SURE_AFTER  # an erased object is surely absent
        tracked: list[Walked] = []
        for s in range(anchor + step, end, step):
            if state is None:
                since_end += 1
                tracked.append((s, empty, ABSENT_SCORE, absent_confidence(since_end)))
                continue
            outcome = track_step(self.image[s], state, params, geo)
            state = outcome.state
            if state is None:
                since_end += 1
                tracked.append((s, outcome.mask, outcome.score, absent_confidence(since_end)))
            else:
                tracked.append((s, outcome.mask, outcome.score, outcome.confidence))
        alive = next((k for k, t in enumerate(tracked) if not t[1].any()), len(tracked))
        if model is not None and alive > 0:
            run = [anchor] + [t[0] for t in tracked[:alive]]
            masks = np.stack([mask] + [t[1] for t in tracked[:alive]])
            refined = refine_run(self.image[run], masks, model, params, geo)
            tracked[:alive] = [
                (s, refined[k + 1], sc, c) for k, (s, _, sc, c) in enumerate(tracked[:alive])
            ]
        yield from tracked

    def _anchor_mask(self, s: int, prompt: SlicePrompts) -> np.ndarray:
        """The session's answer to a prompted slice, or ours when it has none."""
        if prompt.result is None:
            return self.predict_slice(s, prompt)
        return check_mask(prompt.result, self.image.shape[1:], s, "prompt result")
