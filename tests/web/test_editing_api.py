"""Editing, import, DICOM and viewer-geometry routes, with the threshold engine on the ball."""

from __future__ import annotations

import gzip
import io
import zipfile

import nibabel as nib
import numpy as np
import pydicom

from sam2vol.io import write_mask
from sam2vol.volume import Volume
from tests.dicom_series import write_series
from tests.web.conftest import BALL, BALL_SLICES, click, open_ready, wait_job


def post(client, sid, path, body, status=200):
    response = client.post(f"/api/sessions/{sid}/{path}", json=body)
    assert response.status_code == status, response.text
    return response.json()


def stroke(tool, points, radius=2, **extra):
    s = BALL[0]
    return {"tool": tool, "view": "axial", "slice": s, "points": points, "radius": radius, **extra}


def test_brush_eraser_fill_are_undoable_events(client):
    sid = open_ready(client)["sid"]
    ws = client.app.state.store.get(sid)
    s, r, c = BALL
    post(client, sid, "edit", stroke("brush", [[r, c - 4], [r, c + 4]]))
    painted = ws.session.slice_mask(1, s).copy()
    # reference: pixels within sqrt(2^2 + 0.5) of the segment (a disc of radius 2 dragged along it)
    rr, cc = np.mgrid[0 : painted.shape[0], 0 : painted.shape[1]]
    dx = np.clip(cc, c - 4, c + 4) - cc
    np.testing.assert_array_equal(painted, (rr - r) ** 2 + dx**2 <= 4.5)
    post(client, sid, "edit", stroke("eraser", [[r, c]], radius=1))
    erased = ws.session.slice_mask(1, s)
    assert erased.sum() == painted.sum() - 5 and not erased[r, c]
    post(client, sid, "edit", stroke("fill", [[r, c]]))  # the erased plus is a hole: filled
    np.testing.assert_array_equal(ws.session.slice_mask(1, s), painted)
    assert [e["kind"] for e in ws.log_dict()["events"]][-3:] == ["mask", "mask", "mask"]
    post(client, sid, "undo", {})
    assert ws.session.slice_mask(1, s).sum() == painted.sum() - 5
    # erasing everything clears the slice
    post(client, sid, "edit", stroke("eraser", [[r, c - 6], [r, c + 6]], radius=4))
    assert not ws.session.slice_mask(1, s).any() and s not in ws.session.prompts(1)


def test_bad_edits_are_one_line_errors(client):
    sid = open_ready(client)["sid"]
    s, r, c = BALL
    message = post(client, sid, "edit", stroke("eraser", [[r, c]]), 400)["detail"]
    assert message == f"the eraser changed nothing on slice {s}"
    outside = post(client, sid, "edit", stroke("brush", [[r, 400]]), 400)["detail"]
    assert outside.startswith(f"pixel ({r}, 400) is outside the slice")
    body = {**stroke("brush", [[r, c]]), "view": "coronal"}
    assert "switch to the axial view" in post(client, sid, "edit", body, 400)["detail"]
    assert post(client, sid, "edit", stroke("spray", [[r, c]]), 422)["detail"].startswith("bad")
    assert post(client, sid, "edit", stroke("brush", [[r, c]], object_id=5), 404)["detail"]


def test_slice_limit(client):
    sid = open_ready(client)["sid"]
    ws = client.app.state.store.get(sid)
    click(client, sid, *BALL)
    assert "both" in post(client, sid, "propagate", {"first": 8}, 400)["detail"]
    assert (
        "no prompt on slices 0..5"
        in post(client, sid, "propagate", {"first": 0, "last": 5}, 400)["detail"]
    )
    post(client, sid, "propagate", {"first": 9, "last": 11})
    assert wait_job(client, sid)["state"] == "done"
    covered = client.get(f"/api/sessions/{sid}").json()["objects"][0]["covered"]
    assert covered == [9, 10, 11] and set(BALL_SLICES) > set(covered)
    assert ws.log_dict()["events"][-1]["slice_range"] == [9, 11]


