"""DICOM series: slice positions checked before the series is read as one volume.

A series is read as a regular grid only when its slices are: equally spaced along the
slice normal, no two at one position, and stacked straight along the normal (no gantry
tilt). Anything else is refused with one line saying what is wrong and where, or, when
the user asks (``--dicom-irregular resample``), gaps and unequal spacing are resampled
onto a regular grid by linear interpolation between the neighbouring slices. Tilted
series are always refused (their slices would need an in-plane shear).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from sam2vol.errors import InputError

Irregular = Literal["refuse", "resample"]
IRREGULAR_CHOICES: tuple[Irregular, ...] = ("refuse", "resample")
# Two spacings differ when they differ by more than this share of the median spacing.
SPACING_TOLERANCE = 0.01
# The stacking direction may lean this much off the slice normal (degrees).
TILT_TOLERANCE_DEG = 0.5


@dataclass(frozen=True)
class SeriesLayout:
    """Where each file's slice lies along the slice normal.

    Attributes:
        files: File names, in the order of their positions.
        positions_mm: Slice positions along the normal, increasing.
        spacing_mm: The median step between neighbouring slices.
        regular: Whether every step equals the median (within tolerance).
    """

    files: tuple[str, ...]
    positions_mm: np.ndarray
    spacing_mm: float
    regular: bool


def _floats(reader, tag: str, name: str, n: int) -> np.ndarray:
    if not reader.HasMetaDataKey(tag):
        raise InputError(f"{name}: DICOM slice without {tag} (needed for the slice geometry)")
    values = np.array([float(v) for v in reader.GetMetaData(tag).split("\\")])
    if values.size != n:
        raise InputError(f"{name}: DICOM tag {tag} holds {values.size} values, expected {n}")
    return values


def check_series(folder: Path, files: list[str], irregular: Irregular = "refuse") -> SeriesLayout:
    """Check the slice positions of a series; raise on what cannot be read as a grid.

    Raises:
        InputError: Duplicate positions, gantry tilt, or (with ``irregular="refuse"``) a
            missing slice or unequal spacing; the message names the files and positions.
    """
    import SimpleITK as sitk

    if irregular not in IRREGULAR_CHOICES:
        raise InputError(f"--dicom-irregular must be refuse or resample, got {irregular!r}")
    positions, orientation = [], None
    for name in files:
        reader = sitk.ImageFileReader()
        reader.SetFileName(name)
        try:
            reader.ReadImageInformation()
        except RuntimeError as exc:
            raise InputError(f"{name}: cannot read this DICOM file (truncated?)") from exc
        cosines = _floats(reader, "0020|0037", name, 6)
        if orientation is None:
            orientation = cosines
        elif not np.allclose(cosines, orientation, atol=1e-4):
            raise InputError(f"{name}: slice orientation differs from {files[0]}'s")
        positions.append(_floats(reader, "0020|0032", name, 3))
    normal = np.cross(orientation[:3], orientation[3:])
    points = np.array(positions)
    along = points @ normal
    order = np.argsort(along, kind="stable")
    along, points = along[order], points[order]
    names = tuple(files[i] for i in order)
    steps = np.diff(along)
    for k in np.flatnonzero(steps < 1e-3):
        raise InputError(
            f"{folder}: duplicate slice position {along[k]:.2f} mm along the normal "
            f"({Path(names[k]).name} and {Path(names[k + 1]).name})"
        )
    stack_dir = points[-1] - points[0]
    cos = abs(stack_dir @ normal) / np.linalg.norm(stack_dir)
    tilt = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    if tilt > TILT_TOLERANCE_DEG:
        raise InputError(
            f"{folder}: gantry tilt: the slices are stacked {tilt:.1f} degrees off their normal "
            "(resample it with a DICOM tool first)"
        )
    spacing = float(np.median(steps))
    off = np.flatnonzero(np.abs(steps - spacing) > SPACING_TOLERANCE * spacing)
    if off.size and irregular == "refuse":
        k = int(off[0])
        gap = steps[k] / spacing
        what = (
            f"{round(gap) - 1} missing slice(s)"
            if gap > 1.5 and abs(gap - round(gap)) < 0.1
            else "unequal slice spacing"
        )
        raise InputError(
            f"{folder}: {what}: {steps[k]:.2f} mm between {Path(names[k]).name} "
            f"({along[k]:.2f} mm) and {Path(names[k + 1]).name} ({along[k + 1]:.2f} mm), "
            f"against {spacing:.2f} mm elsewhere ({off.size} such step(s)); "
            "--dicom-irregular resample resamples it onto a regular grid"
        )
    return SeriesLayout(names, along, spacing, regular=not off.size)


def resample_slices(stack: np.ndarray, positions: np.ndarray, spacing: float) -> np.ndarray:
    """Slices ``stack[k]`` at ``positions[k]`` onto a regular grid from the first position.

    Linear interpolation between the two neighbouring slices of each new position; the
    result keeps the input's dtype (rounded for integers).
    """
    n = int(np.floor((positions[-1] - positions[0]) / spacing + 1e-6)) + 1
    targets = positions[0] + spacing * np.arange(n)
    upper = np.clip(np.searchsorted(positions, targets, side="right"), 1, len(positions) - 1)
    lower = upper - 1
    weight = (targets - positions[lower]) / (positions[upper] - positions[lower])
    weight = np.clip(weight, 0.0, 1.0)[:, None, None]
    out = stack[lower] * (1.0 - weight) + stack[upper] * weight
    if np.issubdtype(stack.dtype, np.integer):
        info = np.iinfo(stack.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(stack.dtype)
