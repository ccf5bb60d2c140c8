"""The pieces of fine-tuning that need no SAM 2: split, clips, prompts, boundary labels, losses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sam2vol.errors import InputError
from sam2vol.finetune.clips import CaseSlices, boundary_labels, centre_point, sample_clips
from sam2vol.finetune.config import TrainConfig
from sam2vol.finetune.heads import BoundaryHead, SRPPHead
from sam2vol.finetune.losses import balanced_bce, dice_loss, segmentation_loss, srpp_loss
from sam2vol.finetune.split import load_or_make_split, make_split, read_split


def test_split_is_by_case_seeded_and_written(tmp_path):
    ids = [f"case{i}" for i in range(10)]
    split = load_or_make_split(tmp_path, ids, 0.2, seed=3, dataset="folder:x")
    assert len(split.val) == 2 and sorted(split.train + split.val) == sorted(ids)
    assert make_split(ids, 0.2, seed=3).val == split.val
    assert make_split(ids, 0.2, seed=4).val != split.val
    saved = json.loads((tmp_path / "split.json").read_text())
    assert saved["val"] == list(split.val) and saved["seed"] == 3
    # A split file already there wins (a user may write their own).
    (tmp_path / "split.json").write_text(json.dumps({"train": ids[:9], "val": ids[9:]}))
    assert load_or_make_split(tmp_path, ids, 0.2, seed=3, dataset="").val == ("case9",)
    (tmp_path / "split.json").write_text(json.dumps({"train": ["nope"], "val": []}))
    with pytest.raises(InputError, match="not in the dataset"):
        read_split(tmp_path / "split.json", ids)
    assert make_split(["only"], 0.2).val == ()


def test_clips_start_on_the_object_and_fit_the_volume():
    mask = np.zeros((10, 20, 20), bool)
    mask[3:8, 5:15, 6:12] = True
    case = CaseSlices("c", np.zeros(mask.shape, np.float32), {"obj": mask})
    rng = np.random.default_rng(0)
    clips = sample_clips(case, 200, 6, rng, reverse_prob=0.5)
    assert len(clips) == 200
    for clip in clips:
        assert len(clip.slices) == 6 and min(clip.slices) >= 0 and max(clip.slices) < 10
        assert mask[clip.slices[0]].any()
        assert abs(np.diff(clip.slices)).tolist() == [1] * 5
        assert mask[clip.slices[0]][clip.point]
        assert sorted(clip.positions.tolist()) == list(range(6))
    reversed_share = np.mean([c.reverse for c in clips])
    assert 0.3 < reversed_share < 0.7
    # No room for a clip: no clips.
    assert sample_clips(case, 5, 11, rng) == []


def test_centre_point_is_deep_inside():
    mask = np.zeros((30, 30), bool)
    mask[5:25, 5:10] = True  # an L shape: the centroid is outside the thick part
    mask[20:25, 5:28] = True
    row, col = centre_point(mask)
    assert mask[row, col]
    assert min(row - 5, 24 - row, col - 5, 27 - col) >= 2


def test_boundary_labels_are_a_band_of_twice_the_radius():
    masks = torch.zeros(1, 1, 32, 32)
    masks[..., 8:24, 8:24] = 1
    for radius in (1, 2):
        band = boundary_labels(masks, radius)[0, 0]
        rows = band[16].nonzero().flatten().tolist()
        assert rows == [*range(8 - radius, 8 + radius), *range(24 - radius, 24 + radius)]
    # An object touching the image border has no boundary along the border.
    masks[..., :, :4] = 1
    assert boundary_labels(masks, 1)[0, 0, 16, 0] == 0


def test_losses():
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:12, 4:12] = 1
    good = target * 20 - 10
    assert float(dice_loss(good, target).max()) < 0.01
    # Class-balanced BCE: a perfect boundary map costs ~0, missing every boundary pixel costs
    # about as much as marking every background pixel.
    labels = boundary_labels(target, 1)
    assert float(balanced_bce(labels * 40 - 20, labels)) < 1e-6
    miss = float(balanced_bce(torch.full_like(labels, -5.0), labels))
    flood = float(balanced_bce(torch.full_like(labels, 5.0), labels))
    assert miss == pytest.approx(flood, rel=0.02)
    # SRPP: exact offsets cost 0, predicting zero costs the mean squared offset.
    positions = torch.tensor([[0, 1, 2], [2, 1, 0]])
    exact = (positions[:, None, :] - positions[:, :, None]).float()
    assert float(srpp_loss(exact, positions)) == 0
    assert float(srpp_loss(torch.zeros(2, 3, 3), positions)) == pytest.approx(2.0)
    # Segmentation: the best of several candidates counts; empty slices only train the score.
    low = torch.nn.functional.interpolate(good, size=(4, 4), mode="area")
    candidates = torch.cat([-low, low], dim=1)  # [B=2, M=2, 4, 4]
    ious = torch.ones(2, 2)
    scores = torch.full((2, 2), 10.0)
    both = torch.stack([target[:, 0], torch.zeros(2, 16, 16)])  # slice 1 empty
    loss = segmentation_loss([candidates, candidates], [ious, ious], scores, both)
    worse = segmentation_loss([-candidates, -candidates], [ious, ious], scores, both)
    assert float(loss) == pytest.approx(float(worse))
    scores[1] = -10.0  # the empty slice correctly called empty
    assert float(segmentation_loss([candidates] * 2, [ious] * 2, scores, both)) < float(loss)


def test_heads_shapes():
    features = torch.randn(2, 5, 256, 8, 8)
    assert SRPPHead()(features).shape == (2, 5, 5)
    pos = torch.randn(1, 256, 8, 8)
    assert BoundaryHead()(features.flatten(0, 1), pos).shape == (10, 1, 32, 32)
    fine = [torch.randn(10, 32, 32, 32), torch.randn(10, 64, 16, 16)]
    assert BoundaryHead()(features.flatten(0, 1), pos, fine).shape == (10, 1, 32, 32)


def test_config_checks(tmp_path):
    TrainConfig("samples:", "random:sam2.1_hiera_t", tmp_path).validate()
    for bad in ({"clip_length": 1}, {"image_size": 100}, {"val_fraction": 1.0}, {"epochs": 0}):
        with pytest.raises(InputError):
            TrainConfig("samples:", "x", tmp_path, **bad).validate()  # type: ignore[arg-type]
    a = TrainConfig("samples:", "x", tmp_path, clip_length=6)
    b = TrainConfig.from_dict({**a.to_dict(), "clip_length": 12, "epochs": 99})
    assert b.resume_conflicts(a) == ["--clip-length 6 -> 12"]


def test_normalised_boundary_loss_is_on_the_scale_of_a_bce():
    import math

    # A thin boundary band: 2% of the pixels.
    labels = torch.zeros(2, 1, 50, 50)
    labels[:, :, 10, :] = 1
    p = float(labels.mean())
    uninformed = torch.zeros_like(labels)
    # Normalised: the average of the per-class mean BCEs, ln 2 for an uninformed head.
    assert float(balanced_bce(uninformed, labels)) == pytest.approx(math.log(2), rel=1e-5)
    # The earlier form: about 2p(1-p) of that.
    old = float(balanced_bce(uninformed, labels, normalise=False))
    assert old == pytest.approx(2 * p * (1 - p) * math.log(2), rel=1e-5)
    # Independent reference: the mean BCE on each class, averaged.
    logits = torch.randn_like(labels)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    reference = (bce[labels > 0].mean() + bce[labels == 0].mean()) / 2
    assert float(balanced_bce(logits, labels)) == pytest.approx(float(reference), rel=1e-5)
