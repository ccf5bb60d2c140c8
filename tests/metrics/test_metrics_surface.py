"""Surface distances: hand-computed cases, empty masks, and DeepMind's surface-distance."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage

from sam2vol.metrics import SurfaceDistances, compute_surface_distances
from sam2vol.metrics._common import crop_pair
from sam2vol.metrics.surface import (
    _corner_bit_offsets,
    _surfel_size_table,
    surface_distances_cropped,
)

SPACING = (0.7, 1.3, 2.5)

# surface_distance 0.1 still uses scipy.ndimage.filters/morphology.
pytestmark = pytest.mark.filterwarnings("ignore:Please import:DeprecationWarning")


def blob(seed: int, shape: tuple[int, ...], sigma: float = 2.0, level: float = 0.0) -> np.ndarray:
    """Smooth random blob(s); often touching the array border."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.standard_normal(shape), sigma) > level


def single_voxel(shape: tuple[int, ...], index: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[index] = True
    return mask


# --- hand-computed ----------------------------------------------------------


def test_two_voxels_three_slices_apart() -> None:
    # Spacing (1, 1, 2.5); voxels at z = 1 and z = 4. The surface of one voxel is
    # its 8 corner points, all with the same area (one cut-off corner each).
    # gt corners lie on the corner planes z = 1 and z = 2, pred corners on z = 4
    # and z = 5, with the same (x, y). Nearest distances, both directions:
    #   corner plane 2 -> 4 (or 4 -> 2): 2 slices * 2.5 mm = 5.0 mm (4 corners)
    #   corner plane 1 -> 4 (or 5 -> 2): 3 slices * 2.5 mm = 7.5 mm (4 corners)
    # Sorted, equal areas: share 0.5 after the four 5.0 mm corners, so the 95th
    # percentile is 7.5 mm (HD95 = 7.5) and the 50th is 5.0 mm.
    # ASSD = (4 * 5.0 + 4 * 7.5) / 8 = 6.25 mm. NSD(5 mm) = 0.5, NSD(7.5 mm) = 1.
    gt = single_voxel((5, 5, 7), (2, 2, 1))
    pred = single_voxel((5, 5, 7), (2, 2, 4))
    d = compute_surface_distances(pred, gt, spacing_mm=(1.0, 1.0, 2.5))
    assert d.hd95() == 7.5
    assert d.hausdorff(100) == 7.5
    assert d.hausdorff(50) == 5.0
    assert d.assd() == pytest.approx(6.25, rel=1e-12)
    assert d.nsd(5.0) == pytest.approx(0.5, rel=1e-12)
    assert d.nsd(7.5) == 1.0
    assert d.nsd(4.9) == 0.0
    assert len(d.weights_gt) == len(d.weights_pred) == 8
    # One corner's triangle, unit-cube area vector (1/8, 1/8, 1/8) scaled by the
    # products of the other spacings: |(2.5, 2.5, 1)| / 8.
    np.testing.assert_allclose(d.weights_gt, math.sqrt(2.5**2 + 2.5**2 + 1.0) / 8)


def test_two_voxels_monai_definition() -> None:
    # Boundary voxels are the voxels themselves: one distance of 3 * 2.5 mm each way.
    gt = single_voxel((5, 5, 7), (2, 2, 1))
    pred = single_voxel((5, 5, 7), (2, 2, 4))
    d = compute_surface_distances(pred, gt, spacing_mm=(1.0, 1.0, 2.5), definition="monai")
    assert (d.hd95(), d.assd(), d.nsd(7.4), d.nsd(7.5)) == (7.5, 7.5, 0.0, 1.0)
    np.testing.assert_array_equal(d.weights_gt, [1.0])


def test_two_pixels_2d() -> None:
    # Spacing (2.0, 0.5): pixels at row 1 and row 3, same column. Corner rows of
    # gt: 1, 2; of pred: 3, 4. Distances 1 or 2 rows = 2.0 or 4.0 mm, 2 corners
    # each, all 4 contour pieces of one pixel have length |(2.0, 0.5)| / 2.
    gt = single_voxel((6, 4), (1, 1))
    pred = single_voxel((6, 4), (3, 1))
    d = compute_surface_distances(pred, gt, spacing_mm=(2.0, 0.5))
    assert d.hd95() == 4.0
    assert d.hausdorff(50) == 2.0
    assert d.assd() == pytest.approx(3.0, rel=1e-12)
    assert d.nsd(2.0) == pytest.approx(0.5, rel=1e-12)
    np.testing.assert_allclose(d.weights_gt, 0.5 * math.hypot(2.0, 0.5))


def test_identical_masks() -> None:
    mask = blob(1, (20, 20, 12))
    d = compute_surface_distances(mask, mask, spacing_mm=SPACING)
    assert (d.hd95(), d.hausdorff(), d.assd(), d.nsd(0.0)) == (0.0, 0.0, 0.0, 1.0)


def test_box_shifted_one_slice() -> None:
    # A box moved by one slice (2.5 mm) along axis 2: every corner of one surface
    # is at most one slice from the other surface, and the side walls coincide.
    gt = np.zeros((10, 10, 6), bool)
    gt[2:7, 2:7, 1:4] = True
    pred = np.roll(gt, 1, axis=2)
    d = compute_surface_distances(pred, gt, spacing_mm=(0.7, 0.7, 2.5))
    assert d.hausdorff() == 2.5
    assert d.nsd(2.5) == 1.0
    assert 0.0 < d.nsd(2.4) < 1.0


# --- empty masks --------------------------------------------------------------

EMPTY_CASES = [
    # (pred empty, gt empty) -> (hd95, hausdorff, assd, nsd)
    (True, True, (0.0, 0.0, 0.0, 1.0)),
    (True, False, (math.inf, math.inf, math.inf, 0.0)),
    (False, True, (math.inf, math.inf, math.inf, 0.0)),
]


@pytest.mark.parametrize("definition", ["deepmind", "monai"])
@pytest.mark.parametrize(("pred_empty", "gt_empty", "expected"), EMPTY_CASES)
def test_empty_masks(pred_empty: bool, gt_empty: bool, expected: tuple, definition: str) -> None:
    mask = np.zeros((6, 7, 5), bool)
    mask[2:4, 2:5, 1:3] = True
    empty = np.zeros_like(mask)
    d = compute_surface_distances(
        empty if pred_empty else mask,
        empty if gt_empty else mask,
        spacing_mm=SPACING,
        definition=definition,
    )
    assert (d.pred_empty, d.gt_empty) == (pred_empty, gt_empty)
    assert (d.hd95(), d.hausdorff(100), d.assd(), d.nsd(2.0)) == expected


def test_one_empty_distances_are_inf() -> None:
    mask = blob(2, (10, 10, 8))
    d = compute_surface_distances(mask, np.zeros_like(mask), spacing_mm=SPACING)
    assert d.distances_gt_to_pred_mm.size == 0
    assert d.distances_pred_to_gt_mm.size > 0
    assert np.all(np.isinf(d.distances_pred_to_gt_mm))


# --- DeepMind's surface-distance ---------------------------------------------


def _ours(pred, gt, spacing, engine: str, definition: str = "deepmind") -> SurfaceDistances:
    """Our distances with a given nearest-point engine ("edt" or "kdtree")."""
    return surface_distances_cropped(
        *crop_pair(pred, gt),
        spacing_mm=spacing,
        definition=definition,
        threads=None,
        engine=engine,
    )


def _deepmind(pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...]) -> dict:
    sd = pytest.importorskip("surface_distance")
    return sd.compute_surface_distances(gt, pred, spacing)


