"""Remote mode: with a token, every route and the event streams refuse requests without it."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from sam2vol.web.auth import TokenMiddleware, cookie_name, token_matches
from tests.web.conftest import BALL, click, open_ready, wait_job

TOKEN = "t0ken-for-tests-0123456789abcdef"
FAKE_SID = "A" * 24


def every_route(app) -> list[tuple[str, str]]:
    """(method, url) of every route of the app, path parameters filled in."""
    fill = {"sid": FAKE_SID, "oid": "1", "view": "axial", "index": "3"}
    found = []
    routes = list(app.routes)
    for route in routes:
        inner = getattr(route, "original_router", None)  # newer FastAPI wraps included routers
        if inner is not None:
            routes += inner.routes
            continue
        path = getattr(route, "path", None)
        if path is None:
            continue
        url = re.sub(r"{(\w+)(:path)?}", lambda m: fill.get(m.group(1), "x"), path)
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method != "HEAD":
                found.append((method, url))
    return found


def test_every_route_refuses_a_request_without_the_token(make_client):
    client = make_client(token=TOKEN)
    routes = every_route(client.app)
    assert len(routes) >= 25  # the API, the page and its static files
    assert ("GET", "/api/sessions/{sid}/events".replace("{sid}", FAKE_SID)) in routes
    wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "X"}
    for method, url in routes:
        for headers in ({}, wrong):
            response = client.request(method, url, headers=headers, json={})
            assert response.status_code == 401, (method, url, response.status_code)
            assert "needs its token" in response.json()["detail"]
    # the static files too, and a wrong token in the query or cookie
    assert client.get("/static/app.js").status_code == 401
    assert client.get("/api/info", params={"token": "nope" * 8}).status_code == 401
    client.cookies.set(cookie_name(None), "nope" * 8)
    assert client.get("/api/info").status_code == 401


def test_the_token_opens_every_route(make_client):
    client = make_client(token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for method, url in every_route(client.app):
        response = client.request(method, url, headers=auth, json={})
        assert response.status_code != 401, (method, url, response.text)
    # a real session through the token: open, click, propagate, follow the event streams
    client.headers.update(auth)
    sid = open_ready(client)["sid"]
    click(client, sid, *BALL)
    client.headers.pop("Authorization")
    query = {"token": TOKEN}
    assert client.post(f"/api/sessions/{sid}/propagate", json={}, params=query).status_code == 200
    with client.stream("GET", f"/api/sessions/{sid}/events", params=query) as events:
        assert events.status_code == 200
        assert any(line.startswith("data:") for line in events.iter_lines())
    client.headers.update(auth)
    assert wait_job(client, sid)["state"] == "done"


def test_the_page_address_sets_a_cookie_for_images(make_client):
    client = make_client(token=TOKEN)
    assert client.get("/").status_code == 401
    page = client.get("/", params={"token": TOKEN})
    assert page.status_code == 200 and "sam2vol" in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/static/app.js").status_code == 200  # the cookie carries the token
    assert client.get("/api/info").status_code == 200


def test_host_check_stays_on_with_the_token(make_client):
    client = make_client(token=TOKEN, allowed_hosts=("127.0.0.1", "gpu.example.org"))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/info", headers={**auth, "Host": "evil.example"}).status_code == 400
    assert client.get("/api/info", headers={**auth, "Host": "gpu.example.org"}).status_code == 200


def test_comparison_is_exact():
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(TOKEN[:-1], TOKEN) and not token_matches("", TOKEN)
    assert not token_matches(None, TOKEN) and not token_matches("é" + TOKEN[1:], TOKEN)
    assert TokenMiddleware(None, TOKEN).token == TOKEN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, headers: dict | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # not listening yet


@pytest.mark.parametrize("host", ["127.0.0.2"])
def test_serve_off_loopback_generates_and_prints_a_token(tmp_path, host):
    """Any --host but 127.0.0.1/::1 (here another loopback address) is remote mode."""
    port = free_port()
    command = [sys.executable, "-m", "sam2vol.cli.main", "serve", "--host", host]
    command += ["--port", str(port), "--state-dir", str(tmp_path / "state")]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8"
    )
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "open http" not in line:
            line = process.stdout.readline()
            assert line or process.poll() is None, "the server stopped"
            assert time.monotonic() < deadline
        token = re.search(r"\?token=([\w-]+)", line).group(1)
        assert len(token) >= 32
        base = f"http://{host}:{port}"
        deadline = time.monotonic() + 30
        while get(f"{base}/api/info", {"Authorization": f"Bearer {token}"}) != 200:
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.2)
        assert get(f"{base}/api/info") == 401
        assert get(f"{base}/") == 401
        assert get(f"{base}/?token={token}") == 200
        evil = {"Authorization": f"Bearer {token}", "Host": "evil.example"}
        assert get(f"{base}/api/info", evil) == 400
    finally:
        process.terminate()
        process.communicate(timeout=20)
