"""The simulated user: the only part of a protocol that looks at the reference mask.

A protocol never touches the ground truth itself. It asks a
:class:`SimulatedUser` the questions a person annotating the volume would
answer by looking at it ("where is the middle of the object?", "where is the
biggest mistake on this slice?"), and every answer follows one documented rule
of :mod:`sam2vol.protocols.rules`. Coordinates are those of the slice stack
``(s, row, col)`` of :mod:`sam2vol.slicing`.
"""

from __future__ import annotations

import numpy as np

from sam2vol.protocols import rules
from sam2vol.protocols.rules import Centre, Click


class SimulatedUser:
    """Answers a protocol's questions from the reference mask, by fixed rules.

    Args:
        reference: The object's reference mask as a slice stack ``(s, row, col)``.
    """

    def __init__(self, reference: np.ndarray) -> None:
        self._reference = np.ascontiguousarray(reference, dtype=bool)
        if self._reference.ndim != 3:
            raise ValueError(f"reference must be a slice stack, got shape {reference.shape}")
        self._nonempty = [int(s) for s in np.flatnonzero(self._reference.any(axis=(1, 2)))]

    # ----- where to prompt --------------------------------------------------------------
    @property
    def nonempty_slices(self) -> list[int]:
        """Slices where the object is visible, in order."""
        return list(self._nonempty)

    def extent_centre(self, min_pixels: int = 0) -> int | None:
        """Middle slice ``(first + last) // 2`` of the slices holding more than ``min_pixels``.

        Shen et al.'s centre slice of the evaluated range (``min_pixels=256`` for
        their salient range); None when no slice qualifies.
        """
        counts = self._reference.sum(axis=(1, 2))
        keep = np.flatnonzero(counts > min_pixels)
        return None if keep.size == 0 else int((keep[0] + keep[-1]) // 2)

    def nearest_nonempty(self, s: int) -> int:
        """The object slice nearest to ``s`` (ties: the lower one)."""
        return min(self._nonempty, key=lambda x: (abs(x - s), x))

    def evenly_spaced_nonempty(self, n: int) -> list[int]:
        """``n`` object slices at ``floor(k * N / (n + 1))``, k = 1..n, of the N object slices.

        ``n=1`` is the middle one, index ``N // 2``; ``n=3`` the quartiles
        ``N//4, N//2, 3N//4``. Repeats (tiny objects) are dropped.
        """
        count = len(self._nonempty)
        picks = [self._nonempty[(k * count) // (n + 1)] for k in range(1, n + 1)]
        return sorted(set(picks))

    def object_pixels(self, s: int) -> int:
        """How many pixels of the object the slice shows."""
        return int(self._reference[s].sum())

    def start_voxel(self) -> tuple[int, int, int]:
        """He et al.'s start point ``(s, row, col)``, see :func:`rules.start_voxel`."""
        return rules.start_voxel(self._reference)

    # ----- what to draw -----------------------------------------------------------------
    def outline(self, s: int) -> np.ndarray:
        """The object's exact mask on slice ``s`` (a perfect mask prompt)."""
        return self._reference[s].copy()

    def bounding_box(self, s: int) -> tuple[int, int, int, int]:
        """Tight box ``(row0, col0, row1, col1)``, inclusive, around the object on slice ``s``."""
        rows, cols = np.nonzero(self._reference[s])
        return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())

    def deepest_point(self, s: int) -> Click:
        """Dong et al.'s click, see :func:`rules.deepest_point_of_largest_component`."""
        row, col = rules.deepest_point_of_largest_component(self._reference[s])
        return Click(s, row, col, True)

    # ----- how to correct ---------------------------------------------------------------
    def farthest_error_click(self, s: int, prediction: np.ndarray) -> Click | None:
        """Shen et al.'s next click, see :func:`rules.farthest_error_click`."""
        return rules.farthest_error_click(self._reference[s], prediction, s)

    def eroded_error_click(
        self, s: int, prediction: np.ndarray, centre: Centre, *, uneroded_fallback: bool = False
    ) -> Click | None:
        """He et al.'s initial click, see :func:`rules.eroded_error_click`."""
        return rules.eroded_error_click(
            self._reference[s], prediction, s, centre=centre, uneroded_fallback=uneroded_fallback
        )

    def worst_slice(self, prediction: np.ndarray, exclude=()) -> int | None:
        """He et al.'s next slice, see :func:`rules.worst_slice`."""
        return rules.worst_slice(self._reference, prediction, exclude)

    def correction_clicks(
        self, s: int, prediction: np.ndarray, rng: np.random.Generator, centre: Centre
    ) -> list[Click]:
        """He et al.'s clicks on a new slice, see :func:`rules.correction_clicks`."""
        return rules.correction_clicks(self._reference[s], prediction, s, rng, centre=centre)
