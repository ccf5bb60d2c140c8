"""Each dataset reader on a tiny synthetic copy of its layout."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sam2vol import InputError, Volume
from sam2vol.datasets import Case, open_dataset
from sam2vol.io import write_volume

AFFINE = np.diag([0.8, 0.8, 2.0, 1.0])
SHAPE = (8, 6, 5)


def label_map(values=(1, 2)) -> np.ndarray:
    """Label 1 in the first rows, 2 beside it, 4 in a corner (when asked)."""
    data = np.zeros(SHAPE, np.uint8)
    if 1 in values:
        data[1:3, 1:4, 1:4] = 1
    if 2 in values:
        data[4:6, 1:4, 1:4] = 2
    if 4 in values:
        data[6:8, 4:6, 2:3] = 4
    return data


def save(path: Path, data: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.ndim == 4:
        nib.save(nib.Nifti1Image(data, AFFINE), str(path))
    else:
        write_volume(Volume(data, AFFINE), path)
    return path


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100, 10, SHAPE).astype(np.float32)


def test_msd_layout_names_channels_and_merge(tmp_path):
    root = tmp_path / "Task03_Liver"
    training = []
    for n in (10, 2):
        save(root / "imagesTr" / f"liver_{n}.nii.gz", image(n))
        save(root / "labelsTr" / f"liver_{n}.nii.gz", label_map((1,) if n == 2 else (1, 2)))
        training.append(
            {"image": f"./imagesTr/liver_{n}.nii.gz", "label": f"./labelsTr/liver_{n}.nii.gz"}
        )
    meta = {"labels": {"0": "background", "1": "liver", "2": "liver tumour"}, "training": training}
    (root / "dataset.json").write_text(json.dumps(meta))
    ds = open_dataset(f"msd:{root}")
    assert ds.case_ids() == ["liver_2", "liver_10"]  # natural order
    case = ds.load("liver_2")
    assert isinstance(case, Case) and case.image.shape == SHAPE
    # Declared labels are objects even when absent from a case (the runner skips those).
    assert [(o.name, o.values) for o in case.objects] == [("liver", (1,)), ("liver_tumour", (2,))]
    assert not case.mask(case.objects[1]).any()
    merged = open_dataset(f"msd:{root}", merge=["1+2"]).load("liver_10")
    assert [(o.name, o.values) for o in merged.objects] == [("liver+liver_tumour", (1, 2))]
    assert merged.mask(merged.objects[0]).sum() == 2 * 18
    assert [c.case_id for c in ds] == ["liver_2", "liver_10"]  # lazy iteration


def test_msd_brain_tumour_4d_channel(tmp_path):
    root = tmp_path / "Task01_BrainTumour"
    stack = np.stack([image(c) + 1000 * c for c in range(4)], axis=-1)
    save(root / "imagesTr" / "BRATS_001.nii.gz", stack)
    save(root / "labelsTr" / "BRATS_001.nii.gz", label_map((1, 2)))
    meta = {
        "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor"},
        "training": [],  # no list: the folders are matched
    }
    (root / "dataset.json").write_text(json.dumps(meta))
    flair = open_dataset(f"msd:{root}").load("BRATS_001")
    t1gd = open_dataset(f"msd:{root}", channel=2).load("BRATS_001")
    assert flair.image.shape == SHAPE
    assert 1500 < t1gd.image.data.mean() < 2500 and flair.image.data.mean() < 500
    with pytest.raises(InputError, match="channel 7"):
        open_dataset(f"msd:{root}", channel=7).load("BRATS_001")


def test_brats_regions_and_sequence(tmp_path):
    for n in (1, 2):
        folder = tmp_path / f"BraTS20_Training_00{n}"
        for i, seq in enumerate(("flair", "t1", "t1ce", "t2")):
            save(folder / f"BraTS20_Training_00{n}_{seq}.nii.gz", image(i) + 1000 * i)
        save(folder / f"BraTS20_Training_00{n}_seg.nii.gz", label_map((1, 2, 4)))
    (tmp_path / "BraTS20_Training_003").mkdir()  # no files: not a case
    ds = open_dataset(f"brats:{tmp_path}", channel="t1ce")
    assert ds.case_ids() == ["BraTS20_Training_001", "BraTS20_Training_002"]
    case = ds.load("BraTS20_Training_001")
    assert case.image.data.mean() > 1500
    sizes = {o.name: int(case.mask(o).sum()) for o in case.objects}
    # label 1: 18 voxels, 2: 18, 4: 4 -> WT 40, TC 22, ET 4
    assert sizes == {"whole_tumour": 40, "tumour_core": 22, "enhancing_tumour": 4}
    with pytest.raises(InputError, match="flair, t1, t1ce, t2"):
        open_dataset(f"brats:{tmp_path}", channel="dwi")


def test_btcv_layout_with_training_subfolder(tmp_path):
    base = tmp_path / "RawData" / "Training"
    save(base / "img" / "img0001.nii.gz", image())
    save(base / "label" / "label0001.nii.gz", label_map((1, 2)))
    save(base / "img" / "img0002.nii.gz", image())  # no label: left out
    ds = open_dataset(f"btcv:{tmp_path / 'RawData'}")
    assert ds.case_ids() == ["img0001"]
    names = [o.name for o in ds.load("img0001").objects]
    assert names[:3] == ["spleen", "right_kidney", "left_kidney"] and len(names) == 13


def test_abdomenct1k_layout(tmp_path):
    save(tmp_path / "AbdomenCT-1K-ImagePart1" / "Case_00001_0000.nii.gz", image())
    save(tmp_path / "Mask" / "Case_00001.nii.gz", label_map((1, 2)))
    ds = open_dataset(f"abdomenct1k:{tmp_path}")
    assert ds.case_ids() == ["Case_00001"]
    case = ds.load("Case_00001")
    assert [o.name for o in case.objects] == ["liver", "kidney", "spleen", "pancreas"]


def test_folder_layout_matches_names(tmp_path):
    save(tmp_path / "images" / "a.nii.gz", image())
    save(tmp_path / "labels" / "a.nii.gz", label_map((1,)))
    save(tmp_path / "images" / "b_0000.nrrd", image())  # nnU-Net channel suffix
    save(tmp_path / "labels" / "b.nrrd", label_map((2,)))
    save(tmp_path / "images" / "c.nii.gz", image())  # no label
    ds = open_dataset(f"folder:{tmp_path}", merge=[])
    assert ds.case_ids() == ["a", "b"]
    assert [o.name for o in ds.load("b").objects] == ["label2"]  # values present


def test_label_on_another_grid_is_an_error(tmp_path):
    save(tmp_path / "images" / "a.nii.gz", image())
    shifted = Volume(label_map(), np.diag([0.8, 0.8, 2.5, 1.0]))
    (tmp_path / "labels").mkdir()
    write_volume(shifted, tmp_path / "labels" / "a.nii.gz")
    with pytest.raises(InputError, match="geometry does not match"):
        open_dataset(f"folder:{tmp_path}").load("a")


def test_bad_specs(tmp_path):
    with pytest.raises(InputError, match="KIND:PATH"):
        open_dataset("nifti:/x")
    with pytest.raises(InputError, match="no such folder"):
        open_dataset(f"msd:{tmp_path / 'missing'}")
    with pytest.raises(InputError, match=r"dataset\.json"):
        open_dataset(f"msd:{tmp_path}")
    with pytest.raises(InputError, match="images/ and labels/"):
        open_dataset(f"folder:{tmp_path}")
    with pytest.raises(InputError, match="'\\+'"):
        open_dataset("samples:", merge=["1,2"])
    with pytest.raises(InputError, match="unknown sample"):
        open_dataset("samples:lung9")


def test_bundled_samples():
    ds = open_dataset("samples:")
    assert ds.case_ids() == ["lung2", "brain1", "brain2", "breast1", "lung1"]
    case = ds.load("lung2")
    assert [o.name for o in case.objects] == ["lung_mass"]
    assert case.mask(case.objects[0]).any()
