"""DICOM in the web app: the source series of a session, DICOM-SEG out (highdicom) and in.

A DICOM-SEG frame lies on a plane given by its position and orientation
(LPS, mm). Each of its pixels is mapped to the nearest voxel of the volume
(RAS affine), which is exact when the plane is a slice of the volume.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from sam2vol.errors import InputError
from sam2vol.volume import Volume

LPS = np.diag([-1.0, -1.0, 1.0])  # LPS <-> RAS


def plane_voxels(ipp, iop, pixel_spacing, rows: int, cols: int, affine: np.ndarray) -> np.ndarray:
    """Voxel indices ``(rows, cols, 3)`` (rounded) of each pixel of a DICOM plane.

    Args:
        ipp: ImagePositionPatient (LPS mm) of pixel (0, 0).
        iop: ImageOrientationPatient: the row direction (along columns) then
            the column direction (down rows), LPS.
        pixel_spacing: PixelSpacing: (between rows, between columns) in mm.
        rows, cols: Plane size.
        affine: The volume's voxel-to-world affine (RAS).
    """
    iop = np.asarray(iop, dtype=np.float64)
    row_dir, col_dir = iop[:3], iop[3:]
    dr, dc = (float(x) for x in pixel_spacing)
    r, c = np.mgrid[0:rows, 0:cols]
    lps = (
        np.asarray(ipp, dtype=np.float64)[None, None, :]
        + c[..., None] * dc * row_dir[None, None, :]
        + r[..., None] * dr * col_dir[None, None, :]
    )
    ras = lps @ LPS.T
    inv = np.linalg.inv(affine)
    ijk = ras @ inv[:3, :3].T + inv[:3, 3]
    return np.rint(ijk).astype(np.int64)


def _sample(labels: np.ndarray, idx: np.ndarray) -> np.ndarray:
    inside = np.all((idx >= 0) & (idx < np.array(labels.shape)), axis=-1)
    out = np.zeros(idx.shape[:2], dtype=labels.dtype)
    i, j, k = (idx[..., a][inside] for a in range(3))
    out[inside] = labels[i, j, k]
    return out


def read_series(folder: Path):
    """The DICOM image datasets of a folder (pydicom), sorted along the slice normal."""
    import pydicom

    datasets = []
    for path in sorted(folder.iterdir()):
        try:
            ds = pydicom.dcmread(path)
        except Exception:  # not DICOM: skip
            continue
        if "PixelData" in ds and "ImagePositionPatient" in ds:
            datasets.append(ds)
    if not datasets:
        raise InputError("no DICOM images with a position found in the source series")
    iop = np.asarray(datasets[0].ImageOrientationPatient, dtype=np.float64)
    normal = np.cross(iop[:3], iop[3:])
    datasets.sort(key=lambda d: float(np.dot(normal, np.asarray(d.ImagePositionPatient, float))))
    return datasets


def seg_frames(labels: Volume, datasets) -> np.ndarray:
    """The label map on each source image's plane: ``(n_images, rows, cols)``."""
    frames = []
    for ds in datasets:
        idx = plane_voxels(
            ds.ImagePositionPatient,
            ds.ImageOrientationPatient,
            ds.PixelSpacing,
            int(ds.Rows),
            int(ds.Columns),
            labels.affine,
        )
        frames.append(_sample(np.asarray(labels.data), idx))
    return np.stack(frames)


def write_seg(labels: Volume, names: dict[int, str], datasets, target: Path) -> Path:
    """Write the label map as a DICOM-SEG referencing ``datasets``, atomically.

    Args:
        labels: Label map (object ids) on the volume grid.
        names: Object id -> name; every id in ``labels`` needs one.
        datasets: The source series (pydicom datasets).
        target: The file to write.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from sam2vol import __version__

    frames = seg_frames(labels, datasets)
    present = [int(v) for v in np.unique(frames) if v != 0]
    if not present:
        raise InputError("nothing to export: the mask does not reach any source image")
    # Segment numbers must run 1..n: renumber the objects present.
    numbering = {oid: n for n, oid in enumerate(present, start=1)}
    renumbered = np.zeros(frames.shape, dtype=np.uint16)
    for oid, n in numbering.items():
        renumbered[frames == oid] = n
    algorithm = hd.AlgorithmIdentificationSequence(
        name="sam2vol", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=names.get(oid, f"object {oid}")[:64],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=algorithm,
        )
        for oid, n in numbering.items()
    ]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=renumbered,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="sam2vol",
        manufacturer_model_name="sam2vol",
        software_versions=__version__,
        device_serial_number="0",
    )
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        seg.save_as(tmp)
        hd.seg.segread(tmp)  # verify before the rename
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def read_seg_labels(path: Path, like: Volume) -> dict[str, np.ndarray]:
    """A DICOM-SEG file as masks on ``like``'s grid: segment label -> bool mask."""
    import highdicom as hd

    try:
        seg = hd.seg.segread(path)
    except Exception as exc:
        raise InputError(f"{path.name}: not a readable DICOM-SEG ({str(exc)[:120]})") from None
    shared = seg.SharedFunctionalGroupsSequence[0]
    iop = shared.PlaneOrientationSequence[0].ImageOrientationPatient
    spacing = shared.PixelMeasuresSequence[0].PixelSpacing
    pixels = seg.pixel_array
    if pixels.ndim == 2:
        pixels = pixels[None]
    shared_number = _segment_number(shared)
    masks: dict[int, np.ndarray] = {}
    for n, frame in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ipp = frame.PlanePositionSequence[0].ImagePositionPatient
        number = _segment_number(frame) or shared_number
        idx = plane_voxels(ipp, iop, spacing, int(seg.Rows), int(seg.Columns), like.affine)
        inside = np.all((idx >= 0) & (idx < np.array(like.shape)), axis=-1)
        # Binary frames belong to one segment; label-map frames hold segment numbers.
        values = [number] if number else [int(v) for v in np.unique(pixels[n]) if v]
        for value in values:
            hit = inside & ((pixels[n] > 0) if number else (pixels[n] == value))
            mask = masks.setdefault(value, np.zeros(like.shape, dtype=bool))
            i, j, k = (idx[..., a][hit] for a in range(3))
            mask[i, j, k] = True
    labels = {int(d.SegmentNumber): str(d.SegmentLabel) for d in seg.SegmentSequence}
    out = {labels.get(n, f"segment {n}"): m for n, m in sorted(masks.items()) if m.any()}
    if not out:
        raise InputError(f"{path.name}: the DICOM-SEG does not overlap the image")
    return out


def _segment_number(group) -> int | None:
    seq = getattr(group, "SegmentIdentificationSequence", None)
    return int(seq[0].ReferencedSegmentNumber) if seq else None
