"""A propagation seen by the page in Chromium: followed once, however the page learns of it.

The page learns of a job from the propagate answer and from the session's change stream, in
either order; the server is made to answer late (Playwright routes) so each order happens.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest

from sam2vol.web import jobs
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
    request = urllib.request.Request(
        f"{server.url}api/sessions/{sid}/objects/1/edit",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


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
