"""Paths a client may name: only inside the data folder, never through ``..`` or symlinks out."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from sam2vol.errors import InputError
from sam2vol.web.errors import Exists, NotFound

# Single-file formats read_volume opens (detached headers could point outside the folder).
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha", ".npz", ".npy")
DETACHED_SUFFIXES = (".nhdr", ".mhd")
EXPORT_SUFFIXES = (".nii.gz", ".nii", ".nrrd")
MAX_LISTED = 1000
MAX_PATH_CHARS = 1024


def suffix_of(name: str) -> str:
    """Lower-case suffix, counting ``.nii.gz`` as one.

    Example:
        >>> suffix_of("CT.NII.GZ"), suffix_of("a.nrrd"), suffix_of("noext")
        ('.nii.gz', '.nrrd', '')
    """
    lower = name.lower()
    return ".nii.gz" if lower.endswith(".nii.gz") else PurePosixPath(lower).suffix


CONTROL_MESSAGE = "control characters (newlines, tabs, ...) are not allowed in file names"
HIDDEN_MESSAGE = "hidden files and folders (names starting with '.') are not opened or written"


def has_control(text: str) -> bool:
    """True if ``text`` holds a control character (C0, DEL or C1).

    Example:
        >>> has_control("a\\nb"), has_control("a b.nii.gz")
        (True, False)
    """
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def check_upload_name(name: str) -> str:
    """The suffix of an uploaded file's name, if it is a readable single-file volume."""
    if has_control(name or ""):
        raise InputError(f"{name!a}: {CONTROL_MESSAGE}")
    suffix = suffix_of(name or "")
    if suffix in DETACHED_SUFFIXES:
        raise InputError(
            f"{name}: detached-header files need their data file; upload .nrrd, .mha or .nii.gz"
        )
    if suffix not in VOLUME_SUFFIXES:
        raise InputError(
            f"{name or 'upload'}: unsupported file type {suffix or '(none)'!r}; "
            f"upload one of {', '.join(VOLUME_SUFFIXES)}"
        )
    return suffix


def _relative_parts(rel: str) -> tuple[str, ...]:
    if not isinstance(rel, str) or not rel.strip():
        raise InputError("give a path inside the data folder")
    if len(rel) > MAX_PATH_CHARS or "\x00" in rel:
        raise InputError("path is too long or holds a NUL character")
    path = PurePosixPath(rel.replace("\\", "/"))
    if path.is_absolute() or rel.startswith("~"):
        raise InputError(f"{rel}: give a path relative to the data folder, not an absolute one")
    if ".." in path.parts:
        raise InputError(f"{rel}: '..' is not allowed; paths stay inside the data folder")
    if has_control(rel):
        raise InputError(f"{rel!a}: {CONTROL_MESSAGE}")
    parts = tuple(p for p in path.parts if p not in ("", "."))
    if any(p.startswith(".") for p in parts):
        raise InputError(f"{rel}: {HIDDEN_MESSAGE}")
    return parts


def _inside(root: Path, path: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _require_root(root: Path | None) -> Path:
    if root is None:
        raise InputError("this server was started without --data-dir; upload a file instead")
    return root


def resolve_input(root: Path | None, rel: str) -> Path:
    """The real path of ``rel`` inside ``root`` (a volume file or a DICOM folder).

    Raises:
        InputError: Absolute path, ``..``, a symlink leading out, a detached
            header, or an unsupported type.
        NotFound: Nothing there.
    """
    root = _require_root(root)
    parts = _relative_parts(rel)
    candidate = root.joinpath(*parts)
    if not os.path.lexists(candidate):
        raise NotFound(f"{rel}: not found in the data folder")
    resolved = candidate.resolve()
    if not _inside(root, resolved):
        raise InputError(f"{rel}: leads outside the data folder (symlink); refused")
    if not resolved.exists():
        raise NotFound(f"{rel}: not found in the data folder (broken link)")
    if resolved.is_dir():
        for entry in resolved.iterdir():
            if not _inside(root, entry.resolve()):
                raise InputError(f"{rel}: holds links leading outside the data folder; refused")
        return resolved
    suffix = suffix_of(resolved.name)
    if suffix in DETACHED_SUFFIXES:
        raise InputError(
            f"{rel}: detached-header files (.nhdr, .mhd) are not opened here; "
            "convert to .nrrd, .mha or .nii.gz"
        )
    if suffix not in VOLUME_SUFFIXES:
        raise InputError(f"{rel}: unsupported file type {suffix or '(none)'!r}")
    return resolved


def resolve_output(root: Path | None, rel: str) -> Path:
    """Where to write an export named ``rel`` inside ``root``: a new file in an existing folder.

    Raises:
        InputError: As :func:`resolve_input`, or a bad suffix or hidden name.
        Exists: The file exists (exports never overwrite).
    """
    root = _require_root(root)
    parts = _relative_parts(rel)
    name = parts[-1] if parts else ""
    if not name:
        raise InputError(f"{rel}: give a file name")
    if suffix_of(name) not in EXPORT_SUFFIXES:
        raise InputError(f"{rel}: exports are {', '.join(EXPORT_SUFFIXES)} files")
    parent = root.joinpath(*parts[:-1])
    if not parent.is_dir():
        raise NotFound(f"{rel}: folder {'/'.join(parts[:-1]) or '.'} not found in the data folder")
    real_parent = parent.resolve()
    if not _inside(root, real_parent):
        raise InputError(f"{rel}: leads outside the data folder (symlink); refused")
    target = real_parent / name
    if os.path.lexists(target):
        raise Exists(f"{rel}: already exists; exports never overwrite, choose another name")
    return target


def list_volumes(root: Path | None) -> list[str]:
    """Openable volumes under ``root`` (relative POSIX paths), DICOM folders ending in ``/``."""
    if root is None or not root.is_dir():
        return []
    found: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not has_control(d))
        here = Path(folder)
        rel_folder = here.relative_to(root)
        dicoms = 0
        for name in sorted(files):
            if name.startswith(".") or has_control(name):
                continue
            if name.lower().endswith(".dcm"):
                dicoms += 1
                continue
            if suffix_of(name) not in VOLUME_SUFFIXES:
                continue
            if _inside(root, (here / name).resolve()):
                found.append((rel_folder / name).as_posix())
        if dicoms >= 2 and rel_folder != Path("."):
            found.append(rel_folder.as_posix() + "/")
        if len(found) >= MAX_LISTED:
            break
    return sorted(found)[:MAX_LISTED]
