"""Object and background competing in 3D over a propagated run (a band graph cut).

Slice-by-slice tracking holds each new mask near the previous one, so where a
small object tapers the mask keeps more than is there. After a run from one
anchor, one graph cut over the whole run lets the background take those pixels
back: the voxels near the propagated masks' borders (the band) are solved
together in 3D, 6-neighbourhood, with the anchor's intensity model as unaries
and contrast-sensitive smoothness in-plane and across slices (spacing-aware).
The prompted slice is a hard constraint both ways (object inside its mask,
background outside), each propagated mask's deep core is object, and the
band's outside is background. On each slice the unaries come from that
slice's own core against its own surround (``refine_local_model``), since a
tapering end is dimmer than the anchor's object.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from sam2vol.engines.default.appearance import AppearanceModel
from sam2vol.engines.default.graphcut import Crop, solve_cut
from sam2vol.engines.default.masks import fill_holes, signed_distance_mm
from sam2vol.engines.default.params import DefaultParams, PixelGeometry

# Fewest pixels of a slice's core and of its surround to learn that slice's
# own intensity model from (below, the anchor's model is used there).
MIN_MODEL_PIXELS = 8


def refine_run(
    images: np.ndarray,
    masks: np.ndarray,
    model: AppearanceModel,
    params: DefaultParams,
    geo: PixelGeometry,
) -> np.ndarray:
    """The run's masks after a joint 3D object/background cut over their band.

    Args:
        images: (n, H, W) slices of the run in walking order, the anchor first.
        masks: (n, H, W) bool masks from tracking; ``masks[0]`` is the prompted
            slice's and is kept exactly; the others are non-empty.
        model: The anchor's intensity model.
        params: Engine settings (``refine_*``, ``gamma``, ``intensity_weight``,
            ``image_sigma_px``).
        geo: Pixel size and slice thickness.

    Returns:
        (n, H, W) bool masks; slice 0 equals ``masks[0]``; each other slice is
        within ``refine_band_mm`` of its input mask and holds at least its core.
    """
    n = len(masks)
    if n < 2 or params.refine_band_mm <= 0:
        return masks.copy()
    reach = params.refine_band_mm + (params.ring_outer_mm if params.refine_local_model else 0)
    crop = Crop.around(masks.any(axis=0), geo.px(reach) + 2)
    assert crop is not None
    sub = masks[:, crop.r0 : crop.r1, crop.c0 : crop.c1]
    img = images[:, crop.r0 : crop.r1, crop.c0 : crop.c1].astype(np.float32)
    if params.image_sigma_px > 0:
        img = ndi.gaussian_filter(img, (0, params.image_sigma_px, params.image_sigma_px))
    llr = model.llr(img)
    fixed_fg = np.zeros(sub.shape, dtype=bool)
    fixed_bg = np.zeros(sub.shape, dtype=bool)
    fixed_fg[0], fixed_bg[0] = sub[0], ~sub[0]
    for k in range(1, n):
        sd = signed_distance_mm(sub[k], geo.spacing)
        fixed_bg[k] = sd > params.refine_band_mm
        fixed_fg[k] = sd < -params.refine_core_mm
        if params.refine_local_model:
            core = fixed_fg[k]
            outer = (sd > params.refine_band_mm) & (
                sd <= params.refine_band_mm + params.ring_outer_mm
            )
            if min(core.sum(), outer.sum()) >= MIN_MODEL_PIXELS:
                local = AppearanceModel.learn(
                    img[k][core],
                    img[k][outer],
                    bins=params.bins,
                    smooth_bins=params.hist_smooth_bins,
                    clip=params.llr_clip,
                )
                llr[k] = local.llr(img[k])
    cost_fg = params.intensity_weight * np.maximum(-llr, 0).astype(np.float64)
    cost_bg = params.intensity_weight * np.maximum(llr, 0).astype(np.float64)
    weights = _contrast_weights_3d(img, geo, params.refine_z_weight)
    cut = _band_cut(cost_fg, cost_bg, weights, params.gamma, fixed_fg, fixed_bg)
    # Keep what is joined to the prompted slice's mask through the run.
    labels, _ = ndi.label(cut)
    keep = np.unique(labels[0][sub[0]])
    cut = np.isin(labels, keep[keep > 0])
    out = masks.copy()
    for k in range(1, n):
        part = fill_holes(cut[k])
        out[k] = crop.paste(part, masks.shape[1:])
    return out


Weights = list[tuple[int, np.ndarray]]


def _contrast_weights_3d(img: np.ndarray, geo: PixelGeometry, z_weight: float) -> Weights:
    """Per axis, exp(-beta dI^2) / (edge length in units of the smaller pixel side).

    ``beta`` adapts to the in-plane contrast (1 / (2 mean dI^2)), as in the
    per-slice cut; edges across slices are further scaled by ``z_weight``.
    """
    diffs = [np.diff(img, axis=a) for a in range(3)]
    in_plane = np.concatenate([diffs[1].ravel(), diffs[2].ravel()])
    mean_sq = float(np.mean(in_plane**2)) if in_plane.size else 0.0
    beta = 1.0 / (2.0 * mean_sq) if mean_sq > 0 else 0.0
    lengths = (geo.thickness, geo.spacing[0], geo.spacing[1])
    unit = min(geo.spacing)
    out = []
    for axis, diff in enumerate(diffs):
        weight = np.exp(-beta * diff.astype(np.float64) ** 2) * unit / lengths[axis]
        if axis == 0:
            weight *= z_weight
        out.append((axis, weight))
    return out


def _band_cut(
    cost_fg: np.ndarray,
    cost_bg: np.ndarray,
    weights: Weights,
    gamma: float,
    fixed_fg: np.ndarray,
    fixed_bg: np.ndarray,
) -> np.ndarray:
    """Minimise unaries + gamma * cut edge weights over the free voxels; True = object.

    Fixed voxels stay out of the graph and only pull on their free neighbours
    (as in :func:`~.graphcut.graph_cut`, in 3D), so the graph holds the band only.
    """
    pairs = []
    for axis, weight in weights:
        size = cost_fg.shape[axis]
        here = tuple(slice(0, size - 1) if a == axis else slice(None) for a in range(3))
        there = tuple(slice(1, size) if a == axis else slice(None) for a in range(3))
        pairs.append((here, there, gamma * weight))
    return solve_cut(cost_fg, cost_bg, pairs, fixed_fg, fixed_bg)
