"""`sam2vol segment`, `metrics` and `demo` end to end on the bundled samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sam2vol.cli.main import app
from sam2vol.io import read_label, read_volume, write_mask
from sam2vol.metrics import dice
from sam2vol.samples import sample_path


def invoke(*args: str):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def lung():
    image = read_volume(sample_path("lung2"))
    return image, read_label(sample_path("lung2", "label"), like=image).data > 0


def test_click_segment_replay_and_metrics(tmp_path, lung):
    image, truth = lung
    out = invoke(
        "segment", str(sample_path("lung2")), "--out", str(tmp_path / "m.nrrd"),
        "--point", "119,112,22", "--log", str(tmp_path / "log.json"),
    )  # fmt: skip
    assert "slices 15-25 (11 axial)" in out and " ml" in out
    mask = read_label(tmp_path / "m.nrrd", like=image)  # same grid as the source
    assert dice(mask.data > 0, truth) > 0.8
    invoke(
        "segment", str(sample_path("lung2")), "--out", str(tmp_path / "again.nii.gz"),
        "--prompts", str(tmp_path / "log.json"),
    )  # fmt: skip
    again = read_label(tmp_path / "again.nii.gz", like=image)
    np.testing.assert_array_equal(again.data, mask.data)
    values = json.loads(
        invoke("metrics", str(tmp_path / "m.nrrd"), str(tmp_path / "m.nrrd"), "--json")
    )
    assert values["dice"] == 1.0 and values["hd95_mm"] == 0.0
    assert set(values) >= {"dice", "iou", "hd95_mm", "nsd", "assd_mm"}
    text = invoke("metrics", str(tmp_path / "m.nrrd"), str(sample_path("lung2", "label")))
    assert "hd95_mm" in text and "mm" in text


def test_mask_on_slice_and_box(tmp_path, lung):
    image, truth = lung
    prompt = np.zeros_like(truth)
    prompt[:, :, 20] = truth[:, :, 20]
    write_mask(prompt, image, tmp_path / "prompt.nii.gz")
    invoke(
        "segment", str(sample_path("lung2")), "--out", str(tmp_path / "m.nii.gz"),
        "--mask-on-slice", str(tmp_path / "prompt.nii.gz"),
    )  # fmt: skip
    assert dice(read_volume(tmp_path / "m.nii.gz").data > 0, truth) > 0.85
    i, j = np.nonzero(truth[:, :, 20])
    box = f"{i.min()},{j.min()},20,{i.max()},{j.max()},20"
    invoke("segment", str(sample_path("lung2")), "--out", str(tmp_path / "b.nii.gz"), "--box", box)
    assert dice(read_volume(tmp_path / "b.nii.gz").data > 0, truth) > 0.7


def test_demo_writes_everything(tmp_path):
    out = invoke("demo", "--out", str(tmp_path))
    assert "Dice" in out
    for name in ("lung2_mask.nii.gz", "lung2_overlay.png", "lung2_prompts.json"):
        assert (tmp_path / name).stat().st_size > 0
    metrics = json.loads((tmp_path / "lung2_metrics.json").read_text())
    assert metrics["dice"] > 0.8
