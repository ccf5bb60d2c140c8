"""Nothing lost: after a restart (or a crash) sessions come back from their autosave."""

from __future__ import annotations

import numpy as np

from sam2vol.io import read_volume
from tests.web.conftest import BALL, BALL_SLICES, click, open_ready, wait_job

SHOWN = ("objects", "prompts", "n_events", "source", "axis", "intensity", "can_undo")


def labels(client, sid, tmp_path, name="labels.nii.gz") -> np.ndarray:
    response = client.get(f"/api/sessions/{sid}/export")
    assert response.status_code == 200, response.text
    (tmp_path / name).write_bytes(response.content)
    return read_volume(tmp_path / name).data


def recovered(client, sid) -> dict:
    """Ask a fresh server for a session: it is restored by a job."""
    first = client.get(f"/api/sessions/{sid}").json()
    assert first["job"]["kind"] == "recover"  # (it may be done already)
    assert wait_job(client, sid)["state"] == "done"
    return client.get(f"/api/sessions/{sid}").json()


def test_restart_replays_the_prompt_log(make_client, tmp_path):
    before = make_client()
    sid = open_ready(before)["sid"]
    s, row, col = BALL
    click(before, sid, s, row, col)
    before.post(f"/api/sessions/{sid}/propagate", json={})
    wait_job(before, sid)
    before.post(f"/api/sessions/{sid}/objects", json={"name": "second", "color": "#0000ff"})
    click(before, sid, s, 2, 2, object_id=2)
    click(before, sid, 12, row, col, positive=False)  # a correction on another slice
    before.post(f"/api/sessions/{sid}/undo", json={})
    then = before.get(f"/api/sessions/{sid}").json()
    expected = labels(before, sid, tmp_path, "before.nii.gz")
    # a crash: the old server is not shut down, the new one reads what is on disk

    after = make_client()
    state = recovered(after, sid)
    assert {k: state[k] for k in SHOWN} == {k: then[k] for k in SHOWN}
    notice = state["notice"]  # the whole log, or a snapshot and the changes after it
    assert notice.startswith("restored by replaying"), notice
    assert "replaying 5 saved changes" in notice or notice.endswith("(of 5)"), notice
    np.testing.assert_array_equal(labels(after, sid, tmp_path, "after.nii.gz"), expected)
    # and it goes on: undo history came back too
    undone = after.post(f"/api/sessions/{sid}/undo", json={}).json()["state"]
    assert undone["n_events"] == then["n_events"] - 1


def test_damaged_log_falls_back_to_saved_masks(make_client, tmp_path):
    before = make_client()
    sid = open_ready(before)["sid"]
    click(before, sid, *BALL)
    before.post(f"/api/sessions/{sid}/propagate", json={})
    wait_job(before, sid)
    expected = labels(before, sid, tmp_path, "before.nii.gz")
    store = before.app.state.store
    assert store.saver.flush()
    folder = store.sessions_dir / sid
    assert (folder / "masks.npz").exists()
    (folder / "prompts.json").write_text("{ not json")

    after = make_client()
    state = recovered(after, sid)
    assert "restored the saved masks" in state["notice"]
    assert state["objects"][0]["covered"] == BALL_SLICES
    np.testing.assert_array_equal(labels(after, sid, tmp_path, "after.nii.gz"), expected)


def test_nothing_recoverable_starts_empty_and_keeps_the_files(make_client):
    before = make_client()
    sid = open_ready(before)["sid"]
    click(before, sid, *BALL)
    before.app.state.store.saver.flush()
    folder = before.app.state.store.sessions_dir / sid
    (folder / "prompts.json").write_text('{"events": [{"kind": "teleport"}]}')
    (folder / "masks.npz").write_bytes(b"garbage")

    state = recovered(make_client(), sid)
    assert state["status"] == "ready" and state["objects"] == []
    assert "could not restore" in state["notice"]
    assert (folder / "prompts.json.broken").exists() and (folder / "masks.npz.broken").exists()


def test_uploaded_volumes_come_back(make_client, data_dir):
    before = make_client()
    payload = (data_dir / "ct" / "ball.nii.gz").read_bytes()
    sid = before.put("/api/upload?filename=scan.nii.gz", content=payload).json()["sid"]
    wait_job(before, sid)
    click(before, sid, *BALL)
    (data_dir / "ct" / "ball.nii.gz").unlink()  # the upload does not depend on the data folder

    state = recovered(make_client(), sid)
    assert state["source"] == "scan.nii.gz" and state["objects"][0]["covered"] == [BALL[0]]


def test_missing_source_is_reported(make_client, data_dir):
    before = make_client()
    sid = open_ready(before)["sid"]
    (data_dir / "ct" / "ball.nii.gz").unlink()
    after = make_client()
    after.get(f"/api/sessions/{sid}")
    job = wait_job(after, sid)
    assert job["state"] == "failed" and "not found in the data folder" in job["error"]
    state = after.get(f"/api/sessions/{sid}").json()
    assert state["status"] == "failed" and "could not restore" in state["error"]
    response = after.post(f"/api/sessions/{sid}/undo", json={})
    assert response.status_code == 400 and "could not be opened" in response.json()["detail"]


def test_default_engine_session_recovers_exactly(tmp_path, make_client):
    """The real engine replays to the same masks (lung sample: click, propagate, correct)."""
    before = make_client(engine_factory=None)
    state = open_ready(before, sample="lung2")
    sid = state["sid"]
    assert state["engine"] == "default"
    click(before, sid, 22, 112, 119)
    before.post(f"/api/sessions/{sid}/propagate", json={})
    wait_job(before, sid)
    click(before, sid, 27, 112, 119, positive=False)
    expected = labels(before, sid, tmp_path, "before.nii.gz")
    assert expected.sum() > 1000

    after = make_client(engine_factory=None)
    state = recovered(after, sid)
    assert state["n_events"] == 4
    np.testing.assert_array_equal(labels(after, sid, tmp_path, "after.nii.gz"), expected)


