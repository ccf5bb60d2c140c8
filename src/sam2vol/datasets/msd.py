"""Medical Segmentation Decathlon: ``dataset.json``, ``imagesTr/`` and ``labelsTr/``.

Task01 BrainTumour images are 4D (FLAIR, T1w, T1gd, T2w); ``channel`` picks
one (default 0, FLAIR). Names come from ``dataset.json``'s ``labels``.
"""

from __future__ import annotations

import json
from pathlib import Path

from sam2vol.datasets.base import FilePairDataset, safe_name
from sam2vol.errors import InputError


def _nifti_stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


class MsdDataset(FilePairDataset):
    """A Decathlon task folder, e.g. ``Task09_Spleen``."""

    channel_in_file = True

    kind = "msd"

    def __init__(self, root, **options) -> None:
        super().__init__(root, **options)
        meta_path = self.root / "dataset.json"
        if not meta_path.is_file():
            raise InputError(f"{meta_path}: missing; an MSD task folder holds dataset.json")
        try:
            self.meta = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise InputError(f"{meta_path}: not valid JSON ({exc})") from exc
        for entry in self.meta.get("training", []):
            image = self.root / str(entry["image"]).lstrip("./")
            label = self.root / str(entry["label"]).lstrip("./")
            if image.is_file() and label.is_file():
                self._cases[_nifti_stem(image)] = (image, label)
        if not self._cases:  # dataset.json without a usable list: match the folders
            for label in sorted((self.root / "labelsTr").glob("*.nii*")):
                if label.name.startswith("._"):
                    continue
                image = self.root / "imagesTr" / label.name
                if image.is_file():
                    self._cases[_nifti_stem(image)] = (image, label)
        if not self._cases:
            raise InputError(f"{self.root}: no image/label pairs in imagesTr/ and labelsTr/")
        modalities = self.meta.get("modality", {})
        if self.channel is None and len(modalities) > 1:
            self.channel = 0

    def names(self) -> dict[int, str]:
        labels = self.meta.get("labels", {})
        out = {}
        for key, value in labels.items():
            if str(key).isdigit():  # MSD: {"0": "background", "1": "spleen"}
                value_id, name = int(key), str(value)
            elif isinstance(value, int):  # nnU-Net v2: {"background": 0, "spleen": 1}
                value_id, name = value, str(key)
            else:
                continue
            if value_id > 0:
                out[value_id] = safe_name(name)
        return out
