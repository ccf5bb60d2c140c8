"""A generic pair of folders: ``images/`` and ``labels/``, files matched by name.

A label matches an image of the same name, or of the same name plus an
nnU-Net channel suffix (``case_0000.nii.gz`` for ``case.nii.gz``). Any format
:func:`sam2vol.io.read_volume` reads works (NIfTI, NRRD, MHA).
"""

from __future__ import annotations

import re
from pathlib import Path

from sam2vol.datasets.base import FilePairDataset
from sam2vol.errors import InputError
from sam2vol.io.read import NIFTI_SUFFIXES, SITK_SUFFIXES, _suffix

SUFFIXES = (*NIFTI_SUFFIXES, *SITK_SUFFIXES)


def _stem(path: Path) -> str:
    return path.name[: -len(_suffix(path))]


class FolderDataset(FilePairDataset):
    """``images/`` + ``labels/`` matched by file name."""

    channel_in_file = True

    kind = "folder"

    def __init__(self, root, **options) -> None:
        super().__init__(root, **options)
        images, labels = self.root / "images", self.root / "labels"
        if not images.is_dir() or not labels.is_dir():
            raise InputError(f"{self.root}: a folder dataset holds images/ and labels/")

        def volumes(folder: Path) -> dict[str, Path]:
            files = (p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
            return {_stem(p): p for p in files if _suffix(p) in SUFFIXES}

        image_files, label_files = volumes(images), volumes(labels)
        for stem, image in image_files.items():
            case = stem if stem in label_files else re.sub(r"_\d{4}$", "", stem)
            if case in label_files and case not in self._cases:
                self._cases[case] = (image, label_files[case])
        if not self._cases:
            raise InputError(f"{self.root}: no file in images/ has a label of the same name")
