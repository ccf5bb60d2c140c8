"""evaluate(), MetricResult JSON, slice selection in evaluate, MetricAccumulator."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from sam2vol.metrics import (
    METRIC_NAMES,
    MetricAccumulator,
    MetricResult,
    compute_surface_distances,
    dice,
    evaluate,
    iou,
)

SPACING = (0.7, 1.3, 2.5)


def blob(seed: int, shape: tuple[int, ...] = (24, 26, 18), sigma: float = 2.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.standard_normal(shape), sigma) > 0


def test_matches_individual_metrics() -> None:
    gt, pred = blob(0), blob(1)
    r = evaluate(pred, gt, spacing_mm=SPACING, tolerance_mm=1.5)
    d = compute_surface_distances(pred, gt, spacing_mm=SPACING)
    assert (r.dice, r.iou) == (dice(pred, gt), iou(pred, gt))
    assert (r.hd95_mm, r.nsd, r.assd_mm) == (d.hd95(), d.nsd(1.5), d.assd())
    assert (r.tolerance_mm, r.definition, r.slices, r.n_slices) == (1.5, "deepmind", "all", 18)
    assert (r.gt_voxels, r.pred_voxels) == (gt.sum(), pred.sum())


def test_monai_definition_passes_through() -> None:
    gt, pred = blob(2), blob(3)
    r = evaluate(pred, gt, spacing_mm=SPACING, definition="monai")
    d = compute_surface_distances(pred, gt, spacing_mm=SPACING, definition="monai")
    assert (r.hd95_mm, r.nsd, r.assd_mm, r.definition) == (d.hd95(), d.nsd(2.0), d.assd(), "monai")


EMPTY = [
    # pred empty, gt empty -> dice, iou, hd95, nsd, assd, and their JSON form
    (True, True, (1.0, 1.0, 0.0, 1.0, 0.0), (1.0, 1.0, 0.0, 1.0, 0.0)),
    (True, False, (0.0, 0.0, math.inf, 0.0, math.inf), (0.0, 0.0, "inf", 0.0, "inf")),
    (False, True, (0.0, 0.0, math.inf, 0.0, math.inf), (0.0, 0.0, "inf", 0.0, "inf")),
]


@pytest.mark.parametrize("definition", ["deepmind", "monai"])
@pytest.mark.parametrize(("pred_empty", "gt_empty", "values", "json_values"), EMPTY)
def test_empty_rule_and_json(pred_empty, gt_empty, values, json_values, definition) -> None:
    mask = blob(4)
    empty = np.zeros_like(mask)
    r = evaluate(
        empty if pred_empty else mask,
        empty if gt_empty else mask,
        spacing_mm=SPACING,
        definition=definition,
    )
    assert tuple(getattr(r, name) for name in METRIC_NAMES) == values
    data = r.to_json_dict()
    assert list(data)[:5] == list(METRIC_NAMES)
    assert tuple(data[name] for name in METRIC_NAMES) == json_values
    text = json.dumps(data, allow_nan=False)  # strict JSON: no Infinity
    assert MetricResult.from_json_dict(json.loads(text)) == r


def test_foreground_slices_drop_prediction_outside_reference_slices() -> None:
    gt = np.zeros((16, 16, 10), bool)
    gt[4:12, 4:12, 3:7] = True
    pred = gt.copy()
    pred[4:12, 4:12, 8] = True  # false positive on a background slice
    full = evaluate(pred, gt, spacing_mm=SPACING)
    kept = evaluate(pred, gt, spacing_mm=SPACING, slices="foreground", slice_axis=2)
    assert full.dice < 1.0 and full.hd95_mm > 0
    assert (kept.dice, kept.iou, kept.hd95_mm, kept.nsd, kept.assd_mm) == (1.0, 1.0, 0.0, 1.0, 0.0)
    assert (kept.slices, kept.n_slices, kept.pred_voxels) == ("foreground", 4, gt.sum())


def test_salient_slices_and_custom_index_agree_with_masking() -> None:
    gt, pred = blob(5), blob(6)
    counts = gt.sum(axis=(0, 1))
    threshold = int(np.median(counts))
    keep = counts > threshold
    assert 0 < keep.sum() < keep.size
    salient = evaluate(pred, gt, spacing_mm=SPACING, slices="salient", min_pixels=threshold)
    custom = evaluate(pred, gt, spacing_mm=SPACING, slices=keep)
    masked = evaluate(pred & keep, gt & keep, spacing_mm=SPACING)
    for name in METRIC_NAMES:
        assert getattr(salient, name) == getattr(custom, name) == getattr(masked, name)
    assert (salient.slices, custom.slices, salient.n_slices) == ("salient", "custom", keep.sum())


def test_slice_axis() -> None:
    gt = np.zeros((10, 12, 14), bool)
    gt[2:5, 3:9, 2:12] = True
    pred = gt.copy()
    pred[7, 3:9, 2:12] = True  # a whole extra slice along axis 0
    r = evaluate(pred, gt, spacing_mm=SPACING, slice_axis=0, slices="foreground")
    assert (r.dice, r.n_slices) == (1.0, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slices": "nonempty"}, "slice mode"),
        ({"slices": np.ones(5, bool)}, "boolean array of length 18"),
        ({"slices": np.ones(18, int)}, "boolean array"),
        ({"tolerance_mm": -1.0}, "tolerance_mm"),
        ({"definition": "medpy"}, "definition"),
        ({"spacing_mm": (1.0, 1.0)}, "one value per mask axis"),
        ({"slice_axis": 3, "slices": "foreground"}, "out of range"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    gt = blob(7)
    with pytest.raises(ValueError, match=message):
        evaluate(gt, gt, **{"spacing_mm": SPACING, **kwargs})


def test_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same shape"):
        evaluate(np.zeros((3, 3, 3)), np.zeros((3, 3, 4)), spacing_mm=SPACING)


def test_2d_masks() -> None:
    gt = np.zeros((12, 12), bool)
    gt[3:8, 3:8] = True
    r = evaluate(np.roll(gt, 1, axis=0), gt, spacing_mm=(2.0, 0.5), tolerance_mm=2.0)
    assert (r.hd95_mm, r.nsd, r.n_slices) == (2.0, 1.0, None)


# --- accumulator --------------------------------------------------------------


def _result(**values: float) -> MetricResult:
    base = {"dice": 1.0, "iou": 1.0, "hd95_mm": 0.0, "nsd": 1.0, "assd_mm": 0.0}
    return MetricResult(**{**base, **values}, tolerance_mm=2.0)


def test_accumulator_counts_infinite_values() -> None:
    acc = MetricAccumulator()
    acc.append(_result(dice=0.8, hd95_mm=3.0, assd_mm=1.0))
    acc.append(_result(dice=0.6, hd95_mm=5.0, assd_mm=2.0))
    acc.append(_result(dice=0.0, iou=0.0, hd95_mm=math.inf, nsd=0.0, assd_mm=math.inf))
    assert len(acc) == 3
    np.testing.assert_array_equal(acc.values("hd95_mm"), [3.0, 5.0, math.inf])
    mean = acc.mean()
    assert mean["dice"] == pytest.approx(1.4 / 3)
    assert mean["hd95_mm"] == 4.0  # finite values only ...
    assert acc.n_infinite() == {"dice": 0, "iou": 0, "hd95_mm": 1, "nsd": 0, "assd_mm": 1}
    summary = acc.summary()["hd95_mm"]  # ... and the rest is counted
    assert (summary.mean, summary.std, summary.median, summary.n, summary.n_infinite) == (
        4.0,
        1.0,
        4.0,
        3,
        1,
    )
    json.dumps(acc.to_json_dict(), allow_nan=False)


def test_accumulator_all_infinite_and_empty() -> None:
    acc = MetricAccumulator([_result(hd95_mm=math.inf, assd_mm=math.inf)])
    assert math.isnan(acc.mean()["hd95_mm"])
    assert acc.to_json_dict()["hd95_mm"] == {
        "mean": None,
        "std": None,
        "median": None,
        "n": 1,
        "n_infinite": 1,
    }
    acc.reset()
    assert len(acc) == 0
    assert math.isnan(acc.mean()["dice"])
    assert acc.summary()["dice"].n == 0


def test_accumulator_with_evaluate() -> None:
    gt = blob(8)
    acc = MetricAccumulator()
    acc.extend(evaluate(p, gt, spacing_mm=SPACING) for p in (gt, blob(9), np.zeros_like(gt)))
    assert [r.dice for r in acc] == list(acc.values("dice"))
    assert acc.results[0].dice == 1.0
    assert acc.n_infinite()["hd95_mm"] == 1


def test_accumulator_refuses_mixed_settings_and_other_types() -> None:
    acc = MetricAccumulator([_result()])
    with pytest.raises(ValueError, match="tolerance_mm"):
        acc.append(MetricResult(1.0, 1.0, 0.0, 1.0, 0.0, tolerance_mm=1.0))
    with pytest.raises(ValueError, match="definition"):
        acc.append(MetricResult(1.0, 1.0, 0.0, 1.0, 0.0, tolerance_mm=2.0, definition="monai"))
    with pytest.raises(TypeError):
        acc.append({"dice": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metric must be one of"):
        acc.values("hd100")
