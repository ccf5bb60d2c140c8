"""Write a volume as a DICOM CT series, slice k of the array = instance k, by construction.

Pixel (row r, column c) of instance k is voxel (i=c, j=r, k); positions and
orientation come from the volume's affine (RAS -> LPS). Tests use this known
correspondence as the reference for DICOM in and DICOM-SEG out.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from sam2vol.volume import Volume

RAS_TO_LPS = np.array([-1.0, -1.0, 1.0])


def write_series(volume: Volume, folder: Path) -> list[Path]:
    """One file per k slice; returns the paths in k order."""
    folder.mkdir(parents=True, exist_ok=True)
    a = volume.affine
    spacing = np.linalg.norm(a[:3, :3], axis=0)
    row_dir = RAS_TO_LPS * a[:3, 0] / spacing[0]  # along columns: i
    col_dir = RAS_TO_LPS * a[:3, 1] / spacing[1]  # down rows: j
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    data = np.asarray(volume.data)
    today = datetime.date.today().strftime("%Y%m%d")
    paths = []
    for k in range(data.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
            "Test^Lung",
            "T1",
            "",
            "O",
        )
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = today, "120000", "1", ""
        ds.ReferringPhysicianName = ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, k + 1
        ds.Manufacturer = "test"
        ds.ImagePositionPatient = [float(x) for x in RAS_TO_LPS * (a @ [0, 0, k, 1])[:3]]
        ds.ImageOrientationPatient = [float(x) for x in (*row_dir, *col_dir)]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(data[:, :, k].T.astype(np.int16)).tobytes()
        path = folder / f"slice{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
