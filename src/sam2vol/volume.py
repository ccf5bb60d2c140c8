"""The :class:`Volume` type: voxels plus the geometry that places them in the patient."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sam2vol.errors import InputError

# Tolerance for "same grid" checks between an image and its label, in mm.
GRID_ATOL_MM = 1e-3


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image or mask with its geometry.

    Attributes:
        data: Voxel array indexed ``[i, j, k]`` in the file's own index order
            (as nibabel, 3D Slicer and ITK-SNAP show voxel coordinates).
        affine: 4x4 matrix mapping voxel indices ``(i, j, k, 1)`` to world
            coordinates in mm, RAS+ convention (nibabel's).
        source: Where the volume came from, for messages.

    Example:
        >>> import numpy as np
        >>> v = Volume(np.zeros((4, 5, 6)), np.diag([0.5, 0.5, 2.0, 1.0]))
        >>> v.spacing_mm
        (0.5, 0.5, 2.0)
    """

    data: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    source: str = "<array>"

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim != 3:
            raise InputError(f"{self.source}: expected a 3D volume, got shape {data.shape}")
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise InputError(f"{self.source}: expected a finite 4x4 affine")
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "affine", affine)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in mm."""
        return tuple(float(x) for x in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def direction(self) -> np.ndarray:
        """3x3 direction cosines in RAS; column ``a`` is the world direction of array axis ``a``."""
        return self.affine[:3, :3] / np.asarray(self.spacing_mm)

    @property
    def origin_ras(self) -> np.ndarray:
        """World position (RAS, mm) of voxel (0, 0, 0)."""
        return self.affine[:3, 3].copy()

    @property
    def orientation(self) -> str:
        """Three-letter orientation code in RAS terms, e.g. ``"LPS"`` or ``"RAS"``."""
        import nibabel as nib

        return "".join(nib.aff2axcodes(self.affine))

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing_mm)) / 1000.0

    def with_data(self, data: np.ndarray, *, source: str | None = None) -> Volume:
        """A volume on the same grid holding other voxels (e.g. a mask)."""
        data = np.asarray(data)
        if data.shape != self.shape:
            raise InputError(f"{source or self.source}: shape {data.shape} != {self.shape}")
        return Volume(data, self.affine.copy(), source or self.source)

    def same_grid(self, other: Volume, *, atol_mm: float = GRID_ATOL_MM) -> bool:
        """True when both volumes have the same shape and voxel-to-world mapping."""
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, atol=atol_mm, rtol=0)
        )

    def check_same_grid(self, other: Volume) -> None:
        """Raise :class:`InputError` naming both files if the grids differ."""
        if self.shape != other.shape:
            raise InputError(
                f"{other.source}: shape {other.shape} does not match {self.source} {self.shape}"
            )
        if not self.same_grid(other):
            raise InputError(
                f"{other.source}: geometry (spacing/origin/direction) does not match {self.source}"
            )
