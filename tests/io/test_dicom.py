"""Irregular DICOM series: refused with one line saying what and where, or resampled on request."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from sam2vol import InputError
from sam2vol.io import read_volume

ROWS, COLS = 8, 6


def write_series(folder, positions, *, values=None) -> list:
    """One slice per file at the given LPS positions (x, y, z), identity orientation."""
    folder.mkdir()
    files = []
    for k, pos in enumerate(positions):
        value = k * 10 if values is None else values[k]
        plane = np.full((1, ROWS, COLS), value, np.int16)
        s = sitk.GetImageFromArray(plane)
        tags = {
            "0008|0060": "CT",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.7",
            "0020|000e": "1.2.826.0.1.3680043.2.1125.7.2",
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{x:.4f}" for x in pos),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|0030": "0.8\\0.7",
        }
        for tag, text in tags.items():
            s.SetMetaData(tag, text)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        files.append(folder / f"s{k:03d}.dcm")
        writer.SetFileName(str(files[-1]))
        writer.Execute(s)
    return files


def zs(*values):
    return [(0.0, 0.0, z) for z in values]


def test_a_regular_series_reads_as_before(tmp_path):
    vol = read_volume(write_series(tmp_path / "ok", zs(0, 2.5, 5, 7.5, 10))[0].parent)
    assert vol.shape == (COLS, ROWS, 5) and vol.spacing_mm[2] == pytest.approx(2.5)
    assert vol.data[0, 0].tolist() == [0, 10, 20, 30, 40]


@pytest.mark.parametrize(
    ("positions", "message"),
    [
        (zs(0, 2.5, 5, 10, 12.5, 15, 17.5), r"1 missing slice\(s\): 5.00 mm between s002.dcm"),
        (zs(0, 2.5, 5, 8, 10.5, 13), "unequal slice spacing: 3.00 mm between s002.dcm"),
        (zs(0, 2.5, 5, 5, 7.5), "duplicate slice position 5.00 mm along the normal"),
        ([(0.0, 0.4 * k, 2.5 * k) for k in range(6)], "gantry tilt: .* 9.1 degrees"),
    ],
    ids=["gap", "unequal", "duplicate", "tilt"],
)
def test_an_irregular_series_is_refused_with_what_and_where(tmp_path, positions, message):
    folder = write_series(tmp_path / "s", positions)[0].parent
    with pytest.raises(InputError, match=message) as info:
        read_volume(folder)
    assert "\n" not in str(info.value)


def test_a_truncated_file_is_refused(tmp_path):
    files = write_series(tmp_path / "s", zs(0, 2.5, 5, 7.5))
    data = files[2].read_bytes()
    files[2].write_bytes(data[: len(data) - 40])
    with pytest.raises(InputError, match="truncated"):
        read_volume(files[0].parent)


def test_resample_on_request_puts_slices_where_they_belong(tmp_path):
    """A missing slice at z=7.5: resampled, z=7.5 is the mean of its neighbours, z=10 stays."""
    positions = zs(0, 2.5, 5, 10, 12.5)
    folder = write_series(tmp_path / "s", positions, values=[0, 10, 20, 40, 50])[0].parent
    with pytest.raises(InputError, match="missing slice"):
        read_volume(folder)
    vol = read_volume(folder, dicom_irregular="resample")
    assert vol.shape[2] == 6 and vol.spacing_mm[2] == pytest.approx(2.5)
    assert vol.data[0, 0].tolist() == [0, 10, 20, 30, 40, 50]
    # slice 4 lies at z = 10 mm in the world, where the file at 10 mm was
    world = vol.affine @ np.array([0, 0, 4, 1.0])
    assert world[2] == pytest.approx(10.0)
