"""Round trips and bad input for sam2vol.io."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from sam2vol import InputError, Volume
from sam2vol.io import read_label, read_volume, write_mask, write_volume
from sam2vol.io.sitk_geometry import affine_from_sitk
from sam2vol.samples import SAMPLES, sample_path
from tests.helpers import lps_affine


def _assert_same_geometry(a: Volume, b: Volume) -> None:
    assert a.shape == b.shape
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-4)


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".nii", ".mha"])
def test_sample_mask_round_trip(tmp_path, name, suffix):
    image = read_volume(sample_path(name))
    label = read_label(sample_path(name, "label"), like=image)
    path = write_mask(label.data > 0, image, tmp_path / f"mask{suffix}")
    back = read_label(path, like=image)
    _assert_same_geometry(image, back)
    np.testing.assert_array_equal(back.data, label.data > 0)
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_written_nifti_is_where_simpleitk_puts_the_source(tmp_path):
    """An independent reader (ITK) places our NIfTI exactly on the source NRRD."""
    image = read_volume(sample_path("brain1"))
    path = write_volume(image, tmp_path / "brain1.nii.gz")
    theirs = sitk.ReadImage(str(path))
    source = sitk.ReadImage(str(sample_path("brain1")))
    np.testing.assert_allclose(theirs.GetOrigin(), source.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(theirs.GetDirection(), source.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(theirs.GetSpacing(), source.GetSpacing(), atol=1e-6)
    # and nibabel reads the NRRD-derived affine back unchanged
    np.testing.assert_allclose(nib.load(str(path)).affine, image.affine, atol=1e-4)


def test_lung_crop_keeps_world_position():
    """The bundled lung2 crop sits where it was in the original 512x512 grid."""
    image = read_volume(sample_path("lung2"))
    # Voxel (0, 0, 0) of the crop is voxel (240, 250, 0) of the original, whose
    # origin was (-170.5, -324.5, -360) LPS with 0.6269531 mm pixels.
    expected_lps = np.array([-170.5 + 240 * 0.6269531, -324.5 + 250 * 0.6269531, -360.0])
    np.testing.assert_allclose(image.origin_ras, expected_lps * [-1, -1, 1], atol=1e-3)


def _write_dicom_series(volume_lps: sitk.Image, folder) -> None:
    """One CT slice per file with the geometry tags a scanner writes."""
    folder.mkdir()
    direction = volume_lps.GetDirection()
    for k in range(volume_lps.GetDepth()):
        s = volume_lps[:, :, k]
        s = sitk.JoinSeries(s)  # keep it 3D so the tags below are honoured
        pos = volume_lps.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": "CT",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": "1.2.826.0.1.3680043.2.1125.1.2",
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{x:.6f}" for x in pos),
            "0020|0037": "\\".join(
                f"{x:.6f}"
                for x in direction[0:1]
                + direction[3:4]
                + direction[6:7]
                + direction[1:2]
                + direction[4:5]
                + direction[7:8]
            ),
            "0028|0030": f"{volume_lps.GetSpacing()[1]:.6f}\\{volume_lps.GetSpacing()[0]:.6f}",
            "0018|0050": f"{volume_lps.GetSpacing()[2]:.6f}",
        }
        for tag, value in tags.items():
            s.SetMetaData(tag, value)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(s)


def test_dicom_series_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(-1000, 1000, size=(12, 10, 6)).astype(np.int16)  # [i, j, k]
    source = sitk.GetImageFromArray(np.transpose(data, (2, 1, 0)))
    source.SetSpacing((0.7, 0.9, 2.5))
    source.SetOrigin((-12.5, 30.0, -100.0))
    _write_dicom_series(source, tmp_path / "series")
    vol = read_volume(tmp_path / "series")
    np.testing.assert_array_equal(vol.data, data)
    np.testing.assert_allclose(vol.affine, affine_from_sitk(source), atol=1e-4)
    mask = write_mask(vol.data > 0, vol, tmp_path / "mask.nrrd")
    _assert_same_geometry(vol, read_label(mask, like=vol))


def test_numpy_inputs(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.save(tmp_path / "a.npy", data)
    vol = read_volume(tmp_path / "a.npy", spacing_mm=(1.0, 2.0, 3.0))
    assert vol.spacing_mm == (1.0, 2.0, 3.0)
    np.savez(tmp_path / "b.npz", image=data, spacing=np.array([0.5, 0.5, 5.0]))
    assert read_volume(tmp_path / "b.npz").spacing_mm == (0.5, 0.5, 5.0)
    with pytest.raises(InputError, match="carry no geometry"):
        read_volume(tmp_path / "a.npy")


def test_four_d_needs_a_channel(tmp_path):
    data = np.zeros((4, 5, 6, 3), dtype=np.float32)
    data[..., 2] = 7
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0])), tmp_path / "mm.nii.gz")
    with pytest.raises(InputError, match=r"4D volume with 3 channels; pick one with --channel"):
        read_volume(tmp_path / "mm.nii.gz")
    assert read_volume(tmp_path / "mm.nii.gz", channel=2).data.max() == 7
    with pytest.raises(InputError, match="out of range"):
        read_volume(tmp_path / "mm.nii.gz", channel=3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not an image"), "cannot read file"),
        (lambda p: p.write_bytes(gzip.compress(b"\x00" * 10)), "cannot read file"),
    ],
)
def test_unreadable_files(tmp_path, make, message):
    path = tmp_path / "bad.nii.gz"
    make(path)
    with pytest.raises(InputError, match=message) as err:
        read_volume(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_truncated_file(tmp_path):
    full = write_volume(read_volume(sample_path("brain2")), tmp_path / "full.nii.gz")
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match="cannot read file"):
        read_volume(cut)


def test_two_d_nan_and_unsupported(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 5), np.float32), np.eye(4)), tmp_path / "flat.nii")
    with pytest.raises(InputError, match="expected a 3D volume"):
        read_volume(tmp_path / "flat.nii")
    nanny = np.zeros((3, 3, 3), np.float32)
    nanny[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(nanny, np.eye(4)), tmp_path / "nan.nii")
    with pytest.raises(InputError, match="NaN"):
        read_volume(tmp_path / "nan.nii")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(InputError, match="unsupported file type"):
        read_volume(tmp_path / "x.png")
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "missing.nii.gz")


def test_label_checks(tmp_path):
    image = read_volume(sample_path("brain2"))
    empty = write_mask(np.zeros(image.shape, bool), image, tmp_path / "empty.nii.gz")
    with pytest.raises(InputError, match="empty"):
        read_label(empty, like=image)
    other = Volume(np.ones(image.shape, np.uint8), image.affine + 0, "other")
    other.affine[2, 3] += 5
    moved = write_volume(other, tmp_path / "moved.nii.gz")
    with pytest.raises(InputError, match="geometry"):
        read_label(moved, like=image)
    small = write_volume(Volume(np.ones((3, 3, 3), np.uint8)), tmp_path / "small.nrrd")
    with pytest.raises(InputError, match="shape"):
        read_label(small, like=image)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    image = read_volume(sample_path("brain2"))
    target = tmp_path / "mask.nrrd"
    target.write_text("old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", boom)
    with pytest.raises(InputError, match=r"mask\.nrrd: cannot write \(disk full"):
        write_mask(image.data > 0, image, target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["mask.nrrd"]
    with pytest.raises(InputError, match="cannot write"):
        write_volume(image, tmp_path / "mask.png")


def test_lps_helper_matches_itk():
    img = sitk.Image(3, 3, 3, sitk.sitkUInt8)
    img.SetSpacing((0.5, 0.6, 3.0))
    img.SetOrigin((1.0, 2.0, 3.0))
    np.testing.assert_allclose(affine_from_sitk(img), lps_affine((0.5, 0.6, 3.0), (1, 2, 3)))


def test_a_writer_that_fails_silently_is_caught_before_the_rename(tmp_path, monkeypatch):
    """Disk full under SimpleITK's NRRD writer: it raises nothing and leaves 4096 bytes."""
    image = read_volume(sample_path("brain2"))
    target = tmp_path / "mask.nrrd"
    target.write_text("old")
    real = sitk.WriteImage

    def truncated(img, name, *args):
        real(img, name, *args)
        with open(name, "r+b") as handle:
            handle.truncate(4096)

    monkeypatch.setattr(sitk, "WriteImage", truncated)
    with pytest.raises(InputError, match="does not read back"):
        write_mask(image.data > 0, image, target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["mask.nrrd"]


def test_temp_files_of_killed_writes_are_removed_at_the_next_write(tmp_path):
    import subprocess
    import sys

    image = read_volume(sample_path("brain2"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".mask.nii.gz.{dead}-0123abcd.tmp.nii.gz"
    live = tmp_path / f".other.nii.gz.{os.getpid()}-0123abcd.tmp.nii.gz"  # a write in progress
    stale.write_bytes(b"x" * 100)
    live.write_bytes(b"x" * 100)
    write_mask(image.data > 0, image, tmp_path / "mask2.nii.gz")
    assert not stale.exists() and live.exists()


def test_a_declared_size_over_the_limit_is_refused_before_reading(tmp_path):
    """A few bytes of .nii.gz declaring 1200^3 int16 must not allocate 3.4 GB."""
    import gzip
    import tracemalloc

    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape((1200, 1200, 1200))
    header.set_data_dtype(np.int16)
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4))
    assert path.stat().st_size < 200
    tracemalloc.start()
    with pytest.raises(InputError, match=r"1200x1200x1200 = 1,728,000,000 voxels, over the limit"):
        read_volume(path, max_voxels=10**8)
    assert tracemalloc.get_traced_memory()[1] < 50 * 2**20
    tracemalloc.stop()
    huge = tmp_path / "huge.nii.gz"
    header.set_data_shape((8192, 8192, 8192))  # 550 G voxels: over any default
    huge.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4))
    with pytest.raises(InputError, match="--max-voxels"):
        read_volume(huge)
    np.save(tmp_path / "big.npy", np.zeros((50, 50, 50), np.int16))
    with pytest.raises(InputError, match="over the limit"):
        read_volume(tmp_path / "big.npy", spacing_mm=(1, 1, 1), max_voxels=1000)
    np.savez(tmp_path / "big.npz", image=np.zeros((50, 50, 50), np.int16))
    with pytest.raises(InputError, match="over the limit"):
        read_volume(tmp_path / "big.npz", spacing_mm=(1, 1, 1), max_voxels=1000)
    sitk.WriteImage(sitk.Image(50, 50, 50, sitk.sitkInt16), str(tmp_path / "big.nrrd"))
    with pytest.raises(InputError, match="50x50x50x1 = 125,000 voxels"):
        read_volume(tmp_path / "big.nrrd", max_voxels=1000)