CASES = [
    # (seed, shape, spacing, sigma_gt, sigma_pred)
    (0, (28, 30, 24), (0.7, 1.3, 2.5), 2.5, 2.0),
    (1, (32, 26, 20), (0.7, 1.3, 2.5), 3.0, 3.0),
    (2, (24, 24, 24), (1.0, 1.0, 1.0), 2.0, 2.5),
    (3, (30, 30, 16), (0.8, 0.8, 3.0), 3.0, 2.0),
    (4, (48, 40), (0.7, 1.3), 3.0, 2.5),
    (5, (36, 52), (1.0, 2.5), 2.0, 3.5),
]


@pytest.mark.parametrize("engine", ["edt", "kdtree"])
@pytest.mark.parametrize(("seed", "shape", "spacing", "sigma_gt", "sigma_pred"), CASES)
def test_equals_deepmind(
    seed: int,
    shape: tuple[int, ...],
    spacing: tuple[float, ...],
    sigma_gt: float,
    sigma_pred: float,
    engine: str,
) -> None:
    sd = pytest.importorskip("surface_distance")
    gt = blob(seed, shape, sigma_gt)
    pred = blob(seed + 100, shape, sigma_pred) | (gt & blob(seed + 200, shape, 1.5, 0.1))
    ref = _deepmind(pred, gt, spacing)
    ours = _ours(pred, gt, spacing, engine)

    np.testing.assert_allclose(
        np.sort(ours.weights_gt), np.sort(ref["surfel_areas_gt"]), rtol=1e-12
    )
    np.testing.assert_allclose(
        np.sort(ours.distances_pred_to_gt_mm), ref["distances_pred_to_gt"], rtol=1e-6
    )
    for percent in (50, 95, 100):
        expected = sd.compute_robust_hausdorff(ref, percent)
        assert ours.hausdorff(percent) == pytest.approx(expected, rel=1e-12, abs=0)
    # Tolerances include exact lattice distances (1, 2 voxels), where the float32
    # transform alone would decide ties differently.
    tolerances = {0.0, 1.0, 2.0, spacing[0], 2 * spacing[0], spacing[-1], math.hypot(*spacing[:2])}
    for tol in sorted(tolerances):
        expected = sd.compute_surface_dice_at_tolerance(ref, tol)
        assert ours.nsd(tol) == pytest.approx(expected, rel=1e-12, abs=1e-15), tol
    mean_gt, mean_pred = sd.compute_average_surface_distance(ref)
    area_gt, area_pred = ref["surfel_areas_gt"].sum(), ref["surfel_areas_pred"].sum()
    expected = (mean_gt * area_gt + mean_pred * area_pred) / (area_gt + area_pred)
    assert ours.assd() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("engine", ["edt", "kdtree"])
