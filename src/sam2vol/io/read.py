"""Read 3D volumes: NIfTI, NRRD, MHA/MHD, DICOM series folders, .npy/.npz."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sam2vol.errors import InputError
from sam2vol.io.sitk_geometry import affine_from_sitk, array_from_sitk
from sam2vol.volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
SITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
NUMPY_SUFFIXES = (".npy", ".npz")
SUPPORTED = "NIfTI (.nii, .nii.gz), NRRD, MHA/MHD, a DICOM series folder or .zip, .npy/.npz"


def default_max_voxels() -> int:
    """Largest volume read by default: what this machine's memory holds with room to work.

    A volume is held a few times over while it is prepared (the file's type, float32,
    a slice stack, masks), so the limit is the physical memory over 32 bytes a voxel.
    """
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        memory = 8 * 2**30
    return max(1, int(memory) // 32)


def check_size(path: Path, shape, max_voxels: int | None) -> None:
    """Refuse a volume whose declared size exceeds ``max_voxels``, before reading it."""
    limit = default_max_voxels() if max_voxels is None else max_voxels
    n = int(np.prod([int(x) for x in shape], dtype=np.float64))
    if n > limit:
        dims = "x".join(str(int(x)) for x in shape)
        raise InputError(
            f"{path}: declares {dims} = {n:,} voxels, over the limit of {limit:,} "
            "(raise it with --max-voxels)"
        )


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_volume(
    path: str | Path,
    *,
    channel: int | None = None,
    spacing_mm: tuple[float, float, float] | None = None,
    max_voxels: int | None = None,
    dicom_irregular: str = "refuse",
) -> Volume:
    """Read a 3D volume with its geometry.

    Args:
        path: A NIfTI, NRRD, MHA/MHD or .npy/.npz file, or a folder holding one
            DICOM series.
        channel: For 4D files (e.g. MSD BrainTumour's four MR sequences), the
            channel to take. Required when the file is 4D.
        spacing_mm: Voxel size for .npy/.npz files, which carry no geometry
            (an .npz may hold it under the key ``spacing``).
        max_voxels: Refuse files declaring more voxels (all channels counted)
            before reading their data; default :func:`default_max_voxels`.
        dicom_irregular: A DICOM series with a missing slice or unequal spacing is
            refused (``"refuse"``) or resampled onto its median spacing
            (``"resample"``); duplicates, tilt and truncated files are always refused.

    Returns:
        The volume; its ``data`` is float or integer, never NaN or inf.

    Raises:
        InputError: The file is missing, unreadable, truncated, not 3D, or has
            NaN/inf voxels. The message names the file.

    Example:
        >>> from sam2vol.samples import sample_path
        >>> read_volume(sample_path("brain1")).shape
        (256, 256, 25)
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    suffix = _suffix(path)
    try:
        if path.is_dir():
            data, affine = _read_dicom_series(path, max_voxels, dicom_irregular)
        elif suffix == ".zip":  # a zipped DICOM series
            import tempfile

            from sam2vol.io.dicom_zip import extract_series

            with tempfile.TemporaryDirectory() as tmp:
                try:
                    data, affine = _read_dicom_series(
                        extract_series(path, tmp), max_voxels, dicom_irregular
                    )
                except InputError as exc:  # name the zip, not the temporary folder
                    message = str(exc).replace(tmp, str(path)).replace("this folder", "this zip")
                    raise InputError(message) from None
        elif suffix in NIFTI_SUFFIXES:
            data, affine = _read_nifti(path, max_voxels)
        elif suffix in SITK_SUFFIXES:
            data, affine = _read_sitk(path, max_voxels)
        elif suffix in NUMPY_SUFFIXES:
            data, affine = _read_numpy(path, spacing_mm, max_voxels)
        else:
            raise InputError(f"{path}: unsupported file type {suffix!r}; expected {SUPPORTED}")
    except InputError:
        raise
    except Exception as exc:  # libraries raise many types for corrupt files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read file ({reason[:200]})") from exc
    data = _pick_channel(path, data, channel)
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise InputError(f"{path}: volume holds NaN or infinite voxels")
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    return Volume(data, affine, str(path))


def read_label(
    path: str | Path, *, like: Volume | None = None, allow_empty: bool = False
) -> Volume:
    """Read an integer label map, optionally checking it lies on ``like``'s grid.

    Raises:
        InputError: Not integer-valued, a different grid from ``like``, or
            empty (unless ``allow_empty``).
    """
    label = read_volume(path)
    data = label.data
    if data.dtype.kind == "f":
        if not np.array_equal(data, np.round(data)):
            raise InputError(f"{path}: a label map must hold integer values")
        data = data.astype(np.int32)
    if data.min() < 0:
        raise InputError(f"{path}: a label map must not hold negative values")
    label = Volume(data, label.affine, label.source)
    if like is not None:
        like.check_same_grid(label)
    if not allow_empty and not np.any(data):
        raise InputError(f"{path}: label map is empty (no foreground voxel)")
    return label


def _pick_channel(path: Path, data: np.ndarray, channel: int | None) -> np.ndarray:
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 4:
        n = data.shape[3]
        if channel is None:
            raise InputError(
                f"{path}: 4D volume with {n} channels; pick one with --channel 0..{n - 1}"
            )
        if not 0 <= channel < n:
            raise InputError(f"{path}: --channel {channel} out of range 0..{n - 1}")
        return np.ascontiguousarray(data[..., channel])
    if channel not in (None, 0):
        raise InputError(f"{path}: --channel given but the volume is not 4D")
    if data.ndim != 3:
        raise InputError(f"{path}: expected a 3D volume, got {data.ndim}D with shape {data.shape}")
    return data


def _read_nifti(path: Path, max_voxels: int | None) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    image = nib.load(str(path))
    check_size(path, image.shape, max_voxels)
    data = np.asanyarray(image.dataobj)
    if data.ndim == 5 and data.shape[3] == 1:  # NIfTI vector images: (x, y, z, 1, c)
        data = data[:, :, :, 0, :]
    return data, np.asarray(image.affine, dtype=np.float64)


def _read_sitk(path: Path, max_voxels: int | None) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    info = sitk.ImageFileReader()
    info.SetFileName(str(path))
    info.ReadImageInformation()
    check_size(path, (*info.GetSize(), info.GetNumberOfComponents()), max_voxels)
    image = sitk.ReadImage(str(path))
    if image.GetDimension() != 3:
        raise InputError(f"{path}: expected a 3D volume, got {image.GetDimension()}D")
    return array_from_sitk(image), affine_from_sitk(image)


def _read_dicom_series(
    folder: Path, max_voxels: int | None, irregular: str = "refuse"
) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    from sam2vol.io.dicom import check_series, resample_slices

    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise InputError(f"{folder}: no DICOM series found in this folder")
    if len(series) > 1:
        raise InputError(f"{folder}: {len(series)} DICOM series found; put one series per folder")
    files = reader.GetGDCMSeriesFileNames(str(folder), series[0])
    if len(files) < 2:
        raise InputError(f"{folder}: a DICOM series needs at least 2 slices, found {len(files)}")
    first = sitk.ImageFileReader()
    first.SetFileName(files[0])
    first.ReadImageInformation()
    width, height = first.GetSize()[:2]
    check_size(folder, (width, height, len(files)), max_voxels)
    layout = check_series(folder, list(files), irregular)  # type: ignore[arg-type]
    reader.SetFileNames(layout.files)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        reason = "cannot read the series' pixel data (a truncated file?)"
        raise InputError(f"{folder}: {reason}") from exc
    data, affine = array_from_sitk(image), affine_from_sitk(image)
    if not layout.regular:  # asked for: resample onto the median spacing
        stack = resample_slices(np.moveaxis(data, 2, 0), layout.positions_mm, layout.spacing_mm)
        data = np.ascontiguousarray(np.moveaxis(stack, 0, 2))
        affine = affine.copy()
        affine[:3, 2] *= layout.spacing_mm / np.linalg.norm(affine[:3, 2])
    return data, affine


def _read_numpy(path: Path, spacing_mm, max_voxels: int | None) -> tuple[np.ndarray, np.ndarray]:
    loaded = np.load(path, allow_pickle=False, mmap_mode="r")
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = list(loaded.keys())
        key = next((k for k in ("image", "data", "label", "arr_0") if k in keys), None)
        if key is None:
            raise InputError(f"{path}: .npz needs an array named 'image' or 'data', found {keys}")
        with loaded.zip.open(f"{key}.npy") as member:
            major, _ = np.lib.format.read_magic(member)
            read_header = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape = read_header(member)[0]
        check_size(path, shape, max_voxels)
        data = loaded[key]
        if spacing_mm is None and "spacing" in keys:
            spacing_mm = tuple(float(s) for s in loaded["spacing"])
    else:
        check_size(path, loaded.shape, max_voxels)
        data = np.array(loaded)
    if spacing_mm is None:
        raise InputError(f"{path}: .npy/.npz files carry no geometry; give the spacing in mm")
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    if spacing.shape != (3,) or np.any(spacing <= 0):
        raise InputError(f"{path}: spacing must be three positive numbers, got {spacing_mm}")
    return data, np.diag([*spacing, 1.0])
