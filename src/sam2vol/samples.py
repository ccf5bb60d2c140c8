"""Bundled sample volumes (real data from the pyradiomics source distribution, BSD-3).

| name    | modality            | shape      | spacing (mm)    | label 1 |
|---------|---------------------|------------|-----------------|---------|
| lung2   | CT chest (cropped)  | 224x224x61 | 0.627x0.627x5.0 | lung mass on slices 15-25 |
| brain1  | MR T1 post-contrast | 256x256x25 | 0.781x0.781x6.5 | tumour on slices 11-17 |
| brain2  | MR T1 post-contrast | 256x256x23 | 0.781x0.781x6.5 | tumour on slices 8-10 |
| breast1 | MR breast (cropped) | 45x120x21  | 0.664x0.664x2.1 | lesion on slices 8-10 |
| lung1   | CT chest (cropped)  | 128x128x32 | 0.570x0.570x5.0 | lung nodule on slices 16-18 |

lung2 is cropped in-plane around the mass from the original 512x512 grid; its
origin was moved so it lies exactly where it was. breast1 is as pyradiomics ships
it (already cropped around the lesion by pyradiomics). lung1 comes from the
``data/`` folder of the pyradiomics 3.1.0 source distribution on PyPI
(``pyradiomics-3.1.0.tar.gz``, same license); it is cropped to 128x128 pixels
around the nodule and to slices 16-47 of 0-47, its origin moved likewise.
See ``data/samples/LICENSE.txt``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from sam2vol.errors import InputError

SAMPLES = ("lung2", "brain1", "brain2", "breast1", "lung1")


def sample_path(name: str, kind: str = "image") -> Path:
    """Path of a bundled sample: ``kind`` is ``"image"`` or ``"label"``.

    Example:
        >>> sample_path("lung2", "label").name
        'lung2_label.nrrd'
    """
    if name not in SAMPLES:
        raise InputError(f"unknown sample {name!r}; choose one of {', '.join(SAMPLES)}")
    if kind not in ("image", "label"):
        raise InputError(f"sample kind must be 'image' or 'label', got {kind!r}")
    return Path(str(files("sam2vol") / "data" / "samples" / f"{name}_{kind}.nrrd"))