@pytest.mark.parametrize(
    ("spacing", "shift", "axis"),
    [
        ((0.8, 0.8, 0.8), 2, 0),
        ((0.3, 0.3, 0.9), 3, 0),
        ((0.1, 0.6, 0.7), 7, 0),
        ((0.7, 1.3, 2.1), 3, 2),
    ],
)
def test_tolerance_tie_equals_deepmind(
    spacing: tuple[float, ...], shift: int, axis: int, engine: str
) -> None:
    # Every surfel is exactly `shift` voxels from the other surface: NSD at that
    # distance is 1 in float64 (DeepMind) and must be 1 here too.
    sd = pytest.importorskip("surface_distance")
    gt = np.zeros((30, 30, 30), bool)
    gt[8:20, 9:21, 10:19] = True
    pred = np.roll(gt, shift, axis=axis)
    tol = shift * spacing[axis]
    ref = _deepmind(pred, gt, spacing)
    d = _ours(pred, gt, spacing, engine)
    assert d.nsd(tol) == sd.compute_surface_dice_at_tolerance(ref, tol)
    assert d.hd95() == sd.compute_robust_hausdorff(ref, 95)


@pytest.mark.parametrize("spacing", [(0.7, 1.3, 2.5), (1.0, 1.0, 1.0), (0.3, 2.0, 5.0)])
def test_surfel_areas_equal_deepmind_table(spacing: tuple[float, ...]) -> None:
    lookup = pytest.importorskip("surface_distance.lookup_tables")
    ref = lookup.create_table_neighbour_code_to_surface_area(spacing)
    ours = _surfel_size_table(spacing)
    kernel = lookup.ENCODE_NEIGHBOURHOOD_3D_KERNEL
    offsets = _corner_bit_offsets(3)
    # Same 2x2x2 neighbourhood, encoded by each library's own bit order.
    for inside in itertools.product((0, 1), repeat=8):
        cube = np.array(inside).reshape(2, 2, 2)
        ref_code = int(np.sum(kernel * cube))
        our_code = sum(int(cube[o]) << bit for bit, o in enumerate(offsets))
        assert ours[our_code] == pytest.approx(ref[ref_code], rel=1e-12, abs=1e-15)


