"""The command line: help, info, bad input (one line, exit 2, no traceback)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sam2vol.io import read_volume, write_mask
from sam2vol.samples import sample_path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sam2vol.cli.main", *args],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
    )


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("info", "metrics", "segment", "demo"):
        assert command in out.stdout


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys, sam2vol.cli.main as m\n"
        "heavy = [n for n in ('torch', 'SimpleITK', 'nibabel', 'scipy', 'skimage') "
        "if n in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, encoding="utf-8", errors="replace"
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_info_on_sample():
    out = run("info", str(sample_path("lung2")))
    assert out.returncode == 0, out.stderr
    assert "224 x 224 x 61" in out.stdout
    assert "0.627 x 0.627 x 5 mm" in out.stdout
    assert "LPS" in out.stdout
    assert "axial:        61 slices along array axis k" in out.stdout
    assert "-1024 .. 1671, CT-like" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("info", "missing.nii.gz"), "missing.nii.gz: no such file"),
        (("info", "{bad}"), "cannot read file"),
        (("segment", "{lung}", "--out", "{tmp}/m.nii.gz"), "give one of --point"),
        (
            ("segment", "{lung}", "--out", "{tmp}/m.nii.gz", "--point", "1,2"),
            "expected 3 integers",
        ),
        (
            ("segment", "{lung}", "--out", "{tmp}/m.nii.gz", "--point", "500,2,3"),
            "outside the volume",
        ),
        (
            ("segment", "{lung}", "--out", "{tmp}/m.nii.gz", "--mask-on-slice", "{empty}"),
            "label map is empty",
        ),
        (
            ("segment", "{lung}", "--out", "{tmp}/m.nii.gz", "--point", "1,2,3", "--axis", "x"),
            "--axis must be one of",
        ),
        (
            ("segment", "{lung}", "--out", "{tmp}/m.png", "--point", "100,100,20"),
            "cannot write",
        ),
    ],
)
def test_user_errors_are_one_line(tmp_path, args, message):
    bad = tmp_path / "bad.nrrd"
    bad.write_text("NRRD0004\ngarbage")
    lung = read_volume(sample_path("lung2"))
    empty = write_mask(np.zeros(lung.shape, bool), lung, tmp_path / "empty.nii.gz")
    fill = {"bad": bad, "lung": sample_path("lung2"), "tmp": tmp_path, "empty": empty}
    out = run(*(a.format(**fill) for a in args))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ")
    assert message in out.stderr
