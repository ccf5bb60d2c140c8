"""A box prompt: GrabCut-like graph cut inside the box, with its outside as background."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from sam2vol.engines.default.appearance import AppearanceModel, density, smooth
from sam2vol.engines.default.graphcut import HARD, Crop, contrast_weights, graph_cut
from sam2vol.engines.default.masks import distance_mm, fill_holes, points_mask
from sam2vol.engines.default.params import DefaultParams, PixelGeometry


def segment_box(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    positive: np.ndarray,
    negative: np.ndarray,
    params: DefaultParams,
    geo: PixelGeometry,
) -> np.ndarray:
    """The object inside ``box`` (row0, col0, row1, col1, inclusive, inside the slice).

    GrabCut (Rother et al. 2004) with intensity histograms: the object model
    starts from the whole box, the background model from a ring outside it;
    both are re-estimated from the cut for ``box_iterations`` rounds. A mild
    prior favours the box's centre over its corners. Clicks inside the box are
    hard seeds. The result keeps the components at least a quarter the size of
    the largest; if nothing is left, it is the ellipse inscribed in the box.
    """
    r0, c0, r1, c1 = box
    crop = Crop.of_box(r0, c0, r1, c1, geo.px(params.ring_outer_mm), image.shape)
    img = smooth(image[crop.slices], params.image_sigma_px)
    inside = np.zeros(img.shape, dtype=bool)
    inside[r0 - crop.r0 : r1 - crop.r0 + 1, c0 - crop.c0 : c1 - crop.c0 + 1] = True
    offset = np.array([crop.r0, crop.c0])
    seed_px = params.click_radius_mm / min(geo.spacing)
    fg_seed = points_mask(img.shape, positive - offset, seed_px) & inside
    bg_seed = points_mask(img.shape, negative - offset, seed_px) & inside & ~fg_seed
    # Normalised position in the box: 0 at the centre, 1 on the border.
    rows = np.abs(np.arange(img.shape[0]) + crop.r0 - (r0 + r1) / 2) / max((r1 - r0) / 2, 1)
    cols = np.abs(np.arange(img.shape[1]) + crop.c0 - (c0 + c1) / 2) / max((c1 - c0) / 2, 1)
    edge = np.hypot(rows[:, None], cols[None, :]) / np.sqrt(2)
    centre_cost = 0.5 * np.clip(edge - 0.5, 0, None)
    weights = contrast_weights(img, geo.spacing)
    region = inside
    # Background: outside the box, and inside it away from the region's rim.
    gap = params.ring_inner_mm
    bg_values = img[~inside] if (~inside).any() else np.linspace(0, 1, 64)
    for _ in range(max(params.box_iterations, 1)):
        fg_values = img[region] if region.any() else img[inside]
        model = AppearanceModel(
            density(fg_values, params.bins, params.hist_smooth_bins),
            density(
                np.concatenate([bg_values, img[inside & (distance_mm(region, geo.spacing) > gap)]]),
                params.bins,
                params.hist_smooth_bins,
            ),
            params.llr_clip,
        )
        llr = model.llr(img)
        cost_fg = params.intensity_weight * np.maximum(-llr, 0) + centre_cost
        cost_bg = params.intensity_weight * np.maximum(llr, 0)
        cost_fg[~inside | bg_seed] = HARD
        cost_bg[fg_seed] = HARD
        region = fill_holes(graph_cut(cost_fg, cost_bg, weights, params.gamma))
    region = _main_parts(region | fg_seed, fg_seed)
    if not region.any():
        # Nothing stands out: the box itself says there is an object; take its ellipse.
        region = inside & (edge * np.sqrt(2) <= 1)
    return crop.paste(region, image.shape)


def _main_parts(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Components at least a quarter the size of the largest, and those holding seeds."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = sizes >= sizes.max() / 4
    keep[np.unique(labels[seeds])] = True
    keep[0] = False
    return keep[labels]
