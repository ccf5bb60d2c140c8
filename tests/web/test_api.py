"""The web API end to end with TestClient: open, prompt, propagate, undo/redo, objects, export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sam2vol.io import read_volume
from tests.web.conftest import BALL, BALL_SLICES, click, open_ready, wait_job


def test_page_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "sam2vol" in page.text
    assert "Content-Security-Policy" in page.headers
    for name in ("app.js", "viewer.js", "api.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200, name
    info = client.get("/api/info").json()
    assert info["samples"][0] == "lung2" and "ct-lung" in info["windows"]
    assert info["data_dir"] == "data"  # the folder's name only, never the server path
    assert client.get("/api/files").json()["files"] == ["ct/ball.nii.gz"]


def test_click_propagate_undo_redo_clear(client):
    state = open_ready(client)
    sid = state["sid"]
    assert state["axis"] == "axial" and state["views"][0]["name"] == "axial"
    assert state["views"][0]["n_slices"] == 20 and state["default_window"] == "ct-lung"

    s, row, col = BALL
    result = click(client, sid, s, row, col)
    obj = result["state"]["objects"][0]
    assert obj["covered"] == [s] and obj["prompted"] == [s] and obj["volume_ml"] > 0
    assert result["overlay"]["png"].startswith("data:image/png;base64,")
    assert result["state"]["prompts"] == [
        {"object_id": 1, "slice": s, "points": [[row, col, True]], "box": None}
    ]

    response = client.post(f"/api/sessions/{sid}/propagate", json={"direction": "both"})
    assert response.status_code == 200 and response.json()["job"]["kind"] == "propagate"
    job = wait_job(client, sid)
    assert job["state"] == "done" and job["n_slices"] == 20
    state = client.get(f"/api/sessions/{sid}").json()
    assert state["objects"][0]["covered"] == BALL_SLICES
    assert state["can_undo"] and not state["can_redo"]

    undone = client.post(f"/api/sessions/{sid}/undo", json={"view": "axial", "slice": s}).json()
    assert undone["state"]["objects"][0]["covered"] == [s] and undone["state"]["can_redo"]
    redone = client.post(f"/api/sessions/{sid}/redo", json={}).json()  # a propagation: a job
    assert redone["state"]["job"]["kind"] == "redo" and redone["overlay"] is None
    assert wait_job(client, sid)["state"] == "done"
    assert client.get(f"/api/sessions/{sid}").json()["objects"][0]["covered"] == BALL_SLICES

    body = {"object_id": 1, "only_slice": 12}
    cleared = client.post(f"/api/sessions/{sid}/clear", json=body).json()["state"]
    assert 12 not in cleared["objects"][0]["covered"]
    cleared = client.post(f"/api/sessions/{sid}/clear", json={"object_id": 1}).json()["state"]
    assert cleared["objects"][0]["voxels"] == 0
    assert client.post(f"/api/sessions/{sid}/redo", json={}).json()["detail"] == "nothing to redo"


def test_progress_streams_slice_by_slice(client):
    sid = open_ready(client)["sid"]
    click(client, sid, *BALL)
    client.post(f"/api/sessions/{sid}/propagate", json={})
    seen: list[int] = []
    with client.stream("GET", f"/api/sessions/{sid}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                snap = json.loads(line[6:])
                seen += [d["slice"] for d in snap["slices"]]
                last = snap
    assert last["state"] == "done"
    assert sorted(seen) == list(range(20)) and seen[0] == BALL[0]


def test_objects_boxes_and_negative_clicks(client):
    sid = open_ready(client)["sid"]
    s, row, col = BALL
    added = client.post(f"/api/sessions/{sid}/objects", json={"name": "ball", "color": "#00ff00"})
    assert added.json()["state"]["objects"][0] == {
        "id": 1, "name": "ball", "color": "#00ff00", "voxels": 0, "volume_ml": 0.0,
        "first_slice": None, "last_slice": None, "covered": [], "prompted": [],
    }  # fmt: skip
    second = client.post(f"/api/sessions/{sid}/objects", json={"name": "other"}).json()["state"]
    assert [o["id"] for o in second["objects"]] == [1, 2]
    assert second["objects"][1]["color"] != "#00ff00"
    box = {"kind": "box", "view": "axial", "slice": s, "row": 5, "col": 10, "row2": 25, "col2": 30}
    state = client.post(f"/api/sessions/{sid}/prompts", json=box).json()["state"]
    assert state["objects"][0]["voxels"] > 0 and state["prompts"][0]["box"] == [5, 10, 25, 30]
    state = click(client, sid, s, row, col, positive=False)["state"]
    assert state["objects"][0]["voxels"] == 0
    # the next object id is created on the fly; others are refused
    assert click(client, sid, s, row, col, object_id=3)["state"]["objects"][2]["voxels"] > 0
    far = {"view": "axial", "slice": s, "row": row, "col": col, "object_id": 9}
    response = client.post(f"/api/sessions/{sid}/prompts", json=far)
    assert response.status_code == 404 and "next id is 4" in response.json()["detail"]


def test_objects_are_renamed_recoloured_and_deleted(client):
    sid = open_ready(client)["sid"]
    s, row, col = BALL
    click(client, sid, s, row, col)
    click(client, sid, s, row, col, object_id=2)
    api = f"/api/sessions/{sid}/objects"
    edited = client.post(f"{api}/2/edit", json={"name": "lesion", "color": "#0000ff"}).json()
    assert {k: edited["state"]["objects"][1][k] for k in ("name", "color")} == {
        "name": "lesion",
        "color": "#0000ff",
    }
    response = client.post(f"{api}/2/edit", json={})
    assert response.status_code == 400 and "new name or colour" in response.json()["detail"]
    focus = {"view": "axial", "slice": s}
    removed = client.post(f"{api}/2/remove", json=focus).json()
    assert [o["id"] for o in removed["state"]["objects"]] == [1]
    assert removed["state"]["can_undo"]
    back = client.post(f"/api/sessions/{sid}/undo", json={}).json()["state"]
    assert [o["name"] for o in back["objects"]] == ["object 1", "lesion"]
    assert back["objects"][1]["voxels"] > 0
    again = client.post(f"/api/sessions/{sid}/redo", json={}).json()["state"]
    assert [o["id"] for o in again["objects"]] == [1]


def test_images_overlays_and_locate(client):
    sid = open_ready(client)["sid"]
    click(client, sid, *BALL)
    for view, n in (("axial", 20), ("coronal", 30), ("sagittal", 40)):
        for window in ("ct-lung", "mr-percentile"):
            image = client.get(f"/api/sessions/{sid}/image/{view}/{n // 2}.png?window={window}")
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        overlay = client.get(f"/api/sessions/{sid}/overlay/{view}/{n // 2}.png")
        assert overlay.status_code == 200 and overlay.headers["cache-control"] == "no-store"
    # the coronal slice through the ball's centre crosses the clicked axial slice
    from io import BytesIO

    from PIL import Image

    png = client.get(f"/api/sessions/{sid}/overlay/coronal/{BALL[1]}.png").content
    alpha = np.asarray(Image.open(BytesIO(png)))[..., 3]
    assert alpha.any() and np.flatnonzero(alpha.any(axis=1)).size == 1
    located = client.get(
        f"/api/sessions/{sid}/locate", params={"view": "coronal", "index": 15, "row": 3, "col": 7}
    ).json()
    assert located["slice"] == located["voxel"][2]


def test_export_keeps_source_geometry(client, ct_volume, tmp_path):
    sid = open_ready(client)["sid"]
    click(client, sid, *BALL)
    client.post(f"/api/sessions/{sid}/propagate", json={})
    wait_job(client, sid)
    for fmt, suffix in (("nii.gz", ".nii.gz"), ("nrrd", ".nrrd")):
        response = client.get(f"/api/sessions/{sid}/export", params={"format": fmt})
        assert response.status_code == 200
        assert f'filename="ball_labels{suffix}"' in response.headers["content-disposition"]
        path = tmp_path / f"out{suffix}"
        path.write_bytes(response.content)
        labels = read_volume(path)
        assert labels.same_grid(ct_volume) and labels.data.dtype == np.uint8
        assert set(np.unique(labels.data)) == {0, 1}
        assert labels.data[20, 15, 10] == 1 and labels.data[0, 0, 0] == 0
    log = client.get(f"/api/sessions/{sid}/log")
    assert 'filename="ball_prompts.json"' in log.headers["content-disposition"]
    assert [e["kind"] for e in log.json()["events"]] == ["add_object", "point", "propagate"]
    assert log.json()["source"] == "ct/ball.nii.gz"
    bad = client.get(f"/api/sessions/{sid}/export", params={"format": "png"})
    assert bad.status_code == 400 and "format must be one of" in bad.json()["detail"]


def test_save_into_data_folder(client, data_dir, ct_volume):
    sid = open_ready(client)["sid"]
    click(client, sid, *BALL)
    saved = client.post(f"/api/sessions/{sid}/save", json={"save_as": "ct/ball_labels.nrrd"})
    assert saved.json() == {"saved": "ct/ball_labels.nrrd"}
    assert read_volume(data_dir / "ct" / "ball_labels.nrrd").same_grid(ct_volume)
    again = client.post(f"/api/sessions/{sid}/save", json={"save_as": "ct/ball_labels.nrrd"})
    assert again.status_code == 409 and "never overwrite" in again.json()["detail"]
    assert not [p for p in (data_dir / "ct").iterdir() if p.name.startswith(".")]  # no temp left


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (
            "prompts",
            {"view": "coronal", "slice": 3, "row": 1, "col": 1},
            400,
            "prompts go on axial",
        ),
        ("prompts", {"view": "axial", "slice": 99, "row": 1, "col": 1}, 400, "slice 99 is outside"),
        ("prompts", {"view": "axial", "slice": 3, "row": 99, "col": 1}, 400, "outside the axial"),
        ("prompts", {"view": "oblique", "slice": 3, "row": 1, "col": 1}, 422, "view"),
        ("prompts", {"view": "axial", "slice": -1, "row": 1, "col": 1}, 422, "slice"),
        ("prompts", {"view": "axial", "slice": 3, "row": 1}, 422, "col: Field required"),
        ("prompts", {"kind": "box", "view": "axial", "slice": 3, "row": 1, "col": 1}, 400, "box"),
        ("propagate", {}, 400, "nothing to propagate"),
        ("propagate", {"direction": "sideways"}, 422, "direction"),
        ("undo", {}, 400, "nothing to undo"),
        ("clear", {"object_id": 5}, 404, "no object 5"),
        ("objects", {"color": "red"}, 400, "colour must look like"),
        ("objects", {"name": "x" * 61}, 400, "at most 60"),
        ("objects", {"surprise": 1}, 422, "surprise: Extra inputs"),
        ("objects/5/edit", {"name": "x"}, 404, "no object 5"),
        ("objects/5/remove", {}, 404, "no object 5"),
    ],
)
def test_bad_requests_get_one_line_messages(client, path, body, status, message):
    sid = open_ready(client)["sid"]
    response = client.post(f"/api/sessions/{sid}/{path}", json=body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail and "Traceback" not in detail
    assert client.get(f"/api/sessions/{sid}").json()["status"] == "ready"


def test_changes_wait_while_propagating(client, monkeypatch):
    import threading

    from sam2vol.web.jobs import Job

    sid = open_ready(client)["sid"]
    click(client, sid, *BALL)
    gate, reached = threading.Event(), threading.Event()
    original = Job.advance

    def held(self, *args, **kwargs):  # runs between propagation steps, outside the lock
        original(self, *args, **kwargs)
        reached.set()
        gate.wait(10)

    monkeypatch.setattr(Job, "advance", held)
    client.post(f"/api/sessions/{sid}/propagate", json={})
    assert reached.wait(10)
    busy = client.post(f"/api/sessions/{sid}/undo", json={})
    assert busy.status_code == 409 and "propagate is running" in busy.json()["detail"]
    overlay = client.get(f"/api/sessions/{sid}/overlay/axial/{BALL[0]}.png")
    assert overlay.status_code == 200  # reading still works between steps
    assert client.post(f"/api/sessions/{sid}/stop").json() == {"stopping": True}
    gate.set()
    job = wait_job(client, sid)
    assert job["state"] == "cancelled"
    state = client.get(f"/api/sessions/{sid}").json()
    assert state["objects"][0]["covered"] == [BALL[0]]  # the partial propagation was undone
    assert state["n_events"] == 2 and state["can_redo"]
