"""The simulated user: the only part of a protocol that looks at the reference mask.

A protocol never touches the ground truth itself. It asks a
:class:`SimulatedUser` the questions a person annotating the volume would
answer by looking at it ("where is the middle of the object?", "where is the
biggest mistake on this slice?"), and every answer follows one documented rule
of :mod:`sam2vol.protocols.rules`. Coordinates are those of the array-frame
slice stack ``(s, row, col)`` of :mod:`sam2vol.protocols.frame`.
"""

from __future__ import annotations

import numpy as np

from sam2vol.protocols import rules
from sam2vol.protocols.rules import Centre, Click


class SimulatedUser:
    """Answers a protocol's questions from the reference mask, by fixed rules.

    Args:
        reference: The object's reference mask as an array-frame slice stack ``(s, row, col)``.
        slice_axis: The array axis the stack's slices were taken along (for He et
            al.'s start voxel, found in the array's own C order).
    """

    def __init__(self, reference: np.ndarray, slice_axis: int = 0) -> None:
        self._slice_axis = slice_axis
        self._reference = np.ascontiguousarray(reference, dtype=bool)
        if self._reference.ndim != 3:
            raise ValueError(f"reference must be a slice stack, got shape {reference.shape}")
        self._nonempty = [int(s) for s in np.flatnonzero(self._reference.any(axis=(1, 2)))]

    # ----- where to prompt --------------------------------------------------------------
    @property
    def reference_stack(self) -> np.ndarray:
        """The reference as a slice stack (read only: the oracle's view)."""
        view = self._reference.view()
        view.flags.writeable = False
        return view

    @property
    def nonempty_slices(self) -> list[int]:
        """Slices where the object is visible, in order."""
        return list(self._nonempty)

    def pixel_counts(self) -> np.ndarray:
        """Object pixels on every slice."""
        return self._reference.sum(axis=(1, 2))

    def extent(self) -> tuple[int, int]:
        """First and last object slice."""
        return self._nonempty[0], self._nonempty[-1]

    def nearest_nonempty(self, s: int) -> int:
        """The object slice nearest to ``s`` (ties: the lower one)."""
        return min(self._nonempty, key=lambda x: (abs(x - s), x))

    def dong_slices(self, n: int) -> list[int]:
        """Dong et al.'s prompted slices, see :func:`rules.dong_slices`."""
        return rules.dong_slices(self._nonempty, n)

    def object_pixels(self, s: int) -> int:
        """How many pixels of the object the slice shows."""
        return int(self._reference[s].sum())

    def start_voxel(self, keep: np.ndarray | None = None) -> tuple[int, int, int]:
        """He et al.'s start point ``(s, row, col)``, see :func:`rules.start_voxel`.

        Found on the array ``[i, j, k]`` (its C order decides ties); with
        ``keep`` (a bool per slice), on the array with only those slices, as
        the released code does with background slices removed.
        """
        stack = self._reference
        kept = np.arange(stack.shape[0]) if keep is None else np.flatnonzero(keep)
        ijk = rules.start_voxel(np.moveaxis(stack[kept], 0, self._slice_axis))
        rest = [int(x) for a, x in enumerate(ijk) if a != self._slice_axis]
        return int(kept[ijk[self._slice_axis]]), rest[0], rest[1]

    # ----- what to draw -----------------------------------------------------------------
    def outline(self, s: int) -> np.ndarray:
        """The object's exact mask on slice ``s`` (a perfect mask prompt)."""
        return self._reference[s].copy()

    def bounding_box(self, s: int | None = None) -> tuple[int, int, int, int]:
        """Tight box ``(row0, col0, row1, col1)``, inclusive, around the object.

        On slice ``s``; with ``s=None`` the in-plane extent of the 3D box
        around the whole object (Ma et al.'s dataset boxes).
        """
        plane = self._reference.any(axis=0) if s is None else self._reference[s]
        rows, cols = np.nonzero(plane)
        return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())

    def deepest_point(self, s: int) -> Click:
        """Dong et al.'s click, see :func:`rules.deepest_point_of_largest_component`."""
        row, col = rules.deepest_point_of_largest_component(self._reference[s])
        return Click(s, row, col, True)

    # ----- how to correct ---------------------------------------------------------------
    def farthest_error_click(self, s: int, prediction: np.ndarray) -> Click | None:
        """Shen et al.'s next click, see :func:`rules.farthest_error_click`."""
        return rules.farthest_error_click(self._reference[s], prediction, s)

    def eroded_error_click(self, s: int, prediction: np.ndarray, centre: Centre) -> Click | None:
        """He et al.'s next initial click, see :func:`rules.eroded_error_click`."""
        return rules.eroded_error_click(self._reference[s], prediction, s, centre=centre)

    def worst_slice(self, prediction: np.ndarray) -> tuple[int, float] | None:
        """He et al.'s next slice and its Dice, see :func:`rules.worst_slice`."""
        return rules.worst_slice(self._reference, prediction)

    def correction_clicks(
        self, s: int, prediction: np.ndarray, rng: np.random.Generator, centre: Centre
    ) -> list[Click]:
        """He et al.'s clicks on a new slice, see :func:`rules.correction_clicks`."""
        return rules.correction_clicks(self._reference[s], prediction, s, rng, centre=centre)
