"""The volume and the label map as gzipped NIfTI bytes, for the page's 3D viewer (NiiVue).

Both keep the source affine, so the viewer places them in world coordinates
exactly as the file does. The image is written once per session folder (it
never changes); the label map is written on each request.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from sam2vol.volume import Volume

VIEW_FILE = "view_image.nii.gz"


def nifti_bytes(data: np.ndarray, affine: np.ndarray, *, level: int = 1) -> bytes:
    """A NIfTI-1 file (gzipped) of ``data`` with ``affine`` in both qform and sform."""
    import nibabel as nib

    image = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    return gzip.compress(image.to_bytes(), compresslevel=level)


def display_dtype(data: np.ndarray) -> np.ndarray:
    """Integers that fit int16 stay int16 (CT); anything else becomes float32."""
    if data.dtype.kind in "iub" and data.size:
        lo, hi = int(data.min()), int(data.max())
        if -32768 <= lo and hi <= 32767:
            return data.astype(np.int16, copy=False)
    return data.astype(np.float32, copy=False)


def image_file(volume: Volume, folder: Path) -> Path:
    """The session's image as NIfTI in its folder (written once, atomically)."""
    path = folder / VIEW_FILE
    if not path.exists():
        tmp = folder / f".{VIEW_FILE}.tmp"
        tmp.write_bytes(nifti_bytes(display_dtype(np.asarray(volume.data)), volume.affine))
        os.replace(tmp, path)
    return path


def labels_bytes(labels: Volume) -> bytes:
    """The label map (object ids, uint8 or uint16) as gzipped NIfTI."""
    return nifti_bytes(np.asarray(labels.data), labels.affine)
