"""The array frame the authors' released code clicked in.

Every released script loads the volume with nibabel or MONAI and hands SAM 2
the slices ``data[:, :, k]`` (for axial) as they are: rows are the array's
``i``, columns its ``j``. The project's display stack is radiological (rows
may run against ``i``), so on a row-flipped file the same rule picks other
pixels on ties, argmin/argsort orders and ``(m, m)`` centres. The protocols
therefore ask their questions in this frame: slice ``s`` is
``data.take(s, slice_axis)``, the two other axes in increasing order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2vol.slicing import SliceGeometry


@dataclass(frozen=True)
class ArrayFrame:
    """Slices of the array as loaded: ``(s, row, col)`` = ``data.take(s, axis)[row, col]``.

    Args:
        geometry: The session's slicing geometry (for its slice axis and the
            display stack the session keeps masks in).
    """

    geometry: SliceGeometry

    @property
    def slice_axis(self) -> int:
        return self.geometry.slice_axis

    def to_stack(self, data: np.ndarray) -> np.ndarray:
        """A volume ``[i, j, k]`` as an array-frame slice stack."""
        return np.moveaxis(np.asarray(data), self.slice_axis, 0)

    def from_display(self, display_stack: np.ndarray) -> np.ndarray:
        """A display slice stack (the session's masks) as an array-frame stack."""
        return self.to_stack(self.geometry.from_stack(display_stack))

    def slice_from_display(self, display_slice: np.ndarray) -> np.ndarray:
        """One display slice as the array's plane of that slice."""
        return np.asarray(self.geometry.slice_to_plane(display_slice))

    def voxel(self, s: int, row: int, col: int) -> tuple[int, int, int]:
        """The voxel ``(i, j, k)`` of array-frame pixel ``(row, col)`` on slice ``s``."""
        ijk = [int(row), int(col)]
        ijk.insert(self.slice_axis, int(s))
        return ijk[0], ijk[1], ijk[2]
