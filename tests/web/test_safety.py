"""Safety: paths stay inside the data folder, uploads are bounded, bad files get clear 4xx
messages and leave sessions intact, no stack trace reaches the client."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sam2vol.io import write_volume
from sam2vol.web.app import create_app
from sam2vol.web.config import ServerConfig
from tests.helpers import ThresholdEngine
from tests.web.conftest import BALL, BASE_URL, TestClient, click, open_ready


@pytest.fixture
def outside(tmp_path, ct_volume):
    """A volume and a folder outside the data folder, linked from inside it."""
    folder = tmp_path / "outside"
    folder.mkdir()
    write_volume(ct_volume, folder / "secret.nii.gz")
    return folder


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("../outside/secret.nii.gz", 400, "'..' is not allowed"),
        ("ct/../../outside/secret.nii.gz", 400, "'..' is not allowed"),
        ("ct\\..\\..\\outside\\secret.nii.gz", 400, "'..' is not allowed"),
        ("/etc/passwd", 400, "not an absolute one"),
        ("~/secret.nii.gz", 400, "not an absolute one"),
        ("link_file.nii.gz", 400, "leads outside the data folder"),
        ("link_dir/secret.nii.gz", 400, "leads outside the data folder"),
        ("dicom/", 400, "links leading outside"),
        ("%2e%2e/outside/secret.nii.gz", 404, "not found"),
        ("ct/missing.nii.gz", 404, "not found"),
        ("ct/x\x00.nii.gz", 400, "NUL"),
        ("ct/notes.txt", 400, "unsupported file type"),
        ("ct/head.nhdr", 400, "detached-header"),
    ],
)
def test_paths_cannot_leave_the_data_folder(client, data_dir, outside, path, status, message):
    os.symlink(outside / "secret.nii.gz", data_dir / "link_file.nii.gz")
    os.symlink(outside, data_dir / "link_dir")
    (data_dir / "dicom").mkdir()
    os.symlink(outside / "secret.nii.gz", data_dir / "dicom" / "a.dcm")
    (data_dir / "ct" / "notes.txt").write_text("hello")
    (data_dir / "ct" / "head.nhdr").write_text("NRRD0004\ndata file: ../../outside/x.raw\n")
    response = client.post("/api/sessions", json={"path": path})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert message in detail
    assert str(data_dir) not in detail and str(outside) not in detail
    listed = client.get("/api/files").json()["files"]
    assert listed == ["ct/ball.nii.gz"]  # links out are not even listed


@pytest.mark.parametrize(
    ("save_as", "status", "message"),
    [
        ("../out.nii.gz", 400, "'..' is not allowed"),
        ("/tmp/out.nii.gz", 400, "not an absolute one"),
        ("link_dir/out.nii.gz", 400, "leads outside"),
        ("ct/.hidden.nii.gz", 400, "hidden files and folders"),
        ("ct/out.png", 400, "exports are"),
        ("nowhere/out.nii.gz", 404, "not found"),
        ("ct/ball.nii.gz", 409, "never overwrite"),
        ("link_file.nii.gz", 409, "never overwrite"),
    ],
)
def test_exports_cannot_leave_the_data_folder(client, data_dir, outside, save_as, status, message):
    os.symlink(outside, data_dir / "link_dir")
    os.symlink(outside / "secret.nii.gz", data_dir / "link_file.nii.gz")
    before = sorted(os.listdir(outside))
    sid = open_ready(client)["sid"]
    click(client, sid, *BALL)
    response = client.post(f"/api/sessions/{sid}/save", json={"save_as": save_as})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert sorted(os.listdir(outside)) == before


def test_without_data_folder_only_samples_and_uploads(make_client):
    client = make_client(data_dir=None)
    assert client.get("/api/files").json() == {"files": []}
    response = client.post("/api/sessions", json={"path": "ct/ball.nii.gz"})
    assert response.status_code == 400 and "without --data-dir" in response.json()["detail"]


def test_oversized_uploads_are_refused(make_client, data_dir):
    client = make_client(max_upload_bytes=4096)
    payload = (data_dir / "ct" / "ball.nii.gz").read_bytes()
    assert len(payload) > 4096
    url = "/api/upload?filename=ball.nii.gz"
    declared = client.put(url, content=payload)
    assert declared.status_code == 413 and "upload limit" in declared.json()["detail"]

    def chunks():  # no Content-Length: counted while streaming
        for start in range(0, len(payload), 1000):
            yield payload[start : start + 1000]

    streamed = client.put(url, content=chunks())
    assert streamed.status_code == 413 and "over the 4.0 KB upload limit" in streamed.text
    store = client.app.state.store
    assert list(store.uploads_dir.iterdir()) == [] and store.live_ids() == []


def test_uploads_open_and_bad_files_leave_the_session_intact(client, data_dir, tmp_path):
    sid = open_ready(client)["sid"]
    before = click(client, sid, *BALL)["state"]
    payload = (data_dir / "ct" / "ball.nii.gz").read_bytes()
    ok = client.put("/api/upload?filename=My%20scan.nii.gz", content=payload)
    assert ok.status_code == 200 and ok.json()["source"] == "My scan.nii.gz"
    assert ok.json()["kind"] == "upload"

    import nibabel as nib

    flat = tmp_path / "flat.nii"
    nib.save(nib.Nifti1Image(np.zeros((5, 5), np.float32), np.eye(4)), str(flat))
    truncated = payload[: len(payload) // 2]
    cases = [
        ("junk.nii.gz", os.urandom(2000), 400, "junk.nii.gz: cannot read file"),
        ("cut.nii.gz", truncated, 400, "cut.nii.gz: cannot read file"),
        ("junk.nrrd", b"NRRD0004\ntype: float\n", 400, "junk.nrrd: cannot read file"),
        ("notes.txt", b"hello", 400, "unsupported file type '.txt'"),
        ("head.mhd", b"ObjectType = Image", 400, "detached-header"),
        ("empty.nii.gz", b"", 400, "the upload is empty"),
        ("plain.npy", np.zeros(3).tobytes(), 400, "plain.npy: cannot read file"),
        ("flat.nii", flat.read_bytes(), 400, "flat.nii: expected a 3D volume"),
    ]
    for name, content, status, message in cases:
        response = client.put(f"/api/upload?filename={name}", content=content)
        assert response.status_code == status, (name, response.text)
        detail = response.json()["detail"]
        assert message in detail, (name, detail)
        assert "Traceback" not in detail and str(tmp_path) not in detail, detail
    after = client.get(f"/api/sessions/{sid}").json()
    assert after["objects"] == before["objects"] and after["status"] == "ready"
    assert list(client.app.state.store.uploads_dir.iterdir()) == []


def test_corrupt_file_in_data_folder(client, data_dir):
    (data_dir / "broken.nrrd").write_bytes(b"NRRD0004\ntype: short\nsizes: 10 10 10\n\nabc")
    response = client.post("/api/sessions", json={"path": "broken.nrrd"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("broken.nrrd: cannot read file") and str(data_dir) not in detail


def test_internal_errors_hide_details(tmp_path, monkeypatch):
    from sam2vol.web.display import Display

    def boom(*args, **kwargs):
        raise RuntimeError("secret /srv/internal/path")

    monkeypatch.setattr(Display, "image_png", boom)
    config = ServerConfig(state_dir=tmp_path / "state", engine_factory=ThresholdEngine)
    with TestClient(create_app(config), base_url=BASE_URL, raise_server_exceptions=False) as c:
        sid = open_ready(c, sample="lung2")["sid"]
        response = c.get(f"/api/sessions/{sid}/image/axial/3.png?window=ct-lung")
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error; the server log has the details"}
        assert c.get(f"/api/sessions/{sid}").json()["status"] == "ready"


def test_hosts_and_session_ids(client):
    assert client.get("/api/info", headers={"Host": "evil.example"}).status_code == 400
    for sid in ("short", "../../etc/passwd", "a" * 65, "x" * 20 + "!"):
        response = client.get(f"/api/sessions/{sid}")
        assert response.status_code == 404, sid
    assert client.get("/api/nothing").status_code == 404


def test_names_with_control_characters_hidden_names_and_label_maps(client, data_dir, ct_volume):
    from sam2vol.volume import Volume

    (data_dir / ".secret").mkdir()
    write_volume(ct_volume, data_dir / ".secret" / "x.nii.gz")
    write_volume(ct_volume, data_dir / ".hidden.nii.gz")
    labels = np.zeros(ct_volume.shape, np.uint8)
    labels[10:20, 10:20, 5:10] = 1
    labels[25:30, 5:8, 2:4] = 2
    write_volume(Volume(labels, ct_volume.affine, "labels"), data_dir / "ct" / "ball_labels.nii.gz")
    sid = open_ready(client)["sid"]
    click(client, sid, *BALL)
    cases = [
        ("path", "ct/ball\n.nii.gz", "control characters"),
        ("path", "ct/\tball.nii.gz", "control characters"),
        ("path", ".secret/x.nii.gz", "hidden files and folders"),
        ("path", ".hidden.nii.gz", "hidden files and folders"),
        ("path", "ct/ball_labels.nii.gz", "this is a label map (3 distinct values"),
        ("save_as", "x\nnewline.nii.gz", "control characters"),
        ("save_as", "ct/\x1b[31mred.nii.gz", "control characters"),
        ("save_as", "ct/x\x85.nii.gz", "control characters"),
        ("save_as", ".secret/out.nii.gz", "hidden files and folders"),
    ]
    for field, name, message in cases:
        if field == "path":
            response = client.post("/api/sessions", json={"path": name})
        else:
            response = client.post(f"/api/sessions/{sid}/save", json={"save_as": name})
        assert response.status_code == 400, (name, response.text)
        detail = response.json()["detail"]
        assert message in detail and "\n" not in detail, (name, detail)
    upload = client.put("/api/upload?filename=a%0Ab.nii.gz", content=b"x" * 100)
    assert upload.status_code == 400 and "control characters" in upload.json()["detail"]
    assert client.get("/api/files").json()["files"] == ["ct/ball.nii.gz", "ct/ball_labels.nii.gz"]
    written = sorted(p.name for p in data_dir.rglob("*") if p.is_file())
    assert written == [".hidden.nii.gz", "ball.nii.gz", "ball_labels.nii.gz", "x.nii.gz"]
