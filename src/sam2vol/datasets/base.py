"""Datasets as lazy sequences of cases: an image, its label map and the objects in it.

Every reader lists its cases without loading them; :meth:`Dataset.load` reads
one case, and iterating a dataset loads one case at a time. Each label value
is one object by default (named from the dataset's own label names where it
has them); ``merge`` joins values into one object, e.g. organ + tumour as
Shen et al. did.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from sam2vol.errors import InputError
from sam2vol.volume import Volume

# Tolerance when checking that a label lies on its image's grid (headers of public
# data sets differ in the last digits).
LABEL_GRID_ATOL_MM = 0.05


@dataclass(frozen=True)
class ObjectSpec:
    """One object to segment: a name and the label values that make it up."""

    name: str
    values: tuple[int, ...]

    def mask(self, label: np.ndarray) -> np.ndarray:
        """Boolean mask of the object in a label array."""
        return np.isin(label, self.values)


@dataclass
class Case:
    """One loaded case.

    Attributes:
        case_id: Identifier, unique in the dataset.
        image: The image volume.
        label: The label map on the image's grid.
        objects: The objects to evaluate, in order.
    """

    case_id: str
    image: Volume
    label: Volume
    objects: list[ObjectSpec] = field(default_factory=list)

    def mask(self, obj: ObjectSpec) -> np.ndarray:
        """Reference mask of one object."""
        return obj.mask(self.label.data)


def parse_merge(groups: Sequence[str]) -> list[tuple[int, ...]]:
    """``["1+2", "3+4"]`` -> ``[(1, 2), (3, 4)]``.

    Example:
        >>> parse_merge(["1+2"])
        [(1, 2)]
    """
    out = []
    for text in groups:
        try:
            values = tuple(int(v) for v in text.split("+"))
        except ValueError:
            raise InputError(f"--merge {text!r}: expected label values joined by '+'") from None
        if len(values) < 2 or min(values) < 1:
            raise InputError(f"--merge {text!r}: give two or more label values >= 1")
        out.append(values)
    return out


def natural_key(text: str) -> list:
    """Sort key putting ``case2`` before ``case10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


class Dataset(ABC):
    """A folder of cases in one known layout.

    Args:
        root: The dataset folder.
        channel: Channel of 4D images (modality index), where the layout has several.
        merge: Groups of label values to evaluate as one object each.
    """

    kind: ClassVar[str] = "base"
    # Label value -> name, for layouts with fixed labels.
    label_names: ClassVar[dict[int, str]] = {}

    def __init__(
        self, root: str | Path, *, channel: int | str | None = None, merge: Sequence[str] = ()
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"--dataset {self.kind}:{root}: no such folder")
        self.channel = channel
        self.merge = parse_merge(merge)
        seen: set[int] = set()
        for group in self.merge:
            if seen & set(group):
                raise InputError(f"--merge: label values {sorted(seen & set(group))} repeat")
            seen |= set(group)

    @property
    def spec(self) -> str:
        """``kind:root`` as given on the command line."""
        return f"{self.kind}:{self.root}"

    @abstractmethod
    def case_ids(self) -> list[str]:
        """Identifiers of the cases, in a fixed (natural) order."""

    @abstractmethod
    def read_pair(self, case_id: str) -> tuple[Volume, Volume]:
        """Image and label volumes of one case."""

    def names(self) -> dict[int, str]:
        """Label value -> object name known for the whole dataset."""
        return dict(self.label_names)

    def objects(self, label: np.ndarray) -> list[ObjectSpec]:
        """Objects of a case: the declared label values (else those present), merged as asked."""
        names = self.names()
        values = sorted(names) if names else [int(v) for v in np.unique(label) if v > 0]
        merged = {v for group in self.merge for v in group}
        out = [
            ObjectSpec("+".join(names.get(v, f"label{v}") for v in group), group)
            for group in self.merge
        ]
        out += [ObjectSpec(names.get(v, f"label{v}"), (v,)) for v in values if v not in merged]
        return _unique_names(out)

    def load(self, case_id: str) -> Case:
        """Read one case."""
        image, label = self.read_pair(case_id)
        return Case(case_id, image, label, self.objects(label.data))

    def __iter__(self) -> Iterator[Case]:
        for case_id in self.case_ids():
            yield self.load(case_id)

    def __len__(self) -> int:
        return len(self.case_ids())


def _unique_names(objects: list[ObjectSpec]) -> list[ObjectSpec]:
    counts: dict[str, int] = {}
    for obj in objects:
        counts[obj.name] = counts.get(obj.name, 0) + 1
    return [
        ObjectSpec(f"{o.name}-{'+'.join(map(str, o.values))}", o.values)
        if counts[o.name] > 1
        else o
        for o in objects
    ]


class FilePairDataset(Dataset):
    """A layout of one image file and one label file per case.

    Subclasses fill ``self._cases`` (case id -> (image path, label path)) in
    ``__init__``; this class lists and reads them.
    """

    # Whether --channel picks a channel inside the image file (4D files).
    channel_in_file: ClassVar[bool] = False

    def __init__(self, root: str | Path, **options) -> None:
        super().__init__(root, **options)
        self._cases: dict[str, tuple[Path, Path]] = {}

    def case_ids(self) -> list[str]:
        return sorted(self._cases, key=natural_key)

    def read_pair(self, case_id: str) -> tuple[Volume, Volume]:
        if case_id not in self._cases:
            raise InputError(f"{self.spec}: no case {case_id!r}")
        channel = self.channel if self.channel_in_file else None
        return read_case_pair(*self._cases[case_id], channel=channel)  # type: ignore[arg-type]


def read_case_pair(
    image_path: Path, label_path: Path, *, channel: int | None = None
) -> tuple[Volume, Volume]:
    """Read an image and its label map, checking they share a grid (to 0.05 mm)."""
    from sam2vol.io import read_label, read_volume

    image = read_volume(image_path, channel=channel)
    label = read_label(label_path, allow_empty=True)
    if label.shape != image.shape:
        raise InputError(f"{label_path}: shape {label.shape} does not match {image_path}")
    if not image.same_grid(label, atol_mm=LABEL_GRID_ATOL_MM):
        raise InputError(f"{label_path}: geometry does not match {image_path}")
    return image, Volume(label.data, image.affine, label.source)


def safe_name(name: str) -> str:
    """A label name fit for a result key (no '/', no spaces)."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name.strip()).strip("_") or "object"
