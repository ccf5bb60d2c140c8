"""`sam2vol evaluate` + `sam2vol report` end to end with the default engine."""

from __future__ import annotations

import csv
import subprocess
import sys

from typer.testing import CliRunner

from sam2vol.cli.main import app
from sam2vol.evaluation import ResultsFile
from tests.evaluation.conftest import make_msd

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_evaluate_and_report_on_bundled_samples(tmp_path):
    out = tmp_path / "runs"
    for protocol in ("dong2024", "ma2024"):
        invoke(
            "evaluate", "--dataset", "samples:brain2", "--protocol", protocol,
            "--out", str(out / protocol), "--workers", "1", "--no-progress",
        )  # fmt: skip
    (record,) = ResultsFile(out / "dong2024" / "results.jsonl").read()
    assert record["key"] == "brain2/brain_tumour" and record["engine"] == "default"
    shown = invoke(
        "report", str(out / "dong2024"), str(out / "ma2024"), "--out", str(tmp_path / "rep")
    )
    assert "| samples:brain2 | dong2024 | brain_tumour | 1 |" in shown.output
    rows = list(csv.DictReader((tmp_path / "rep" / "dice_table.csv").open()))
    assert [r["protocol"] for r in rows] == ["dong2024", "ma2024"]
    for name in ("report.md", "dice_vs_prompted_slices.png", "dice_by_slice_position.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0


def test_evaluate_and_report_on_synthetic_msd(tmp_path):
    task = make_msd(tmp_path / "Task99", n_cases=2)
    out = tmp_path / "he"
    invoke(
        "evaluate", "--dataset", f"msd:{task}", "--protocol", "he2024:max_slices=3",
        "--out", str(out), "--workers", "1", "--seed", "1",
    )  # fmt: skip
    records = ResultsFile(out / "results.jsonl").read()
    assert [r["status"] for r in records] == ["ok"] * 4
    assert all(1 <= len(r["round_dice"]) <= 3 for r in records)
    shown = invoke("report", str(out))
    assert "| msd:Task99 | he2024:max_slices=3 | all structures | 4 |" in shown.output
    assert (out / "report" / "report.md").exists()


def test_user_errors_are_one_line():
    cmd = [sys.executable, "-m", "sam2vol.cli.main", "evaluate", "--dataset", "samples:",
           "--protocol", "he2025", "--out", "/tmp/unused-sam2vol-run"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --protocol must be one of shen2024-mask, shen2024-clicks, he2024, he2024-code, "
        "ma2024, dong2024, dong2024-3slices, suggest, got 'he2025'"
    ]
