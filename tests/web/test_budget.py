"""One memory budget for the server: sessions that do not fit close the least recently used
idle ones to disk (they reopen with identical masks); when busy sessions hold it, 503."""

from __future__ import annotations

import numpy as np

from sam2vol.web.jobs import Job
from sam2vol.web.limits import session_cost
from tests.web.conftest import BALL, click, open_ready, wait_job

BALL_SHAPE = (40, 30, 20)  # tests/conftest.py ct_volume, int16
ONE_BALL = session_cost(int(np.prod(BALL_SHAPE)), 2)


def masks_of(client, sid) -> dict[int, np.ndarray]:
    """Copies of every object's mask stack, straight from the live session."""
    session = client.app.state.store.get(sid).session
    return {oid: session.mask_stack(oid).copy() for oid in session.objects}


def test_a_session_closed_for_memory_reopens_with_identical_masks(make_client):
    client = make_client(memory_budget_bytes=int(ONE_BALL * 1.5))  # room for one session
    store = client.app.state.store
    first = open_ready(client)["sid"]
    click(client, first, *BALL)
    client.post(f"/api/sessions/{first}/propagate", json={})
    wait_job(client, first)
    client.post(f"/api/sessions/{first}/objects", json={"name": "second"})
    click(client, first, BALL[0], 3, 3, object_id=2)
    expected = masks_of(client, first)
    assert sum(int(m.sum()) for m in expected.values()) > 100
    overlay = client.get(f"/api/sessions/{first}/overlay/axial/{BALL[0]}.png").content

    second = open_ready(client)["sid"]
    assert store.live_ids() == [second] and store.closed_for_memory == 1
    assert store.used_bytes() <= client.app.state.config.memory_budget_bytes
    assert (store.sessions_dir / first / "masks.npz").exists()

    assert client.get(f"/api/sessions/{first}").json()["job"]["kind"] == "recover"
    wait_job(client, first)
    assert store.live_ids() == [first]  # and the second one closed in turn
    reopened = masks_of(client, first)
    assert sorted(reopened) == sorted(expected)
    for oid, mask in expected.items():
        np.testing.assert_array_equal(reopened[oid], mask)
    assert client.get(f"/api/sessions/{first}/overlay/axial/{BALL[0]}.png").content == overlay


def test_busy_sessions_holding_the_budget_give_503(make_client):
    client = make_client(memory_budget_bytes=int(ONE_BALL * 1.5))
    first = open_ready(client)["sid"]
    ws = client.app.state.store.get(first)
    ws.job = Job("propagate", message="a job the test keeps running")
    try:
        response = client.post("/api/sessions", json={"path": "ct/ball.nii.gz"})
        assert response.status_code == 503
        assert "memory budget" in response.json()["detail"]
        assert "busy" in response.json()["detail"]
        assert client.app.state.store.live_ids() == [first]  # nothing was closed
    finally:
        ws.job.finish("done")
    assert open_ready(client)["sid"] != first  # once idle, it makes room


def test_a_volume_over_the_whole_budget_is_refused(make_client):
    client = make_client(memory_budget_bytes=ONE_BALL // 2)
    response = client.post("/api/sessions", json={"path": "ct/ball.nii.gz"})
    assert response.status_code == 413
    assert "memory budget" in response.json()["detail"]
    assert client.app.state.store.live_ids() == []


def test_volumes_are_read_and_prepared_one_at_a_time(make_client, monkeypatch):
    """Concurrent opens never hold two volumes that are not yet charged to the budget."""
    import threading
    import time

    import sam2vol.web.routes as routes
    import sam2vol.web.store as store_module

    inflight, most = 0, 0
    count = threading.Lock()

    def tracked(function):
        def wrapper(*args, **kwargs):
            nonlocal inflight, most
            with count:
                inflight += 1
                most = max(most, inflight)
            try:
                time.sleep(0.2)  # a big file: long enough for the others to arrive
                return function(*args, **kwargs)
            finally:
                with count:
                    inflight -= 1

        return wrapper

    monkeypatch.setattr(routes, "read_for_client", tracked(routes.read_for_client))
    monkeypatch.setattr(store_module, "Display", tracked(store_module.Display))
    client = make_client()
    states: list[dict] = []
    threads = [threading.Thread(target=lambda: states.append(open_ready(client))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(states) == 3
    assert most == 1, f"{most} volumes were read or prepared at once"
