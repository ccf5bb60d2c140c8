"""Slice selection (background-slice removal, salient area) and per-slice Dice."""

from __future__ import annotations

import numpy as np
import pytest

from sam2vol.metrics import per_slice_dice, select_slices


def _gt_with_counts(counts: list[int], axis: int = 2) -> np.ndarray:
    """A (20, 20, n) mask whose slice k along the last axis has counts[k] pixels."""
    gt = np.zeros((20, 20, len(counts)), bool)
    for k, n in enumerate(counts):
        gt[:, :, k].flat[:n] = True
    return np.moveaxis(gt, 2, axis)


def test_modes() -> None:
    gt = _gt_with_counts([0, 1, 256, 257, 400, 0])
    np.testing.assert_array_equal(select_slices(gt, axis=2, mode="all"), [True] * 6)
    np.testing.assert_array_equal(
        select_slices(gt, axis=2, mode="foreground"), [False, True, True, True, True, False]
    )
    # Shen et al.: strictly more than 256 pixels.
    np.testing.assert_array_equal(
        select_slices(gt, axis=2, mode="salient"), [False, False, False, True, True, False]
    )
    np.testing.assert_array_equal(
        select_slices(gt, axis=2, mode="salient", min_pixels=0),
        select_slices(gt, axis=2, mode="foreground"),
    )


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_axis(axis: int) -> None:
    gt = _gt_with_counts([0, 300, 5], axis=axis % 3)
    np.testing.assert_array_equal(
        select_slices(gt, axis=axis, mode="salient"), [False, True, False]
    )
    np.testing.assert_array_equal(
        select_slices(gt, axis=axis, mode="foreground"), [False, True, True]
    )


def test_select_bad_arguments() -> None:
    gt = np.zeros((3, 3, 3), bool)
    with pytest.raises(ValueError, match="slice mode"):
        select_slices(gt, axis=2, mode="nonempty")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        select_slices(gt, axis=3)
    with pytest.raises(ValueError, match="min_pixels"):
        select_slices(gt, axis=0, mode="salient", min_pixels=-1)


def test_per_slice_dice_values() -> None:
    gt = np.zeros((4, 4, 4), bool)
    pred = np.zeros_like(gt)
    gt[:2, :, 0] = True  # 8 px
    pred[:1, :, 0] = True  # 4 px inside: 2*4/12
    gt[:, :, 1] = True  # pred empty: 0
    pred[:, :, 2] = True  # gt empty: 0
    # slice 3: both empty
    result = per_slice_dice(pred, gt, axis=2)
    np.testing.assert_allclose(result[:3], [8 / 12, 0.0, 0.0])
    assert np.isnan(result[3])
    assert per_slice_dice(pred, gt, axis=2, both_empty=1.0)[3] == 1.0
    assert np.nanmean(result) == pytest.approx((8 / 12) / 3)


def test_per_slice_dice_random_against_formula() -> None:
    rng = np.random.default_rng(0)
    pred = rng.random((6, 9, 7)) > 0.5
    gt = rng.random((6, 9, 7)) > 0.5
    for axis in range(3):
        result = per_slice_dice(pred, gt, axis=axis)
        for k in range(pred.shape[axis]):
            p, g = np.take(pred, k, axis=axis), np.take(gt, k, axis=axis)
            assert result[k] == pytest.approx(2 * (p & g).sum() / (p.sum() + g.sum()))


def test_per_slice_dice_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same shape"):
        per_slice_dice(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), axis=2)
