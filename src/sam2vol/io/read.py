"""Read 3D volumes: NIfTI, NRRD, MHA/MHD, DICOM series folders, .npy/.npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2vol.errors import InputError
from sam2vol.io.sitk_geometry import affine_from_sitk, array_from_sitk
from sam2vol.volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
SITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
NUMPY_SUFFIXES = (".npy", ".npz")
SUPPORTED = "NIfTI (.nii, .nii.gz), NRRD, MHA/MHD, a DICOM series folder or .zip, .npy/.npz"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_volume(
    path: str | Path,
    *,
    channel: int | None = None,
    spacing_mm: tuple[float, float, float] | None = None,
) -> Volume:
    """Read a 3D volume with its geometry.

    Args:
        path: A NIfTI, NRRD, MHA/MHD or .npy/.npz file, or a folder holding one
            DICOM series.
        channel: For 4D files (e.g. MSD BrainTumour's four MR sequences), the
            channel to take. Required when the file is 4D.
        spacing_mm: Voxel size for .npy/.npz files, which carry no geometry
            (an .npz may hold it under the key ``spacing``).

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
            data, affine = _read_dicom_series(path)
        elif suffix == ".zip":  # a zipped DICOM series
            import tempfile

            from sam2vol.io.dicom_zip import extract_series

            with tempfile.TemporaryDirectory() as tmp:
                try:
                    data, affine = _read_dicom_series(extract_series(path, tmp))
                except InputError as exc:  # name the zip, not the temporary folder
                    message = str(exc).replace(tmp, str(path)).replace("this folder", "this zip")
                    raise InputError(message) from None
        elif suffix in NIFTI_SUFFIXES:
            data, affine = _read_nifti(path)
        elif suffix in SITK_SUFFIXES:
            data, affine = _read_sitk(path)
        elif suffix in NUMPY_SUFFIXES:
            data, affine = _read_numpy(path, spacing_mm)
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


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    image = nib.load(str(path))
    data = np.asanyarray(image.dataobj)
    if data.ndim == 5 and data.shape[3] == 1:  # NIfTI vector images: (x, y, z, 1, c)
        data = data[:, :, :, 0, :]
    return data, np.asarray(image.affine, dtype=np.float64)


def _read_sitk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    if image.GetDimension() != 3:
        raise InputError(f"{path}: expected a 3D volume, got {image.GetDimension()}D")
    return array_from_sitk(image), affine_from_sitk(image)


def _read_dicom_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise InputError(f"{folder}: no DICOM series found in this folder")
    if len(series) > 1:
        raise InputError(f"{folder}: {len(series)} DICOM series found; put one series per folder")
    files = reader.GetGDCMSeriesFileNames(str(folder), series[0])
    if len(files) < 2:
        raise InputError(f"{folder}: a DICOM series needs at least 2 slices, found {len(files)}")
    reader.SetFileNames(files)
    image = reader.Execute()
    return array_from_sitk(image), affine_from_sitk(image)


def _read_numpy(path: Path, spacing_mm) -> tuple[np.ndarray, np.ndarray]:
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = list(loaded.keys())
        key = next((k for k in ("image", "data", "label", "arr_0") if k in keys), None)
        if key is None:
            raise InputError(f"{path}: .npz needs an array named 'image' or 'data', found {keys}")
        data = loaded[key]
        if spacing_mm is None and "spacing" in keys:
            spacing_mm = tuple(float(s) for s in loaded["spacing"])
    else:
        data = loaded
    if spacing_mm is None:
        raise InputError(f"{path}: .npy/.npz files carry no geometry; give the spacing in mm")
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    if spacing.shape != (3,) or np.any(spacing <= 0):
        raise InputError(f"{path}: spacing must be three positive numbers, got {spacing_mm}")
    return data, np.diag([*spacing, 1.0])
