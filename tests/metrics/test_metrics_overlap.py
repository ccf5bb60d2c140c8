"""Dice and IoU: hand-computed values, empty masks, medpy and the plain formula."""

from __future__ import annotations

import numpy as np
import pytest

from sam2vol.metrics import dice, iou


def test_hand_computed() -> None:
    gt = np.zeros((4, 5, 3), bool)
    gt[0:2, :, 0] = True  # 10 voxels
    pred = np.zeros_like(gt)
    pred[1:3, :, 0] = True  # 10 voxels, 5 shared
    assert dice(pred, gt) == 2 * 5 / 20
    assert iou(pred, gt) == 5 / 15


@pytest.mark.parametrize(
    ("pred_empty", "gt_empty", "expected"),
    [(True, True, 1.0), (True, False, 0.0), (False, True, 0.0)],
)
def test_empty_masks(pred_empty: bool, gt_empty: bool, expected: float) -> None:
    mask = np.zeros((5, 5, 5), bool)
    mask[1:3, 1:3, 1:3] = True
    empty = np.zeros_like(mask)
    pred, gt = (empty if pred_empty else mask), (empty if gt_empty else mask)
    assert dice(pred, gt) == expected
    assert iou(pred, gt) == expected


def test_disjoint_masks() -> None:
    a = np.zeros((6, 6), bool)
    a[:2] = True
    assert dice(a, a[::-1]) == 0.0
    assert iou(a, a[::-1]) == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_random_against_formula_and_medpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred = rng.random((17, 23, 11)) > 0.6
    gt = rng.random((17, 23, 11)) > 0.5
    inter = np.logical_and(pred, gt).sum()
    assert dice(pred, gt) == pytest.approx(2 * inter / (pred.sum() + gt.sum()), rel=1e-15)
    assert iou(pred, gt) == pytest.approx(inter / np.logical_or(pred, gt).sum(), rel=1e-15)
    binary = pytest.importorskip("medpy.metric.binary")
    assert dice(pred, gt) == pytest.approx(binary.dc(pred, gt), rel=1e-12)
    assert iou(pred, gt) == pytest.approx(binary.jc(pred, gt), rel=1e-12)


def test_dice_iou_relation() -> None:
    rng = np.random.default_rng(9)
    pred, gt = rng.random((2, 30, 30)) > 0.4
    d, j = dice(pred, gt), iou(pred, gt)
    assert d == pytest.approx(2 * j / (1 + j), rel=1e-12)


def test_array_likes_and_labels_cast_to_bool() -> None:
    gt = [[0, 2, 2], [0, 0, 7]]  # non-zero labels are foreground
    pred = np.array([[0.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    assert dice(pred, gt) == 2 * 2 / 5
    assert iou(pred, gt) == 2 / 3


def test_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"same shape, got \(3, 4\) and \(4, 3\)"):
        dice(np.zeros((3, 4)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="same shape"):
        iou(np.zeros((3, 4)), np.zeros((3, 4, 1)))
