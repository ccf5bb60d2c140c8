"""The runner: one line per object, resume after a kill, parallel and Ray runs agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sam2vol import InputError
from sam2vol.evaluation import ResultsFile, RunConfig, comparable, run_evaluation
from sam2vol.evaluation.runner import KILL_AFTER_ENV
from tests.evaluation.conftest import REPO, THRESHOLD_ENGINE


def config(msd_task, protocol="he2024", **kw) -> RunConfig:
    return RunConfig(f"msd:{msd_task}", protocol, THRESHOLD_ENGINE, seed=7, **kw)


def lines(path) -> list[dict]:
    return [comparable(r) for r in ResultsFile(path).read()]


@pytest.fixture(scope="module")
def reference_run(msd_task, tmp_path_factory):
    """An uninterrupted run in this process."""
    out = tmp_path_factory.mktemp("runs") / "whole"
    summary = run_evaluation(config(msd_task), out)
    return out, summary


def test_one_line_per_case_and_object(reference_run):
    out, summary = reference_run
    records = ResultsFile(out / "results.jsonl").read()
    assert (summary.cases_run, summary.records, summary.errors) == (4, 8, 0)
    assert [r["key"] for r in records] == [
        f"case_{n}/{name}" for n in range(4) for name in ("kidney", "spleen")
    ]
    first = records[0]
    assert first["status"] == "ok" and first["protocol"] == "he2024"
    assert 0.0 <= first["dice"] <= 1.0 and first["best_dice"] >= first["dice"]
    for key in ("iou", "hd95_mm", "nsd", "assd_mm", "round_dice", "events", "timings"):
        assert key in first
    assert json.loads((out / "run.json").read_text())["engine"] == THRESHOLD_ENGINE


def test_killed_then_resumed_run_gives_the_same_file(msd_task, reference_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [
        sys.executable, "-m", "sam2vol.cli.main", "evaluate", "--dataset", f"msd:{msd_task}",
        "--protocol", "he2024", "--engine", THRESHOLD_ENGINE, "--out", str(out), "--seed", "7",
        "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, KILL_AFTER_ENV: "3", "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    killed = subprocess.run(cmd, env=env, capture_output=True, encoding="utf-8", errors="replace")
    assert killed.returncode == -9, killed.stderr
    assert len(ResultsFile(out / "results.jsonl").read()) == 3
    with (out / "results.jsonl").open("a") as f:
        f.write('{"key": "case_2/kid')  # died in the middle of a line
    with pytest.raises(InputError, match="--resume"):
        run_evaluation(config(msd_task), out)
    summary = run_evaluation(config(msd_task), out, resume=True)
    assert (summary.cases_skipped, summary.cases_run, summary.records) == (1, 3, 5)
    assert lines(out / "results.jsonl") == lines(reference_run[0] / "results.jsonl")
    again = run_evaluation(config(msd_task), out, resume=True)
    assert (again.cases_run, again.records) == (0, 0)
    assert lines(out / "results.jsonl") == lines(reference_run[0] / "results.jsonl")


def test_resume_with_another_configuration_is_refused(reference_run, msd_task):
    with pytest.raises(InputError, match="started differently"):
        run_evaluation(config(msd_task, protocol="dong2024"), reference_run[0], resume=True)


def test_process_pool_gives_the_same_results(msd_task, reference_run, tmp_path):
    summary = run_evaluation(config(msd_task), tmp_path / "pool", workers=2)
    assert summary.records == 8
    assert lines(tmp_path / "pool" / "results.jsonl") == lines(reference_run[0] / "results.jsonl")


def test_ray_local_gives_the_same_results(msd_task, reference_run, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv(
        "PYTHONPATH", f"{REPO / 'src'}{os.pathsep}{REPO}"
    )  # Ray workers import the test engine
    summary = run_evaluation(config(msd_task), tmp_path / "ray", workers=2, ray_address="local")
    assert summary.records == 8
    assert lines(tmp_path / "ray" / "results.jsonl") == lines(reference_run[0] / "results.jsonl")


def test_limit_merge_and_errors_are_lines(msd_task, tmp_path):
    merged = run_evaluation(
        config(msd_task, protocol="dong2024", merge=("1+2",)), tmp_path / "m", limit=2
    )
    records = ResultsFile(merged.results).read()
    assert [r["key"] for r in records] == ["case_0/kidney+spleen", "case_1/kidney+spleen"]
    broken = RunConfig(f"msd:{msd_task}", "dong2024", "tests.helpers:NoSuchEngine")
    failed = run_evaluation(broken, tmp_path / "e", limit=1)
    assert failed.errors == 1
    (record,) = ResultsFile(failed.results).read()
    assert record["key"] == "case_0/*" and "NoSuchEngine" in record["error"]


def test_results_file_sorting_and_torn_lines(tmp_path):
    results = ResultsFile(tmp_path / "r.jsonl")
    for key, status in (("c10/a", "ok"), ("c2/a", "error"), ("c2/a", "ok"), ("c2/*", "error")):
        results.append({"key": key, "case": key.split("/")[0], "status": status, "x": float("inf")})
    with results.path.open("a") as f:
        f.write('{"key": ')
    records = results.finalize()
    assert [(r["key"], r["status"]) for r in records] == [("c2/a", "ok"), ("c10/a", "ok")]
    assert records[0]["x"] == "inf"
    assert results.path.read_text().count("\n") == 2
    results.path.write_text('not json\n{"key": "a"}\n')
    with pytest.raises(InputError, match=":1: not a JSON line"):
        results.read()
