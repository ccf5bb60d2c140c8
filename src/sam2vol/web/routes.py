"""The HTTP API: JSON for state and changes, PNG for slices and overlays, SSE for job progress."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from sam2vol.errors import InputError
from sam2vol.slicing import AXES, Axis
from sam2vol.web.config import ServerConfig
from sam2vol.web.display import WINDOWS
from sam2vol.web.errors import TooLarge
from sam2vol.web.meta import read_for_client
from sam2vol.web.paths import (
    check_upload_name,
    list_volumes,
    resolve_input,
    resolve_output,
    suffix_of,
)
from sam2vol.web.schemas import (
    ClearRequest,
    Focus,
    ObjectRequest,
    OpenRequest,
    PromptRequest,
    PropagateRequest,
    SaveRequest,
)
from sam2vol.web.store import SessionStore

SSE_POLL_S = 0.04
SSE_KEEPALIVE_S = 15.0
MAX_JOB_WAIT_S = 120.0
PNG = "image/png"


def _json(obj) -> JSONResponse:
    return JSONResponse(asdict(obj))


def build_router(store: SessionStore, config: ServerConfig) -> APIRouter:
    """All API routes of one server, bound to its session store."""
    router = APIRouter(prefix="/api")

    def changed(ws, focus: Focus | PromptRequest) -> JSONResponse:
        return _json(ws.change_result(focus.view, focus.slice))

    # ----- server and sources ------------------------------------------------------------------
    @router.get("/info")
    def info() -> dict:
        from sam2vol import __version__
        from sam2vol.intensity import PRESETS
        from sam2vol.samples import SAMPLES

        return {
            "version": __version__,
            "engine": config.engine_label,
            "samples": list(SAMPLES),
            "data_dir": config.data_dir.name if config.data_dir else None,
            "max_upload_bytes": config.max_upload_bytes,
            "axes": list(AXES),
            "intensities": ["auto", *PRESETS],
            "windows": list(WINDOWS),
        }

    @router.get("/files")
    def files() -> dict:
        return {"files": list_volumes(config.data_dir)}

    @router.post("/sessions")
    def open_session(req: OpenRequest) -> JSONResponse:
        if (req.sample is None) == (req.path is None):
            raise InputError("give either a sample name or a path inside the data folder")
        if req.sample is not None:
            from sam2vol.samples import SAMPLES, sample_path

            if req.sample not in SAMPLES:
                raise InputError(f"unknown sample {req.sample!r}; choose {', '.join(SAMPLES)}")
            volume = read_for_client(sample_path(req.sample), req.sample)
            kind, source = "sample", req.sample
        else:
            path = resolve_input(config.data_dir, req.path)
            source = path.relative_to(config.data_dir).as_posix() + ("/" if path.is_dir() else "")
            volume = read_for_client(path, source, req.channel)
            kind = "data"
        ws = store.open(
            kind, source, volume, axis=req.axis, intensity=req.intensity, channel=req.channel
        )
        return _json(ws.state())

    @router.put("/upload")
    async def upload(
        request: Request,
        filename: str = Query(max_length=255),
        axis: Axis = "axial",
        intensity: str = Query("auto", max_length=64),
        channel: int | None = Query(None, ge=0, le=1000),
    ) -> JSONResponse:
        suffix = check_upload_name(filename)
        limit = config.max_upload_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            size = _mb(int(declared))
            raise TooLarge(f"{filename}: {size} is over the {_mb(limit)} upload limit")
        path = store.upload_path(suffix)
        try:
            size = 0
            with open(path, "wb") as handle:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"{filename}: over the {_mb(limit)} upload limit")
                    handle.write(chunk)
            if size == 0:
                raise InputError(f"{filename}: the upload is empty")
            volume = await run_in_threadpool(read_for_client, path, filename, channel)
            ws = await run_in_threadpool(
                store.open,
                "upload",
                filename,
                volume,
                axis=axis,
                intensity=intensity,
                upload=path,
                channel=channel,
            )
        finally:
            path.unlink(missing_ok=True)
        return _json(ws.state())

    # ----- one session: reading ---------------------------------------------------------------
    @router.get("/sessions/{sid}")
    def state(sid: str) -> JSONResponse:
        return _json(store.get(sid).state())

    @router.get("/sessions/{sid}/image/{view}/{index}.png")
    def image(sid: str, view: Axis, index: int, window: str = Query(max_length=32)) -> Response:
        png = store.get(sid).image_png(view, index, window)
        cache = "private, max-age=86400, immutable"
        return Response(png, media_type=PNG, headers={"Cache-Control": cache})

    @router.get("/sessions/{sid}/overlay/{view}/{index}.png")
    def overlay(sid: str, view: Axis, index: int) -> Response:
        png, revision = store.get(sid).overlay_png(view, index)
        headers = {"Cache-Control": "no-store", "X-Revision": str(revision)}
        return Response(png, media_type=PNG, headers=headers)

    @router.get("/sessions/{sid}/locate")
    def locate(sid: str, view: Axis, index: int, row: int, col: int) -> dict:
        voxel, (s, r, c) = store.get(sid).locate(view, index, row, col)
        return {"voxel": list(voxel), "slice": s, "row": r, "col": c}

    @router.get("/sessions/{sid}/job")
    def job(sid: str, wait: float = Query(0.0, ge=0.0, le=MAX_JOB_WAIT_S)) -> dict:
        current = store.get(sid).job
        if current is None:
            return {"job": None}
        if wait:
            current.wait(wait)
        return {"job": asdict(current.snapshot())}

    @router.get("/sessions/{sid}/events")
    async def events(sid: str, request: Request) -> StreamingResponse:
        ws = await run_in_threadpool(store.get, sid)

        async def stream():
            since, version, quiet = 0, -1, 0.0
            while True:
                current = ws.job
                if current is None:
                    yield "data: {}\n\n"
                    return
                snap = current.snapshot(since)
                if snap.version != version:
                    version, since, quiet = snap.version, snap.n_slices, 0.0
                    yield f"data: {json.dumps(asdict(snap))}\n\n"
                if snap.state != "running" or await request.is_disconnected():
                    return
                await asyncio.sleep(SSE_POLL_S)
                quiet += SSE_POLL_S
                if quiet > SSE_KEEPALIVE_S:
                    quiet = 0.0
                    yield ": keep-alive\n\n"

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    # ----- one session: changes -----------------------------------------------------------------
    @router.post("/sessions/{sid}/objects")
    def add_object(sid: str, req: ObjectRequest) -> JSONResponse:
        ws = store.get(sid)
        ws.add_object(req.name, req.color)
        return changed(ws, req)

    @router.post("/sessions/{sid}/objects/{oid}/edit")
    def edit_object(sid: str, oid: int, req: ObjectRequest) -> JSONResponse:
        ws = store.get(sid)
        ws.edit_object(oid, req.name, req.color)
        return changed(ws, req)

    @router.post("/sessions/{sid}/objects/{oid}/remove")
    def remove_object(sid: str, oid: int, req: Focus) -> JSONResponse:
        ws = store.get(sid)
        ws.remove_object(oid)
        return changed(ws, req)

    @router.post("/sessions/{sid}/prompts")
    def prompt(sid: str, req: PromptRequest) -> JSONResponse:
        ws = store.get(sid)
        if req.kind == "point":
            where = (req.view, req.slice, req.row, req.col)
            ws.add_point(*where, positive=req.positive, object_id=req.object_id)
        else:
            if req.row2 is None or req.col2 is None:
                raise InputError("a box needs both corners: row, col, row2, col2")
            corners = (req.row, req.col, req.row2, req.col2)
            ws.add_box(req.view, req.slice, corners, object_id=req.object_id)
        return changed(ws, req)

    @router.post("/sessions/{sid}/clear")
    def clear(sid: str, req: ClearRequest) -> JSONResponse:
        ws = store.get(sid)
        ws.clear(req.object_id, req.only_slice)
        return changed(ws, req)

    @router.post("/sessions/{sid}/undo")
    def undo(sid: str, req: Focus) -> JSONResponse:
        ws = store.get(sid)
        if not ws.undo():
            raise InputError("nothing to undo")
        return changed(ws, req)

    @router.post("/sessions/{sid}/redo")
    def redo(sid: str, req: Focus) -> JSONResponse:
        ws = store.get(sid)
        if not ws.redo():
            raise InputError("nothing to redo")
        if ws.busy:  # a propagation is being redone: the page follows the job
            return _json(ws.change_result(None, None))
        return changed(ws, req)

    @router.post("/sessions/{sid}/propagate")
    def propagate(sid: str, req: PropagateRequest) -> JSONResponse:
        ws = store.get(sid)
        if (req.first is None) != (req.last is None):
            raise InputError("a slice limit needs both its first and its last slice")
        limit = None if req.first is None else (req.first, req.last)
        ws.propagate(req.direction, slice_range=limit, object_ids=req.object_ids)
        return _json(ws.state())

    @router.post("/sessions/{sid}/stop")
    def stop(sid: str) -> dict:
        return {"stopping": store.get(sid).stop()}

    # ----- one session: export -------------------------------------------------------------------
    @router.get("/sessions/{sid}/export")
    def export(sid: str, format: str = Query("nii.gz", max_length=16)) -> FileResponse:
        path = store.get(sid).export(format)
        return FileResponse(path, filename=path.name, media_type="application/octet-stream")

    @router.post("/sessions/{sid}/save")
    def save(sid: str, req: SaveRequest) -> dict:
        ws = store.get(sid)
        target = resolve_output(config.data_dir, req.save_as)
        fmt = suffix_of(target.name).lstrip(".")
        ws.export(fmt, target)
        return {"saved": target.relative_to(config.data_dir).as_posix()}

    @router.get("/sessions/{sid}/log")
    def prompt_log(sid: str) -> JSONResponse:
        ws = store.get(sid)
        name = f"{ws.meta.stem}_prompts.json"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return JSONResponse(ws.log_dict(), headers=headers)

    return router


def _mb(n: int) -> str:
    """A byte count for people.

    Example:
        >>> _mb(512 * 1024 * 1024), _mb(4096), _mb(10)
        ('512.0 MB', '4.0 KB', '10 bytes')
    """
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} bytes"