def test_import_label_maps(client, ct_volume, tmp_path):
    sid = open_ready(client)["sid"]
    ws = client.app.state.store.get(sid)
    labels = np.zeros(ct_volume.shape, np.uint8)
    labels[18:23, 13:18, 9:12] = 3
    labels[5:8, 5:8, 2:4] = 7
    path = tmp_path / "labels.nii.gz"
    write_mask(labels, ct_volume, path)
    result = client.put(
        f"/api/sessions/{sid}/import",
        params={"filename": "labels.nii.gz"},
        content=path.read_bytes(),
    )
    assert result.status_code == 200, result.text
    names = [o["name"] for o in result.json()["state"]["objects"]]
    assert names == ["label 3", "label 7"]
    np.testing.assert_array_equal(ws.session.mask(1), labels == 3)
    np.testing.assert_array_equal(ws.session.mask(2), labels == 7)
    # another grid, another suffix
    other = tmp_path / "other.nii.gz"
    shifted = Volume(labels, ct_volume.affine @ np.diag([2.0, 1, 1, 1]), "x")
    write_mask(labels, shifted, other)
    bad = client.put(
        f"/api/sessions/{sid}/import",
        params={"filename": "other.nii.gz"},
        content=other.read_bytes(),
    )
    assert bad.status_code == 400 and bad.json()["detail"].startswith("other.nii.gz")
    txt = client.put(f"/api/sessions/{sid}/import", params={"filename": "a.txt"}, content=b"x")
    assert txt.status_code == 400 and "a label map must be one of" in txt.json()["detail"]


def test_dicom_in_seg_out_and_viewer_files(client, ct_volume, tmp_path):
    files = write_series(ct_volume, tmp_path / "series")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for f in files:
            zf.write(f, f"x/{f.name}")
    assert (
        client.put("/api/upload-dicom", params={"filename": "a.nii"}, content=b"x").status_code
        == 400
    )
    junk = client.put("/api/upload-dicom", params={"filename": "a.zip"}, content=b"junk")
    assert junk.status_code == 400 and junk.json()["detail"].startswith("a.zip")
    response = client.put(
        "/api/upload-dicom", params={"filename": "ball.zip"}, content=buffer.getvalue()
    )
    assert response.status_code == 200, response.text
    sid = response.json()["sid"]
    assert wait_job(client, sid)["state"] == "done"
    ws = client.app.state.store.get(sid)
    np.testing.assert_array_equal(ws.session.volume.data, ct_volume.data)
    np.testing.assert_allclose(ws.session.volume.affine, ct_volume.affine, atol=1e-6)
    click(client, sid, *BALL)
    seg = client.get(f"/api/sessions/{sid}/export-seg")
    assert seg.status_code == 200, seg.text
    ds = pydicom.dcmread(io.BytesIO(seg.content))
    assert ds.Modality == "SEG"
    refs = [
        r.ReferencedSOPInstanceUID
        for r in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    ]
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    assert set(refs) <= set(uids)
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    mask = ws.session.mask(1)
    by_uid = {}
    for n, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        by_uid[uid] = frames[n]
    for k, uid in enumerate(uids):  # instance k is slice k: pixel (row r, col c) = voxel (c, r, k)
        expected = mask[:, :, k].T
        np.testing.assert_array_equal(by_uid.get(uid, np.zeros_like(expected)) > 0, expected)

    # the viewer's NIfTI files carry the data and the affine
    image = nib.Nifti1Image.from_bytes(
        gzip.decompress(client.get(f"/api/sessions/{sid}/image.nii.gz").content)
    )
    np.testing.assert_array_equal(np.asarray(image.dataobj), ct_volume.data)
    np.testing.assert_allclose(image.affine, ct_volume.affine, atol=1e-5)
    labels = nib.Nifti1Image.from_bytes(
        gzip.decompress(client.get(f"/api/sessions/{sid}/labels.nii.gz").content)
    )
    np.testing.assert_array_equal(np.asarray(labels.dataobj) == 1, mask)


def test_seg_export_needs_dicom_and_world_points_round_trip(client):
    sid = open_ready(client)["sid"]
    click(client, sid, *BALL)
    seg = client.get(f"/api/sessions/{sid}/export-seg")
    assert seg.status_code == 400 and "needs an image opened from a DICOM series" in seg.text
    s, r, c = BALL
    for view, (vs, vr, vc) in {
        "axial": (s, r, c),
        "coronal": (15, 5, 20),
        "sagittal": (20, 4, 12),
    }.items():
        w = client.get(
            f"/api/sessions/{sid}/world-of",
            params={"view": view, "index": vs, "row": vr, "col": vc},
        ).json()
        x, y, z = w["mm"]
        at = client.get(f"/api/sessions/{sid}/at-world", params={"x": x, "y": y, "z": z}).json()
        assert at["voxel"] == w["voxel"]
        assert at["views"][view] == {"slice": vs, "row": vr, "col": vc}
    nxt = client.get(f"/api/sessions/{sid}/next-slice", params={"exclude": "a"})
    assert nxt.status_code == 400
    assert client.get(f"/api/sessions/{sid}/next-slice").json()["view"] == "axial"


