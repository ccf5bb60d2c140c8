"""The command line refuses bad output paths before any work, and replays a log as it was made."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest

from sam2vol.cli.main import main
from sam2vol.io import read_label, read_volume
from sam2vol.samples import sample_path
from sam2vol.session import Session


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["sam2vol", *args])
    try:
        main()
    except SystemExit as exc:
        return exc.code, capsys.readouterr().err
    return 0, capsys.readouterr().err


@pytest.fixture
def brain(tmp_path):
    source = sample_path("brain2")
    path = tmp_path / f"brain{''.join(source.suffixes)}"
    shutil.copy(source, path)
    return path


def test_out_equal_to_the_input_is_refused(monkeypatch, capsys, brain):
    before = brain.read_bytes()
    code, err = run_main(monkeypatch, capsys, "segment", str(brain), "--out", str(brain),
                         "--point", "100,100,10")  # fmt: skip
    assert code == 2 and "is an input of this command" in err and len(err.splitlines()) == 1
    assert brain.read_bytes() == before


@pytest.mark.parametrize("where", ["folder", "missing-log-folder"])
def test_bad_output_paths_fail_before_the_work(monkeypatch, capsys, brain, tmp_path, where):
    out, extra = tmp_path / "m.nii.gz", []
    if where == "folder":
        out = tmp_path
    else:
        extra = ["--log", str(tmp_path / "missing" / "log.json")]
    code, err = run_main(monkeypatch, capsys, "segment", str(brain), "--out", str(out),
                         "--point", "100,100,10", *extra)  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1, err
    assert ("is a folder" if where == "folder" else "does not exist") in err
    assert not (tmp_path / "m.nii.gz").exists()  # nothing written before the check


def test_an_os_error_is_one_line_with_the_path(monkeypatch, capsys, brain, tmp_path):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    code, err = run_main(monkeypatch, capsys, "segment", str(brain), "--out",
                         str(tmp_path / "m.nrrd"), "--point", "100,100,10")  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1 and "m.nrrd" in err, err
    assert "Permission denied" in err


def coronal_log(tmp_path, volume_path):
    """A coronal session on the lung sample, saved as a log, and its live label map."""
    image = read_volume(volume_path)
    session = Session(image, "default", axis="coronal")
    session.add_point((119, 112, 22))
    for _ in session.propagate():
        pass
    return session.save_log(tmp_path / "coronal.json"), session.label_map().data


def test_prompts_replay_with_the_logs_axis(monkeypatch, capsys, tmp_path):
    log, live = coronal_log(tmp_path, sample_path("lung2"))
    assert json.loads(log.read_text())["axis"] == "coronal"
    out = tmp_path / "replayed.nii.gz"
    code, err = run_main(monkeypatch, capsys, "segment", str(sample_path("lung2")),
                         "--out", str(out), "--prompts", str(log))  # fmt: skip
    assert code == 0, err
    replayed = read_label(out, allow_empty=True).data
    assert np.count_nonzero(live) > 1000
    np.testing.assert_array_equal(replayed > 0, live > 0)
    code, err = run_main(monkeypatch, capsys, "segment", str(sample_path("lung2")),
                         "--out", str(tmp_path / "x.nii.gz"), "--prompts", str(log),
                         "--axis", "axial")  # fmt: skip
    assert code == 2 and "--axis axial conflicts with" in err and "coronal" in err
    assert len(err.splitlines()) == 1
