"""A DICOM series in a zip file reads like its folder; archive paths never reach the disk."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from sam2vol.errors import InputError
from sam2vol.io import read_volume
from sam2vol.io.dicom_zip import extract_series

pytest.importorskip("pydicom", reason="writing the test series needs the dev extra (pydicom)")
from tests.dicom_series import write_series


def test_zipped_series_reads_like_the_volume(ct_volume, tmp_path):
    files = write_series(ct_volume, tmp_path / "series")
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in files:
            zf.write(f, f"../../evil/{f.name}")  # a hostile path inside the archive
    volume = read_volume(archive)
    np.testing.assert_array_equal(volume.data, ct_volume.data)
    np.testing.assert_allclose(volume.affine, ct_volume.affine, atol=1e-6)
    out = extract_series(archive, tmp_path / "flat")
    assert sorted(p.name for p in out.iterdir()) == [f"{n:06d}.dcm" for n in range(len(files))]
    assert not (tmp_path.parent / "evil").exists()


def test_bad_zips_name_the_zip(tmp_path):
    empty = tmp_path / "notes.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("a.txt", "hello")
    with pytest.raises(InputError, match=r"notes\.zip: no DICOM series found in this zip"):
        read_volume(empty)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"junk\.zip: not a readable zip"):
        read_volume(junk)
