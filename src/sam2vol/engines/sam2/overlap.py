"""Run the backward walk of a propagation while the forward walk is still going.

A SAM 2 walk reads, besides its own slices, only the memories and object
pointers of the slices just behind it: at most ``horizon`` slices (the memory
bank and the pointer window, 15 slices with the usual settings). Once the
forward walk has stored slice ``start + horizon``, the backward walk (which
reads slices ``start .. start + horizon`` and writes slices ``<= start``)
touches nothing the forward walk still writes or reads, so the two can run
at the same time and give exactly what one after the other gives.

The results still come in the sequential order (all forward slices, then the
backward ones). If the caller stops early, whatever the backward walk did
beyond what was handed out is undone, so the model's state is the one a
sequential run stopped at the same point leaves.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Undo = Callable[[], None]


@dataclass
class _Done:
    """The backward walk ended (``error`` set if it failed)."""

    error: BaseException | None = None


@dataclass
class OverlapStats:
    """What the last overlapped propagation did.

    Attributes:
        started_after: The forward slice after which the backward walk
            started (None: it ran after the forward walk).
        done: Backward slices tracked in the second thread so far.
        ahead: Of those, the ones done before the forward walk ended.
        undone: Backward slices undone because the caller stopped early.
    """

    started_after: int | None = None
    done: int = 0
    ahead: int = 0
    undone: int = 0


class _Backward(threading.Thread):
    """Runs the backward walk, queueing each result with how to undo it."""

    def __init__(
        self,
        walk: Iterator[Any],
        frames: Iterator[int],
        snapshot: Callable[[int], Undo],
        stats: OverlapStats,
    ) -> None:
        super().__init__(name="sam2vol-backward-walk", daemon=True)
        self.walk = walk
        self.stats = stats
        self.frames = frames
        self.snapshot = snapshot
        self.results: queue.Queue[tuple[Any, Undo] | _Done] = queue.Queue()
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            for frame in self.frames:
                if self.halt.is_set():
                    return
                undo = self.snapshot(frame)
                result = next(self.walk)
                self.results.put((result, undo))
                self.stats.done += 1
            for _ in self.walk:
                raise RuntimeError("the backward walk yielded more slices than expected")
            self.results.put(_Done())
        except BaseException as exc:  # handed to the caller's thread, at its place in order
            self.results.put(_Done(exc))
        finally:
            self.walk.close()


def overlapped(
    forward: Iterator[Any],
    backward: Callable[[], Iterator[Any]],
    *,
    backward_frames: range,
    ready: Callable[[Any], bool],
    snapshot: Callable[[int], Undo],
    stats: OverlapStats | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(0, r)`` for each forward result, then ``(1, r)`` for each backward one.

    Args:
        forward: The forward walk (run in the caller's thread).
        backward: Starts the backward walk (run in a worker thread).
        backward_frames: The slices the backward walk yields, in order.
        ready: Given the forward result just yielded, whether the backward
            walk may start now (the forward walk is past its horizon).
        snapshot: Called with a slice before the backward walk tracks it;
            returns what puts that slice's state back.
        stats: Filled in with what happened.
    """
    stats = stats if stats is not None else OverlapStats()
    worker: _Backward | None = None
    try:
        for result in forward:
            yield 0, result
            if worker is None and ready(result):
                worker = _Backward(backward(), iter(backward_frames), snapshot, stats)
                stats.started_after = result.slice_index
                worker.start()
        if worker is None:  # the forward walk was too short to overlap
            for result in backward():
                yield 1, result
            return
        stats.ahead = stats.done
        while True:
            item = worker.results.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield 1, item[0]
    finally:
        close = getattr(forward, "close", None)
        if close is not None:
            close()
        if worker is not None:
            worker.halt.set()
            worker.join()
            stats.undone = _undo_queued(worker)


def _undo_queued(worker: _Backward) -> int:
    """Undo the slices the worker did that were never handed out (newest first)."""
    undos: list[Undo] = []
    while True:
        try:
            item = worker.results.get_nowait()
        except queue.Empty:
            break
        if not isinstance(item, _Done):
            undos.append(item[1])
    for undo in reversed(undos):
        undo()
    return len(undos)
