"""Uploads: a request body streamed to disk under a size limit, then opened as a session."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from sam2vol.errors import InputError
from sam2vol.web.config import ServerConfig
from sam2vol.web.errors import TooLarge


def human_bytes(n: int) -> str:
    """A byte count for people.

    Example:
        >>> human_bytes(512 * 1024 * 1024), human_bytes(4096), human_bytes(10)
        ('512.0 MB', '4.0 KB', '10 bytes')
    """
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} bytes"


async def receive(request: Request, path: Path, limit: int, filename: str) -> None:
    """Stream a request body to ``path``, refusing more than ``limit`` bytes, or nothing."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        size = human_bytes(int(declared))
        raise TooLarge(f"{filename}: {size} is over the {human_bytes(limit)} upload limit")
    size = 0
    with open(path, "wb") as handle:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"{filename}: over the {human_bytes(limit)} upload limit")
            handle.write(chunk)
    if size == 0:
        raise InputError(f"{filename}: the upload is empty")


async def open_upload(
    store, config: ServerConfig, path: Path, filename: str, *, axis, intensity, channel
):
    """Open an uploaded volume as a session once its declared size fits the budget.

    The header's declared size (and a zip's unpacked size) is checked before any
    voxel is read, and room is made in the memory budget before the volume loads.
    """
    from sam2vol.web.limits import check_declared, session_cost
    from sam2vol.web.meta import read_for_client

    def load():
        with store.loading:  # read and charged before another volume is read
            declared = check_declared(path, filename, config.memory_budget_bytes)
            store.make_room(session_cost(declared.voxels, declared.itemsize))
            volume = read_for_client(path, filename, channel)
            return store.open(
                "upload",
                filename,
                volume,
                axis=axis,
                intensity=intensity,
                upload=path,
                channel=channel,
            )

    return await run_in_threadpool(load)