def test_contour_lengths_equal_deepmind_table() -> None:
    lookup = pytest.importorskip("surface_distance.lookup_tables")
    spacing = (0.7, 2.5)
    ref = lookup.create_table_neighbour_code_to_contour_length(spacing)
    ours = _surfel_size_table(spacing)
    kernel = lookup.ENCODE_NEIGHBOURHOOD_2D_KERNEL
    for inside in itertools.product((0, 1), repeat=4):
        square = np.array(inside).reshape(2, 2)
        our_code = sum(int(square[o]) << bit for bit, o in enumerate(_corner_bit_offsets(2)))
        assert ours[our_code] == pytest.approx(ref[int(np.sum(kernel * square))], rel=1e-12)


# --- the "monai" definition against a plain scipy version ---------------------


def _monai_reference(pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...], tol: float):
    edges = [m ^ ndimage.binary_erosion(m) for m in (pred, gt)]
    to_gt = ndimage.distance_transform_edt(~edges[1], sampling=spacing)[edges[0]]
    to_pred = ndimage.distance_transform_edt(~edges[0], sampling=spacing)[edges[1]]
    hd95 = max(np.percentile(to_gt, 95), np.percentile(to_pred, 95))
    nsd = (np.sum(to_gt <= tol) + np.sum(to_pred <= tol)) / (to_gt.size + to_pred.size)
    assd = np.concatenate([to_gt, to_pred]).mean()
    return hd95, nsd, assd


@pytest.mark.parametrize("engine", ["edt", "kdtree"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monai_definition_equals_plain_reference(seed: int, engine: str) -> None:
    shape, spacing = (26, 30, 22), (0.7, 1.3, 2.5)
    gt = blob(seed, shape, 2.5)
    pred = blob(seed + 50, shape, 2.0)
    hd95, nsd, assd = _monai_reference(pred, gt, spacing, 2.0)
    d = _ours(pred, gt, spacing, engine, definition="monai")
    assert d.hd95() == pytest.approx(hd95, rel=1e-12)
    assert d.nsd(2.0) == pytest.approx(nsd, rel=1e-12)
    assert d.assd() == pytest.approx(assd, rel=1e-6)


# --- invariances and inputs ---------------------------------------------------


def test_padding_and_threads_do_not_change_results() -> None:
    gt = blob(7, (20, 22, 14), 2.5)
    pred = blob(8, (20, 22, 14), 2.5)
    d = compute_surface_distances(pred, gt, spacing_mm=SPACING)
    pad = ((1, 9), (0, 3), (4, 0))
    padded = compute_surface_distances(
        np.pad(pred, pad), np.pad(gt, pad), spacing_mm=SPACING, threads=1
    )
    assert (padded.hd95(), padded.nsd(2.0), padded.assd()) == pytest.approx(
        (d.hd95(), d.nsd(2.0), d.assd()), rel=1e-12
    )


def test_accepts_array_likes_and_labels() -> None:
    gt = [[0, 0, 0, 0], [0, 3, 3, 0], [0, 0, 0, 0]]
    pred = np.array(gt, dtype=np.float32) * 0.5
    d = compute_surface_distances(pred, gt, spacing_mm=[1, 2])
    assert isinstance(d, SurfaceDistances)
    assert d.hd95() == 0.0


def test_shape_mismatch_is_a_one_line_value_error() -> None:
    with pytest.raises(ValueError, match=r"same shape, got \(4, 4, 4\) and \(4, 4, 5\)") as info:
        compute_surface_distances(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)), spacing_mm=SPACING)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("shape", "spacing", "definition", "message"),
    [
        ((4, 4, 4), (1.0, 1.0), "deepmind", "one value per mask axis"),
        ((4, 4, 4), (1.0, 0.0, 1.0), "deepmind", "finite and > 0"),
        ((4,), (1.0,), "deepmind", "2D or 3D"),
        ((2, 2, 2, 2), (1.0,) * 4, "deepmind", "2D or 3D"),
        ((4, 4, 4), SPACING, "hausdorff", "definition must be one of"),
    ],
)
def test_bad_arguments(shape, spacing, definition, message) -> None:
    with pytest.raises(ValueError, match=message):
        compute_surface_distances(
            np.ones(shape), np.ones(shape), spacing_mm=spacing, definition=definition
        )


