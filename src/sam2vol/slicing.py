"""Turning a volume into a stack of 2D slices, and back.

The slicing axis is chosen in physical terms from the direction cosines, not by
array position: ``axial`` slices are the array axis closest to the
superior-inferior direction, ``coronal`` to anterior-posterior, ``sagittal`` to
left-right.

Slice ``s`` is the array index along that axis, unchanged (so slice numbers
match voxel coordinates in 3D Slicer and ITK-SNAP). In-plane, slices come out
in the radiological display convention those viewers use:

| axis     | rows (top to bottom)    | columns (left to right)  |
|----------|-------------------------|--------------------------|
| axial    | anterior -> posterior   | patient right -> left    |
| coronal  | superior -> inferior    | patient right -> left    |
| sagittal | superior -> inferior    | anterior -> posterior    |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from sam2vol.errors import InputError
from sam2vol.volume import Volume

Axis = Literal["axial", "coronal", "sagittal"]
AXES: tuple[Axis, ...] = ("axial", "coronal", "sagittal")

# World axes in RAS: 0 = R, 1 = A, 2 = S. For each view: the world axis across
# slices, the one down the rows, the one along the columns. Rows and columns run
# from the positive world direction to the negative one (A->P, S->I, R->L).
_VIEW_WORLD_AXES = {"axial": (2, 1, 0), "coronal": (1, 2, 0), "sagittal": (0, 2, 1)}


@dataclass(frozen=True)
class SliceGeometry:
    """How the [i, j, k] array maps to a slice stack [s, row, col].

    Attributes:
        axis: The view name.
        slice_axis, row_axis, col_axis: Array axes that become slices, rows and columns.
        flip_rows, flip_cols: Whether rows/columns run against the array index.
        shape: Array shape [i, j, k].
        spacing_mm: Array spacing [i, j, k].
    """

    axis: Axis
    slice_axis: int
    row_axis: int
    col_axis: int
    flip_rows: bool
    flip_cols: bool
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]

    @classmethod
    def for_volume(cls, volume: Volume, axis: Axis = "axial") -> SliceGeometry:
        """Pick the array axes of ``axis`` from ``volume``'s direction cosines.

        Example:
            >>> import numpy as np
            >>> v = Volume(np.zeros((3, 4, 5)), np.diag([1.0, 1.0, 2.0, 1.0]))
            >>> g = SliceGeometry.for_volume(v, "axial")
            >>> g.n_slices, g.slice_shape
            (5, (4, 3))
        """
        if axis not in _VIEW_WORLD_AXES:
            raise InputError(f"--axis must be one of {', '.join(AXES)}, got {axis!r}")
        direction = volume.direction
        world_slice, world_row, world_col = _VIEW_WORLD_AXES[axis]
        # Assign array axes to world axes greedily by largest |cosine|.
        weights = np.abs(direction)
        order = np.dstack(np.unravel_index(np.argsort(-weights, axis=None), weights.shape))[0]
        assigned: dict[int, int] = {}
        for world, array_axis in order:
            if world not in assigned and array_axis not in assigned.values():
                assigned[int(world)] = int(array_axis)
        s, r, c = assigned[world_slice], assigned[world_row], assigned[world_col]
        return cls(
            axis=axis,
            slice_axis=s,
            row_axis=r,
            col_axis=c,
            flip_rows=bool(direction[world_row, r] > 0),
            flip_cols=bool(direction[world_col, c] > 0),
            shape=volume.shape,
            spacing_mm=volume.spacing_mm,
        )

    @property
    def n_slices(self) -> int:
        return self.shape[self.slice_axis]

    @property
    def slice_shape(self) -> tuple[int, int]:
        return self.shape[self.row_axis], self.shape[self.col_axis]

    @property
    def pixel_spacing_mm(self) -> tuple[float, float]:
        """(row, col) pixel size of a slice in mm."""
        return self.spacing_mm[self.row_axis], self.spacing_mm[self.col_axis]

    @property
    def slice_thickness_mm(self) -> float:
        return self.spacing_mm[self.slice_axis]

    @property
    def stack_spacing_mm(self) -> tuple[float, float, float]:
        """Spacing of the stack [s, row, col]."""
        return (self.slice_thickness_mm, *self.pixel_spacing_mm)

    def to_stack(self, data: np.ndarray) -> np.ndarray:
        """View ``data`` ([i, j, k]) as a slice stack [s, row, col] (no copy where possible)."""
        stack = np.transpose(data, (self.slice_axis, self.row_axis, self.col_axis))
        if self.flip_rows:
            stack = stack[:, ::-1, :]
        if self.flip_cols:
            stack = stack[:, :, ::-1]
        return stack

    def from_stack(self, stack: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_stack`: a slice stack back to [i, j, k]."""
        if self.flip_rows:
            stack = stack[:, ::-1, :]
        if self.flip_cols:
            stack = stack[:, :, ::-1]
        inverse = np.argsort((self.slice_axis, self.row_axis, self.col_axis))
        return np.ascontiguousarray(np.transpose(stack, inverse))

    def plane_to_slice(self, plane: np.ndarray) -> np.ndarray:
        """A 2D array slice of the file (``data.take(s, axis=slice_axis)``) -> (row, col)."""
        plane = np.asarray(plane)
        if self.row_axis > self.col_axis:
            plane = plane.T
        if plane.shape != self.slice_shape:
            raise InputError(f"2D mask shape {plane.shape} != slice shape {self.slice_shape}")
        return plane[:: -1 if self.flip_rows else 1, :: -1 if self.flip_cols else 1]

    def slice_to_plane(self, image: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`plane_to_slice`."""
        image = np.asarray(image)[:: -1 if self.flip_rows else 1, :: -1 if self.flip_cols else 1]
        return image.T if self.row_axis > self.col_axis else image

    def voxel_to_slice(self, ijk: tuple[int, int, int]) -> tuple[int, int, int]:
        """Voxel index (i, j, k) -> (slice, row, col)."""
        self.check_voxel(ijk)
        s, r, c = ijk[self.slice_axis], ijk[self.row_axis], ijk[self.col_axis]
        if self.flip_rows:
            r = self.shape[self.row_axis] - 1 - r
        if self.flip_cols:
            c = self.shape[self.col_axis] - 1 - c
        return int(s), int(r), int(c)

    def slice_to_voxel(self, s: int, row: int, col: int) -> tuple[int, int, int]:
        """(slice, row, col) -> voxel index (i, j, k)."""
        if self.flip_rows:
            row = self.shape[self.row_axis] - 1 - row
        if self.flip_cols:
            col = self.shape[self.col_axis] - 1 - col
        ijk = [0, 0, 0]
        ijk[self.slice_axis], ijk[self.row_axis], ijk[self.col_axis] = s, row, col
        return int(ijk[0]), int(ijk[1]), int(ijk[2])

    def check_voxel(self, ijk) -> None:
        if len(ijk) != 3 or not all(0 <= int(x) < n for x, n in zip(ijk, self.shape, strict=True)):
            raise InputError(f"point {tuple(ijk)} is outside the volume of shape {self.shape}")

    def check_slice(self, s: int) -> None:
        if not 0 <= s < self.n_slices:
            raise InputError(f"slice {s} is outside 0..{self.n_slices - 1} ({self.axis})")
