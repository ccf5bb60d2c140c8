"""Synthetic volumes for the fine-tuning tests: a disk that grows and drifts along the slices.

The background is flat (its level differs between cases, not between slices), so no
slice's brightness gives its position away; only the object's shape changes along the
slices, as anatomy does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2vol.volume import Volume

CONFIG = "sam2.1_hiera_t"
IMAGE_SIZE = 128


def stack(n_slices: int = 8, size: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An image ``[s, row, col]`` in [0, 1] and its mask."""
    rng = np.random.default_rng(seed)
    s, r, c = np.meshgrid(np.arange(n_slices), np.arange(size), np.arange(size), indexing="ij")
    shift = rng.integers(-4, 5, size=2)
    radius = size / 8 + s * size / (4 * n_slices)
    mask = (r - size / 2 - shift[0] - s / 2) ** 2 + (c - size / 2 - shift[1]) ** 2 < radius**2
    background = rng.uniform(0.1, 0.4)
    image = background + 0.3 * mask + rng.normal(0, 0.02, mask.shape)
    return np.clip(image, 0, 1).astype(np.float32), mask


def write_folder_dataset(root: Path, n_cases: int = 3, n_slices: int = 8, size: int = 48) -> Path:
    """A ``folder:`` dataset (images/, labels/) of synthetic cases; slices along the last axis."""
    for folder in ("images", "labels"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    from sam2vol.io import write_volume

    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    for n in range(n_cases):
        image, mask = stack(n_slices, size, seed=n)
        # [s, row, col] -> [i, j, k] with k the axial (slice) axis.
        data = np.transpose(image, (2, 1, 0)) * 1000.0
        label = np.transpose(mask, (2, 1, 0)).astype(np.uint8)
        write_volume(Volume(data.astype(np.float32), affine), root / "images" / f"case{n}.nii.gz")
        write_volume(Volume(label, affine), root / "labels" / f"case{n}.nii.gz")
    return root
