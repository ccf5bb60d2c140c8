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
