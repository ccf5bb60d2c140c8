"""Path checks and listings of the data folder."""

from __future__ import annotations

import os

import pytest

from sam2vol.errors import InputError
from sam2vol.web.errors import Exists, NotFound
from sam2vol.web.meta import SessionMeta
from sam2vol.web.paths import check_upload_name, list_volumes, resolve_input, resolve_output


def test_listing_skips_hidden_links_out_and_other_files(tmp_path):
    root = tmp_path / "data"
    (root / "a" / "dicom").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for name in ("a/x.nii.gz", "a/y.NRRD", "a/z.txt", ".hidden/h.nii", "top.mha"):
        (root / name).write_bytes(b"")
    for k in range(3):
        (root / "a" / "dicom" / f"{k}.dcm").write_bytes(b"")
    (tmp_path / "out.nii").write_bytes(b"")
    os.symlink(tmp_path / "out.nii", root / "link.nii")
    os.symlink(root / "top.mha", root / "inside_link.mha")
    assert list_volumes(root) == [
        "a/dicom/",
        "a/x.nii.gz",
        "a/y.NRRD",
        "inside_link.mha",
        "top.mha",
    ]
    assert list_volumes(None) == []


def test_resolve_follows_links_only_inside(tmp_path):
    root = (tmp_path / "data").resolve()
    root.mkdir()
    (root / "real.nii").write_bytes(b"")
    os.symlink(root / "real.nii", root / "alias.nii")
    os.symlink(root / "gone.nii", root / "dangling.nii")
    assert resolve_input(root, "alias.nii") == root / "real.nii"
    assert resolve_input(root, "./real.nii") == root / "real.nii"
    with pytest.raises(NotFound):
        resolve_input(root, "dangling.nii")
    with pytest.raises(InputError, match="give a path"):
        resolve_input(root, "  ")
    assert resolve_output(root, "new.nrrd") == root / "new.nrrd"
    with pytest.raises(Exists):
        resolve_output(root, "dangling.nii")  # never write through a link


def test_upload_names_and_export_stems():
    assert check_upload_name("CT.Nii.Gz") == ".nii.gz"
    for bad in ("", "x", "x.dcm", "x.zip", "x.nhdr"):
        with pytest.raises(InputError):
            check_upload_name(bad)
    meta = SessionMeta("s" * 20, "upload", "my scan (1).nii.gz")
    assert meta.stem == "my_scan__1"
    assert SessionMeta("s" * 20, "data", "patients/p1/dicom/").stem == "dicom"
    assert SessionMeta("s" * 20, "sample", "lung2").stem == "lung2"
