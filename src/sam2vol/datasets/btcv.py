"""BTCV (Beyond the Cranial Vault, abdomen): ``img/imgXXXX.nii.gz`` and ``label/labelXXXX.nii.gz``.

The folder may be the one holding ``img/`` and ``label/`` or its parent with
``Training/`` (as in ``RawData/``).
"""

from __future__ import annotations

from sam2vol.datasets.base import FilePairDataset
from sam2vol.errors import InputError

ORGANS = {
    1: "spleen",
    2: "right_kidney",
    3: "left_kidney",
    4: "gallbladder",
    5: "esophagus",
    6: "liver",
    7: "stomach",
    8: "aorta",
    9: "inferior_vena_cava",
    10: "portal_and_splenic_veins",
    11: "pancreas",
    12: "right_adrenal_gland",
    13: "left_adrenal_gland",
}


class BtcvDataset(FilePairDataset):
    """The BTCV abdomen training set (13 organs)."""

    kind = "btcv"
    label_names = ORGANS

    def __init__(self, root, **options) -> None:
        super().__init__(root, **options)
        base = self.root
        if not (base / "img").is_dir() and (base / "Training" / "img").is_dir():
            base = base / "Training"
        if not (base / "img").is_dir() or not (base / "label").is_dir():
            raise InputError(f"{self.root}: a BTCV folder holds img/ and label/")
        for image in sorted((base / "img").glob("img*.nii*")):
            number = image.name[3:].split(".")[0]
            label = next(iter(sorted((base / "label").glob(f"label{number}.nii*"))), None)
            if label is not None:
                self._cases[f"img{number}"] = (image, label)
        if not self._cases:
            raise InputError(f"{base}: no imgXXXX.nii.gz with a matching label/labelXXXX.nii.gz")
