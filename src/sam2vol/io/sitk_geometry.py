"""SimpleITK images (LPS, (x, y, z)) to and from volume arrays ([i, j, k], RAS affine)."""

from __future__ import annotations

import numpy as np

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def affine_from_sitk(image) -> np.ndarray:
    """RAS+ voxel-to-world affine of a 3D SimpleITK image."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    origin = np.asarray(image.GetOrigin(), dtype=np.float64)
    affine = np.eye(4)
    affine[:3, :3] = _LPS_TO_RAS @ direction @ np.diag(spacing)
    affine[:3, 3] = _LPS_TO_RAS @ origin
    return affine


def array_from_sitk(image) -> np.ndarray:
    """Voxels of a SimpleITK image indexed [i, j, k] (SimpleITK's numpy view is [k, j, i])."""
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(image)
    if image.GetNumberOfComponentsPerPixel() > 1:
        # Vector image: [k, j, i, c] -> [i, j, k, c]
        return np.ascontiguousarray(np.transpose(array, (2, 1, 0, 3)))
    axes = tuple(range(array.ndim))[::-1]
    return np.ascontiguousarray(np.transpose(array, axes))


def sitk_from_volume(data: np.ndarray, affine: np.ndarray):
    """A SimpleITK image holding ``data`` ([i, j, k]) placed by ``affine`` (RAS)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(data, (2, 1, 0))))
    lps = _LPS_TO_RAS @ affine[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(x) for x in (lps / spacing).ravel()))
    image.SetOrigin(tuple(float(x) for x in _LPS_TO_RAS @ affine[:3, 3]))
    return image
