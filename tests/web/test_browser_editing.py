"""Finishing a segmentation in Chromium: DICOM in, eraser, slice limit, label-map import, exports.

The lung sample is written as a DICOM series (slice k = instance k, by construction, see
``tests/dicom_series.py``) and uploaded as a zip. One click and a propagation segment the mass; the
eraser takes a leak off one slice and a slice limit keeps the object to the reference's extent;
the NIfTI export and the DICOM-SEG export (read back with highdicom, frame by frame against the
mask) are scored against the bundled label; then the label map is imported and corrected with the
brush.
"""

from __future__ import annotations

import zipfile

import highdicom as hd
import numpy as np
import pydicom

from sam2vol.io import read_label, read_volume
from sam2vol.samples import sample_path
from sam2vol.simulate import deepest_pixel
from sam2vol.slicing import SliceGeometry
from tests.dicom_series import write_series
from tests.web.test_browser import VIEWPORT, Page, dice


def drag(page: Page, pixels: list[tuple[int, int]]) -> None:
    """Press, move through the pixels, release; waits for the page to apply the edit."""
    n = page.js("() => sam2volApp.changes")
    start = page.point(*pixels[0])
    page.page.mouse.move(start["x"], start["y"])
    page.page.mouse.down()
    for r, c in pixels[1:]:
        xy = page.point(r, c)
        page.page.mouse.move(xy["x"], xy["y"], steps=3)
    page.page.mouse.up()
    page.wait("n => sam2volApp.changes > n", n)


