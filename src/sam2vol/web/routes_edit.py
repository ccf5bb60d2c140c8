"""API routes for editing (brush, eraser, fill), label-map import, next slice, DICOM in and out."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import Field

from sam2vol.errors import InputError
from sam2vol.slicing import Axis
from sam2vol.web.config import ServerConfig
from sam2vol.web.schemas import MAX_INDEX, Focus
from sam2vol.web.store import SessionStore
from sam2vol.web.uploads import open_upload, receive

GZIP = "application/gzip"
LABEL_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha", ".dcm")


class EditRequest(Focus):
    """A brush or eraser stroke (points along the drag), or a fill at one point."""

    tool: Literal["brush", "eraser", "fill"]
    object_id: int = Field(1, ge=1, le=255)
    view: Axis
    slice: int = Field(ge=0, le=MAX_INDEX)
    points: list[tuple[int, int]] = Field(min_length=1, max_length=5000)
    radius: int = Field(4, ge=0, le=200)


def dicom_source(ws, config: ServerConfig, tmp: Path) -> Path:
    """The folder of the DICOM series a session was opened from (a zip is unpacked in ``tmp``)."""
    from sam2vol.io.dicom_zip import extract_series
    from sam2vol.web.paths import resolve_input

    meta = ws.meta
    if meta.kind == "upload" and meta.stored.endswith(".zip"):
        return extract_series(ws.folder / meta.stored, tmp / "series")
    if meta.kind == "data" and meta.source.endswith("/"):
        return resolve_input(config.data_dir, meta.source.rstrip("/"))
    raise InputError("DICOM-SEG export needs an image opened from a DICOM series (folder or zip)")


def build_edit_router(store: SessionStore, config: ServerConfig) -> APIRouter:
    """The editing, import and DICOM routes of one server."""
    router = APIRouter(prefix="/api")

    @router.post("/sessions/{sid}/edit")
    def edit(sid: str, req: EditRequest) -> JSONResponse:
        from sam2vol.web.editing import apply_edit

        ws = store.get(sid)
        apply_edit(
            ws,
            tool=req.tool,
            view=req.view,
            s=req.slice,
            points=[tuple(p) for p in req.points],
            radius=req.radius,
            object_id=req.object_id,
            version=req.version,
        )
        return JSONResponse(asdict(ws.change_result(req.view, req.slice)))

    @router.put("/sessions/{sid}/import")
    async def import_labels(
        sid: str,
        request: Request,
        filename: str = Query(max_length=255),
        view: Axis | None = None,
        slice: int | None = Query(None, ge=0, le=MAX_INDEX),
        version: int | None = Query(None, ge=0),
    ) -> JSONResponse:
        from sam2vol.web.editing import import_labels, label_masks
        from sam2vol.web.paths import suffix_of

        suffix = suffix_of(filename)
        if suffix not in LABEL_SUFFIXES:
            raise InputError(
                f"{filename}: a label map must be one of {', '.join(LABEL_SUFFIXES)}"
                " (DICOM-SEG: .dcm)"
            )
        ws = await run_in_threadpool(store.get, sid)
        ws.check_version(version)  # early; checked again under the lock
        with tempfile.TemporaryDirectory(dir=store.uploads_dir) as tmp:
            path = Path(tmp) / f"labels{suffix}"
            await receive(request, path, config.max_upload_bytes, filename)
            session = await run_in_threadpool(ws._ready)
            masks = await run_in_threadpool(label_masks, path, filename, session.volume)
        await run_in_threadpool(import_labels, ws, masks, None, version)
        result = await run_in_threadpool(ws.change_result, view, slice)
        return JSONResponse(asdict(result))

    @router.get("/sessions/{sid}/next-slice")
    def next_slice(sid: str, exclude: str = Query("", max_length=10_000)) -> dict:
        from sam2vol.web.editing import next_slice as pick

        try:
            skip = tuple(int(x) for x in exclude.split(",") if x.strip())
        except ValueError:
            raise InputError("exclude must be slice numbers separated by commas") from None
        return pick(store.get(sid), skip)

    @router.get("/sessions/{sid}/overlay-of/{view}/{index}.png")
    def overlay_of(
        sid: str, view: Axis, index: int, hidden: str = Query("", max_length=2000)
    ) -> Response:
        """The overlay of a slice without the objects in ``hidden`` (ids separated by commas)."""
        try:
            skip = {int(x) for x in hidden.split(",") if x.strip()}
        except ValueError:
            raise InputError("hidden must be object ids separated by commas") from None
        ws = store.get(sid)
        with ws.locked():
            session = ws._ready()
            layers = [
                (session.mask_stack(oid), obj.color)
                for oid, obj in session.objects.items()
                if oid not in skip
            ]
            png, revision = ws.display.overlay_png(view, index, layers), ws.revision
        headers = {"Cache-Control": "no-store", "X-Revision": str(revision)}
        return Response(png, media_type="image/png", headers=headers)

    @router.get("/sessions/{sid}/image.nii.gz")
    def image_nifti(sid: str) -> FileResponse:
        from sam2vol.web.niftis import image_file

        ws = store.get(sid)
        with ws.locked():
            volume = ws._ready().volume
        cache = {"Cache-Control": "private, max-age=86400, immutable"}
        return FileResponse(image_file(volume, ws.folder), headers=cache, media_type=GZIP)

    @router.get("/sessions/{sid}/labels.nii.gz")
    def labels_nifti(sid: str) -> Response:
        from sam2vol.web.niftis import labels_bytes

        ws = store.get(sid)
        with ws.locked():
            session = ws._ready()
            labels, revision = session.label_map(), ws.revision
        headers = {"Cache-Control": "no-store", "X-Revision": str(revision)}
        return Response(labels_bytes(labels), media_type=GZIP, headers=headers)

    @router.get("/sessions/{sid}/at-world")
    def at_world(sid: str, x: float, y: float, z: float) -> dict:
        """The voxel nearest a world point (RAS mm), and its slice in every view."""
        import numpy as np

        ws = store.get(sid)
        with ws.locked():
            session, display = ws._ready(), ws.display
        inv = np.linalg.inv(session.volume.affine)
        ijk = np.rint(inv[:3, :3] @ [x, y, z] + inv[:3, 3]).astype(int)
        voxel = tuple(int(np.clip(ijk, 0, np.array(session.volume.shape) - 1)[a]) for a in range(3))
        views = {}
        for name in display.views:
            s, r, c = display.view(name).voxel_to_slice(voxel)
            views[name] = {"slice": int(s), "row": int(r), "col": int(c)}
        return {"voxel": list(voxel), "views": views}

    @router.get("/sessions/{sid}/world-of")
    def world_of(
        sid: str,
        view: Axis,
        index: int = Query(ge=0, le=MAX_INDEX),
        row: int = Query(ge=0, le=MAX_INDEX),
        col: int = Query(ge=0, le=MAX_INDEX),
    ) -> dict:
        """The world point (RAS mm) of a pixel of a view."""
        ws = store.get(sid)
        with ws.locked():
            session, display = ws._ready(), ws.display
        voxel, _ = display.to_working(view, index, row, col)
        mm = session.volume.affine @ [*voxel, 1.0]
        return {"voxel": list(voxel), "mm": [round(float(v), 4) for v in mm[:3]]}

    @router.get("/sessions/{sid}/export-seg")
    def export_seg(sid: str) -> FileResponse:
        from sam2vol.web.dicom import read_series, write_seg

        ws = store.get(sid)
        labels, _ = ws.label_map()
        names = {oid: obj.name for oid, obj in ws.session.objects.items()}
        ws.exports_dir.mkdir(exist_ok=True)
        target = ws.exports_dir / f"{ws.meta.stem}_seg.dcm"
        with tempfile.TemporaryDirectory(dir=ws.folder) as tmp:
            datasets = read_series(dicom_source(ws, config, Path(tmp)))
            write_seg(labels, names, datasets, target)
        return FileResponse(target, filename=target.name, media_type="application/dicom")

    @router.put("/upload-dicom")
    async def upload_dicom(
        request: Request,
        filename: str = Query(max_length=255),
        axis: Axis = "axial",
        intensity: str = Query("auto", max_length=64),
        channel: int | None = Query(None, ge=0, le=1000),
    ) -> JSONResponse:
        if not filename.lower().endswith(".zip"):
            raise InputError(f"{filename}: upload a DICOM series as one .zip file")
        path = store.upload_path(".zip")
        try:
            await receive(request, path, config.max_upload_bytes, filename)
            ws = await open_upload(
                store, config, path, filename, axis=axis, intensity=intensity, channel=channel
            )
        finally:
            path.unlink(missing_ok=True)
        return JSONResponse(asdict(ws.state()))

    return router
