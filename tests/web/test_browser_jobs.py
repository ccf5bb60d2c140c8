"""A propagation seen by the page in Chromium: followed once, however the page learns of it.

The page learns of a job from the propagate answer and from the session's change stream, in
either order; the server is made to answer late (Playwright routes) so each order happens.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from sam2vol.web import jobs
from tests.web.conftest import call
from tests.web.test_browser import VIEWPORT, Page

ENDED = "n => sam2volApp.jobsEnded > n && document.body.dataset.state === 'ready'"
# the revision the page shows, every 10 ms (an older state must never come back)
WATCH_REVISIONS = (
    "() => { window.shown = []; setInterval(() => shown.push(sam2volApp.state.revision), 10); }"
)


@pytest.fixture
def slow_jobs(monkeypatch):
    """Propagation steps take 50 ms more: the job outlasts the page's reactions to it."""
    advance = jobs.Job.advance

    def slow_advance(self, *args, **kwargs):
        time.sleep(0.05)
        return advance(self, *args, **kwargs)

    monkeypatch.setattr(jobs.Job, "advance", slow_advance)


def clicked_on_slice_20(chromium, server) -> Page:
    page = Page(chromium.new_context(viewport=VIEWPORT).new_page(), server.url)
    page.page.select_option("#sample-select", "lung2")
    page.page.click("#open-sample")
    page.wait_ready()
    page.goto_slice(20)
    page.click(112, 120)
    assert page.page.is_checked("#follow")  # the view follows the job to its last slice
    return page


def assert_stays_on_slice_5(page: Page) -> None:
    page.page.wait_for_timeout(300)
    assert page.js("() => [sam2volApp.slices.axial, sam2volApp.drawn.slice]") == [5, 5]
    shown = page.js("() => shown")
    assert shown == sorted(shown) and shown[-1] == page.state()["revision"]
    assert page.errors == []


@pytest.mark.parametrize("answer", ["while the job runs", "after the job ended"])
def test_the_change_stream_sees_the_job_before_the_propagate_answer(
    chromium, server, slow_jobs, answer
):
    """The view goes back to its slice once; the late answer's older state is not shown."""
    page = clicked_on_slice_20(chromium, server)
    ended, followed = page.js("() => [sam2volApp.jobsEnded, sam2volApp.followed]")

    def late_answer(route):
        response = route.fetch()  # the server has started the job; the page hears of it ...
        if answer == "while the job runs":  # ... from the stream, which follows it
            page.wait("n => sam2volApp.followed > n && sam2volApp.jobRunning", followed)
        else:  # ... and follows it to its end; the user goes on
            page.wait(ENDED, ended)
            page.wait("() => sam2volApp.drawn && sam2volApp.drawn.slice === 20")
            page.goto_slice(5)
        route.fulfill(response=response)

    page.page.route("**/propagate", late_answer)
    page.js(WATCH_REVISIONS)
    page.page.click("#propagate")
    page.wait("() => sam2volApp.lastPropagationMs !== null")
    page.wait(ENDED, ended)
    assert page.js("() => [sam2volApp.lastJob.kind, sam2volApp.lastJob.state]") == [
        "propagate",
        "done",
    ]
    assert page.js("() => sam2volApp.jobsEnded") == ended + 1  # one watch
    if answer == "while the job runs":
        assert page.js("() => [sam2volApp.slices.axial, sam2volApp.drawn.slice]") == [20, 20]
        page.goto_slice(5)
    assert_stays_on_slice_5(page)


def rename(server, sid: str, name: str) -> None:
    """Another tab's change, made through the API (the page hears of it on its change stream)."""
    status, answer = call(server.url, "POST", f"api/sessions/{sid}/objects/1/edit", {"name": name})
    assert status == 200, answer


@pytest.mark.parametrize("change", ["before the final state is read", "after it was read"])
def test_a_change_while_the_page_reads_the_jobs_final_state(chromium, server, slow_jobs, change):
    """Another tab renames the object while the page reads the state a job ended with.

    The page shows the job's end once it has that state (ready, back on its slice, at once) and
    then the rename, whether the state it read holds the rename or not.
    """
    page = clicked_on_slice_20(chromium, server)
    sid = page.state()["sid"]
    ws = server.app.state.store.get(sid)
    ended = page.js("() => sam2volApp.jobsEnded")
    state_url = re.compile(rf".*/api/sessions/{sid}$")
    delayed = []

    def late_state(route):
        if delayed or ws.job.state == "running" or route.request.method != "GET":
            return route.continue_()
        delayed.append(route.request.url)  # the first read of the state after the job ended
        if change == "before the final state is read":
            rename(server, sid, "renamed")
            page.page.wait_for_timeout(400)  # the push reaches the page meanwhile
            return route.continue_()
        response = route.fetch()
        rename(server, sid, "renamed")
        page.page.wait_for_timeout(400)
        route.fulfill(response=response)

    page.page.route(state_url, late_state)
    page.js(WATCH_REVISIONS)
    job = page.propagate()
    assert job["state"] == "done" and delayed
    # the job's end, all at once: ready, and back on the slice the propagation started from
    assert page.js("() => [sam2volApp.slices.axial, sam2volApp.jobsEnded]") == [20, ended + 1]
    page.wait("() => sam2volApp.state.objects[0].name === 'renamed'")
    page.goto_slice(5)
    assert_stays_on_slice_5(page)


