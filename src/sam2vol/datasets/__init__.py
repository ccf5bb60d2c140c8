"""Readers for the dataset layouts people have on disk.

| spec                 | layout                                                         |
|----------------------|----------------------------------------------------------------|
| ``msd:PATH``         | Decathlon task: dataset.json, imagesTr/, labelsTr/ (4D: channel) |
| ``brats:PATH``       | BraTS 2020: a folder per case with *_flair/_t1/_t1ce/_t2/_seg    |
| ``btcv:PATH``        | BTCV: img/imgXXXX.nii.gz + label/labelXXXX.nii.gz               |
| ``abdomenct1k:PATH`` | AbdomenCT-1K: Case_XXXXX_0000.nii.gz + Mask/Case_XXXXX.nii.gz   |
| ``folder:PATH``      | images/ + labels/, files matched by name                        |
| ``samples:[NAMES]``  | the bundled samples (lung2, brain1, brain2)                     |
"""

from sam2vol.datasets.base import Case, Dataset, ObjectSpec, parse_merge
from sam2vol.datasets.registry import DATASETS, open_dataset

__all__ = ["DATASETS", "Case", "Dataset", "ObjectSpec", "open_dataset", "parse_merge"]
