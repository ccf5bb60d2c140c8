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
from sam2vol.web.errors import Stale
from sam2vol.web.limits import check_declared, session_cost
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
from sam2vol.web.uploads import open_upload, receive

SSE_POLL_S = 0.04
SSE_KEEPALIVE_S = 15.0
MAX_JOB_WAIT_S = 120.0
JOB_POLL_S = 0.05
REOPEN_WAIT_S = 30.0
CHANGES_POLL_S = 0.1
PNG = "image/png"


def _json(obj) -> JSONResponse:
    return JSONResponse(asdict(obj))


def build_router(store: SessionStore, config: ServerConfig) -> APIRouter:
    """All API routes of one server, bound to its session store."""
    router = APIRouter(prefix="/api")

    def changed(ws, focus: Focus | PromptRequest) -> JSONResponse:
        return _json(ws.change_result(focus.view, focus.slice))

    def live(sid: str):
        """A session to change: one being reopened from disk is waited for, briefly."""
        ws = store.get(sid)
        job = ws.job
        if ws.session is None and job is not None and job.kind in ("load", "recover"):
            job.wait(REOPEN_WAIT_S)
        return ws

    def fresh(ws, version: int | None) -> None:
        """Refuse a change made against an older version (another tab changed the session)."""
        if version is not None and version != ws.revision:
            raise Stale(
                f"this session changed in another tab (now at version {ws.revision}, your page "
                f"shows {version}); the page reloads it, then try again"
            )

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
            "max_json_bytes": config.max_json_bytes,
            "memory_budget_bytes": config.memory_budget_bytes,
            "memory_used_bytes": store.used_bytes(),
            "keep_days": config.keep_days,
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
        with store.loading:  # read and charged before another volume is read
            if req.sample is not None:
                from sam2vol.samples import SAMPLES, sample_path

                if req.sample not in SAMPLES:
                    choices = ", ".join(SAMPLES)
                    raise InputError(f"unknown sample {req.sample!r}; choose {choices}")
                volume = read_for_client(sample_path(req.sample), req.sample)
                kind, source = "sample", req.sample
            else:
                path = resolve_input(config.data_dir, req.path)
                source = path.relative_to(config.data_dir).as_posix()
                source += "/" if path.is_dir() else ""
                declared = check_declared(path, source, config.memory_budget_bytes)
                store.make_room(session_cost(declared.voxels, declared.itemsize))
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
        path = store.upload_path(suffix)
        try:
            await receive(request, path, config.max_upload_bytes, filename)
            ws = await open_upload(
                store, config, path, filename, axis=axis, intensity=intensity, channel=channel
            )
        finally:
            path.unlink(missing_ok=True)
        return _json(ws.state())

    @router.get("/sessions")
    def sessions() -> dict:
        listed = [asdict(s) for s in store.list_sessions()]
        return {"sessions": listed, "keep_days": config.keep_days}

    @router.delete("/sessions/{sid}")
    def delete_session(sid: str) -> dict:
        store.delete(sid)
        return {"deleted": sid}

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

    @router.post("/sessions/{sid}/view")
    def view(sid: str, req: Focus) -> dict:
        """The slice the page shows: the engine encodes outward from it while the user is idle."""
        if req.view is None or req.slice is None:
            raise InputError("give the view and the slice shown")
        return {"background_encoding": store.get(sid).view(req.view, req.slice)}

    @router.get("/sessions/{sid}/locate")
    def locate(sid: str, view: Axis, index: int, row: int, col: int) -> dict:
        voxel, (s, r, c) = store.get(sid).locate(view, index, row, col)
        return {"voxel": list(voxel), "slice": s, "row": r, "col": c}

    @router.get("/sessions/{sid}/job")
    async def job(sid: str, wait: float = Query(0.0, ge=0.0, le=MAX_JOB_WAIT_S)) -> dict:
        # an async wait: a long poll holds no worker thread
        ws = await run_in_threadpool(store.get, sid)
        current = ws.job
        if current is None:
            return {"job": None}
        deadline = asyncio.get_running_loop().time() + wait
        while current.running and asyncio.get_running_loop().time() < deadline:
            if store.closing.is_set():
                break
            await asyncio.sleep(JOB_POLL_S)
        return {"job": asdict(current.snapshot())}

    @router.get("/sessions/{sid}/changes")
    async def changes(sid: str, request: Request, since: int = Query(-1)) -> StreamingResponse:
        """Server-sent events: the session's version each time it changes (for every open tab)."""
        ws = await run_in_threadpool(store.get, sid)

        async def stream():
            nonlocal ws
            seen, quiet = since, 0.0
            while not store.closing.is_set():
                ws = store.peek(sid) or ws  # closed to disk and reopened: follow the new one
                if ws.deleted:
                    yield f"data: {json.dumps({'deleted': True})}\n\n"
                    return
                if ws.revision != seen:
                    seen, quiet = ws.revision, 0.0
                    job = ws.job
                    body = {"version": seen, "busy": ws.busy, "job": job.kind if job else None}
                    yield f"data: {json.dumps(body)}\n\n"
                if await request.is_disconnected():
                    return
                await asyncio.sleep(CHANGES_POLL_S)
                quiet += CHANGES_POLL_S
                if quiet > SSE_KEEPALIVE_S:
                    quiet = 0.0
                    yield ": keep-alive\n\n"

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    @router.get("/sessions/{sid}/events")
    async def events(sid: str, request: Request) -> StreamingResponse:
        ws = await run_in_threadpool(store.get, sid)

        async def stream():
            since, version, quiet = 0, -1, 0.0
            while not store.closing.is_set():
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
        ws = live(sid)
        with ws.locked():
            fresh(ws, req.version)
            ws.add_object(req.name, req.color)
        return changed(ws, req)

    @router.post("/sessions/{sid}/objects/{oid}/edit")
    def edit_object(sid: str, oid: int, req: ObjectRequest) -> JSONResponse:
        ws = live(sid)
        with ws.locked():
            fresh(ws, req.version)
            ws.edit_object(oid, req.name, req.color)
        return changed(ws, req)

    @router.post("/sessions/{sid}/objects/{oid}/remove")
    def remove_object(sid: str, oid: int, req: Focus) -> JSONResponse:
        ws = live(sid)
        with ws.locked():
            fresh(ws, req.version)
            ws.remove_object(oid)
        return changed(ws, req)

    @router.post("/sessions/{sid}/prompts")
    def prompt(sid: str, req: PromptRequest) -> JSONResponse:
        ws = live(sid)
        with ws.locked():
            fresh(ws, req.version)
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
        ws = live(sid)
        with ws.locked():
            fresh(ws, req.version)
            ws.clear(req.object_id, req.only_slice)
        return changed(ws, req)

    @router.post("/sessions/{sid}/undo")
    def undo(sid: str, req: Focus) -> JSONResponse:
        ws = live(sid)
        with ws.locked():
            fresh(ws, req.version)
            if not ws.undo():
                raise InputError("nothing to undo")
        return changed(ws, req)

    @router.post("/sessions/{sid}/redo")
    def redo(sid: str, req: Focus) -> JSONResponse:
        ws = live(sid)
        with ws.locked():
            fresh(ws, req.version)
            if not ws.redo():
                raise InputError("nothing to redo")
        if ws.busy:  # a propagation is being redone: the page follows the job
            return _json(ws.change_result(None, None))
        return changed(ws, req)

    @router.post("/sessions/{sid}/propagate")
    def propagate(sid: str, req: PropagateRequest) -> JSONResponse:
        ws = live(sid)
        if (req.first is None) != (req.last is None):
            raise InputError("a slice limit needs both its first and its last slice")
        limit = None if req.first is None else (req.first, req.last)
        with ws.locked():
            fresh(ws, req.version)
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
