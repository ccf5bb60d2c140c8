"""Bundled sample volumes (real data from the pyradiomics source distribution, BSD-3).

| name    | modality              | shape        | spacing (mm)        | label 1 |
|---------|-----------------------|--------------|---------------------|---------|
| lung2   | CT chest (cropped)    | 224x224x61   | 0.627x0.627x5.0     | lung mass on slices 15-25 |
| brain1  | MR T1 post-contrast   | 256x256x25   | 0.781x0.781x6.5     | tumour on slices 11-17 |
| brain2  | MR T1 post-contrast   | 256x256x23   | 0.781x0.781x6.5     | tumour on slices 8-10 |
| breast1 | MR breast (cropped)   | 45x120x21    | 0.664x0.664x2.1     | lesion on slices 8-10 |

lung2 is cropped in-plane around the mass from the original 512x512 grid; its
origin was moved so it lies exactly where it was. breast1 is as pyradiomics ships
it (already cropped around the lesion by pyradiomics). See ``data/samples/LICENSE.txt``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from sam2vol.errors import InputError

SAMPLES = ("lung2", "brain1", "brain2", "breast1")


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
