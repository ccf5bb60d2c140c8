"""The protocols with the SAM 2 engine against the official predictor (random weights).

Shen et al.'s clicks script calls ``add_new_points`` with every click so far
(``clear_old_points=True``), so SAM 2 keeps the frame's previous mask logits
and feeds them back with the new clicks; ``shen2024-clicks`` must do the same
through the engine. The official side here runs the released loop itself on
Meta's ``SAM2VideoPredictor`` with the engine's weights and frames.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sam2")

from sam2vol import Volume
from sam2vol.protocols import create_protocol
from tests.engines.sam2_helpers import make_engine, official_predictor, official_state, volume
from tests.protocols.test_released_code import released_shen_click

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def case():
    """The helpers' drifting blob as a volume [i, j, k] = [col, row, slice], and its mask."""
    stack = volume()
    s, r, c = np.meshgrid(*(np.arange(n) for n in stack.shape), indexing="ij")
    blob = (r - 36 - s) ** 2 + (c - 44 + s) ** 2 < 15**2
    to_array = (2, 1, 0)
    image = Volume(stack.transpose(to_array).copy(), np.diag([-1.0, -1.0, 1.0, 1.0]), "blob")
    return image, blob.transpose(to_array).copy()


def test_shen2024_clicks_keeps_the_frames_logits_like_the_released_script(monkeypatch):
    image, gt = case()
    engine = make_engine()
    result = create_protocol("shen2024-clicks:crop=none").run(image, gt, engine)
    assert result.status == "ok"

    official = official_predictor(engine)  # the engine now holds the session's frames
    state = official_state(official, engine, monkeypatch)
    frame_idx = gt.shape[2] // 2  # the video is every slice: len(frame_names) // 2
    g2 = gt[:, :, frame_idx]  # array frame [i, j]; the engine's frames are [j, i]
    out_mask = np.zeros_like(g2)
    points, labels, voxels = [], [], []
    for _ in range(5):  # perform_iteration x 5
        click = released_shen_click(g2, out_mask)
        if click is None:
            continue
        x, y, lab = click  # x = j, y = i; on the engine's frame x = i, y = j
        points.append([y, x])
        labels.append(lab)
        voxels.append([y, x, frame_idx])
        _, _, logits = official.add_new_points(
            state,
            frame_idx,
            1,
            points=np.array(points, np.float32),
            labels=np.array(labels, np.int32),
        )
        out_mask = (logits[0, 0].float().numpy() > 0).T
    got = [e["voxel"] for e in result.events if e["kind"] == "point"]
    assert got == voxels and len(voxels) >= 2
    segments = {}
    for s, _, logits in official.propagate_in_video(state):
        segments[s] = logits[0, 0].float().numpy() > 0
    for s, _, logits in official.propagate_in_video(
        state, start_frame_idx=frame_idx - 1, reverse=True
    ):
        segments[s] = logits[0, 0].float().numpy() > 0
    theirs = np.stack([segments[s].T for s in range(gt.shape[2])], axis=2)
    assert (result.mask != theirs).mean() < 1e-3  # logits agree to 1e-4: a few edge pixels


class _Frame:
    """Stub ``ToTensor``: hands the image predictor the engine's prepared frame."""

    tensor = None

    def __call__(self, _image):
        return _Frame.tensor


def _identity_module():
    import torch

    class Identity(torch.nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def forward(self, x):
            return x

    return Identity


@pytest.fixture
def image_predictor_class(monkeypatch):
    """The official ``SAM2ImagePredictor``; torchvision (absent here) stubbed for its import.

    Only resizing and normalising come from torchvision; the stubs pass the
    engine's frame (already resized and normalised) straight through.
    """
    import sys
    import types

    vision = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToTensor = _Frame
    transforms.Resize = transforms.Normalize = _identity_module()
    vision.transforms = transforms
    monkeypatch.setitem(sys.modules, "torchvision", vision)
    monkeypatch.setitem(sys.modules, "torchvision.transforms", transforms)
    for name in ("sam2.utils.transforms", "sam2.sam2_image_predictor"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    yield SAM2ImagePredictor
    for name in ("sam2.utils.transforms", "sam2.sam2_image_predictor"):
        sys.modules.pop(name, None)


def test_ma2024_box_becomes_the_image_predictors_mask_then_medsam2_flow(
    monkeypatch, image_predictor_class
):
    image, gt = case()
    gt[:, :, :2] = False  # extent 2..9 (8 slices): z_mid = 2 + 8 // 2 = 6
    engine = make_engine()
    result = create_protocol("ma2024").run(image, gt, engine)
    assert result.status == "ok"
    (mask_event,) = [e for e in result.events if e["kind"] == "mask"]
    assert mask_event["index"] == 6 and not any(e["kind"] == "box" for e in result.events)

    # MedSAM2: SAM2ImagePredictor on the middle slice, box = the 3D box (x, y) extent
    official = official_predictor(engine)
    predictor = image_predictor_class(official)
    size = official.image_size  # the image predictor hard-codes the 1024 feature sizes
    predictor._bb_feat_sizes = [(size // 4, size // 4), (size // 8, size // 8), (size // 16,) * 2]
    _Frame.tensor = engine.frames[6]
    h, w = engine.frames.height, engine.frames.width
    predictor.set_image(np.zeros((h, w, 3), np.uint8))
    i, j = np.nonzero(gt.any(axis=2))  # the engine's frames are [j, i]: x = i, y = j
    box = np.array([i.min(), j.min(), i.max(), j.max()], np.float32)
    masks, _, _ = predictor.predict(box=box, multimask_output=False)
    mask_prompt = masks[0].astype(np.uint8)
    state = official_state(official, engine, monkeypatch)
    official.add_new_mask(state, 6, 1, mask_prompt)
    segments = {s: lg[0, 0].float().numpy() > 0 for s, _, lg in official.propagate_in_video(state)}
    official.reset_state(state)
    official.add_new_mask(state, 6, 1, mask_prompt)
    for s, _, lg in official.propagate_in_video(state, reverse=True):
        segments[s] = lg[0, 0].float().numpy() > 0
    theirs = np.stack([segments[s].T for s in range(gt.shape[2])], axis=2)
    # the prompt itself: the logged mask prompt is the image predictor's mask
    from sam2vol.prompts import event_from_dict

    logged = event_from_dict(mask_event).to_array()  # the file's plane [i, j]
    assert logged.sum() > 0
    assert (logged != mask_prompt.T.astype(bool)).mean() < 1e-3
    assert (result.mask != theirs).mean() < 1e-3
