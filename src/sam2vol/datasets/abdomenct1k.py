"""AbdomenCT-1K: images ``Case_XXXXX_0000.nii.gz`` (any subfolder), ``Mask/Case_XXXXX.nii.gz``."""

from __future__ import annotations

from sam2vol.datasets.base import FilePairDataset
from sam2vol.errors import InputError

ORGANS = {1: "liver", 2: "kidney", 3: "spleen", 4: "pancreas"}


class AbdomenCT1KDataset(FilePairDataset):
    """AbdomenCT-1K (liver, kidney, spleen, pancreas)."""

    kind = "abdomenct1k"
    label_names = ORGANS

    def __init__(self, root, **options) -> None:
        super().__init__(root, **options)
        masks = self.root / "Mask"
        if not masks.is_dir():
            raise InputError(f"{self.root}: an AbdomenCT-1K folder holds Mask/")
        for image in sorted(self.root.rglob("Case_*_0000.nii*")):
            if masks in image.parents:
                continue
            case = image.name.split("_0000.")[0]
            label = next(iter(sorted(masks.glob(f"{case}.nii*"))), None)
            if label is not None:
                self._cases[case] = (image, label)
        if not self._cases:
            raise InputError(
                f"{self.root}: no Case_XXXXX_0000.nii.gz with a Mask/Case_XXXXX.nii.gz"
            )
