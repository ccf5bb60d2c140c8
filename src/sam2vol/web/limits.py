"""Size limits checked before memory is spent: request bodies and the declared size of volumes.

A volume's size is read from its header (NIfTI, NRRD/MHA, .npy, each .npz
member, the first file of a DICOM series) before any voxel is read, so a
78-byte file declaring a 3 GB volume, a gzip of zeros or a zip bomb is
refused without allocating it. The readers then read only the declared bytes,
which bounds decompression as well.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sam2vol.errors import InputError
from sam2vol.web.errors import TooLarge

# Bytes per voxel a live session holds besides the volume itself: the engine's
# float32 copy, the display's 8-bit cache and a little for masks and history.
SESSION_BYTES_PER_VOXEL = 4 + 1 + 2
SESSION_OVERHEAD_BYTES = 8 * 1024 * 1024
DRAIN_BYTES = 64 * 1024 * 1024
NPZ_KEYS = ("image", "data", "label", "arr_0")  # as sam2vol.io reads them


@dataclass(frozen=True)
class DeclaredVolume:
    """What a volume file's header says it holds.

    Attributes:
        shape: Array shape (3D, or 4D with channels).
        itemsize: Bytes per voxel.
    """

    shape: tuple[int, ...]
    itemsize: int

    @property
    def voxels(self) -> int:
        n = 1
        for d in self.shape:
            n *= max(0, int(d))
        return n

    @property
    def nbytes(self) -> int:
        return self.voxels * self.itemsize


def session_cost(voxels: int, itemsize: int) -> int:
    """Estimated bytes a live session of a volume holds (volume, engine copy, display, masks).

    Example:
        >>> session_cost(10, 2) - SESSION_OVERHEAD_BYTES
        90
    """
    return voxels * (itemsize + SESSION_BYTES_PER_VOXEL) + SESSION_OVERHEAD_BYTES


def declared_volume(path: Path) -> DeclaredVolume:
    """The size a volume file (or DICOM folder) declares, read from headers only.

    Raises:
        InputError: The header cannot be read.
    """
    from sam2vol.web.paths import suffix_of

    try:
        if path.is_dir():
            return _declared_dicom(path)
        suffix = suffix_of(path.name)
        if suffix in (".nii", ".nii.gz"):
            import nibabel as nib

            image = nib.load(str(path))  # reads the header only
            return DeclaredVolume(tuple(image.shape), image.get_data_dtype().itemsize)
        if suffix in (".nrrd", ".mha", ".nhdr", ".mhd"):
            return _declared_sitk(path)
        if suffix == ".npy":
            with open(path, "rb") as handle:
                return _declared_npy(handle)
        if suffix == ".npz":
            return _declared_npz(path)
        if suffix == ".zip":
            return _declared_dicom_zip(path)
    except InputError:
        raise
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read file (its header: {reason[:200]})") from exc
    raise InputError(f"{path}: unsupported file type {suffix!r}")


def _declared_sitk(path: Path) -> DeclaredVolume:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    shape = tuple(int(n) for n in reader.GetSize())
    components = int(reader.GetNumberOfComponents())
    itemsize = sitk.GetArrayViewFromImage(sitk.Image([1] * len(shape), reader.GetPixelID()))
    return DeclaredVolume((*shape, components) if components > 1 else shape, itemsize.itemsize)


def _declared_npy(handle) -> DeclaredVolume:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise InputError(f".npy format version {version} is not supported; save with np.save")
    if dtype.hasobject:
        raise InputError("holds Python objects, not an array")
    return DeclaredVolume(tuple(shape), dtype.itemsize)


def _declared_npz(path: Path) -> DeclaredVolume:
    """The member the reader takes (``image``, ``data``, ...), after checking every header."""
    declared: dict[str, DeclaredVolume] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                found = _declared_npy(member)
            # the zip's own uncompressed size must agree with the array header
            if info.file_size > found.nbytes + 64 * 1024:
                raise InputError(f"member {info.filename} is larger than its array header says")
            declared[info.filename.removesuffix(".npy")] = found
    spacing = declared.get("spacing")
    if spacing is not None and spacing.voxels > 16:
        raise InputError(f"its 'spacing' holds {spacing.voxels} values, expected 3")
    for key in NPZ_KEYS:
        if key in declared:
            return declared[key]
    raise InputError(f".npz needs an array named 'image' or 'data', found {sorted(declared)}")


def _declared_dicom(folder: Path) -> DeclaredVolume:
    import SimpleITK as sitk

    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError("no DICOM files in this folder")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(files[0]))
    reader.ReadImageInformation()
    rows, cols = (int(n) for n in reader.GetSize()[:2])
    return DeclaredVolume((rows, cols, len(files)), 4)


# A DICOM file holds its pixels plus a header; more than this per slice is not a slice.
DICOM_HEADER_BYTES = 1024 * 1024


def _declared_dicom_zip(path: Path) -> DeclaredVolume:
    """A zipped DICOM series: the first file's header times the number of files.

    The members' unpacked sizes (which bound what extraction writes) must agree:
    a zip unpacking to more than its slices can hold is refused as a zip bomb.
    """
    import tempfile

    import SimpleITK as sitk

    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        members = [m for m in members if not Path(m.filename).name.startswith(".")]
        if not members:
            raise InputError(f"{path}: no DICOM files in this zip")
        first = min(members, key=lambda m: m.filename)
        if first.file_size > 64 * DICOM_HEADER_BYTES:
            size = whole_mb(first.file_size)
            raise InputError(f"{path}: {first.filename} unpacks to {size}: not a slice")
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "first.dcm"
            with archive.open(first) as src:
                copy.write_bytes(src.read())
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(copy))
            reader.ReadImageInformation()
            rows, cols = (int(n) for n in reader.GetSize()[:2])
    declared = DeclaredVolume((rows, cols, len(members)), 4)
    unpacked = sum(m.file_size for m in members)
    if unpacked > declared.nbytes * 2 + len(members) * DICOM_HEADER_BYTES:
        raise InputError(
            f"{path}: unpacks to {whole_mb(unpacked)}, more than its {len(members)} slices of "
            f"{rows}x{cols} can hold (a zip bomb?)"
        )
    return declared


def check_declared(path: Path, shown: str, budget_bytes: int) -> DeclaredVolume:
    """Refuse a volume whose declared size could not fit in the server's memory budget.

    Args:
        path: The file (or DICOM folder).
        shown: Its name as the client knows it (for messages).
        budget_bytes: The server's memory budget.

    Raises:
        TooLarge: The volume would not fit even in an empty server.
        InputError: The header is unreadable.
    """
    try:
        declared = declared_volume(path)
    except InputError as exc:
        raise InputError(str(exc).replace(str(path), shown).splitlines()[0]) from None
    cost = session_cost(declared.voxels, declared.itemsize)
    if cost > budget_bytes:
        shape = "x".join(str(d) for d in declared.shape)
        raise TooLarge(
            f"{shown}: declares a {shape} volume needing about {whole_mb(cost)} in memory, "
            f"over the server's {whole_mb(budget_bytes)} memory budget (--memory-budget-mb)"
        )
    return declared


def whole_mb(n: int) -> str:
    """A byte count in whole megabytes, for messages."""
    return f"{n / 1024 / 1024:.0f} MB"


class BodyLimitMiddleware:
    """ASGI middleware refusing request bodies over ``limit`` bytes with 413.

    Uploads (``skip`` paths) stream to disk under their own limit; every other
    body (JSON) is read here, at most ``limit + 1`` bytes, before the app sees it.
    """

    def __init__(
        self,
        app,
        limit: int,
        skip: tuple[str, ...] = ("/api/upload", "/api/upload-dicom"),
        skip_session_suffixes: tuple[str, ...] = ("/import",),
    ) -> None:
        self.app = app
        self.limit = limit
        self.skip = skip
        self.skip_session_suffixes = skip_session_suffixes  # label-map imports stream too

    def _streams(self, path: str) -> bool:
        if path in self.skip:
            return True
        return path.startswith("/api/sessions/") and path.endswith(self.skip_session_suffixes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        if self._streams(scope["path"]):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            size += len(chunk)
            if size > self.limit:
                await _drain(receive, more)  # so the client reads the answer, not a reset
                await _send_413(send, f"request body over the {self.limit // 1024} KB limit")
                return
            chunks.append(chunk)
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _drain(receive, more: bool, most: int = DRAIN_BYTES) -> None:
    """Read and drop the rest of a refused body (up to ``most`` bytes; then the connection ends)."""
    dropped = 0
    while more and dropped < most:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        dropped += len(message.get("body", b""))
        more = message.get("more_body", False)


async def _send_413(send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