def test_seg_of_a_dicom_folder_in_the_data_dir_with_two_objects(make_client, ct_volume, data_dir):
    files = write_series(ct_volume, data_dir / "dicom_ball")
    client = make_client()
    state = open_ready(client, path="dicom_ball")
    sid = state["sid"]
    ws = client.app.state.store.get(sid)
    click(client, sid, *BALL)
    post(client, sid, "edit", {**stroke("brush", [[3, 3]], radius=1), "object_id": 2})
    post(client, sid, "objects/2/edit", {"name": "spot"})
    seg = client.get(f"/api/sessions/{sid}/export-seg")
    assert seg.status_code == 200, seg.text
    ds = pydicom.dcmread(io.BytesIO(seg.content))
    assert [d.SegmentLabel for d in ds.SegmentSequence] == ["object 1", "spot"]
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    got = {}
    for n, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        number = int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        got[number, uid] = frames[n] > 0
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    labels = ws.session.label_map().data
    for number in (1, 2):
        for k, uid in enumerate(uids):
            expected = labels[:, :, k].T == number
            np.testing.assert_array_equal(got.get((number, uid), np.zeros_like(expected)), expected)
    assert (labels == 2).sum() == 5  # the brush dot of radius 1


def test_a_4d_volume_opens_one_channel_and_comes_back_with_it(make_client, ct_volume, data_dir):
    stack = np.stack([ct_volume.data + 100 * n for n in range(3)], axis=-1).astype(np.int16)
    nib.save(nib.Nifti1Image(stack, ct_volume.affine), data_dir / "four.nii.gz")
    client = make_client()
    refused = client.post("/api/sessions", json={"path": "four.nii.gz"})
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        "four.nii.gz: 4D volume with 3 channels; choose a channel 0..2"
    )
    state = open_ready(client, path="four.nii.gz", channel=2)
    ws = client.app.state.store.get(state["sid"])
    np.testing.assert_array_equal(ws.session.volume.data, stack[..., 2])
    # a new server recovers the session with the same channel
    again = make_client()
    sid = state["sid"]
    client.app.state.store.shutdown()
    assert wait_job(again, sid)["state"] == "done"
    restored = again.app.state.store.get(sid)
    np.testing.assert_array_equal(restored.session.volume.data, stack[..., 2])


def test_a_dicom_zip_bomb_and_an_oversized_series_are_refused(make_client, ct_volume, tmp_path):
    files = write_series(ct_volume, tmp_path / "series")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.name)
        zf.writestr("zzz.dcm", bytes(200 * 1024 * 1024))  # 200 MB of zeros, ~200 KB zipped
    assert len(bomb.getvalue()) < 2 * 1024 * 1024
    client = make_client()
    refused = client.put("/api/upload-dicom", params={"filename": "b.zip"}, content=bomb.getvalue())
    assert refused.status_code == 400, refused.text
    assert "a zip bomb" in refused.json()["detail"] and refused.json()["detail"].startswith("b.zip")
    # a real series over a tiny memory budget: refused from its declared size
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as zf:
        for f in files:
            zf.write(f, f.name)
    small = make_client(state_dir=tmp_path / "small", memory_budget_bytes=1024)
    big = small.put("/api/upload-dicom", params={"filename": "s.zip"}, content=plain.getvalue())
    assert big.status_code == 413 and "memory budget" in big.json()["detail"], big.text


def test_dicom_zips_and_label_maps_stream_past_the_json_body_limit(
    make_client, ct_volume, tmp_path
):
    files = write_series(ct_volume, tmp_path / "series")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for f in files:
            zf.write(f, f.name)
    client = make_client(max_json_bytes=1024)  # both bodies are larger
    assert len(buffer.getvalue()) > 1024
    response = client.put(
        "/api/upload-dicom", params={"filename": "s.zip"}, content=buffer.getvalue()
    )
    assert response.status_code == 200, response.text
    sid = response.json()["sid"]
    assert wait_job(client, sid)["state"] == "done"
    labels = np.zeros(ct_volume.shape, np.uint8)
    labels[4:8, 4:8, 4:8] = 2
    path = tmp_path / "labels.nii"
    write_mask(labels, ct_volume, path)
    assert path.stat().st_size > 1024
    url = f"/api/sessions/{sid}/import"
    imported = client.put(url, params={"filename": path.name}, content=path.read_bytes())
    assert imported.status_code == 200, imported.text
