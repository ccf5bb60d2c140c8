"""`sam2vol evaluate` + `report` with a random-weight SAM 2 on a tiny synthetic dataset."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sam2vol.cli.main import app
from sam2vol.evaluation import ResultsFile, comparable
from tests.evaluation.conftest import make_msd

pytest.importorskip("sam2")
torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """A tiny model on 2 shared cores runs faster on one thread (no spinning workers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_random_sam2_end_to_end_and_repeatable(tmp_path):
    task = make_msd(tmp_path / "Task99", n_cases=1)
    runner = CliRunner()
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        args = [
            "evaluate", "--dataset", f"msd:{task}", "--protocol", "dong2024",
            "--engine", "sam2", "--checkpoint", "random:sam2.1_hiera_t",
            "--engine-option", "image_size=64", "--out", str(out), "--workers", "1",
        ]  # fmt: skip
        result = runner.invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    first, second = (ResultsFile(o / "results.jsonl").read() for o in outs)
    assert [r["status"] for r in first] == ["ok", "ok"]
    assert first[0]["engine"] == "sam2"
    assert [comparable(r) for r in first] == [comparable(r) for r in second]
    report = runner.invoke(app, ["report", str(outs[0])], catch_exceptions=False)
    assert report.exit_code == 0 and "| msd:Task99 | dong2024 |" in report.output