def test_redo_survives_a_restart(make_client, tmp_path):
    before = make_client()
    sid = open_ready(before)["sid"]
    s, row, col = BALL
    click(before, sid, s, row, col)
    click(before, sid, s + 1, row, col)
    full = labels(before, sid, tmp_path, "full.nii.gz")
    before.post(f"/api/sessions/{sid}/undo", json={})
    undone = before.get(f"/api/sessions/{sid}").json()
    assert undone["can_redo"]

    after = make_client()
    state = recovered(after, sid)
    assert state["can_redo"] and state["n_events"] == undone["n_events"]
    redone = after.post(f"/api/sessions/{sid}/redo", json={})
    assert redone.status_code == 200, redone.text
    np.testing.assert_array_equal(labels(after, sid, tmp_path, "redone.nii.gz"), full)
    assert not redone.json()["state"]["can_redo"]


def counting_engine(counts: dict):
    """The threshold engine, counting the propagations it runs (across instances)."""
    from tests.helpers import ThresholdEngine

    def make():
        engine = ThresholdEngine()
        original = engine.propagate

        def propagate(*args, **kwargs):
            counts["propagations"] = counts.get("propagations", 0) + 1
            yield from original(*args, **kwargs)

        engine.propagate = propagate
        return engine

    return make


def history(client, sid, n_propagations: int) -> None:
    s, row, col = BALL
    for k in range(n_propagations):
        click(client, sid, s + k % 3 - 1, row, col, positive=k % 4 != 3)
        assert client.post(f"/api/sessions/{sid}/propagate", json={}).status_code == 200
        assert wait_job(client, sid)["state"] == "done"


def test_recovery_work_is_flat_in_history(make_client, tmp_path):
    """After 1 or 20 propagations a restart replays at most a few events and no propagation."""
    work = {}
    for n in (1, 20):
        counts: dict = {}
        state_dir = tmp_path / f"state{n}"
        before = make_client(state_dir=state_dir, engine_factory=counting_engine(counts))
        sid = open_ready(before)["sid"]
        history(before, sid, n)
        expected = labels(before, sid, tmp_path, f"before{n}.nii.gz")
        then = before.get(f"/api/sessions/{sid}").json()
        before.app.state.store.saver.flush()
        ran = counts["propagations"]
        assert ran == n

        after = make_client(state_dir=state_dir, engine_factory=counting_engine(counts))
        state = recovered(after, sid)
        work[n] = (counts["propagations"] - ran, state["job"]["total"])
        assert "after a snapshot" in state["notice"], state["notice"]
        assert {k: state[k] for k in SHOWN} == {k: then[k] for k in SHOWN}
        np.testing.assert_array_equal(labels(after, sid, tmp_path, f"after{n}.nii.gz"), expected)
        assert after.post(f"/api/sessions/{sid}/undo", json={}).status_code == 200
    assert work[1] == work[20] == (0, 0), work  # nothing re-run, whatever the history


def test_a_snapshot_restored_session_goes_on_like_the_original(make_client, tmp_path):
    """Reference: the same session kept in memory (the default engine, which keeps state)."""
    from tests.web.conftest import BASE_URL, TestClient  # noqa: F401

    original = make_client(engine_factory=None)
    sid = open_ready(original)["sid"]
    history(original, sid, 3)
    original.app.state.store.saver.flush()
    restarted = make_client(engine_factory=None)
    assert "after a snapshot" in recovered(restarted, sid)["notice"]
    for client in (original, restarted):
        s, row, col = BALL
        click(client, sid, s + 2, row, col + 1)
        client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"})
        wait_job(client, sid)
        client.post(f"/api/sessions/{sid}/undo", json={})
        client.post(f"/api/sessions/{sid}/undo", json={})
    a = original.get(f"/api/sessions/{sid}").json()
    b = restarted.get(f"/api/sessions/{sid}").json()
    assert {k: a[k] for k in SHOWN} == {k: b[k] for k in SHOWN}
    store_a, store_b = original.app.state.store, restarted.app.state.store
    for oid in store_a.get(sid).session.objects:
        np.testing.assert_array_equal(
            store_a.get(sid).session.mask_stack(oid), store_b.get(sid).session.mask_stack(oid)
        )


def test_a_damaged_snapshot_is_ignored_and_the_log_replayed(make_client, tmp_path):
    """The snapshot is a pickle-free .npz; a damaged one costs time, never the session."""
    before = make_client()
    sid = open_ready(before)["sid"]
    history(before, sid, 2)
    expected = labels(before, sid, tmp_path, "before.nii.gz")
    then = before.get(f"/api/sessions/{sid}").json()
    store = before.app.state.store
    assert store.saver.flush()
    folder = store.sessions_dir / sid
    snapshot = folder / "snapshot.npz"
    assert not list(folder.glob("*.pkl"))
    with np.load(snapshot, allow_pickle=False) as saved:  # loads without pickle
        assert "record" in saved.files
    snapshot.write_bytes(snapshot.read_bytes()[:100])

    after = make_client()
    state = recovered(after, sid)
    assert state["notice"] == f"restored by replaying {then['n_events']} saved changes"
    assert {k: state[k] for k in SHOWN} == {k: then[k] for k in SHOWN}
    np.testing.assert_array_equal(labels(after, sid, tmp_path, "after.nii.gz"), expected)
