"""Several browser sessions at once stay isolated; idle ones leave memory and come back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.web.conftest import BALL, BALL_SLICES, click, open_ready, wait_job


def test_two_concurrent_sessions_stay_isolated(client):
    a = open_ready(client)["sid"]
    b = open_ready(client)["sid"]
    assert a != b and len(a) >= 20
    s, row, col = BALL

    def work_a():
        click(client, a, s, row, col)
        client.post(f"/api/sessions/{a}/propagate", json={})
        wait_job(client, a)
        for _ in range(5):
            client.get(f"/api/sessions/{a}/overlay/axial/{s}.png")
        return client.get(f"/api/sessions/{a}").json()

    def work_b():
        client.post(f"/api/sessions/{b}/objects", json={"name": "only in b"})
        for k in range(4):
            click(client, b, s, row, col, positive=k % 2 == 0)
        client.post(f"/api/sessions/{b}/undo", json={})
        return client.get(f"/api/sessions/{b}").json()

    with ThreadPoolExecutor(2) as pool:
        future_a, future_b = pool.submit(work_a), pool.submit(work_b)
        state_a, state_b = future_a.result(60), future_b.result(60)

    assert [o["name"] for o in state_a["objects"]] == ["object 1"]
    assert state_a["objects"][0]["covered"] == BALL_SLICES and state_a["n_events"] == 3
    assert [o["name"] for o in state_b["objects"]] == ["only in b"]
    assert state_b["objects"][0]["covered"] == [s] and state_b["n_events"] == 4
    assert len(state_b["prompts"][0]["points"]) == 3
    log_a = client.get(f"/api/sessions/{a}/log").json()["events"]
    assert all(e.get("name") != "only in b" for e in log_a)
    # a job in one session does not block changes in the other
    client.post(f"/api/sessions/{a}/propagate", json={})
    assert client.post(f"/api/sessions/{b}/undo", json={}).status_code == 200
    wait_job(client, a)


def test_idle_sessions_are_evicted_and_come_back(make_client):
    client = make_client(max_live_sessions=1)
    first = open_ready(client)["sid"]
    click(client, first, *BALL)
    second = open_ready(client)["sid"]
    assert client.app.state.store.live_ids() == [second]
    assert client.get(f"/api/sessions/{first}").json()["job"]["kind"] == "recover"
    wait_job(client, first)
    state = client.get(f"/api/sessions/{first}").json()
    assert state["objects"][0]["covered"] == [BALL[0]]


def test_sessions_are_listed_and_deleted(make_client):
    import os
    import time

    client = make_client()
    store = client.app.state.store
    first = open_ready(client)["sid"]
    click(client, first, *BALL)
    client.post(f"/api/sessions/{first}/objects", json={"name": "second"})
    second = open_ready(client, sample="lung2")["sid"]
    old = time.time() - 3600
    for path in (store.sessions_dir / second).iterdir():
        os.utime(path, (old, old))
    listed = client.get("/api/sessions").json()
    assert listed["keep_days"] == 30
    rows = {row["sid"]: row for row in listed["sessions"]}
    assert [row["sid"] for row in listed["sessions"]] == [first, second]  # newest change first
    assert rows[first]["source"] == "ct/ball.nii.gz" and rows[first]["objects"] == 2
    assert rows[second]["source"] == "lung2" and rows[second]["objects"] == 0
    assert rows[first]["last_change"] > rows[second]["last_change"]

    assert client.delete(f"/api/sessions/{first}").status_code == 200
    assert not (store.sessions_dir / first).exists() and first not in store.live_ids()
    assert client.get(f"/api/sessions/{first}").status_code == 404
    assert client.delete(f"/api/sessions/{first}").status_code == 404
    assert [row["sid"] for row in client.get("/api/sessions").json()["sessions"]] == [second]
    # objects are counted from disk for a session not in memory
    client.post(f"/api/sessions/{second}/objects", json={"name": "lung"})
    store.saver.flush()
    with store._lock:
        store._live.clear()
    assert client.get("/api/sessions").json()["sessions"][0]["objects"] == 1


def test_a_busy_session_is_not_deleted(client):
    from sam2vol.web.jobs import Job

    sid = open_ready(client)["sid"]
    ws = client.app.state.store.get(sid)
    ws.job = Job("propagate")
    response = client.delete(f"/api/sessions/{sid}")
    assert response.status_code == 409 and "running" in response.json()["detail"]
    ws.job.finish("done")
    assert client.delete(f"/api/sessions/{sid}").status_code == 200


def test_retention_deletes_sessions_unchanged_for_longer(make_client):
    import os
    import time

    client = make_client()
    old = open_ready(client)["sid"]
    recent = open_ready(client)["sid"]
    folder = client.app.state.store.sessions_dir
    client.app.state.store.saver.flush()
    stale = time.time() - 3 * 86400
    for path in (folder / old).iterdir():
        os.utime(path, (stale, stale))
    kept = make_client(keep_days=5)  # a restart keeps both...
    assert {r["sid"] for r in kept.get("/api/sessions").json()["sessions"]} == {old, recent}
    make_client(keep_days=2)  # ...this one deletes the session unchanged for 3 days
    assert not (folder / old).exists() and (folder / recent).exists()
    make_client(keep_days=0)  # 0 keeps everything
    assert (folder / recent).exists()
