"""Write volumes and masks atomically, with the source geometry."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from sam2vol.errors import InputError
from sam2vol.io.read import NIFTI_SUFFIXES, _suffix
from sam2vol.io.sitk_geometry import sitk_from_volume
from sam2vol.volume import Volume

WRITABLE = (*NIFTI_SUFFIXES, ".nrrd", ".mha")


def check_writable(path: str | Path) -> Path:
    """Fail early, before any work, if ``path`` cannot be written as a volume."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in WRITABLE:
        raise InputError(f"{path}: cannot write {suffix!r}; use .nii.gz, .nii, .nrrd or .mha")
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    return path


def write_volume(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` to NIfTI (.nii/.nii.gz), NRRD or MHA, atomically.

    The file is first written beside the target under a temporary name, then
    renamed over it, so a crash never leaves a half-written file.
    """
    path = check_writable(path)
    suffix = _suffix(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp{suffix}")
    try:
        if suffix in NIFTI_SUFFIXES:
            import nibabel as nib

            image = nib.Nifti1Image(volume.data, volume.affine)
            image.set_qform(volume.affine, code=1)
            image.set_sform(volume.affine, code=1)
            nib.save(image, str(tmp))
        else:
            import SimpleITK as sitk

            sitk.WriteImage(sitk_from_volume(volume.data, volume.affine), str(tmp), True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_mask(mask: np.ndarray, like: Volume, path: str | Path) -> Path:
    """Write a label map (bool or small integers) on ``like``'s grid as uint8/uint16."""
    mask = np.asarray(mask)
    dtype = np.uint8 if mask.max(initial=0) < 256 else np.uint16
    return write_volume(like.with_data(mask.astype(dtype), source=str(path)), path)
