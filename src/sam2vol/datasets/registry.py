"""Datasets by spec: ``open_dataset("msd:/data/Task09_Spleen")``."""

from __future__ import annotations

from collections.abc import Sequence

from sam2vol.datasets.abdomenct1k import AbdomenCT1KDataset
from sam2vol.datasets.base import Dataset
from sam2vol.datasets.brats import BratsDataset
from sam2vol.datasets.btcv import BtcvDataset
from sam2vol.datasets.folder import FolderDataset
from sam2vol.datasets.msd import MsdDataset
from sam2vol.datasets.samples import SamplesDataset
from sam2vol.errors import InputError

DATASETS: dict[str, type[Dataset]] = {
    "msd": MsdDataset,
    "brats": BratsDataset,
    "btcv": BtcvDataset,
    "abdomenct1k": AbdomenCT1KDataset,
    "folder": FolderDataset,
    "samples": SamplesDataset,
}


def open_dataset(
    spec: str, *, channel: int | str | None = None, merge: Sequence[str] = ()
) -> Dataset:
    """A dataset from ``KIND:PATH`` (``samples:`` needs no path).

    Example:
        >>> ds = open_dataset("samples:brain2")
        >>> ds.case_ids(), [o.name for o in ds.load("brain2").objects]
        (['brain2'], ['brain_tumour'])
    """
    kind, sep, path = spec.partition(":")
    if not sep or kind not in DATASETS:
        raise InputError(
            f"--dataset {spec!r}: expected KIND:PATH with KIND one of {', '.join(DATASETS)}"
        )
    if kind != "samples" and not path:
        raise InputError(f"--dataset {spec!r}: give the folder after '{kind}:'")
    return DATASETS[kind](path, channel=channel, merge=merge)
