"""The joint 3D refinement of a propagated run (engines/default/refine3d.py)."""

from __future__ import annotations

import numpy as np

from sam2vol.engines.base import SlicePrompts
from sam2vol.engines.default import DefaultEngine
from sam2vol.engines.default.appearance import AppearanceModel
from sam2vol.engines.default.masks import signed_distance_mm
from sam2vol.engines.default.params import DefaultParams, PixelGeometry
from sam2vol.engines.default.refine3d import refine_run
from sam2vol.engines.default.tracking import anchor_state

GEO = PixelGeometry((0.5, 0.5), 2.0)
NOISE = 0.03


def disc(radius_px: float, size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - size // 2
    return yy**2 + xx**2 <= radius_px**2


def tapering_run(seed: int = 0):
    """An anchor slice (object 0.45 on 0.05) and a tapering slice whose object
    (0.6, radius 13 px) has a partial-volume rim (0.35, out to 16 px) on 0.25.

    The anchor's model calls the rim object (0.35 is near its 0.45); the
    tapering slice's own core against its own surround calls it background.
    Tracking kept the rim: its mask is the 16 px disc.
    """
    rng = np.random.default_rng(seed)
    anchor, truth, rim = disc(16), disc(13), disc(16)
    images = np.empty((2, 64, 64), dtype=np.float32)
    images[0] = np.where(anchor, 0.45, 0.05)
    images[1] = np.where(truth, 0.6, np.where(rim, 0.35, 0.25))
    images += rng.normal(0, NOISE, images.shape).astype(np.float32)
    images = np.clip(images, 0, 1)
    masks = np.stack([anchor, rim])
    model = AppearanceModel.learn(images[0][anchor], images[0][~disc(19)])
    return images, masks, truth, model


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_tapering_rim_is_taken_back_by_the_slices_own_model():
    images, masks, truth, model = tapering_run()
    out = refine_run(images, masks, model, DefaultParams(), GEO)
    assert dice(masks[1], truth) < 0.8  # what tracking handed over
    assert dice(out[1], truth) > 0.95
    # With the anchor's model the rim looks like the object and stays.
    anchor_only = refine_run(images, masks, model, DefaultParams(refine_local_model=False), GEO)
    assert dice(anchor_only[1], truth) < 0.8


def test_prompted_slice_is_kept_and_others_stay_in_their_band():
    images, masks, _, model = tapering_run(1)
    ring = disc(22) & ~disc(16)
    images[1][ring] = 0.45  # what the anchor's model calls object, all round the band
    params = DefaultParams(refine_local_model=False)
    out = refine_run(images, masks, model, params, GEO)
    assert np.array_equal(out[0], masks[0])
    sd = signed_distance_mm(masks[1], GEO.spacing)
    assert out[1][sd <= params.refine_band_mm].sum() > 0.9 * masks[1].sum()
    assert not (out[1] & (sd > params.refine_band_mm)).any()
    assert out[1][sd < -params.refine_core_mm].all()


def test_engine_propagation_hands_out_the_refined_run():
    rng = np.random.default_rng(3)
    images = np.full((3, 64, 64), 0.05, dtype=np.float32)
    images[0][disc(16)] = 0.45
    images[1][disc(16)] = 0.3  # a partial-volume rim around a smaller object
    images[1][disc(12)] = 0.45
    images[2][disc(15)] = 0.45
    images = np.clip(images + rng.normal(0, NOISE, images.shape), 0, 1).astype(np.float32)
    prompts = SlicePrompts(mask=disc(16))
    prompts.result = disc(16)
    runs = {}
    for band in (0.0, DefaultParams().refine_band_mm):
        engine = DefaultEngine(refine_band_mm=band)
        engine.set_image(images, (GEO.thickness, *GEO.spacing))
        results = engine.propagate({1: {0: prompts}}, start=0)
        runs[band] = np.stack([r.masks[1] for r in sorted(results, key=lambda r: r.slice_index)])
    plain, refined = runs[0.0], runs[DefaultParams().refine_band_mm]
    assert plain[1:].any(axis=(1, 2)).all()
    state, _ = anchor_state(images[0], disc(16), DefaultParams(), GEO)
    expected = refine_run(images, plain, state.model, DefaultParams(), GEO)
    assert np.array_equal(refined, expected)
    assert not np.array_equal(refined, plain)
