"""`sam2vol segment --engine sam2` end to end with a random-weight tiny SAM 2."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sam2")

from sam2vol import InputError, Volume
from sam2vol.cli.main import app
from sam2vol.io import read_label, read_volume, write_volume
from sam2vol.samples import sample_path


def test_sam2_segment_and_replay(tmp_path):
    from typer.testing import CliRunner

    source = read_volume(sample_path("brain2"))
    affine = source.affine.copy()
    affine[:3, 3] = source.affine[:3, :3] @ [150, 60, 4] + source.affine[:3, 3]
    small = write_volume(
        Volume(source.data[150:230, 60:140, 4:14].copy(), affine), tmp_path / "s.nii.gz"
    )
    common = ["--engine", "sam2", "--checkpoint", "random:sam2.1_hiera_t", "--image-size", "128"]
    runner = CliRunner()
    first = runner.invoke(
        app,
        ["segment", str(small), "--out", str(tmp_path / "a.nii.gz"), "--point", "60,40,5",
         "--log", str(tmp_path / "log.json"), *common],
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "RANDOM weights" in first.output
    again = runner.invoke(
        app,
        ["segment", str(small), "--out", str(tmp_path / "b.nii.gz"),
         "--prompts", str(tmp_path / "log.json"), *common],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    image = read_volume(small)
    a = read_label(tmp_path / "a.nii.gz", like=image, allow_empty=True)
    b = read_label(tmp_path / "b.nii.gz", like=image, allow_empty=True)
    np.testing.assert_array_equal(a.data, b.data)
    missing = runner.invoke(
        app, ["segment", str(small), "--out", str(tmp_path / "c.nii.gz"), "--point", "1,1,1",
              "--engine", "sam2", "--checkpoint", str(tmp_path / "none.pt")]
    )  # fmt: skip
    # a user error (one line naming the file, exit 2 from main), not a crash
    assert isinstance(missing.exception, InputError), missing.exception
    assert "none.pt" in str(missing.exception) and "\n" not in str(missing.exception)
    assert not (tmp_path / "c.nii.gz").exists()
