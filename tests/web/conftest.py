"""Fixtures for the web app: servers on temporary folders, API helpers, a real Chromium."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sam2vol.io import write_volume
from sam2vol.web.app import create_app
from sam2vol.web.config import ServerConfig
from tests.helpers import ThresholdEngine

with warnings.catch_warnings():
    # Newest Starlette prefers the httpx2 package; plain httpx works the same.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

BASE_URL = "http://127.0.0.1"
# The synthetic ball (tests/conftest.py ct_volume, LPS) in the axial view: array k is the
# slice, j the row, i the column; it covers slices 7-13 around (slice 10, row 15, col 20).
BALL = (10, 15, 20)
BALL_SLICES = list(range(7, 14))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def data_dir(tmp_path, ct_volume) -> Path:
    """A data folder holding the synthetic CT ball as ``ct/ball.nii.gz``."""
    folder = tmp_path / "data"
    (folder / "ct").mkdir(parents=True)
    write_volume(ct_volume, folder / "ct" / "ball.nii.gz")
    return folder


@pytest.fixture
def make_client(tmp_path, data_dir) -> Iterator[Callable[..., TestClient]]:
    """Make TestClients of fresh apps (same state folder unless told) with the threshold engine."""
    clients: list[TestClient] = []

    def make(**options) -> TestClient:
        settings = {
            "state_dir": tmp_path / "state",
            "data_dir": data_dir,
            "engine_factory": ThresholdEngine,
            **options,
        }
        client = TestClient(create_app(ServerConfig(**settings)), base_url=BASE_URL)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


def call(base: str, method: str, path: str, body=None, timeout: float = 300):
    """A JSON request to a real server (``base + path``); returns the status and the answer."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_job(client: TestClient, sid: str, timeout: float = 60) -> dict:
    """Wait for the session's job to end; returns its final snapshot."""
    job = client.get(f"/api/sessions/{sid}/job", params={"wait": timeout}).json()["job"]
    assert job is not None and job["state"] != "running", job
    return job


def open_ready(client: TestClient, **body) -> dict:
    """Open a volume (default: the ball in the data folder) and wait until it is ready."""
    body = body or {"path": "ct/ball.nii.gz"}
    response = client.post("/api/sessions", json=body)
    assert response.status_code == 200, response.text
    sid = response.json()["sid"]
    assert wait_job(client, sid)["state"] == "done"
    state = client.get(f"/api/sessions/{sid}").json()
    assert state["status"] == "ready"
    return state


def click(client: TestClient, sid: str, s: int, row: int, col: int, **extra) -> dict:
    """A point prompt on the working (axial) view; returns the change result."""
    body = {"view": "axial", "slice": s, "row": row, "col": col, **extra}
    response = client.post(f"/api/sessions/{sid}/prompts", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (no browser download). Fails when missing."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install -y chromium (the browser tests need it)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need playwright: pip install playwright")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "load: the full-size load test of the web server (run with -m load)"
    )


def pytest_collection_modifyitems(config, items):
    """The ``load`` test runs only when asked for (``-m load``): minutes of 2 shared cores."""
    if "load" in (config.getoption("markexpr") or ""):
        return
    chosen = [item for item in items if item.get_closest_marker("load") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in chosen])
        items[:] = chosen


@pytest.fixture
def server(tmp_path):
    """A real server in a background thread, default engine (modules may override it)."""
    from sam2vol.web.background import serve_in_background

    server = serve_in_background(ServerConfig(state_dir=tmp_path / "state"))
    yield server
    server.stop()
