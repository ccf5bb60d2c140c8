"""Each protocol's prompts against the authors' released code, re-implemented here.

The functions prefixed ``released_`` are written in this file from the text of
the released scripts (cited at each), not from ``sam2vol.protocols.rules``: they
work, as the scripts do, on the array as loaded (``label[:, :, k]`` of the
nibabel/MONAI array ``[i, j, k]``), with torch where the scripts use torch.
They are checked against the protocols on the bundled volumes (brain1 and
brain2 are row-flipped in the radiological display and transposed, lung2 is
only transposed), and on constructed tie cases. The protocol-level tests drive a
session with the released loops themselves and compare the prompt logs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.ndimage import binary_erosion
from skimage.measure import label as sk_label

from sam2vol.datasets import open_dataset
from sam2vol.protocols import SimulatedUser, create_protocol
from sam2vol.protocols.frame import ArrayFrame
from sam2vol.session import Session
from sam2vol.slicing import SliceGeometry

CASES = ("brain1", "brain2", "lung2")


@pytest.fixture(scope="module")
def samples():
    ds = open_dataset("samples:")
    out = {}
    for case_id in CASES:
        case = ds.load(case_id)
        out[case_id] = (case.image, case.mask(case.objects[0]).astype(bool))
    return out


def test_the_bundled_volumes_cover_flipped_and_unflipped_displays(samples):
    flips = {}
    for case_id, (image, _) in samples.items():
        g = SliceGeometry.for_volume(image, "axial")
        assert g.slice_axis == 2  # the released code's label[:, :, k]
        flips[case_id] = g.flip_rows or g.flip_cols
    assert flips == {"brain1": True, "brain2": True, "lung2": False}


def user_for(image, gt) -> SimulatedUser:
    g = SliceGeometry.for_volume(image, "axial")
    return SimulatedUser(ArrayFrame(g).to_stack(gt), g.slice_axis)


def predictions(gt2d: np.ndarray, k: int) -> list[np.ndarray]:
    """Imperfect predictions of one slice: none, eroded, dilated, shifted, and with holes."""
    rng = np.random.default_rng(k)
    holes = gt2d & (rng.random(gt2d.shape) > 0.3)
    return [
        np.zeros_like(gt2d),
        ndimage.binary_erosion(gt2d, iterations=2),
        ndimage.binary_dilation(gt2d, iterations=3),
        np.roll(gt2d, (4, -3), axis=(0, 1)),
        ndimage.binary_opening(holes),
    ]


# ----- Shen et al.: segment_any_image_with_clicks.py @8a2b771 ------------------------------
def released_find_largest_enclosed_point(img):
    """find_largest_enclosed_point (lines 10-36), disturb=False."""
    img = np.pad(img, 1, mode="constant")
    lab, num = ndimage.label(img)
    max_distance, max_coordinate = 1.42, (0, 0)
    for i in range(1, num + 1):
        region = (lab == i).astype(int)
        dist = ndimage.distance_transform_edt(region)
        if np.max(dist) > max_distance:
            max_distance = np.max(dist)
            max_coordinate = np.unravel_index(np.argmax(dist), dist.shape)
    if max_distance == 1.42:
        return max_distance, (None, None)
    return max_distance, (max_coordinate[1] - 1, max_coordinate[0] - 1)


def released_shen_click(gt, out_mask):
    """perform_iteration (lines 112-138): (x, y, label) or None."""
    fn = np.logical_and(gt, np.logical_not(out_mask))
    fp = np.logical_and(np.logical_not(gt), out_mask)
    d1, c1 = released_find_largest_enclosed_point(fn)
    d2, c2 = released_find_largest_enclosed_point(fp)
    col, lab = (c1, 1) if d1 >= d2 else (c2, 0)
    return None if col[0] is None else (col[0], col[1], lab)


def as_released(click):
    return None if click is None else (click.col, click.row, int(click.positive))


@pytest.mark.parametrize("case_id", CASES)
def test_shen_clicks_equal_the_released_rule_on_real_slices(samples, case_id):
    image, gt = samples[case_id]
    user = user_for(image, gt)
    checked = 0
    for k in np.flatnonzero(gt.any(axis=(0, 1))):
        g2 = gt[:, :, k]
        for pred in predictions(g2, int(k)):
            ours = as_released(user.farthest_error_click(int(k), pred))
            assert ours == released_shen_click(g2, pred), (case_id, k)
            checked += ours is not None
    assert checked > 10


def test_shen_tie_between_components_goes_to_the_first_labelled():
    gt = np.zeros((12, 12), bool)
    gt[7:10, 1:4] = True  # labelled second (raster order), depth 2
    gt[1:4, 6:9] = True  # labelled first, depth 2
    user = SimulatedUser(gt[None])
    click = user.farthest_error_click(0, np.zeros_like(gt))
    assert as_released(click) == released_shen_click(gt, np.zeros_like(gt)) == (7, 2, 1)


def test_shen_tie_goes_to_the_first_labelled_even_when_its_pixel_comes_later():
    gt = np.zeros((10, 10), bool)
    gt[0:6, 2] = True  # a stalk from row 0 makes this component the first labelled ...
    gt[6:9, 1:4] = True  # ... its deepest pixel (7, 2), depth 2
    gt[2:5, 6:9] = True  # labelled second; deepest (3, 7), depth 2, earlier in row-major order
    click = SimulatedUser(gt[None]).farthest_error_click(0, np.zeros_like(gt))
    assert as_released(click) == released_shen_click(gt, np.zeros_like(gt)) == (2, 7, 1)


def test_shen_tie_inside_a_component_goes_to_the_first_pixel_in_row_major_order():
    gt = np.zeros((8, 10), bool)
    gt[2:5, 1:9] = True  # depth 2 along row 3, cols 2..7
    click = SimulatedUser(gt[None]).farthest_error_click(0, np.zeros_like(gt))
    assert as_released(click) == released_shen_click(gt, np.zeros_like(gt)) == (2, 3, 1)


# ----- Shen et al.: nii_2_video.py @8a2b771 --------------------------------------------------
def released_video(label_data, threshold, margins=(None, None)):
    """load_nii_gz_files (lines 51-68): the video's slice range and its centre frame."""
    counts = np.sum(label_data > 0, axis=(0, 1))
    positive = np.where(counts > threshold)[0]
    if threshold != 0:
        lo, hi = max(0, np.min(positive)), min(label_data.shape[2], np.max(positive))
    else:
        lo = max(0, np.min(positive) - margins[0])
        hi = min(label_data.shape[2], np.max(positive) + margins[1])
    frames = list(range(lo, hi))
    return frames, frames[len(frames) // 2]  # frame_idx = len(frame_names) // 2


@pytest.mark.parametrize("case_id", CASES)
@pytest.mark.parametrize("salient", [True, False])
def test_shen_video_and_centre_frame_equal_nii_2_video(samples, case_id, salient):
    image, gt = samples[case_id]
    result = create_protocol(f"shen2024-mask:salient={str(salient).lower()}").run(
        image, gt, "default", seed=3
    )
    if salient and not (gt.sum(axis=(0, 1)) > 256).any():  # brain2: nii_2_video skips it
        assert result.status == "skipped" and "no video" in result.reason
        return
    rng = np.random.default_rng(3)  # the run's seeded generator draws the two margins
    margins = (int(rng.integers(5, 10)), int(rng.integers(5, 10)))
    frames, centre = released_video(gt, 256 if salient else 0, margins)
    if not gt[:, :, centre].any():  # the released script prompts an empty mask; sam2vol skips
        assert result.status == "skipped" and f"centre frame {centre} is empty" in result.reason
        return
    assert result.prompted_slices == [centre]
    keep = np.zeros(gt.shape[2], bool)
    keep[frames] = True
    scored = gt & keep[None, None, :]
    assert result.metrics["video"]["dice"] == pytest.approx(
        2 * (result.mask & scored).sum() / (result.mask[:, :, keep].sum() + scored.sum())
    )


def released_shen_clicks_loop(image, gt, seed, steps=5):
    """segment_any_image_with_clicks.py lines 97-163 on a sam2vol session (threshold 0)."""
    rng = np.random.default_rng(seed)
    _, frame_idx = released_video(gt, 0, (int(rng.integers(5, 10)), int(rng.integers(5, 10))))
    session = Session(image, "default", axis="axial", intensity="slice-minmax")
    session.add_object("object", object_id=1)
    gt2 = gt[:, :, frame_idx]
    if gt2.sum() <= 100:
        return None
    out_mask = np.zeros_like(gt2)
    for _ in range(steps):  # perform_iteration: each click adds to the frame's points
        click = released_shen_click(gt2, out_mask)
        if click is None:
            continue
        x, y, lab = click
        out_mask = session.add_point((y, x, frame_idx), positive=bool(lab), object_id=1)
        out_mask = session.mask(1)[:, :, frame_idx]
    for _ in session.propagate(frame_idx, "both"):
        pass
    return session


@pytest.mark.parametrize("case_id", CASES)
def test_shen2024_clicks_prompts_equal_the_released_loop(samples, case_id):
    image, gt = samples[case_id]
    result = create_protocol("shen2024-clicks").run(image, gt, "default", seed=2)
    session = released_shen_clicks_loop(image, gt, seed=2)
    if session is None:
        assert result.status == "skipped" and "<= 100 pixels" in result.reason
        return
    assert result.to_json_dict()["events"] == session.log_dict()["events"]
    np.testing.assert_array_equal(result.mask, session.mask(1))


# ----- He et al.: val_multigpu_sam2_point_iterative.py @f73d7c2 ------------------------------
def released_get_points_from_label(label):
    """get_points_from_label (lines 77-88); MONAI's largest component is skimage's label."""
    lab = sk_label(label.numpy(), connectivity=3)
    sizes = np.bincount(lab.ravel())[1:]
    plabels = torch.from_numpy(lab == (np.argmax(sizes) + 1))
    plabelpoints = torch.nonzero(plabels)
    pmean = plabelpoints.float().mean(0)
    pdis = ((plabelpoints - pmean) ** 2).sum(-1)
    _, sorted_indices = torch.sort(pdis, stable=True)
    return plabelpoints[sorted_indices[0]]


def released_get_center_points(plabelpoints):
    """get_center_points (lines 91-95): the code's (m, m) centre."""
    pmean = plabelpoints.float().mean()
    pdis = ((plabelpoints - pmean) ** 2).sum(-1)
    _, sorted_indices = torch.sort(pdis, stable=True)
    return plabelpoints[sorted_indices[0]]


def released_get_points_from_false_pred(pred, gt, num_point=1):
    """get_points_from_false_pred (lines 98-141); ``pick`` replaces random.choice."""
    se = np.ones((3, 3), dtype=np.uint8)
    fp_mask = torch.logical_and(torch.logical_not(gt), pred)
    plabelpoints = torch.nonzero(torch.from_numpy(binary_erosion(fp_mask.numpy(), structure=se)))
    fn_mask = torch.logical_and(torch.logical_not(pred), gt)
    nlabelpoints = torch.nonzero(torch.from_numpy(binary_erosion(fn_mask.numpy(), structure=se)))
    _point, _label, pool = [], [], None
    if num_point == 1:
        p = nlabelpoints if len(nlabelpoints) > len(plabelpoints) else plabelpoints
        lab = 1 if len(nlabelpoints) > len(plabelpoints) else 0
        if len(p) > 0:
            p = released_get_center_points(p)
            _point.append([int(p[1]), int(p[0])])
            _label.append(lab)
    if num_point == 3:
        if len(nlabelpoints) > 0:
            q = released_get_center_points(nlabelpoints)
            _point.append([int(q[1]), int(q[0])])
            _label.append(1)
        if len(plabelpoints) > 0:
            q = released_get_center_points(plabelpoints)
            _point.append([int(q[1]), int(q[0])])
            _label.append(0)
        p = nlabelpoints if len(nlabelpoints) > len(plabelpoints) else plabelpoints
        lab = 1 if len(nlabelpoints) > len(plabelpoints) else 0
        if len(p) > 0:  # random.choice(p): the caller draws from ``pool``
            pool = ([(int(y), int(x)) for y, x in p], lab)
            _label.append(lab)
    return _point, _label, pool


def released_worst_slice(pred, label):
    """The per-frame Dice loop (lines 457-478), uint8 tensors [i, j, k]."""
    lowerest_dice, max_error_pixel, index = 1000, 0, None
    for d in range(pred.shape[-1]):
        if torch.sum(label[..., d]) > 0:
            p, g = pred[..., d], label[..., d]
            dice = float(2 * (p & g).sum() / (p.sum() + g.sum()))
            if dice < lowerest_dice:
                index, lowerest_dice = d, dice
                max_error_pixel = torch.abs(p - g).sum()
            elif dice == lowerest_dice:
                error_pixel = torch.abs(p - g).sum()
                if max_error_pixel < error_pixel:
                    index, max_error_pixel = d, error_pixel
    return index


@pytest.mark.parametrize("case_id", CASES)
@pytest.mark.parametrize("bg_removal", [False, True])
def test_he_start_voxel_equals_get_points_from_label(samples, case_id, bg_removal):
    image, gt = samples[case_id]
    label = torch.from_numpy(gt.astype(np.uint8))
    z = np.arange(gt.shape[2])
    if bg_removal:
        z_slice = label.sum(0).sum(0) > 0
        label, z = label[:, :, z_slice], z[z_slice.numpy()]
    i, j, k = (int(x) for x in released_get_points_from_label(label))
    keep = gt.any(axis=(0, 1)) if bg_removal else None
    assert user_for(image, gt).start_voxel(keep) == (int(z[k]), i, j)


def test_he_start_voxel_tie_goes_to_the_first_voxel_in_array_order():
    gt = np.zeros((6, 6, 4), bool)
    gt[1:5, 2, 1] = True  # centroid (2.5, 2, 1): (2, 2, 1) and (3, 2, 1) tie
    point = released_get_points_from_label(torch.from_numpy(gt.astype(np.uint8)))
    assert SimulatedUser(np.moveaxis(gt, 2, 0), 2).start_voxel() == (1, 2, 2)
    assert tuple(int(x) for x in point) == (2, 2, 1)


@pytest.mark.parametrize("case_id", CASES)
@pytest.mark.parametrize("variant", ["code", "paper"])
def test_he_clicks_equal_get_points_from_false_pred(samples, case_id, variant):
    image, gt = samples[case_id]
    user = user_for(image, gt)
    checked = 0
    for k in np.flatnonzero(gt.any(axis=(0, 1))):
        g2 = gt[:, :, k]
        for pred in predictions(g2, int(k)):
            rpoints, rlabels, pool = released_get_points_from_false_pred(
                torch.from_numpy(pred), torch.from_numpy(g2), 1
            )
            click = user.eroded_error_click(int(k), pred, variant)
            ours = [] if click is None else [[click.col, click.row]]
            if variant == "code":
                assert ours == rpoints, (case_id, k)
            assert ([] if click is None else [int(click.positive)]) == rlabels
            rpoints, rlabels, pool = released_get_points_from_false_pred(
                torch.from_numpy(pred), torch.from_numpy(g2), 3
            )
            rng = np.random.default_rng(int(k))
            clicks = user.correction_clicks(int(k), pred, rng, variant)
            fixed = [[c.col, c.row] for c in clicks[: len(rpoints)]]
            if variant == "code":
                assert fixed == rpoints
            assert [int(c.positive) for c in clicks] == rlabels
            if pool is not None:
                assert (clicks[-1].row, clicks[-1].col) in pool[0]
                assert int(clicks[-1].positive) == pool[1]
            checked += len(clicks)
    assert checked > 10


def test_he_no_point_when_erosion_leaves_nothing():
    gt = np.zeros((10, 10), bool)
    gt[3:5, 1:9] = True  # two pixels thick: nothing survives a 3x3 erosion
    pred = np.zeros_like(gt)
    pred[7:9, 1:9] = True
    user = SimulatedUser(gt[None])
    for n in (1, 3):
        points, labels, pool = released_get_points_from_false_pred(
            torch.from_numpy(pred), torch.from_numpy(gt), n
        )
        assert (points, labels, pool) == ([], [], None)
    assert user.eroded_error_click(0, pred, "code") is None
    assert user.correction_clicks(0, pred, np.random.default_rng(0), "code") == []


def test_he_random_click_tie_goes_to_false_positives():
    gt = np.zeros((12, 12), bool)
    gt[1:4, 1:4] = True  # a 3x3 miss: 1 eroded false negative
    pred = np.zeros_like(gt)
    pred[7:10, 7:10] = True  # a 3x3 false alarm: 1 eroded false positive
    _, labels, pool = released_get_points_from_false_pred(
        torch.from_numpy(pred), torch.from_numpy(gt), 3
    )
    clicks = SimulatedUser(gt[None]).correction_clicks(0, pred, np.random.default_rng(0), "code")
    assert labels == [1, 0, 0] == [int(c.positive) for c in clicks]
    assert (clicks[-1].row, clicks[-1].col) == (8, 8) and pool[0] == [(8, 8)]


@pytest.mark.parametrize("case_id", CASES)
def test_he_worst_slice_equals_the_released_loop(samples, case_id):
    image, gt = samples[case_id]
    user = user_for(image, gt)
    rng = np.random.default_rng(0)
    for trial in range(6):
        pred = gt.copy()
        for k in np.flatnonzero(gt.any(axis=(0, 1))):
            pred[:, :, k] = predictions(gt[:, :, k], int(k))[rng.integers(5)]
        if trial == 5:  # ties: every slice empty (Dice 0), the most missed pixels wins
            pred[:] = False
        expected = released_worst_slice(
            torch.from_numpy(pred.astype(np.uint8)), torch.from_numpy(gt.astype(np.uint8))
        )
        assert user.worst_slice(np.moveaxis(pred, 2, 0))[0] == expected


def test_he_worst_slice_ties_weigh_a_missed_pixel_255_times():
    gt = np.zeros((8, 8, 2), bool)
    gt[1:5, 1:5, :] = True  # 16 pixels on each slice
    pred = gt.copy()
    pred[1, 1:3, 0] = False  # slice 0: 2 missed, 5 extra: Dice 28/35 = 0.8, 7 wrong
    pred[6, 0:5, 0] = True
    pred[1, 1:5, 1] = False  # slice 1: 4 missed, 2 extra: Dice 24/30 = 0.8, 6 wrong
    pred[6, 0:2, 1] = True
    expected = released_worst_slice(
        torch.from_numpy(pred.astype(np.uint8)), torch.from_numpy(gt.astype(np.uint8))
    )
    user = SimulatedUser(np.moveaxis(gt, 2, 0), 2)
    assert user.worst_slice(np.moveaxis(pred, 2, 0)) == (expected, pytest.approx(0.8))
    assert expected == 1  # 4 * 255 + 2 > 2 * 255 + 5, though slice 0 has more wrong pixels


# ----- He et al.: the whole loop, driven on a session -----------------------------------------
def released_he_loop(image, gt, seed, max_iter=8, saliency=False):
    """run() lines 365-478 on a sam2vol session (add_new_points -> add_point, reset -> clear)."""
    from sam2vol import Volume
    from sam2vol.intensity import looks_like_ct

    preset = "ct-he2024" if looks_like_ct(image.data) else "auto"
    label = torch.from_numpy(gt.astype(np.uint8))
    if saliency:  # l. 365-372: the label and the video keep the slices with foreground
        z_slice = label.sum(0).sum(0) > 0
        label = label[:, :, z_slice]
        image = Volume(image.data[:, :, z_slice.numpy()], image.affine, image.source)
    session = Session(image, "default", axis="axial", intensity=preset)
    session.add_object("object", object_id=1)
    rng = np.random.default_rng(seed)
    point = [int(x) for x in released_get_points_from_label(label)]
    _point, _label = [[point[1], point[0]]], [1]
    k = point[-1]
    for rounds in range(4):
        if rounds:
            session.clear(1)  # predictor.reset_state
        for (x, y), lab in zip(_point, _label, strict=True):
            session.add_point((y, x, k), positive=bool(lab), object_id=1)
        pred = torch.from_numpy(session.mask(1)[:, :, k])
        new_point, new_label, _ = released_get_points_from_false_pred(pred, label[:, :, k], 1)
        if len(new_label) == 0:
            break
        _point.extend(new_point)
        _label.extend(new_label)
    for idx in range(max_iter):
        if idx:
            w = released_worst_slice(pred, label)
            pts, labs, pool = released_get_points_from_false_pred(
                pred[..., w].bool(), label[..., w].bool(), 3
            )
            if pool is not None:
                y, x = pool[0][int(rng.integers(len(pool[0])))]
                pts = [*pts, [x, y]]
            if not pts:
                break
            session.clear(1, w)  # add_new_points replaces the frame's points
            for (x, y), lab in zip(pts, labs, strict=True):
                session.add_point((y, x, w), positive=bool(lab), object_id=1)
        for _ in session.propagate(None, "both"):
            pass
        pred = torch.from_numpy(session.mask(1).astype(np.uint8))
    return session


@pytest.mark.parametrize(
    ("case_id", "saliency"), [("brain1", False), ("lung2", False), ("brain1", True)]
)
def test_he2024_code_prompts_equal_the_released_loop(samples, case_id, saliency):
    image, gt = samples[case_id]
    spec = "he2024-code:bg_removal=true" if saliency else "he2024-code"
    result = create_protocol(spec).run(image, gt, "default", seed=5)
    session = released_he_loop(image, gt, seed=5, saliency=saliency)
    expected = session.log_dict()["events"]
    got = result.to_json_dict()["events"]
    strip = ("time", "id", "seconds")
    assert [{k: v for k, v in e.items() if k not in strip} for e in got] == [
        {k: v for k, v in e.items() if k not in strip} for e in expected
    ]
    kept = np.flatnonzero(gt.any(axis=(0, 1))) if saliency else np.arange(gt.shape[2])
    np.testing.assert_array_equal(result.mask[:, :, kept], session.mask(1))
    assert not result.mask[:, :, np.setdiff1d(np.arange(gt.shape[2]), kept)].any()
    assert result.video_slices == (kept.tolist() if saliency else None)


# ----- Ma et al.: infer_SAM2_3D_npz.py (MedSAM2 branch) ---------------------------------------
@pytest.mark.parametrize("case_id", CASES)
def test_ma_middle_slice_and_box_equal_the_released_code(samples, case_id):
    image, gt = samples[case_id]
    z_indices = np.where(np.moveaxis(gt, 2, 0))[0]  # gts is (D, H, W)
    z_min, z_max = z_indices.min(), z_indices.max()
    z_mid_orig = int((z_max + 1 - z_min) / 2) + z_min
    rows, cols = np.nonzero(gt.any(axis=2))  # the dataset's 3D box, in-plane
    result = create_protocol("ma2024").run(image, gt, "default")
    assert result.prompted_slices == [z_mid_orig]
    box = next(e for e in result.events if e["kind"] == "box")
    corners = sorted([tuple(box["corner_a"]), tuple(box["corner_b"])])
    assert corners == [(rows.min(), cols.min(), z_mid_orig), (rows.max(), cols.max(), z_mid_orig)]


@pytest.mark.parametrize("extent", [(2, 5), (2, 6)])
def test_ma_middle_slice_on_even_and_odd_extents(extent):
    from sam2vol import Volume

    gt = np.zeros((12, 12, 9), bool)
    gt[3:8, 4:9, extent[0] : extent[1] + 1] = True
    gt[5, 2, extent[0] + 1] = True  # widens the 3D box beyond the middle slice's
    image = Volume(np.where(gt, 500.0, 0.0).astype(np.float32), np.eye(4), "synthetic")
    result = create_protocol("ma2024").run(image, gt, "default")
    z = np.where(np.moveaxis(gt, 2, 0))[0]
    z_mid = int((z.max() + 1 - z.min()) / 2) + z.min()
    assert result.prompted_slices == [z_mid]
    box = next(e for e in result.events if e["kind"] == "box")
    assert sorted([tuple(box["corner_a"]), tuple(box["corner_b"])]) == [
        (3, 2, z_mid),
        (7, 8, z_mid),
    ]


def test_ma_box_slice_option_takes_the_middle_slices_tight_box():
    from sam2vol import Volume

    gt = np.zeros((12, 12, 9), bool)
    gt[3:8, 4:9, 2:7] = True
    gt[5, 2, 3] = True  # outside the middle slice 4
    image = Volume(np.where(gt, 500.0, 0.0).astype(np.float32), np.eye(4), "synthetic")
    result = create_protocol("ma2024:box=slice").run(image, gt, "default")
    box = next(e for e in result.events if e["kind"] == "box")
    assert sorted([tuple(box["corner_a"]), tuple(box["corner_b"])]) == [(3, 4, 4), (7, 8, 4)]


# ----- Dong et al.: prompt_funcs.py @1d72cc1 --------------------------------------------------
def released_first_frames(non_zero_slices, mode, frame_num=3):
    """First_frame_finding_func (lines 47-67), modes 2 and 4."""
    if mode == 2:
        return [non_zero_slices[len(non_zero_slices) // 2]]
    step = max(1, len(non_zero_slices) // (frame_num + 1))
    select = non_zero_slices[::step]
    return select[1 : frame_num + 1] if len(select) > frame_num + 1 else select[:frame_num]


@pytest.mark.parametrize("n", range(1, 30))
def test_dong_slices_equal_first_frame_finding(n):
    slices = list(range(3, 3 + n))
    user = SimulatedUser(np.isin(np.arange(40), slices)[:, None, None] & np.ones((1, 2, 2), bool))
    assert user.dong_slices(1) == released_first_frames(slices, 2)
    assert user.dong_slices(3) == released_first_frames(slices, 4)


def released_largest_region(mask_cls):
    """get_first_prompt (lines 146-160, largest_1): sorted (ratio, id) pairs, reversed."""
    lab, n = sk_label(mask_cls, connectivity=2, return_num=True)
    ratios = [np.sum(lab == r) / np.sum(mask_cls) for r in range(1, n + 1)]
    _, ids = zip(*sorted(zip(ratios, range(1, n + 1), strict=True)), strict=True)
    return lab == ids[::-1][0]


def test_dong_largest_region_tie_goes_to_the_last_labelled():
    gt = np.zeros((10, 10), bool)
    gt[1:4, 1:4] = True
    gt[6:9, 5:8] = True  # same size, labelled second
    user = SimulatedUser(gt[None])
    click = user.deepest_point(0)
    assert released_largest_region(gt)[click.row, click.col]
    assert (click.row, click.col) == (7, 6)


@pytest.mark.parametrize("case_id", CASES)
def test_dong_prompts_on_the_released_slices_and_regions(samples, case_id):
    image, gt = samples[case_id]
    for spec, mode in (("dong2024", 2), ("dong2024-3slices", 4)):
        result = create_protocol(spec).run(image, gt, "default")
        picks = released_first_frames([int(k) for k in np.flatnonzero(gt.any(axis=(0, 1)))], mode)
        points = [e["voxel"] for e in result.events if e["kind"] == "point"]
        assert [p[2] for p in points] == picks
        for i, j, k in points:  # in the largest region, at its deepest (EDT) depth
            region = released_largest_region(gt[:, :, k])
            depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
            assert region[i, j] and depth[i, j] == depth.max()


def test_dong_released_propagation_follows_eval_sam2_3d(samples):
    """eval_sam2_3d.py l. 134-155 with frame mode 4: ``pidx`` is 1 for the backward pass,
    then the re-adding loop leaves it at 2, so the forward pass starts after the last pick
    and the IoU list (l. 33-51) holds no slice between the middle and the last pick."""
    image, gt = samples["lung2"]
    result = create_protocol("dong2024-3slices:propagation=released").run(image, gt, "default")
    picks = released_first_frames([int(k) for k in np.flatnonzero(gt.any(axis=(0, 1)))], 4)
    kinds = [(e["kind"], e.get("start"), e.get("direction")) for e in result.events]
    point = ("point", None, None)
    assert kinds[1:] == [
        point,
        point,
        point,
        ("propagate", picks[1], "backward"),
        ("clear", None, None),
        point,
        point,
        point,
        ("propagate", picks[2] + 1, "forward"),
    ]
    scored = np.ones(gt.shape[2], bool)
    scored[picks[1] + 1 : picks[2] + 1] = False  # the slices _run_prop never reaches
    assert [s for s, *_ in result.slice_dice] == [
        int(k) for k in np.flatnonzero(gt.any(axis=(0, 1)) & scored)
    ]
    m, g = result.mask[:, :, scored], gt[:, :, scored]
    assert result.dice == pytest.approx(2 * (m & g).sum() / (m.sum() + g.sum()))