def test_bad_percentile_and_tolerance() -> None:
    mask = blob(3, (8, 8, 8))
    d = compute_surface_distances(mask, mask, spacing_mm=SPACING)
    with pytest.raises(ValueError, match="percentile"):
        d.hausdorff(101)
    with pytest.raises(ValueError, match="tolerance_mm"):
        d.nsd(-1.0)
    with pytest.raises(ValueError, match="tolerance_mm"):
        d.nsd(math.nan)


def test_auto_engine_picks_kdtree_for_a_sparse_box() -> None:
    # Two small blobs far apart: a large box with little surface.
    gt = np.zeros((120, 120, 40), bool)
    gt[5:15, 5:15, 2:6] = True
    pred = gt.copy()
    pred[100:110, 100:112, 30:34] = True
    auto = compute_surface_distances(pred, gt, spacing_mm=SPACING)
    kdtree = _ours(pred, gt, SPACING, "kdtree")
    edt_based = _ours(pred, gt, SPACING, "edt")
    # The k-d tree gives float64 distances, the EDT float32 ones.
    np.testing.assert_array_equal(auto.distances_pred_to_gt_mm, kdtree.distances_pred_to_gt_mm)
    assert not np.array_equal(auto.distances_pred_to_gt_mm, edt_based.distances_pred_to_gt_mm)
    assert (auto.hd95(), auto.nsd(2.0)) == (edt_based.hd95(), edt_based.nsd(2.0))
    assert auto.assd() == pytest.approx(edt_based.assd(), rel=1e-6)


# --- the "monai" definition against MONAI itself ------------------------------


@pytest.mark.parametrize("seed", [0, 3, 5, 9])
def test_monai_definition_equals_monai(seed: int) -> None:
    metrics = pytest.importorskip("monai.metrics")
    torch = pytest.importorskip("torch")
    shape, spacing, tol = (26, 30, 22), (0.7, 1.3, 2.5), 2.0
    gt = blob(seed, shape, 2.5)
    pred = blob(seed + 50, shape, 2.0)

    def onehot(m: np.ndarray):
        return torch.from_numpy(np.stack([~m, m])[None].astype(np.float32))

    p, g = onehot(pred), onehot(gt)
    kw = {"include_background": False, "spacing": spacing}
    hd95 = float(metrics.compute_hausdorff_distance(p, g, percentile=95, **kw)[0, 0])
    nsd = float(metrics.compute_surface_dice(p, g, class_thresholds=[tol], **kw)[0, 0])
    assd = float(metrics.compute_average_surface_distance(p, g, symmetric=True, **kw)[0, 0])
    d = compute_surface_distances(pred, gt, spacing_mm=spacing, definition="monai")
    assert d.hd95() == pytest.approx(hd95, rel=1e-6)
    assert d.nsd(tol) == pytest.approx(nsd, rel=1e-6)
    assert d.assd() == pytest.approx(assd, rel=1e-6)