def test_a_reload_overtaken_by_the_jobs_end_is_dropped(chromium, server, slow_jobs):
    """The stream's reload (sent mid-job) answers only after the job's watch has ended.

    Its state is older and says the job still runs: showing it would take the page back in
    time, and following that job again would move the view after the user went on.
    """
    page = clicked_on_slice_20(chromium, server)
    sid = page.state()["sid"]
    ended = page.js("() => sam2volApp.jobsEnded")
    held = {}

    def hold_propagate(route):
        held["post"] = (route, route.fetch())

    def hold_first_reload(route):
        if route.request.method == "GET" and "post" in held and "get" not in held:
            held["get"] = (route, route.fetch())  # read mid-job, answered below
        else:
            route.continue_()

    page.page.route("**/propagate", hold_propagate)
    page.page.route(re.compile(rf".*/api/sessions/{sid}$"), hold_first_reload)
    page.js(WATCH_REVISIONS)
    page.page.click("#propagate")
    deadline = time.monotonic() + 30
    while "get" not in held:  # the stream's reload goes out (the page waits for the answer)
        assert time.monotonic() < deadline, "the page did not reload from the change stream"
        page.page.wait_for_timeout(50)
    route, response = held["post"]
    route.fulfill(response=response)  # the answer starts the watch, which ends
    page.wait(ENDED, ended)
    page.wait("() => sam2volApp.drawn && sam2volApp.drawn.slice === 20")
    page.goto_slice(5)
    route, response = held["get"]
    assert json.loads(response.text())["job"]["state"] == "running"
    route.fulfill(response=response)
    page.page.wait_for_timeout(1000)
    assert page.js("() => sam2volApp.jobsEnded") == ended + 1
    assert_stays_on_slice_5(page)


def test_a_session_left_while_its_job_runs_does_not_hold_the_next(chromium, server, slow_jobs):
    """Another tab propagates on session A while this page goes to session B."""
    page = clicked_on_slice_20(chromium, server)
    a = page.state()["sid"]
    store = server.app.state.store
    status, opened = call(server.url, "POST", "api/sessions", {"sample": "lung2"})
    assert status == 200, opened
    b = opened["sid"]
    assert store.get(b).job.wait(60)  # B is loaded

    started = []

    def meanwhile(route):  # while the page asks for B, A's job starts; the page watches it
        if route.request.method == "GET" and not started:
            started.append(True)
            body = {"version": store.get(a).revision}
            status, answer = call(server.url, "POST", f"api/sessions/{a}/propagate", body)
            assert status == 200, answer
            page.wait("() => sam2volApp.jobRunning")
        route.continue_()

    page.page.route(re.compile(rf".*/api/sessions/{b}$"), meanwhile)
    page.js(f"() => {{ location.hash = '#session={b}'; }}")
    page.wait(f"() => sam2volApp.sid === '{b}' && document.body.dataset.state === 'ready'")
    assert store.get(a).job.wait(60)
    page.page.wait_for_timeout(500)  # A's watch ends: B is not touched
    assert page.js("() => [sam2volApp.sid, sam2volApp.jobRunning]") == [b, False]
    assert page.js("() => document.body.dataset.state") == "ready"
    assert page.state()["objects"] == []  # nothing of A's job shows in B
    page.click(112, 120)  # B takes clicks
    assert page.voxels() > 0
    assert page.errors == []


def test_a_job_whose_progress_cannot_be_read_for_a_while_is_followed_to_its_end(
    chromium, server, slow_jobs
):
    """The job's event stream and its poll fail once while it runs: the page follows it again."""
    page = clicked_on_slice_20(chromium, server)
    ended = page.js("() => sam2volApp.jobsEnded")
    failed = []

    def fail_once(route):
        if "/job" in route.request.url:  # the poll after the stream failed: the watch gives up
            if failed:
                return route.continue_()
            failed.append(route.request.url)
        route.abort()

    page.page.route(re.compile(r".*/api/sessions/[^/]+/(events|job)(\?.*)?$"), fail_once)
    page.page.click("#propagate")
    page.wait(ENDED, ended)
    assert failed
    assert page.js("() => [sam2volApp.lastJob.state, sam2volApp.jobsEnded]") == ["done", ended + 1]
    assert page.js("() => [sam2volApp.state.job.state, sam2volApp.slices.axial]") == ["done", 20]
