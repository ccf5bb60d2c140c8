"""The server stops promptly with streams and long polls open, and still runs its shutdown."""

from __future__ import annotations

import json
import threading
import urllib.request

from sam2vol.web.background import serve_in_background
from sam2vol.web.config import ServerConfig
from sam2vol.web.jobs import Job
from tests.web.conftest import call


def test_a_stop_ends_the_streams_and_long_polls_of_a_running_job(tmp_path):
    server = serve_in_background(ServerConfig(state_dir=tmp_path / "state"))
    stopped, ws = False, None
    try:
        status, opened = call(server.url, "POST", "api/sessions", {"sample": "lung2"})
        assert status == 200, opened
        sid = opened["sid"]
        store = server.app.state.store
        ws = store.get(sid)
        assert ws.job.wait(60)
        ws.job = Job("propagate", message="a job the test keeps running")
        api = f"{server.url}api/sessions/{sid}"
        read = {}

        def hold(name: str, url: str) -> None:  # what an open page holds
            with urllib.request.urlopen(url, timeout=60) as response:
                read[name] = response.read().decode()

        threads = [
            threading.Thread(target=hold, args=(name, url))
            for name, url in [
                ("changes", f"{api}/changes"),
                ("events", f"{api}/events"),
                ("job", f"{api}/job?wait=60"),
            ]
        ]
        for thread in threads:
            thread.start()
        saved = []
        shutdown = store.shutdown
        store.shutdown = lambda: (saved.append(True), shutdown())
        server.stop(timeout=10)  # well within the 30 s grace: nothing waits for it
        stopped = True
        for thread in threads:
            thread.join(10)
        assert sorted(read) == ["changes", "events", "job"]
        assert json.loads(read["job"])["job"]["state"] == "running"  # answered, not cut off
        assert read["events"].startswith("data: ")
        assert saved == [True]  # the app's shutdown ran (pending autosaves written)
    finally:
        if not stopped:
            if ws is not None and ws.job is not None:
                ws.job.finish("done")
            server.stop()
