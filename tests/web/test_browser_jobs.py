"""A propagation seen by the page in Chromium: followed once, however the page learns of it."""

from __future__ import annotations

import time

import pytest

from sam2vol.web import jobs
from tests.web.test_browser import VIEWPORT, Page

FINISHED = (
    "() => sam2volApp.lastJob && sam2volApp.lastJob.kind === 'propagate'"
    " && document.body.dataset.state === 'ready'"
)


@pytest.mark.parametrize("answer", ["while the job runs", "after the job ended"])
def test_the_change_stream_sees_the_job_before_the_propagate_answer(
    chromium, server, monkeypatch, answer
):
    """The change stream can report the job before the propagate request answers.

    The page then follows the job from the stream. The view goes back to the slice it was on
    (following the job moves it to the last slice reached), once: the late answer neither
    brings back an older state nor moves the view again after the user went on.
    """
    advance = jobs.Job.advance

    def slow_advance(self, *args, **kwargs):
        time.sleep(0.05)  # the job outlasts the answer delayed "while the job runs"
        return advance(self, *args, **kwargs)

    monkeypatch.setattr(jobs.Job, "advance", slow_advance)
    page = Page(chromium.new_context(viewport=VIEWPORT).new_page(), server.url)
    page.page.select_option("#sample-select", "lung2")
    page.page.click("#open-sample")
    page.wait_ready()
    page.goto_slice(20)
    page.click(112, 120)

    def late_answer(route):
        response = route.fetch()  # the server has started the job ...
        if answer == "while the job runs":  # ... and answers the page after the stream did
            page.page.wait_for_timeout(700)
        else:  # ... or after the page followed the job to its end, and the user went on
            page.wait(FINISHED)
            page.wait("() => sam2volApp.drawn && sam2volApp.drawn.slice === 20")
            page.goto_slice(5)
        route.fulfill(response=response)

    page.page.route("**/propagate", late_answer)
    assert page.page.is_checked("#follow")
    # the revision the page shows, every 10 ms: the late answer's older state must not come back
    page.js(
        "() => { window.shown = []; setInterval(() => shown.push(sam2volApp.state.revision), 10); }"
    )
    page.page.click("#propagate")
    page.wait("() => sam2volApp.lastPropagationMs !== null")
    page.wait(FINISHED)
    assert page.js("() => sam2volApp.lastJob.state") == "done"
    assert page.js("() => sam2volApp.followed") >= 1  # the stream did pick the job up
    if answer == "while the job runs":
        page.wait("() => sam2volApp.drawn && sam2volApp.drawn.slice === 20")
        page.goto_slice(5)
    page.page.wait_for_timeout(300)
    assert page.js("() => [sam2volApp.slices.axial, sam2volApp.drawn.slice]") == [5, 5]
    shown = page.js("() => shown")
    assert shown == sorted(shown) and shown[-1] == page.state()["revision"]
    assert page.errors == []
