"""The train/validation split by case, seeded and written to ``split.json``.

Cases, not slices or clips, are split, so no slice of a held-out case is seen
in training. A ``split.json`` already in the output folder is used as it is
(so a user may write their own).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sam2vol.errors import InputError

SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class Split:
    """Case ids for training and validation.

    Attributes:
        train: Training cases, in dataset order.
        val: Held-out cases, in dataset order.
        seed: The seed that drew it (None for a split a user wrote).
        dataset: The dataset spec it was drawn from.
    """

    train: tuple[str, ...]
    val: tuple[str, ...]
    seed: int | None = None
    dataset: str = ""

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "seed": self.seed,
            "train": list(self.train),
            "val": list(self.val),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        return cls(
            tuple(str(c) for c in data["train"]),
            tuple(str(c) for c in data.get("val", [])),
            data.get("seed"),
            str(data.get("dataset", "")),
        )


def make_split(
    case_ids: Sequence[str], val_fraction: float = 0.2, seed: int = 0, dataset: str = ""
) -> Split:
    """Hold out ``round(val_fraction * n)`` cases (at least one when there are two or more).

    Example:
        >>> s = make_split([f"c{i}" for i in range(10)], 0.2, seed=0)
        >>> len(s.train), len(s.val), set(s.train) & set(s.val)
        (8, 2, set())
    """
    ids = list(case_ids)
    if not ids:
        raise InputError("the dataset has no cases to train on")
    n_val = round(val_fraction * len(ids))
    if val_fraction > 0 and len(ids) >= 2:
        n_val = min(max(n_val, 1), len(ids) - 1)
    else:
        n_val = 0
    order = np.random.default_rng(seed).permutation(len(ids))
    held = {ids[i] for i in order[:n_val]}
    return Split(
        tuple(c for c in ids if c not in held), tuple(c for c in ids if c in held), seed, dataset
    )


def write_split(split: Split, out: Path) -> Path:
    """Write ``out/split.json``."""
    path = Path(out) / SPLIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split.to_dict(), indent=2) + "\n")
    return path


def read_split(path: Path, case_ids: Sequence[str]) -> Split:
    """Read a split file, checking its cases are in the dataset.

    Raises:
        InputError: Unreadable, or names cases the dataset lacks.
    """
    try:
        split = Split.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a split file ({exc})") from exc
    unknown = sorted(set(split.train + split.val) - set(case_ids))
    if unknown:
        raise InputError(f"{path}: cases not in the dataset: {', '.join(unknown[:5])}")
    if set(split.train) & set(split.val):
        raise InputError(f"{path}: a case is in both train and val")
    if not split.train:
        raise InputError(f"{path}: no training cases")
    return split


def load_or_make_split(
    out: Path, case_ids: Sequence[str], val_fraction: float, seed: int, dataset: str
) -> Split:
    """The split in ``out/split.json`` if there is one, else a new one written there."""
    path = Path(out) / SPLIT_FILE
    if path.is_file():
        return read_split(path, case_ids)
    split = make_split(case_ids, val_fraction, seed, dataset)
    write_split(split, out)
    return split
