"""Two tabs on one session stay in step: each change is pushed to every tab, and a change made
against a version another tab has changed since is refused (409), never applied blind."""

from __future__ import annotations

import json
import threading
import time

from tests.web.conftest import BALL, open_ready


class Tab:
    """A page on a session: it knows the version it last drew."""

    def __init__(self, client, sid: str) -> None:
        self.client, self.sid = client, sid
        self.reload()

    def reload(self) -> None:
        self.state = self.client.get(f"/api/sessions/{self.sid}").json()

    @property
    def version(self) -> int:
        return self.state["revision"]

    def post(self, what: str, body: dict | None = None):
        body = {**(body or {}), "version": self.version}
        response = self.client.post(f"/api/sessions/{self.sid}/{what}", json=body)
        if response.status_code == 200:
            self.state = response.json()["state"]
        return response

    def click(self, s: int, row: int, col: int, **extra):
        body = {"view": "axial", "slice": s, "row": row, "col": col, **extra}
        return self.post("prompts", body)


def test_two_tabs_converge_after_edits_in_each(client):
    sid = open_ready(client)["sid"]
    a, b = Tab(client, sid), Tab(client, sid)
    s, row, col = BALL

    assert a.click(s, row, col).status_code == 200
    # B has not seen A's click: its undo would take back a change it never saw
    stale = b.post("undo")
    assert stale.status_code == 409
    assert "changed in another tab" in stale.json()["detail"]
    assert b.click(s, 2, 2, positive=False).status_code == 409
    assert client.get(f"/api/sessions/{sid}").json() == a.state  # nothing applied

    b.reload()  # what the page does on a 409 or a pushed change
    assert b.click(s + 1, row, col).status_code == 200
    assert a.post("undo").status_code == 409  # now A is behind
    a.reload()
    assert a.post("undo").status_code == 200  # takes back B's click, which A now shows
    b.reload()
    assert b.post("objects", {"name": "liver"}).status_code == 200
    a.reload()

    assert a.state == b.state
    assert [o["name"] for o in a.state["objects"]] == ["object 1", "liver"]
    assert a.state["objects"][0]["covered"] == [s]
    assert [p["slice"] for p in a.state["prompts"]] == [s]  # B's click undone, A's kept
    # without a version the API behaves as before (scripts, old pages)
    plain = client.post(f"/api/sessions/{sid}/undo", json={})
    assert plain.status_code == 200


def test_changes_are_pushed_to_every_tab(client):
    sid = open_ready(client)["sid"]
    tab = Tab(client, sid)
    pushed: list[dict] = []
    first = threading.Event()

    def listen():
        with client.stream("GET", f"/api/sessions/{sid}/changes") as events:
            for line in events.iter_lines():
                if line.startswith("data:"):
                    pushed.append(json.loads(line[5:]))
                    first.set()
                    if pushed[-1].get("deleted"):
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert first.wait(10)
    assert pushed[0]["version"] == tab.version
    tab.click(*BALL)  # another tab's change...
    tab.post("objects", {"name": "second"})
    deadline = time.monotonic() + 10
    while pushed[-1].get("version") != tab.version:  # pushed within a poll interval
        assert time.monotonic() < deadline, pushed
        time.sleep(0.05)
    client.delete(f"/api/sessions/{sid}")  # ends the stream
    listener.join(timeout=10)
    assert not listener.is_alive()
    versions = [p["version"] for p in pushed if "version" in p]
    assert versions[-1] == tab.version and versions == sorted(versions) and len(versions) >= 2
    assert pushed[-1] == {"deleted": True}


def test_edits_imports_and_limited_runs_honour_the_version(client, ct_volume, tmp_path):
    import numpy as np

    from sam2vol.io import write_mask
    from tests.web.conftest import wait_job

    sid = open_ready(client)["sid"]
    a, b = Tab(client, sid), Tab(client, sid)
    s, row, col = BALL
    brush = {"tool": "brush", "view": "axial", "slice": s, "points": [[row, col]], "radius": 2}
    assert a.post("edit", brush).status_code == 200
    assert a.version > b.version  # the edit bumped the revision
    assert b.post("edit", {**brush, "tool": "eraser"}).status_code == 409
    labels = np.zeros(ct_volume.shape, np.uint8)
    labels[4:8, 4:8, 4:8] = 3
    path = tmp_path / "labels.nii.gz"
    write_mask(labels, ct_volume, path)
    url = f"/api/sessions/{sid}/import"
    stale = client.put(
        url, params={"filename": path.name, "version": b.version}, content=path.read_bytes()
    )
    assert stale.status_code == 409 and "changed in another tab" in stale.json()["detail"]
    assert len(client.get(f"/api/sessions/{sid}").json()["objects"]) == 1  # nothing imported
    ok = client.put(
        url, params={"filename": path.name, "version": a.version}, content=path.read_bytes()
    )
    assert ok.status_code == 200, ok.text
    a.state = ok.json()["state"]
    assert len(a.state["objects"]) == 2
    limited = {"direction": "both", "first": s - 1, "last": s + 1, "object_ids": [1]}
    assert b.post("propagate", limited).status_code == 409  # b is still behind
    b.reload()
    response = client.post(f"/api/sessions/{sid}/propagate", json={**limited, "version": b.version})
    assert response.status_code == 200, response.text
    assert wait_job(client, sid)["state"] == "done"
    b.reload()
    assert b.version > a.version and b.state["objects"][0]["first_slice"] >= s - 1
