"""Benchmark: memory held by undo history for 300 mask prompts on a 512x512x300 volume.

This is the web app's restore-from-masks path (one mask prompt per slice). The engine
here returns each mask prompt as is (no model), so only the session's own storage is
measured, with ``tracemalloc``:

* ``session growth``: everything the session holds after the prompts;
* ``undo history``: what dropping the undo history frees.

For comparison, ``deep_copy_estimate`` is what the previous history (a deep copy of every
prompt at each event) would hold: sum over events of the prompts present, each prompt a
mask and a result of 512x512 bools. The last line is ``history_over_mask_stack=<x>``: the
history's size over one bool mask stack of the volume (the goal: a small constant, not a
figure growing with the number of events).

Run: ``python benchmarks/session_memory.py`` (add ``src`` to ``PYTHONPATH`` if the
package is not installed). ``--slices`` and ``--size`` make it smaller.
"""

from __future__ import annotations

import argparse
import tracemalloc

import numpy as np

from sam2vol.engines.base import Engine
from sam2vol.session import Session
from sam2vol.volume import Volume


class MaskEngine(Engine):
    """Answers a mask prompt with the mask itself; propagation is never called here."""

    name = "mask"

    def predict_slice(self, slice_index, prompts, *, current=None, object_id=1):
        return prompts.mask.copy()

    def _track(self, objects, start, end, reverse, fresh):  # pragma: no cover - unused
        return iter(())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    n, size = args.slices, args.size
    volume = Volume(np.zeros((size, size, n), np.int16), np.eye(4), "zeros")
    session = Session(volume, MaskEngine(), intensity="mr-percentile")
    yy, xx = np.mgrid[:size, :size]
    disks = [
        (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 8 + k % 17) ** 2 for k in range(n)
    ]

    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    session.add_mask(disks[0], 0)
    for k in range(1, n):
        session.add_mask(disks[k], k)
    total = tracemalloc.get_traced_memory()[0] - start
    n_events = len(session.events)
    session._done.clear()  # drop the undo history: what this frees is what it held
    history = total - (tracemalloc.get_traced_memory()[0] - start)
    tracemalloc.stop()

    stack_bytes = n * size * size  # one bool mask stack
    deep_copy_estimate = sum(k * 2 * size * size for k in range(1, n + 1))
    mib = 2**20
    print(f"volume {size}x{size}x{n}, {n} mask prompts (one per slice), {n_events} events")
    print(f"one bool mask stack:         {stack_bytes / mib:10.1f} MiB")
    print(f"session growth (measured):   {total / mib:10.1f} MiB")
    print(f"undo history (measured):     {history / mib:10.1f} MiB")
    print(f"deep-copy history (est.):    {deep_copy_estimate / mib:10.1f} MiB")
    print(f"history_over_mask_stack={history / stack_bytes:.3f}")


if __name__ == "__main__":
    main()
