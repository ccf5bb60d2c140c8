"""`sam2vol train` end to end on a synthetic folder dataset: checkpoints, resume, evaluate."""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sam2vol.cli.main import app
from sam2vol.engines.sam2.checkpoints import resolve_source
from sam2vol.errors import InputError
from sam2vol.finetune.config import TrainConfig
from sam2vol.finetune.trainer import Trainer
from tests.finetune.synthetic import CONFIG, IMAGE_SIZE, write_folder_dataset

runner = CliRunner()

SETTINGS = {
    "checkpoint": f"random:{CONFIG}",
    "image_size": IMAGE_SIZE,
    "clip_length": 3,
    "epochs": 2,
    "clips_per_case": 2,
    "val_clips_per_case": 1,
    "device": "cpu",
    "feature_cache_gb": 0.25,
}


@dataclass
class Setup:
    data: Path
    full: Path  # an uninterrupted run of two epochs, through the CLI


def settings(data: Path, out: Path, **changes) -> TrainConfig:
    return TrainConfig(dataset=f"folder:{data}", out=out, **{**SETTINGS, **changes})


def quiet_trainer(config: TrainConfig, **options) -> Trainer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Trainer(config, echo=lambda _: None, progress=False, **options)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    root = tmp_path_factory.mktemp("train")
    data = write_folder_dataset(root / "data")
    full = root / "full"
    args = [
        "train", "--dataset", f"folder:{data}", "--checkpoint", f"random:{CONFIG}",
        "--out", str(full), "--image-size", str(IMAGE_SIZE), "--clip-length", "3",
        "--epochs", "2", "--clips-per-case", "2", "--device", "cpu",
        "--feature-cache-gb", "0.25", "--val-clips-per-case", "1", "--no-progress",
    ]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "best.pt: epoch" in result.output
    return Setup(data, full)


def test_outputs_of_a_run(setup):
    out = setup.full
    for name in ("split.json", "best.pt", "last.pt", "log.csv", "loss.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [r["phase"] for r in rows] == ["train"] * 4 + ["val"] + ["train"] * 4 + ["val"]
    assert all(r["srpp"] and r["bd"] for r in rows)
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert best["config"] == CONFIG and best["image_size"] == IMAGE_SIZE
    # The official format: SAM 2's own key names only, no head weights.
    from sam2vol.engines.sam2.checkpoints import resolve_source

    source = resolve_source(out / "best.pt")
    assert source.config == CONFIG
    assert all(k.split(".")[0] not in ("srpp_head", "bd_head") for k in best["model"])
    assert "image_encoder.trunk.patch_embed.proj.weight" in best["model"]


def test_resume_refuses_changed_rates_weights_and_radius(setup):
    """Rates would be overridden by the saved optimiser, the radius applied: refuse both."""
    changed = settings(setup.data, setup.full, lr=0.5, boundary_radius=6, bd_weight=0.3)
    with pytest.raises(InputError) as info:
        quiet_trainer(changed, resume=True)
    message = str(info.value)
    for flag in ("--lr 0.0001 -> 0.5", "--boundary-radius 2 -> 6", "--bd-weight 0.1 -> 0.3"):
        assert flag in message, message
    assert "--epochs" not in message  # more epochs is what resuming is for


def test_best_checkpoint_loads_in_metas_own_predictor_with_its_image_size(setup):
    """What docs/finetune.md shows: Meta's builder, the image size as a hydra override."""
    import numpy as np
    from sam2.build_sam import build_sam2_video_predictor

    best = torch.load(setup.full / "best.pt", map_location="cpu", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor = build_sam2_video_predictor(
            "configs/sam2.1/sam2.1_hiera_t.yaml",
            ckpt_path=str(setup.full / "best.pt"),
            device="cpu",
            hydra_overrides_extra=[f"++model.image_size={best['image_size']}"],
        )
    assert predictor.image_size == IMAGE_SIZE
    loaded = predictor.state_dict()
    assert set(loaded) == set(best["model"])
    assert all(torch.equal(loaded[k], v) for k, v in best["model"].items())
    # And it runs at that size: one frame, one click.
    frame = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    features = predictor.forward_image(frame)
    assert features["vision_features"].shape[-1] == IMAGE_SIZE // 16
    assert np.isfinite(features["vision_features"].detach().numpy()).all()


def test_resume_after_a_crash_reaches_the_same_state(setup, tmp_path, monkeypatch):
    out = tmp_path / "crashed"
    trainer = quiet_trainer(settings(setup.data, out))
    step = Trainer.train_step

    def crash_in_second_epoch(self, clips):
        if self.state.step == 5:
            raise RuntimeError("simulated crash")
        return step(self, clips)

    monkeypatch.setattr(Trainer, "train_step", crash_in_second_epoch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.run()
    monkeypatch.undo()
    saved = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert saved["state"]["epoch"] == 1 and saved["state"]["step"] == 4
    with pytest.raises(InputError, match="holds a run"):
        quiet_trainer(settings(setup.data, out))
    with pytest.raises(InputError, match="clip-length"):
        quiet_trainer(settings(setup.data, out, clip_length=4), resume=True)
    quiet_trainer(settings(setup.data, out), resume=True).run()

    a = torch.load(setup.full / "last.pt", map_location="cpu", weights_only=True)
    b = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert a["state"] == b["state"]
    for key in ("trained_weights", "heads", "optimizer"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert a["scheduler"] == b["scheduler"] and a["split"] == b["split"]
    assert a["rng"]["numpy"] == b["rng"]["numpy"] and a["rng"]["python"] == b["rng"]["python"]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])

    def losses(run: Path) -> list[tuple[str, ...]]:
        rows = csv.DictReader((run / "log.csv").open())
        return [(r["epoch"], r["step"], r["phase"], r["loss"], r["dice"]) for r in rows]

    assert losses(setup.full) == losses(out)


def test_trained_checkpoint_runs_through_evaluate(setup, tmp_path):
    assert resolve_source(setup.full / "best.pt").image_size == IMAGE_SIZE
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--dataset",
        f"folder:{setup.data}",
        "--protocol",
        "ma2024",
        "--out",
        str(out),
        "--engine",
        "sam2",
        "--checkpoint",
        str(setup.full / "best.pt"),
        "--engine-option",
        "device=cpu",
        "--workers",
        "1",
        "--limit",
        "1",
        "--no-progress",
    ]  # fmt: skip  (no image size: the engine takes the one best.pt records)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = (out / "results.jsonl").read_text().splitlines()[0]
    assert '"status":"ok"' in line and '"engine":"sam2"' in line


def test_user_errors(tmp_path):
    base = ["train", "--dataset", "samples:", "--checkpoint", f"random:{CONFIG}"]
    cases = [
        (["--out", str(tmp_path / "a"), "--clip-length", "1"], "--clip-length must be >= 2"),
        (["--out", str(tmp_path / "b"), "--resume"], "no last.pt"),
        (["--out", str(tmp_path / "c"), "--image-size", "100"], "multiple of 32"),
    ]
    for extra, message in cases:
        with pytest.raises(InputError, match=message):
            runner.invoke(app, base + extra, catch_exceptions=False)
