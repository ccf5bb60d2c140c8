"""Background encoding: a thread encoding slices into the feature cache while the engine idles."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sam2vol.engines.sam2.feature_cache import FeatureCache

if TYPE_CHECKING:
    from sam2vol.engines.sam2.engine import Sam2Engine


class BackgroundEncoder(threading.Thread):
    """Encodes slices in ``order`` into ``cache`` while the engine is idle."""

    def __init__(
        self,
        engine: Sam2Engine,
        cache: FeatureCache,
        order: list[int],
        keep_going: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(name="sam2vol-prefetch", daemon=True)
        self.engine = engine
        self.cache = cache
        self.order = order
        self.keep_going = keep_going
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            if self.engine._busy:
                time.sleep(0.02)  # the user acts: wait
                continue
            if self.keep_going is not None and not self.keep_going():
                return
            todo = [s for s in self.order if s not in self.cache]
            stored = self.cache.stats.stored
            if not todo or self.cache.encode_some(todo) == 0:
                return
            if self.cache.stats.stored == stored:
                return  # the memory budget is spent

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
