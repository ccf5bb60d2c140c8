"""The runner: one line per object, resume after a kill, parallel and Ray runs agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sam2vol import InputError
from sam2vol.evaluation import ResultsFile, RunConfig, comparable, run_evaluation
from sam2vol.evaluation.runner import KILL_AFTER_ENV
from tests.evaluation.conftest import REPO, THRESHOLD_ENGINE

# Child processes import this checkout's code and tests (not another installed copy).
SOURCES = os.pathsep.join((str(REPO / "src"), str(REPO)))


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
    env = {**os.environ, KILL_AFTER_ENV: "3", "PYTHONPATH": SOURCES}
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
    monkeypatch.setenv("PYTHONPATH", SOURCES)  # Ray workers import the test engine
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


def test_a_dataset_that_does_not_open_writes_nothing(msd_task, tmp_path):
    out = tmp_path / "run"
    typo = RunConfig(f"msd:{msd_task}-typo", "he2024", THRESHOLD_ENGINE, seed=7)
    with pytest.raises(InputError, match="no such folder"):
        run_evaluation(typo, out)
    assert not out.exists()  # the corrected command (without --resume) can use the folder
    assert run_evaluation(config(msd_task), out, limit=1).records == 2


def test_out_that_is_a_file_is_one_error(msd_task, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        run_evaluation(config(msd_task), tmp_path / "file")


def test_a_case_with_an_empty_label_is_recorded_as_skipped(tmp_path):
    from sam2vol import Volume
    from sam2vol.io import write_volume

    root = tmp_path / "data"
    for name, n in (("full", 1), ("empty", 0)):
        label = np.zeros((20, 16, 10), np.uint8)
        label[4:12, 4:12, 2:8] = n
        image = np.where(label > 0, 900.0, 100.0).astype(np.float32)
        for folder, array in (("images", image), ("labels", label)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            write_volume(Volume(array, np.eye(4)), root / folder / f"{name}.nii.gz")
    run = RunConfig(f"folder:{root}", "he2024", THRESHOLD_ENGINE, seed=7)
    first = run_evaluation(run, tmp_path / "out")
    records = {r["key"]: r for r in ResultsFile(first.results).read()}
    assert set(records) == {"empty/(no object)", "full/label1"}
    assert records["empty/(no object)"]["status"] == "skipped"
    assert "empty" in records["empty/(no object)"]["reason"]
    again = run_evaluation(run, tmp_path / "out", resume=True)
    assert (again.cases_run, again.cases_skipped, again.records) == (0, 2, 0)


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find the workers")
def test_pool_workers_die_with_a_killed_parent(msd_task, tmp_path):
    import time
    import uuid

    marker = f"SAM2VOL_TEST_MARK=run-{uuid.uuid4().hex}"
    cmd = [
        sys.executable, "-m", "sam2vol.cli.main", "evaluate", "--dataset", f"msd:{msd_task}",
        "--protocol", "he2024", "--engine", THRESHOLD_ENGINE, "--out", str(tmp_path / "out"),
        "--workers", "2",
    ]  # fmt: skip
    key, value = marker.split("=")
    env = {**os.environ, KILL_AFTER_ENV: "1", "PYTHONPATH": SOURCES, key: value}
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:  # a file, not a pipe: orphaned workers would hold a pipe open
        killed = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, timeout=120)
    assert killed.returncode == -9, log.read_text()
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _processes_with(marker)
    for pid in left:  # do not leave them running: the assertion below reports them
        os.kill(pid, 9)
    assert left == []
