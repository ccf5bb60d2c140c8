"""BraTS 2020: one folder per case holding ``*_flair``, ``*_t1``, ``*_t1ce``, ``*_t2``, ``*_seg``.

Labels 1 (necrotic / non-enhancing core), 2 (oedema) and 4 (enhancing tumour)
are evaluated as the three BraTS regions: whole tumour (1, 2, 4), tumour core
(1, 4) and enhancing tumour (4). ``channel`` picks the sequence (default flair).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2vol.datasets.base import FilePairDataset, ObjectSpec
from sam2vol.errors import InputError

SEQUENCES = ("flair", "t1", "t1ce", "t2")
REGIONS = (
    ObjectSpec("whole_tumour", (1, 2, 4)),
    ObjectSpec("tumour_core", (1, 4)),
    ObjectSpec("enhancing_tumour", (4,)),
)


def _find(folder: Path, suffix: str) -> Path | None:
    for ext in (".nii.gz", ".nii"):
        hits = sorted(folder.glob(f"*_{suffix}{ext}"))
        if hits:
            return hits[0]
    return None


class BratsDataset(FilePairDataset):
    """A BraTS 2020 training folder (e.g. ``MICCAI_BraTS2020_TrainingData``)."""

    kind = "brats"

    def __init__(self, root, **options) -> None:
        super().__init__(root, **options)
        if self.merge:
            raise InputError("--merge does not apply to brats: it has fixed tumour regions")
        channel = "flair" if self.channel is None else self.channel
        if isinstance(channel, int) or str(channel).isdigit():
            index = int(channel)
            if not 0 <= index < len(SEQUENCES):
                raise InputError(f"--channel {channel}: brats has 0..3 ({', '.join(SEQUENCES)})")
            channel = SEQUENCES[index]
        if channel not in SEQUENCES:
            raise InputError(f"--channel {channel!r}: brats needs one of {', '.join(SEQUENCES)}")
        self.sequence = channel
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            image, seg = _find(folder, self.sequence), _find(folder, "seg")
            if image is not None and seg is not None:
                self._cases[folder.name] = (image, seg)
        if not self._cases:
            raise InputError(f"{self.root}: no case folder with *_{self.sequence} and *_seg files")

    def objects(self, label: np.ndarray) -> list[ObjectSpec]:
        return list(REGIONS)