def test_finish_a_segmentation_with_edits_import_and_dicom(chromium, server, tmp_path):
    image = read_volume(sample_path("lung2"))
    label = read_label(sample_path("lung2", "label"), like=image).data > 0
    g = SliceGeometry.for_volume(image, "axial")
    truth = g.to_stack(label)
    extent = np.flatnonzero(truth.any(axis=(1, 2)))
    first, last = int(extent[0]), int(extent[-1])
    s = int(np.argmax(truth.sum(axis=(1, 2))))
    row, col = deepest_pixel(truth[s], spacing_mm=g.pixel_spacing_mm)

    # DICOM in: the series as a zip
    files = write_series(image, tmp_path / "series")
    archive = tmp_path / "lung2_dicom.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in files:
            zf.write(f, f"CT/{f.name}")
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = Page(context.new_page(), server.url)
    page.page.set_input_files("#upload-input", str(archive))
    page.wait_ready()
    sid = page.state()["sid"]
    ws = server.app.state.store.get(sid)
    assert ws.session.volume.same_grid(image)
    np.testing.assert_array_equal(ws.session.volume.data, image.data)

    # one click on the mass, propagate
    page.goto_slice(s)
    page.click(row, col)
    page.propagate()
    stack = ws.session.mask_stack(1).copy()
    before = dice(stack, truth)

    # the eraser takes the worst leak (mask outside the reference) off its slice
    k = max(range(g.n_slices), key=lambda k: (stack[k] & ~truth[k]).sum())
    leak = stack[k] & ~truth[k]
    assert leak.sum() > 20, "expected a leak to erase"
    page.goto_slice(k)
    page.page.keyboard.press("e")
    page.page.fill("#brush-size", "2")
    page.page.dispatch_event("#brush-size", "change")
    rows, cols = np.nonzero(leak)
    order = np.lexsort((cols, rows))
    path = [(int(rows[i]), int(cols[i])) for i in order[:: max(1, len(order) // 40)]]
    drag(page, path)
    erased = ws.session.slice_mask(1, k)
    assert (erased & leak).sum() < leak.sum() // 2
    assert dice(erased, truth[k]) > dice(stack[k], truth[k])
    assert k in ws.session.prompts(1) and ws.session.prompts(1)[k].mask is not None
    assert dice(ws.session.mask_stack(1), truth) > before

    # a slice limit to the reference's extent, then propagate again
    page.page.check("#limit")
    page.page.fill("#limit-first", str(first))
    page.page.fill("#limit-last", str(last))
    page.page.keyboard.press("q")
    page.propagate()
    limited = ws.session.mask_stack(1).copy()
    covered = np.flatnonzero(limited.any(axis=(1, 2)))
    prompted = set(ws.session.prompts(1))
    assert all(first <= c <= last or c in prompted for c in covered)
    np.testing.assert_array_equal(limited[k], erased)  # the edit is an anchor: it stays
    after = dice(limited, truth)
    # Measured 0.839 (0.869 before the eraser): the default engine re-tracks the slices next to
    # the edited one from its smaller mask.
    assert after > 0.8, after
    log = ws.log_dict()["events"]
    assert log[-1]["kind"] == "propagate" and log[-1]["slice_range"] == [first, last]

    # NIfTI export: source geometry, scored
    page.page.select_option("#export-format", "nii.gz")
    with page.page.expect_download() as download:
        page.page.click("#export")
    nifti = tmp_path / download.value.suggested_filename
    download.value.save_as(nifti)
    exported = read_volume(nifti)
    assert exported.same_grid(image)
    assert abs(dice(exported.data == 1, label) - after) < 1e-9

    # DICOM-SEG export: read back with highdicom; frame of instance k = mask slice k
    page.page.select_option("#export-format", "seg")
    with page.page.expect_download() as download:
        page.page.click("#export")
    seg_path = tmp_path / download.value.suggested_filename
    download.value.save_as(seg_path)
    seg = hd.seg.segread(seg_path)
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    frames = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, segment_numbers=[1], assert_missing_frames_are_empty=True
    )[..., 0]
    expected = np.stack([exported.data[:, :, kk].T == 1 for kk in range(image.shape[2])])
    np.testing.assert_array_equal(frames > 0, expected)
    from_seg = np.stack([frames[kk].T > 0 for kk in range(image.shape[2])], axis=2)
    assert abs(dice(from_seg, label) - after) < 1e-9

    # import the reference label map as an object, and correct it with the brush
    n = page.js("() => sam2volApp.changes")
    page.page.set_input_files("#import-input", str(sample_path("lung2", "label")))
    page.wait("n => sam2volApp.changes > n", n)
    objects = page.state()["objects"]
    assert [o["name"] for o in objects] == ["object 1", "label 1"]
    assert objects[0]["color"] != objects[1]["color"]
    np.testing.assert_array_equal(ws.session.mask(2), label)
    page.goto_slice(s)
    page.page.keyboard.press("b")
    page.page.fill("#brush-size", "3")
    page.page.dispatch_event("#brush-size", "change")
    outside = [(row, c) for c in range(col, g.slice_shape[1]) if not truth[s][row, c]][:1]
    assert outside, "expected background beside the mass"
    r0, c0 = outside[0]
    drag(page, [(r0, c0 + 4), (r0, c0 + 10)])
    corrected = ws.session.mask(2)
    added = g.to_stack(corrected)[s] & ~truth[s]
    assert added.sum() > 20
    other = [kk for kk in range(g.n_slices) if kk != s]
    np.testing.assert_array_equal(g.to_stack(corrected)[other], truth[other])

    page.page.select_option("#export-format", "nii.gz")
    with page.page.expect_download() as download:
        page.page.click("#export")
    again = tmp_path / ("2_" + download.value.suggested_filename)
    download.value.save_as(again)
    relabelled = read_volume(again)
    assert relabelled.same_grid(image)
    np.testing.assert_array_equal(relabelled.data == 2, corrected)
    assert dice(relabelled.data == 2, label) > 0.98
    assert page.errors == []
    context.close()


def test_the_page_comes_back_after_an_outage(chromium, server):
    """The server unreachable while a volume loads: the page says so, and goes on by itself."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = Page(context.new_page(), server.url)
    page.page.route("**/api/sessions/**", lambda route: route.abort())
    page.page.click("#open-sample")
    page.page.wait_for_selector("body[data-state=offline]", timeout=30_000)
    assert "cannot be reached" in page.page.inner_text("#banner-text")
    page.page.unroute("**/api/sessions/**")
    page.wait_ready()
    assert page.state()["status"] == "ready"
    page.errors = [e for e in page.errors if "ERR_FAILED" not in e]  # the aborted requests
    assert page.errors == []
    context.close()


def test_last_session_and_hash_changes(chromium, server):
    """The page reopens the browser's last session, and follows a #session= change."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = Page(context.new_page(), server.url)
    page.page.click("#open-sample")
    page.wait_ready()
    first = page.state()["sid"]
    page.page.select_option("#sample-select", "brain1")
    page.page.click("#open-sample")
    page.wait("s => sam2volApp.state && sam2volApp.state.sid !== s", first)
    page.wait_ready()
    second = page.state()["sid"]
    page.page.evaluate("s => { location.hash = `session=${s}`; }", first)
    page.wait("s => sam2volApp.state.sid === s", first)
    page.wait_ready()
    assert page.state()["source"] == "lung2"
    # a new tab without a hash: the last session opened comes back
    again = Page(context.new_page(), server.url)
    again.wait_ready()
    assert again.state()["sid"] == first != second
    # Backspace no longer clears a slice; Delete does
    again.goto_slice(20)
    again.click(112, 120)
    voxels = again.voxels()
    # the next object's colour is not the first object's (created by that click)
    first_color = again.state()["objects"][0]["color"]
    assert again.page.input_value("#object-color") not in (first_color, "")
    again.page.focus("#canvas")
    again.page.keyboard.press("Backspace")
    again.page.wait_for_timeout(500)
    assert again.voxels() == voxels > 0
    again.changed(lambda: again.page.keyboard.press("Delete"))
    assert again.voxels() == 0
    context.close()


def test_hidden_and_locked_objects(chromium, server):
    """A hidden object leaves the overlay; a locked one takes no click and no propagation."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = Page(context.new_page(), server.url)
    page.page.click("#open-sample")
    page.wait_ready()
    ws = server.app.state.store.get(page.state()["sid"])
    page.goto_slice(20)
    page.click(112, 120)  # object 1 on the mass
    # the object the page makes active, at the moment it shows the change (a click made then
    # goes to that object)
    page.js(
        """() => { let n = sam2volApp.changes; window.activeWhenShown = [];
        Object.defineProperty(sam2volApp, "changes", { get: () => n,
            set: (v) => { n = v; activeWhenShown.push(sam2volApp.active); } }); }"""
    )
    page.changed(lambda: page.page.click("#add-object"))
    assert page.js("() => activeWhenShown") == [2]
    page.click(60, 60)  # object 2 elsewhere
    one = ws.session.mask_stack(1).copy()
    red = tuple(int(page.state()["objects"][0]["color"][i : i + 2], 16) for i in (1, 3, 5))

    def overlay_has(rgb) -> bool:
        return page.js(
            """rgb => {
              const im = sam2volApp.overlayShown();
              const c = document.createElement('canvas');
              c.width = im.width;
              c.height = im.height;
              const x = c.getContext('2d');
              x.drawImage(im, 0, 0);
              const d = x.getImageData(0, 0, c.width, c.height).data;
              for (let i = 0; i < d.length; i += 4) {
                if (d[i + 3] && d[i] === rgb[0] && d[i + 1] === rgb[1] && d[i + 2] === rgb[2]) {
                  return true;
                }
              }
              return false;
            }""",
            list(rgb),
        )

    assert overlay_has(red)
    page.page.click("#object-list li[data-id='1'] button.eye")
    page.wait("() => sam2volApp.drawn && sam2volApp.hidden.has(1)")
    page.wait("g => sam2volApp.drawn.gen === g", page.js("() => sam2volApp.maskGen"))
    assert not overlay_has(red)
    page.page.click("#object-list li[data-id='1'] button.eye")

    # lock object 1: a click on it is refused, and propagation leaves it alone
    page.page.click("#object-list li[data-id='1'] button.lock")
    page.page.click("#object-list li[data-id='1'] .name")
    n = page.js("() => sam2volApp.changes")
    xy = page.point(112, 100)
    page.page.mouse.click(xy["x"], xy["y"])
    page.page.wait_for_selector("#banner:not([hidden])")
    assert "is locked" in page.page.inner_text("#banner-text")
    assert page.js("() => sam2volApp.changes") == n
    page.propagate()
    np.testing.assert_array_equal(ws.session.mask_stack(1), one)
    assert ws.session.mask_stack(2).any(axis=(1, 2)).sum() > 1  # object 2 propagated
    assert ws.log_dict()["events"][-1]["object_ids"] == [2]
    assert page.errors == []
    context.close()


def test_a_4d_upload_asks_for_a_channel(chromium, server, tmp_path):
    import nibabel as nib

    image = read_volume(sample_path("brain1"))
    stack = np.stack([image.data, image.data[::-1]], axis=-1)
    path = tmp_path / "two.nii.gz"
    nib.save(nib.Nifti1Image(stack.astype(np.int16), image.affine), path)
    context = chromium.new_context(viewport=VIEWPORT)
    page = Page(context.new_page(), server.url)
    page.page.set_input_files("#upload-input", str(path))
    page.page.wait_for_selector("#channel-row:not([hidden])")
    text = page.page.inner_text("#banner-text")
    assert "2 channels" in text and "--channel" not in text
    page.page.fill("#channel-input", "1")
    page.page.click("#open-channel")
    page.wait_ready()
    ws = server.app.state.store.get(page.state()["sid"])
    np.testing.assert_array_equal(ws.session.volume.data, stack[..., 1].astype(np.int16))
    assert [e for e in page.errors if "status of 400" not in e] == []  # the refused first try
    context.close()


def test_save_refreshes_the_file_list(chromium, tmp_path):
    from sam2vol.io import write_volume
    from sam2vol.web.background import serve_in_background
    from sam2vol.web.config import ServerConfig

    data = tmp_path / "data"
    data.mkdir()
    write_volume(read_volume(sample_path("brain2")), data / "brain2.nii.gz")
    background = serve_in_background(ServerConfig(state_dir=tmp_path / "state", data_dir=data))
    try:
        context = chromium.new_context(viewport=VIEWPORT)
        page = Page(context.new_page(), background.url)
        page.page.wait_for_selector("#file-select option", state="attached")
        page.page.click("#open-file")
        page.wait_ready()
        page.goto_slice(9)
        page.click(120, 120)
        page.page.fill("#save-name", "mine.nii.gz")
        page.page.click("#save")
        page.page.wait_for_selector("#file-select option[value='mine.nii.gz']", state="attached")
        assert (data / "mine.nii.gz").is_file()
        context.close()
    finally:
        background.stop()
