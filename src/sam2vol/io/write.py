"""Write volumes and masks atomically, with the source geometry, verified before the rename."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sam2vol.errors import InputError
from sam2vol.io.read import NIFTI_SUFFIXES, _suffix
from sam2vol.io.sitk_geometry import sitk_from_volume
from sam2vol.volume import Volume

WRITABLE = (*NIFTI_SUFFIXES, ".nrrd", ".mha")
# Temporary files of this module: ".NAME.PID-RANDOM.tmp[SUFFIX]" beside the target.
_TEMP = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}\.tmp(\.[\w.]+)?$")


def check_output(path: str | Path, what: str, inputs: Iterable[str | Path] = ()) -> Path:
    """Fail early, before any work, if a file cannot be written at ``path``.

    Args:
        path: The file to write.
        what: How the user named it (e.g. ``--log``), for the message.
        inputs: Files the command reads: writing over one of them is refused.

    Raises:
        InputError: ``path`` is a folder, its folder is missing or not
            writable, or it is one of ``inputs``.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise InputError(f"{what} {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: folder {path.parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{what} {path}: file is read-only")
    for other in inputs:
        other = Path(other)
        if other.exists() and path.exists() and os.path.samefile(path, other):
            raise InputError(f"{what} {path}: is an input of this command; write elsewhere")
        if path.resolve() == other.resolve():
            raise InputError(f"{what} {path}: is an input of this command; write elsewhere")
    return path


def check_writable(path: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Fail early, before any work, if ``path`` cannot be written as a volume."""
    path = Path(path)
    suffix = _suffix(path)
    if path.is_dir():
        raise InputError(f"--out {path}: is a folder; give a file name")
    if suffix not in WRITABLE:
        raise InputError(f"{path}: cannot write {suffix!r}; use .nii.gz, .nii, .nrrd or .mha")
    return check_output(path, "--out", inputs)


def temp_path(path: Path, suffix: str = "") -> Path:
    """A temporary name beside ``path`` with this process id (see :func:`remove_stale_temps`)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove temporary files left in ``folder`` by killed writes (their process is gone)."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMP.match(name)
        if match and not _alive(int(match.group(1))):
            try:
                (folder / name).unlink()
                removed.append(folder / name)
            except OSError:
                pass
    return removed


def write_volume(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` to NIfTI (.nii/.nii.gz), NRRD or MHA, atomically.

    The file is first written beside the target under a temporary name, synced
    and read back (header and data), then renamed over the target, so a crash
    or a full disk never leaves a half-written file under the target's name.

    Raises:
        InputError: The folder or file cannot be written, or what was written
            does not read back (e.g. the disk is full). Names the file.
    """
    path = check_writable(path)
    suffix = _suffix(path)
    remove_stale_temps(path.parent)
    tmp = temp_path(path, suffix)
    try:
        if suffix in NIFTI_SUFFIXES:
            import nibabel as nib

            image = nib.Nifti1Image(volume.data, volume.affine)
            image.set_qform(volume.affine, code=1)
            image.set_sform(volume.affine, code=1)
            nib.save(image, str(tmp))
        else:
            import SimpleITK as sitk

            sitk.WriteImage(sitk_from_volume(volume.data, volume.affine), str(tmp), True)
        _sync(tmp)
        _verify(tmp, volume, path)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _sync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _verify(tmp: Path, volume: Volume, target: Path) -> None:
    """Read back what was written: size, header shape and every voxel's data."""
    from sam2vol.io.read import read_volume

    if tmp.stat().st_size == 0:
        raise InputError(f"{target}: the written file is empty (disk full?); nothing was replaced")
    try:
        back = read_volume(tmp)
    except InputError as exc:
        raise InputError(
            f"{target}: the written file does not read back (disk full?); nothing was replaced"
        ) from exc
    if back.shape != volume.shape or not np.array_equal(back.data, volume.data):
        raise InputError(f"{target}: the written file reads back different; nothing was replaced")


def write_mask(mask: np.ndarray, like: Volume, path: str | Path) -> Path:
    """Write a label map (bool or small integers) on ``like``'s grid as uint8/uint16."""
    mask = np.asarray(mask)
    dtype = np.uint8 if mask.max(initial=0) < 256 else np.uint16
    return write_volume(like.with_data(mask.astype(dtype), source=str(path)), path)
