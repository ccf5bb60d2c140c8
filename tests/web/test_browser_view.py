"""The page tells the server which working slice it shows, and the session's engine re-centres
its background encoding there (a stand-in engine records the centres; Chromium)."""

from __future__ import annotations

import time

from sam2vol.web.background import serve_in_background
from sam2vol.web.config import ServerConfig
from tests.helpers import ThresholdEngine


def recording_engine():
    """The threshold engine, recording where background encoding is asked to start."""
    engine = ThresholdEngine()
    engine.centres = []

    def start(center: int = 0, keep_going=None) -> None:
        engine.centres.append(center)

    engine.start_background_encoding = start
    return engine


def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_page_recentres_background_encoding_on_the_slice_it_shows(chromium, tmp_path):
    server = serve_in_background(
        ServerConfig(state_dir=tmp_path / "state", engine_factory=recording_engine)
    )
    try:
        page = chromium.new_context().new_page()
        page.goto(server.url)
        page.wait_for_selector("#sample-select option", state="attached")
        page.select_option("#sample-select", "lung2")
        page.click("#open-sample")
        page.wait_for_selector("body[data-state=ready]", timeout=60_000)
        sid = page.evaluate("() => sam2volApp.state.sid")
        engine = server.app.state.store.get(sid).session.engine
        n = page.evaluate("() => sam2volApp.state.views.find(v => v.name === 'axial').n_slices")
        assert engine.centres[:1] == [n // 2]  # started when the session opened

        def show(s: int) -> None:
            page.fill("#slice-input", str(s))
            page.press("#slice-input", "Enter")
            page.wait_for_function("s => sam2volApp.drawn && sam2volApp.drawn.slice === s", arg=s)

        show(7)
        wait_for(lambda: engine.centres[-1] == 7)
        page.keyboard.press("2")  # the coronal view: not the working view, no re-centring
        page.wait_for_function("() => sam2volApp.drawn.view === 'coronal'")
        time.sleep(0.5)
        assert engine.centres[-1] == 7
        page.keyboard.press("1")
        show(40)
        wait_for(lambda: engine.centres[-1] == 40)
    finally:
        server.stop()
