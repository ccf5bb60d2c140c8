"""Long work (loading, propagating, recovering) on a worker thread, with progress to report."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sam2vol.errors import InputError

JobKind = Literal["load", "propagate", "recover", "redo"]
JobState = Literal["running", "done", "failed", "cancelled"]
log = logging.getLogger("sam2vol.web")


@dataclass(frozen=True)
class SliceDone:
    """One slice reached by propagation, and the objects with a mask on it."""

    slice: int
    objects: tuple[int, ...]


@dataclass(frozen=True)
class JobSnapshot:
    """A job's progress at one moment, as sent to the page.

    Attributes:
        kind: What the job does.
        state: ``running``, ``done``, ``failed`` or ``cancelled``.
        done: Steps done (slices, events).
        total: Steps expected (None when unknown).
        message: What is happening, or how it ended.
        error: Why it failed.
        version: Grows with every change (the page skips repeats).
        slices: Slices reached since the snapshot's ``since`` count.
        n_slices: Slices reached in all.
        seconds: Time since the job started.
    """

    kind: JobKind
    state: JobState
    done: int
    total: int | None
    message: str
    error: str | None
    version: int
    slices: tuple[SliceDone, ...]
    n_slices: int
    seconds: float


@dataclass
class Job:
    """A job's progress, updated by its worker thread and read by requests."""

    kind: JobKind
    total: int | None = None
    message: str = ""
    state: JobState = "running"
    done: int = 0
    error: str | None = None
    version: int = 0
    cancel_requested: bool = False
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    _slices: list[SliceDone] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def n_reached(self) -> int:
        """Slices reached so far."""
        return len(self._slices)

    def advance(self, slice_index: int | None = None, objects: tuple[int, ...] = ()) -> None:
        """One more step done (a slice, when propagating)."""
        with self._cond:
            self.done += 1
            if slice_index is not None:
                self._slices.append(SliceDone(int(slice_index), tuple(objects)))
            self.version += 1
            self._cond.notify_all()

    def note(self, message: str) -> None:
        with self._cond:
            self.message = message
            self.version += 1
            self._cond.notify_all()

    def finish(self, state: JobState, message: str = "", error: str | None = None) -> None:
        with self._cond:
            self.state = state
            self.message = message
            self.error = error
            if state == "done" and self.total is not None:
                self.done = max(self.done, self.total)
            self.finished = time.monotonic()
            self.version += 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait until the job ends; True if it has."""
        with self._cond:
            return self._cond.wait_for(lambda: not self.running, timeout=max(0.0, timeout))

    def snapshot(self, since: int | None = None) -> JobSnapshot:
        """Progress now; ``since`` = how many reached slices the caller has seen already."""
        with self._cond:
            start = len(self._slices) if since is None else max(0, since)
            end = self.finished if self.finished is not None else time.monotonic()
            return JobSnapshot(
                self.kind,
                self.state,
                self.done,
                self.total,
                self.message,
                self.error,
                self.version,
                tuple(self._slices[start:]),
                len(self._slices),
                round(end - self.started, 3),
            )


def run_job(job: Job, work: Callable[[Job], str], name: str) -> threading.Thread:
    """Run ``work(job)`` on a daemon thread; its return value is the final message.

    An :class:`InputError` fails the job with its message; any other
    exception fails it with a generic message (the traceback goes to the log).
    """

    def target() -> None:
        try:
            message = work(job)
        except InputError as exc:
            job.finish("failed", error=str(exc).splitlines()[0])
        except Exception:
            log.exception("job %s failed", name)
            job.finish("failed", error=f"{job.kind} failed: internal error (see the server log)")
        else:
            if job.running:
                job.finish("done", message)

    thread = threading.Thread(target=target, name=f"sam2vol-{name}", daemon=True)
    thread.start()
    return thread
