"""Bombs and oversize input are refused before memory is spent: a real server's peak RSS
stays under 500 MB; JSON bodies are limited; long polls hold no worker thread."""

from __future__ import annotations

import gzip
import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sam2vol.web.jobs import Job
from tests.web.conftest import open_ready

PEAK_LIMIT_MB = 500
ZEROS_CHUNK = bytes(1024 * 1024)


def nifti_header(shape, dtype) -> bytes:
    """A NIfTI-1 single-file header (352 bytes) declaring ``shape`` and ``dtype``, no voxels."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_qform(np.eye(4), code=1)
    return header.binaryblock + b"\x00" * 4


def tiny_liar() -> bytes:
    """About 100 gzipped bytes declaring a 1536x1024x1024 int16 volume (3 GB)."""
    return gzip.compress(nifti_header((1536, 1024, 1024), np.int16), 9)


def zeros_gzip(path: Path) -> None:
    """A ~0.5 MB gzip that inflates to a real 1024x1024x512 uint8 NIfTI of zeros (512 MB)."""
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(nifti_header((1024, 1024, 512), np.uint8))
        for _ in range(512):
            handle.write(ZEROS_CHUNK)


def npz_bomb(path: Path) -> None:
    """A ~1 MB .npz whose 'image' member inflates to 1 GB of float32 zeros."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": (1024, 1024, 256)}
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("image.npy", "w", force_zip64=True) as member:
            member.write(buffer.getvalue())
            for _ in range(1024):
                member.write(ZEROS_CHUNK)
        archive.writestr("spacing.npy", _npy(np.ones(3)))


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bombs")
    (folder / "liar.nii.gz").write_bytes(tiny_liar())
    zeros_gzip(folder / "zeros.nii.gz")
    npz_bomb(folder / "bomb.npz")
    return folder


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def request(url: str, data: bytes | None = None, method: str = "GET", headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def server(tmp_path_factory, bombs):
    """A real ``sam2vol serve`` with a 2 GB memory budget and the bombs in its data folder."""
    state = tmp_path_factory.mktemp("state")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "sam2vol.cli.main", "serve", "--port", str(port)]
    command += ["--state-dir", str(state), "--data-dir", str(bombs), "--memory-budget-mb", "2048"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            request(f"{base}/api/info")
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.2)
    yield base, process.pid
    process.terminate()
    process.wait(timeout=20)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("liar.nii.gz", "declares a 1536x1024x1024 volume"),
        ("zeros.nii.gz", "declares a 1024x1024x512 volume"),
        ("bomb.npz", "declares a 1024x1024x256 volume"),
    ],
)
def test_bombs_are_refused_with_little_memory(server, bombs, name, message):
    base, pid = server
    payload = (bombs / name).read_bytes()
    assert len(payload) < 1.2 * 1024 * 1024  # small files...
    status, body = request(f"{base}/api/upload?filename={name}", payload, "PUT")
    assert status == 413, body
    assert message in body["detail"] and "memory budget" in body["detail"]
    status, body = request(  # ...from the data folder too
        f"{base}/api/sessions",
        json.dumps({"path": name}).encode(),
        "POST",
        {"Content-Type": "application/json"},
    )
    assert status == 413 and message in body["detail"], body
    assert peak_rss_mb(pid) < PEAK_LIMIT_MB


def test_json_bodies_are_limited(server):
    base, pid = server
    big = json.dumps({"sample": "x" * (20 * 1024 * 1024)}).encode()
    status, body = request(
        f"{base}/api/sessions", big, "POST", {"Content-Type": "application/json"}
    )
    assert status == 413 and "request body over the 1024 KB limit" in body["detail"]
    assert peak_rss_mb(pid) < PEAK_LIMIT_MB


def test_long_polls_hold_no_worker_thread(client):
    """More waiting polls than the thread pool has threads, and the server still answers."""
    sid = open_ready(client)["sid"]
    ws = client.app.state.store.get(sid)
    ws.job = Job("propagate", message="a job that runs until the test ends it")
    answers: list[int] = []

    def poll():
        response = client.get(f"/api/sessions/{sid}/job", params={"wait": 20})
        answers.append(response.json()["job"]["state"] == "done")

    threads = [threading.Thread(target=poll) for _ in range(60)]  # anyio lends 40 threads
    for thread in threads:
        thread.start()
    answered: list[int] = []

    def ask():
        answered.append(client.get("/api/info").status_code)
        answered.append(client.get(f"/api/sessions/{sid}").status_code)

    try:
        time.sleep(1.0)
        asking = threading.Thread(target=ask)
        asking.start()
        asking.join(timeout=5.0)  # not waiting 20 s for a free worker thread
        assert answered == [200, 200]
    finally:
        ws.job.finish("done", "ended by the test")
        for thread in threads:
            thread.join(timeout=30)
    assert answers == [True] * 60  # every poll saw the job end


def test_a_body_over_the_limit_in_one_piece_is_answered_at_once(make_client):
    """A small body that arrives whole (one ASGI message) is refused, not left waiting for more."""
    client = make_client(max_json_bytes=1024)
    answer: dict = {}

    def post() -> None:
        body = json.dumps({"sample": "x" * 2048})
        answer["response"] = client.post(
            "/api/sessions", content=body, headers={"Content-Type": "application/json"}
        )

    worker = threading.Thread(target=post, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the server kept waiting for a body that had ended"
    response = answer["response"]
    assert response.status_code == 413 and "over the 1 KB limit" in response.json()["detail"]
