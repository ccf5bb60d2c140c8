"""Track the backward walk of a propagation in the same batches as the forward walk.

A SAM 2 walk reads, besides its own slices, only the memories and object
pointers of the slices just behind it: at most ``horizon`` slices (the memory
bank and the pointer window, 15 with the usual settings). Once the forward
walk has stored slice ``start + horizon``, the backward walk (which reads
slices ``<= start + horizon`` and writes slices ``<= start``) touches nothing
the forward walk still writes or reads, and the forward walk (reading slices
``> start``) nothing the backward walk writes. From then on each tracking
step takes the next slice of both walks in one batch
(:func:`~sam2vol.engines.sam2.batched.track_rows`): the same results as one
walk after the other, up to rounding, in fewer, larger steps (on a GPU a
batch of two costs little more than a batch of one).

The results still come in the sequential order (all forward slices, then the
backward ones). If the caller stops early, whatever the backward walk did
beyond what was handed out is undone, so the model's state is the one a
sequential run stopped at the same point leaves. While the caller pauses
between results, the state already holds those backward slices: finish or
close a propagation before the next call on the same objects (``Session``
does).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sam2vol.engines.base import SliceResult
from sam2vol.engines.sam2.predictor import TrackedSlice
from sam2vol.engines.sam2.walk import Walk

Undo = Callable[[], None]
# Called before the backward walk tracks a slice; once it has, returns what undoes that.
Snapshot = Callable[[int], Callable[[], Undo]]
# Tracks the rows of one or two walks on one slice each; returns the outputs per walk.
Track = Callable[..., list[list[TrackedSlice]]]


@dataclass
class OverlapStats:
    """What the last overlapped propagation did.

    Attributes:
        started_after: The forward slice after which the backward walk
            joined the forward walk's steps (None: it ran after it).
        ahead: Backward slices tracked in the forward walk's steps.
        undone: Of those, the ones undone because the caller stopped before
            they were handed out.
    """

    started_after: int | None = None
    ahead: int = 0
    undone: int = 0


def overlapped(
    forward: Walk,
    backward: Callable[[], Walk],
    *,
    forward_frames: range,
    backward_frames: range,
    horizon: int,
    track: Track,
    snapshot: Snapshot,
    stats: OverlapStats | None = None,
) -> Iterator[tuple[int, SliceResult]]:
    """Yield ``(0, r)`` for each forward result, then ``(1, r)`` for each backward one.

    Args:
        forward: The forward walk (begun).
        backward: Begins the backward walk (called once the forward walk is
            past its horizon, or after it).
        forward_frames: The forward walk's slices, from the start up.
        backward_frames: The backward walk's slices, from the start down.
        horizon: How far behind its slice a walk reads.
        track: Tracks ``track(rows)`` or ``track(forward_rows, backward_rows)``.
        snapshot: Called with a slice before the backward walk tracks it;
            what it returns, called after, returns what puts that slice's
            state back (where the state still holds what the walk wrote).
        stats: Filled in with what happened.
    """
    stats = stats if stats is not None else OverlapStats()
    start = forward_frames.start
    later = iter(backward_frames)
    walk: Walk | None = None
    pending: deque[tuple[SliceResult, Undo]] = deque()  # backward results not handed out
    try:
        for s in forward_frames:
            b = None
            if s > start + horizon:  # the forward walk has stored start + horizon
                if walk is None:
                    walk, stats.started_after = backward(), s - 1
                b = next(later, None)
            if b is None:
                (outs,) = track(forward.rows(s))
            else:
                seal = snapshot(b)
                try:
                    outs, back = track(forward.rows(s), walk.rows(b))
                    result = walk.finish(b, back)
                except BaseException:
                    seal()()  # a failed step leaves slice b as it was
                    raise
                pending.append((result, seal()))
                stats.ahead += 1
            yield 0, forward.finish(s, outs)
        while pending:
            result, _ = pending.popleft()
            yield 1, result
        if walk is None:
            walk = backward()
        for b in later:
            (outs,) = track(walk.rows(b))
            yield 1, walk.finish(b, outs)
    finally:
        stats.undone = len(pending)
        for _, undo in reversed(pending):  # newest first
            undo()
