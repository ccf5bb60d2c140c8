"""The web server with the SAM 2 engine (random weights, 128 px): its cached features and
states count against the memory budget, and it encodes slices in the background from the
slice the page shows, stopping when the session closes or the budget is spent."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sam2vol.web.jobs import Job
from sam2vol.web.limits import session_cost
from tests.engines.sam2_helpers import make_engine
from tests.web.conftest import BALL, click, open_ready, wait_job

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
BALL_SHAPE = (40, 30, 20)  # tests/conftest.py ct_volume, int16: 20 axial slices
N_SLICES = BALL_SHAPE[2]
ONE_BALL = session_cost(int(np.prod(BALL_SHAPE)), 2)
MB = 1 << 20
TIMEOUT_S = 120


@pytest.fixture
def sam2_client(make_client):
    def make(**options):
        return make_client(engine_factory=make_engine, **options)

    return make


def engine_of(client, sid):
    return client.app.state.store.get(sid).session.engine


def wait_for(condition, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ----- memory budget ----------------------------------------------------------------------------
def test_cached_features_count_against_the_budget_and_close_idle_sessions(sam2_client):
    client = sam2_client(memory_budget_bytes=2 * ONE_BALL + 4 * MB, background_encoding=False)
    store = client.app.state.store
    first = open_ready(client)["sid"]
    engine = engine_of(client, first)
    assert store.used_bytes() == ONE_BALL  # nothing encoded yet
    click(client, first, *BALL)
    client.post(f"/api/sessions/{first}/propagate", json={})
    assert wait_job(client, first)["state"] == "done"
    cached = engine.cache.stats.bytes
    assert engine.cache.stats.stored == N_SLICES and cached > 4 * MB
    # the charge follows what the engine holds: at least the features it cached
    assert store.used_bytes() >= ONE_BALL + cached
    assert client.get("/api/info").json()["memory_used_bytes"] == store.used_bytes()

    # two bare sessions fit the budget; the first one's features do not: it closes to disk
    second = open_ready(client)["sid"]
    assert store.live_ids() == [second] and store.closed_for_memory == 1
    assert engine.cache.stats.stored == 0  # its features went back to the process's budget
    assert store.used_bytes() <= client.app.state.config.memory_budget_bytes


def test_busy_sessions_holding_features_give_503(sam2_client):
    client = sam2_client(memory_budget_bytes=2 * ONE_BALL + 4 * MB, background_encoding=False)
    first = open_ready(client)["sid"]
    click(client, first, *BALL)
    client.post(f"/api/sessions/{first}/propagate", json={})
    wait_job(client, first)
    ws = client.app.state.store.get(first)
    ws.job = Job("propagate", message="a job the test keeps running")
    try:
        response = client.post("/api/sessions", json={"path": "ct/ball.nii.gz"})
        assert response.status_code == 503 and "busy" in response.json()["detail"]
    finally:
        ws.job.finish("done")


def test_background_encoding_stops_when_the_budget_is_spent(sam2_client):
    budget = ONE_BALL + 3 * MB  # the volume and a few slices' features
    client = sam2_client(memory_budget_bytes=budget)
    store = client.app.state.store
    engine = engine_of(client, open_ready(client)["sid"])
    wait_for(lambda: engine.cache.stats.stored > 0 and not engine.background_encoding)
    assert 0 < engine.cache.stats.stored < N_SLICES
    assert store.used_bytes() >= budget  # it stopped because the budget was spent


# ----- background encoding ----------------------------------------------------------------------
def test_opening_starts_background_encoding_and_deleting_stops_it(sam2_client):
    client = sam2_client()
    sid = open_ready(client)["sid"]
    engine = engine_of(client, sid)
    wait_for(lambda: engine.cache.stats.stored >= 2)  # nothing was asked for
    assert list(engine.cache._store)[:2] in ([10, 11], [10, 9])  # from the middle slice
    assert engine.background_encoding
    thread = engine._prefetch
    assert client.delete(f"/api/sessions/{sid}").status_code == 200
    assert not thread.is_alive() and not engine.background_encoding
    assert engine.cache.stats.stored == 0


def test_closing_a_session_to_disk_stops_its_encoding(sam2_client):
    client = sam2_client(max_live_sessions=1)
    first = open_ready(client)["sid"]
    engine = engine_of(client, first)
    wait_for(lambda: engine.cache.stats.stored >= 1)
    second = open_ready(client)["sid"]
    assert client.app.state.store.live_ids() == [second]
    assert not engine.background_encoding and engine.cache.stats.stored == 0


def test_the_page_view_recentres_the_encoding(sam2_client):
    client = sam2_client()
    sid = open_ready(client)["sid"]
    engine = engine_of(client, sid)
    with engine._foreground():  # the user acts: the thread waits, then follows the view
        for _ in range(2):  # the batch in flight, if any, ends (and no new one starts)
            wait_for(lambda: not engine.cache._pending)
            time.sleep(0.1)
        done = engine.cache.stats.stored
        other = client.post(f"/api/sessions/{sid}/view", json={"view": "coronal", "slice": 5})
        assert other.json() == {"background_encoding": False}  # not the working view
        response = client.post(f"/api/sessions/{sid}/view", json={"view": "axial", "slice": 19})
        assert response.json() == {"background_encoding": True}
    wait_for(lambda: engine.cache.stats.stored > done + 1)
    assert list(engine.cache._store)[done : done + 2] == [19, 18]
    bad = client.post(f"/api/sessions/{sid}/view", json={"view": "axial", "slice": 99})
    assert bad.status_code == 400


def test_background_encoding_can_be_turned_off(sam2_client):
    client = sam2_client(background_encoding=False)
    sid = open_ready(client)["sid"]
    engine = engine_of(client, sid)
    client.post(f"/api/sessions/{sid}/view", json={"view": "axial", "slice": 3})
    time.sleep(0.5)
    assert engine.cache.stats.encoded == 0 and not engine.background_encoding
