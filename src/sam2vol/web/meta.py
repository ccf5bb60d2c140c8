"""What a session was opened from, saved as ``meta.json`` beside its autosave."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

from sam2vol.errors import InputError
from sam2vol.slicing import AXES, Axis
from sam2vol.volume import Volume
from sam2vol.web.paths import resolve_input, suffix_of

SourceKind = Literal["sample", "data", "upload"]
META_FILE = "meta.json"


@dataclass(frozen=True)
class SessionMeta:
    """Where a session's volume comes from and how it is segmented.

    Attributes:
        sid: The session id.
        kind: ``sample`` (bundled), ``data`` (a path inside the data folder)
            or ``upload`` (a copy kept in the session folder).
        source: Sample name, path relative to the data folder, or the
            uploaded file's name (shown to the user; never a server path).
        stored: For uploads, the copy's file name inside the session folder.
        axis: Slicing axis the session segments along.
        intensity: Intensity preset the engine sees.
        created: Creation time (ISO 8601).
        channel: For a 4D volume, the channel segmented.
    """

    sid: str
    kind: SourceKind
    source: str
    stored: str = ""
    axis: Axis = "axial"
    intensity: str = "auto"
    created: str = ""
    channel: int | None = None

    @property
    def stem(self) -> str:
        """A file-name stem for exports, e.g. ``lung2`` or ``ct_0001``."""
        name = self.source.rstrip("/").split("/")[-1] or "volume"
        suffix = suffix_of(name)
        stem = name[: -len(suffix)] if suffix else name
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")
        return safe or "volume"

    def save(self, folder: Path) -> None:
        """Write ``meta.json`` atomically."""
        tmp = folder / f".{META_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, folder / META_FILE)

    @classmethod
    def load(cls, folder: Path) -> SessionMeta:
        """Read ``meta.json``; :class:`InputError` if it is missing or damaged."""
        try:
            data = json.loads((folder / META_FILE).read_text())
            known = {f.name for f in fields(cls)}
            meta = cls(**{k: v for k, v in data.items() if k in known})
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(f"session {folder.name}: its meta.json is missing or damaged") from exc
        if meta.kind not in ("sample", "data", "upload") or meta.axis not in AXES:
            raise InputError(f"session {folder.name}: its meta.json is damaged")
        return meta


def read_for_client(path: Path, shown: str, channel: int | None = None) -> Volume:
    """Read a volume, with the name the client knows in messages instead of the server path.

    ``channel`` picks one channel of a 4D volume (the page asks for it).
    """
    from sam2vol.io import read_volume

    try:
        volume = read_volume(path, channel=channel)
    except InputError as exc:
        message = str(exc).replace(str(path), shown).splitlines()[0]
        message = message.replace("pick one with --channel", "choose a channel").replace(
            "--channel", "channel"
        )
        raise InputError(message) from None
    check_not_labels(volume.data, shown)
    return Volume(volume.data, volume.affine, shown)


MAX_LABEL_VALUES = 16


def check_not_labels(data, shown: str) -> None:
    """Refuse a label map (e.g. a saved export) offered as an image to segment.

    A label map here is integer-valued, within 0..255, with at most
    :data:`MAX_LABEL_VALUES` distinct values and mostly background (0).
    """
    import numpy as np

    if data.dtype.kind not in "iub" or data.size == 0:
        return
    low, high = int(data.min()), int(data.max())
    if low < 0 or high > 255:
        return
    counts = np.bincount(data.ravel().astype(np.uint8, copy=False), minlength=256)
    if np.count_nonzero(counts) <= MAX_LABEL_VALUES and counts[0] * 2 > data.size:
        raise InputError(
            f"{shown}: this is a label map ({np.count_nonzero(counts)} distinct values, "
            "mostly 0), not an image to segment; open the image it labels"
        )


def source_path(meta: SessionMeta, folder: Path, data_dir: Path | None) -> Path:
    """The file (or DICOM folder) a session's volume is read from."""
    if meta.kind == "sample":
        from sam2vol.samples import sample_path

        return Path(sample_path(meta.source))
    if meta.kind == "data":
        return resolve_input(data_dir, meta.source)
    stored = folder / meta.stored
    if not meta.stored or "/" in meta.stored or not stored.is_file():
        raise InputError(f"session {meta.sid}: its uploaded volume is missing")
    return stored


def open_source(meta: SessionMeta, folder: Path, data_dir: Path | None) -> Volume:
    """Read the volume a session was opened from (again, e.g. after a restart)."""
    return read_for_client(source_path(meta, folder, data_dir), meta.source, meta.channel)
