"""Load on a real server on 127.0.0.1: many sessions of a big volume under a small memory
budget, bounded in count and time. Answers are 200, or the documented 503 when the budget is
held by busy sessions; the server's peak memory stays near its budget.

The full size (16 sessions of a 512x512x200 int16 volume under 2 GB) is marked ``load``
(about 2-4 minutes on 2 shared cores): ``pytest -m load tests/web/test_load.py``. The same
test at 128x128x50 under a budget scaled alike (room for 4 sessions) runs with every test.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sam2vol.web.limits import session_cost
from tests.web.conftest import call

N_SESSIONS = 16
N_CLIENTS = 4
MB = 1024 * 1024
LIBRARIES_MB = 150  # scipy, nibabel, PIL, ... imported on the first volume (measured ~125)


def big_volume(path: Path, shape: tuple[int, int, int]) -> None:
    """A CT-like int16 volume (a bright ball in air) written as plain NIfTI."""
    x, y = np.ogrid[: shape[0], : shape[1]]
    data = np.full(shape, -800, np.int16)
    for k in range(shape[2]):
        r = shape[0] / 4 * (1 - ((k - shape[2] / 2) / shape[2]) ** 2)
        disk = (x - shape[0] / 2) ** 2 + (y - shape[1] / 2) ** 2 < r * r
        data[:, :, k][disk] = 40
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 2.0, 1.0])), str(path))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def run_load(tmp_path: Path, shape: tuple[int, int, int], budget_mb: int, deadline_s: float):
    data = tmp_path / "data"
    data.mkdir()
    big_volume(data / "big.nii", shape)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "sam2vol.cli.main", "serve", "--port", str(port)]
    command += ["--state-dir", str(tmp_path / "state"), "--data-dir", str(data)]
    command += ["--memory-budget-mb", str(budget_mb)]
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/api"
    started = time.monotonic()
    try:
        while True:
            try:
                call(base, "GET", "/info")
                break
            except OSError:
                assert process.poll() is None and time.monotonic() - started < 60, "no server"
                time.sleep(0.2)
        baseline = peak_rss_mb(process.pid)
        statuses: list[tuple[int, str]] = []
        sids: list[str] = []
        lock = threading.Lock()
        end = started + deadline_s

        def retrying(method, path, body=None):
            """One request, retried while it gets the documented 503."""
            while True:
                status, answer = call(base, method, path, body)
                with lock:
                    statuses.append((status, answer.get("detail", "")))
                if status != 503 or time.monotonic() > end:
                    return status, answer
                time.sleep(0.5)

        def ready(sid):
            while time.monotonic() < end:
                status, answer = retrying("GET", f"/sessions/{sid}/job?wait=30")
                assert status == 200, answer
                job = answer["job"]
                if job is None or job["state"] != "running":
                    return job
            raise AssertionError("a job did not end in time")

        def click(sid, k):
            s, row, col = shape[2] // 2 + k, shape[1] // 2, shape[0] // 2
            body = {"view": "axial", "slice": s, "row": row, "col": col}
            return retrying("POST", f"/sessions/{sid}/prompts", body)[0]

        def client(n):
            for _ in range(N_SESSIONS // N_CLIENTS):
                status, state = retrying("POST", "/sessions", {"path": "big.nii"})
                assert status == 200, state
                sid = state["sid"]
                assert ready(sid)["state"] == "done"
                assert click(sid, 0) == 200
                with lock:
                    sids.append(sid)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(N_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=deadline_s)
        assert len(sids) == N_SESSIONS, f"{len(sids)} sessions opened in time"
        # every session again (most were closed to disk): reopened on demand, edited again
        for sid in sids:
            call(base, "GET", f"/sessions/{sid}")
            assert ready(sid)["state"] == "done"
            assert click(sid, 1) == 200
            status, state = retrying("GET", f"/sessions/{sid}")
            assert status == 200 and len(state["prompts"]) == 2, state
        assert time.monotonic() - started < deadline_s
        errors = [(s, d) for s, d in statuses if s != 200]
        assert all(s == 503 and "memory budget" in d for s, d in errors), errors[:3]
        status, info = call(base, "GET", "/info")
        assert info["memory_used_bytes"] <= budget_mb * MB
        peak = peak_rss_mb(process.pid)
        return peak, baseline, len(errors)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def check_peak(peak: float, baseline: float, budget_mb: int, shape) -> None:
    """Peak RSS within: the started server, the libraries a first volume loads, the budget,
    and one volume read (and its label-map check) before it is charged."""
    volume_mb = np.prod(shape) * 2 / MB
    limit = baseline + LIBRARIES_MB + budget_mb + 2 * volume_mb
    assert peak < limit, (peak, baseline, budget_mb)


def test_many_sessions_under_a_small_budget(tmp_path):
    shape = (128, 128, 50)
    one = session_cost(int(np.prod(shape)), 2) / MB
    budget_mb = int(one * 4.5)  # room for 4 of 16, as 2 GB holds 4 of 512x512x200
    peak, baseline, _ = run_load(tmp_path, shape, budget_mb, deadline_s=240)
    check_peak(peak, baseline, budget_mb, shape)


@pytest.mark.load
def test_sixteen_big_sessions_under_2_gb(tmp_path):
    shape = (512, 512, 200)
    peak, baseline, _ = run_load(tmp_path, shape, 2048, deadline_s=900)
    check_peak(peak, baseline, 2048, shape)
