"""Progress bars for long loops (shown on a terminal, silent in pipes)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterable[T]:
    """Wrap ``items`` in a tqdm bar on stderr when it is a terminal."""
    from tqdm import tqdm

    return tqdm(
        items, total=total, desc=desc, unit="slice", delay=1.0, disable=not sys.stderr.isatty()
    )


def consume(items: Iterable[T], total: int | None = None, desc: str = "propagating") -> int:
    """Run a generator to its end under a progress bar; returns the count."""
    return sum(1 for _ in progress(items, total, desc))
