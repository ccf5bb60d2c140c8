"""A DICOM series packed in a zip file: safe extraction to a folder."""

from __future__ import annotations

import zipfile
from pathlib import Path

from sam2vol.errors import InputError

MAX_FILES = 20_000
MAX_UNPACKED_BYTES = 4 * 1024**3


def extract_series(archive: str | Path, folder: str | Path) -> Path:
    """Unpack the files of ``archive`` flat into ``folder`` (no paths kept, bounded size).

    Raises:
        InputError: Not a zip file, too many files, or too large unpacked.
    """
    archive, folder = Path(archive), Path(folder)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) > MAX_FILES:
                raise InputError(f"{archive}: more than {MAX_FILES} files in the zip")
            if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
                raise InputError(f"{archive}: over {MAX_UNPACKED_BYTES >> 30} GB unpacked")
            folder.mkdir(parents=True, exist_ok=True)
            for n, member in enumerate(members):
                name = Path(member.filename).name
                if not name or name.startswith("."):
                    continue
                # Flat, numbered names: no path from the archive reaches the disk.
                with zf.open(member) as src, open(folder / f"{n:06d}.dcm", "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{archive}: not a readable zip file ({exc})") from None
    return folder
