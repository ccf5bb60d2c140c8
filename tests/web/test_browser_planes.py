"""The linked planes and 3D view (NiiVue, vendored) in Chromium: labels, crosshair, window."""

from __future__ import annotations

import numpy as np

from tests.web.test_browser import VIEWPORT, Page


def test_planes_follow_the_session_and_move_the_slice_view(chromium, server):
    context = chromium.new_context(viewport=VIEWPORT)
    page = Page(context.new_page(), server.url)
    page.page.select_option("#sample-select", "lung2")
    page.page.click("#open-sample")
    page.wait_ready()
    # Chromium here draws WebGL in software (SwiftShader), where the planes start switched off.
    assert not page.page.is_checked("#planes-toggle")
    page.page.focus("#canvas")
    page.page.keyboard.press("v")
    page.wait("() => sam2volApp.planes.ready", timeout=60_000)
    ws = server.app.state.store.get(page.state()["sid"])

    # a click in the slice view: the planes show the same label voxels, in the object's colour
    page.goto_slice(20)
    page.click(112, 120)
    page.wait("() => sam2volApp.planes.labelsRevision === sam2volApp.state.revision")
    # labels arriving in the planes do not move the slice view (only the user's crosshair does)
    page.propagate()
    page.wait("() => sam2volApp.planes.labelsRevision === sam2volApp.state.revision")
    page.page.wait_for_timeout(500)
    assert page.js("() => [sam2volApp.slices.axial, sam2volApp.linked]") == [20, None]
    shown = page.js("() => Array.from(sam2volApp.planes.labels.img).filter((v) => v === 1).length")
    assert shown == int(ws.session.mask(1).sum()) > 0
    lut = page.js("() => Array.from(sam2volApp.planes.labels.colormapLabel.lut.slice(4, 7))")
    assert "#{:02x}{:02x}{:02x}".format(*lut) == page.state()["objects"][0]["color"]

    # a click in the planes moves the crosshair: every view of the slice view goes there
    before = page.js("() => ({...sam2volApp.slices})")
    box = page.page.locator("#planes").bounding_box()
    page.page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.2)
    page.wait("() => sam2volApp.linked !== undefined && sam2volApp.linked !== null")
    after = page.js("() => ({...sam2volApp.slices})")
    voxel = page.js("() => sam2volApp.linked")
    assert after != before
    g = ws.display.view("axial")
    assert after["axial"] == g.voxel_to_slice(tuple(voxel))[0]
    page.wait(
        "s => sam2volApp.drawn && sam2volApp.drawn.slice === s",
        after[page.js("() => sam2volApp.view")],
    )

    # right-drag in the planes: window and level of the image change
    window = page.js(
        "() => [sam2volApp.planes.nv.volumes[0].cal_min, sam2volApp.planes.nv.volumes[0].cal_max]"
    )
    x, y = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.25
    page.page.mouse.move(x, y)
    page.page.mouse.down(button="right")
    page.page.mouse.move(x + 40, y + 30, steps=5)
    page.page.mouse.up(button="right")
    changed = page.js(
        "() => [sam2volApp.planes.nv.volumes[0].cal_min, sam2volApp.planes.nv.volumes[0].cal_max]"
    )
    assert not np.allclose(changed, window), (window, changed)

    # switched off with V
    page.page.focus("#canvas")
    page.page.keyboard.press("v")
    assert page.js("() => document.getElementById('planes-wrap').hidden")
    assert page.errors == []
    context.close()
