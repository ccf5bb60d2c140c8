"""``sam2vol serve`` on the command line: bad options exit 2 in one line; it really serves."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.web.conftest import call


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sam2vol.cli.main", "serve", *args],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
    )


def test_help():
    out = run("--help")
    assert out.returncode == 0
    options = ("--data-dir", "--host", "--port", "--engine", "--checkpoint", "--state-dir")
    options += ("--token", "--allow-host", "--memory-budget-mb", "--max-json-kb", "--keep-days")
    for option in options:
        assert option in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--engine", "sam2"), "--engine sam2 needs --checkpoint PATH"),
        (("--checkpoint", "x.pt"), "--checkpoint/--config are for --engine sam2"),
        (("--engine", "magic"), "--engine must be one of default, sam2"),
        (("--data-dir", "/no/such/folder"), "not a folder"),
        (("--max-upload-mb", "0"), "--max-upload-mb must be between"),
        (("--memory-budget-mb", "10"), "--memory-budget-mb must be between 64"),
        (("--max-json-kb", "0"), "--max-json-kb must be between 1"),
        (("--keep-days", "-1"), "--keep-days must be 0 (keep all) or more"),
        (("--token", "short"), "must be at least 16 characters"),
    ],
)
def test_bad_options(args, message, tmp_path):
    out = run(*args, "--state-dir", str(tmp_path))
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def start_serve(tmp_path) -> tuple[subprocess.Popen, int, dict]:
    """``sam2vol serve`` on a free port, once it answers; returns it, its port and its info."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "sam2vol.cli.main", "serve", "--port", str(port)]
    command += ["--state-dir", str(tmp_path / "state"), "--data-dir", str(tmp_path)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
        errors="replace",
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=2) as r:
                return process, port, json.load(r)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the server did not start: {process.communicate()[0]}")
            time.sleep(0.2)


def test_serves_the_page(tmp_path):
    process, port, info = start_serve(tmp_path)
    try:
        assert info["engine"] == "default" and info["data_dir"] == tmp_path.name
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert b"sam2vol" in r.read()
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert f"open http://127.0.0.1:{port}/" in output


def test_ctrl_c_stops_the_server_while_a_page_is_open(tmp_path):
    """An open page's event streams never end by themselves: one Ctrl+C must still stop it."""
    process, port, _ = start_serve(tmp_path)
    base = f"http://127.0.0.1:{port}/api"
    try:
        status, opened = call(base, "POST", "/sessions", {"sample": "lung2"})
        assert status == 200, opened
        sid = opened["sid"]
        # what an open page holds: the session's change stream
        stream = urllib.request.urlopen(f"{base}/sessions/{sid}/changes", timeout=30)
        assert stream.readline().startswith(b"data: ")
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=15)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "Traceback" not in output and "timeout graceful shutdown" not in output, output
    stream.read()  # the server ended it (the read does not hang)
    stream.close()
