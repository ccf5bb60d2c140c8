"""Two pages on one session in Chromium: each follows the other's changes through the change
stream, and a change sent from a page that is behind is refused (409), reloaded and explained."""

from __future__ import annotations

import numpy as np

from sam2vol.io import read_label, read_volume
from sam2vol.samples import sample_path
from sam2vol.simulate import deepest_pixel
from sam2vol.slicing import SliceGeometry
from tests.web.test_browser import VIEWPORT, Page


def shown(page: Page) -> tuple:
    """What a page shows of the session: its version and each object's voxels and prompts."""
    state = page.state()
    objects = tuple((o["id"], o["name"], o["voxels"]) for o in state["objects"])
    prompts = tuple((p["object_id"], p["slice"], len(p["points"])) for p in state["prompts"])
    return state["revision"], objects, prompts


def test_two_pages_on_one_session_converge(chromium, server):
    image = read_volume(sample_path("lung2"))
    label = read_label(sample_path("lung2", "label"), like=image).data > 0
    g = SliceGeometry.for_volume(image, "axial")
    truth = g.to_stack(label)
    s = int(np.argmax(truth.sum(axis=(1, 2))))
    row, col = deepest_pixel(truth[s], spacing_mm=g.pixel_spacing_mm)

    context = chromium.new_context(viewport=VIEWPORT)
    a = Page(context.new_page(), server.url)
    a.page.select_option("#sample-select", "lung2")
    a.page.click("#open-sample")
    a.wait_ready()
    sid = a.state()["sid"]
    b = Page(context.new_page(), f"{server.url}#session={sid}")
    b.wait_ready()
    assert shown(b) == shown(a)

    # A clicks: B follows without doing anything
    a.goto_slice(s)
    a.click(row, col)
    assert a.voxels() > 0
    b.wait("v => sam2volApp.state.revision === v", a.state()["revision"])
    assert shown(b) == shown(a)

    # B adds an object: A follows
    b.page.fill("#object-name", "second")
    b.changed(lambda: b.page.click("#add-object"))
    a.wait("v => sam2volApp.state.revision === v", b.state()["revision"])
    assert shown(a) == shown(b) and [o[1] for o in shown(a)[1]] == ["object 1", "second"]

    # B is made to lag behind (as if A's push had not reached it yet): its click is refused,
    # it reloads the session and says why
    before = shown(a)
    b.js("() => { sam2volApp.state.revision -= 1; }")
    b.goto_slice(s)
    b.page.mouse.click(**b.point(row + 2, col + 2))
    b.wait("() => sam2volApp.stale === 1")
    b.wait("v => sam2volApp.state.revision === v", before[0])
    assert "changed in another tab" in b.page.inner_text("#banner-text")
    assert shown(b) == shown(a) == before  # nothing applied
    assert not a.errors and not [e for e in b.errors if "409" not in e]
