"""Clicks on one slice: positive clicks grow a region, negative clicks cut away what they touch."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from sam2vol.engines.default.appearance import (
    AppearanceModel,
    density,
    gaussian_density,
    noise_std,
    smooth,
)
from sam2vol.engines.default.graphcut import HARD, Crop, contrast_weights, graph_cut
from sam2vol.engines.default.masks import (
    components_touching,
    disc,
    distance_mm,
    fill_holes,
    points_mask,
)
from sam2vol.engines.default.params import DefaultParams, PixelGeometry

# GrabCut-style re-estimation rounds of the region grown from clicks.
GROW_ROUNDS = 2


def grow_from_clicks(
    image: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    params: DefaultParams,
    geo: PixelGeometry,
    *,
    free_mm: float,
    cost_per_mm: float,
    known: np.ndarray | None = None,
) -> np.ndarray:
    """The region around ``positive`` clicks (a graph cut seeded by the clicks).

    The object model starts as a Gaussian around the intensities under the
    clicks; the background model is the rest of a crop reaching
    ``click_reach_mm`` around them. Both are re-estimated from the cut
    (GrabCut-like). Negative clicks are background seeds, and a cost on the
    distance from the clicks beyond ``free_mm`` (``cost_per_mm`` per mm)
    keeps the region compact.

    Args:
        image: The full slice in [0, 1].
        positive: (N, 2) positive clicks (row, col), N >= 1.
        negative: (M, 2) negative clicks.
        params: Settings.
        geo: Pixel geometry.
        free_mm: Distance from the clicks the region grows freely.
        cost_per_mm: Cost of growing further, per mm.
        known: The object's mask so far, left out of the background model.

    Returns:
        (H, W) bool mask, holding at least the discs under the positive clicks.
    """
    reach = geo.px(params.click_reach_mm)
    crop = Crop.of_box(*positive.min(axis=0), *positive.max(axis=0), reach, image.shape)
    img = smooth(image[crop.slices], params.image_sigma_px)
    offset = np.array([crop.r0, crop.c0])
    pos = positive - offset
    neg = negative - offset
    neg = neg[np.all((neg >= 0) & (neg < img.shape), axis=1)]
    seed_px = params.click_radius_mm / min(geo.spacing)
    fg_seed = points_mask(img.shape, pos, seed_px)
    bg_seed = points_mask(img.shape, neg, seed_px) & ~fg_seed
    # Distance from the nearest positive click: costly beyond free_mm, forbidden beyond reach.
    dist = distance_mm(points_mask(img.shape, pos, 0), geo.spacing)
    dist_cost = cost_per_mm * np.maximum(dist - free_mm, 0)
    near = points_mask(img.shape, pos, params.near_click_mm / min(geo.spacing))
    fg_dens = gaussian_density(img[near], params.bins, max(3 * noise_std(img), 0.01))
    region = fg_seed
    weights = contrast_weights(img, geo.spacing)
    for _ in range(GROW_ROUNDS):
        # Background: the crop, except a gap at the region's rim (blurred edge pixels).
        outside = distance_mm(region, geo.spacing) > params.ring_inner_mm
        if known is not None:
            outside &= ~known[crop.slices]
        bg_values = img[outside] if outside.any() else np.linspace(0, 1, 64)
        obj = 0.5 * fg_dens + 0.5 * density(img[region], params.bins, params.hist_smooth_bins)
        model = AppearanceModel(
            obj, density(bg_values, params.bins, params.hist_smooth_bins), params.llr_clip
        )
        llr = model.llr(img)
        cost_fg = params.intensity_weight * np.maximum(-llr, 0) + dist_cost
        cost_bg = params.intensity_weight * np.maximum(llr, 0)
        cost_fg[bg_seed | (dist > params.click_reach_mm)] = HARD
        cost_bg[fg_seed] = HARD
        region = fill_holes(
            components_touching(graph_cut(cost_fg, cost_bg, weights, params.gamma), fg_seed)
        )
    return crop.paste(region | fg_seed, image.shape)


def clicked_part(
    region: np.ndarray, click: np.ndarray, params: DefaultParams, geo: PixelGeometry
) -> np.ndarray:
    """The thick part of ``region`` around ``click``, without thin appendages.

    A first click's region often comes with thin appendages of look-alike
    tissue (a vessel leaving a lesion): carried into propagation, such a tube
    runs on through the slices on its own and is where leaks start. The
    region is opened by a disc of radius ``min(neck_mm, appendage_of_depth *
    depth)``, where depth is the largest distance from the region's border
    (its half-width where thickest): only parts thinner than that relative
    to the region's own thickness are appendages, so a uniform ribbon (a
    gyrus) keeps its arms. Each pixel joins the nearest thick part (as for
    negative clicks), and the clicked part, within the disc radius of its
    opened core, is kept.
    """
    crop = Crop.around(region, 2)
    if crop is None:
        return region
    comp = region[crop.slices]
    depth = ndi.distance_transform_edt(comp, sampling=geo.spacing)
    radius_mm = min(params.neck_mm, params.appendage_of_depth * float(depth.max()))
    radius = radius_mm / min(geo.spacing)
    if radius < 1:
        return region
    opened = ndi.binary_opening(comp, disc(radius))
    labels, n = ndi.label(opened, structure=np.ones((3, 3)))
    if n == 0:
        return region
    parts = watershed(-depth, labels, mask=comp)
    label = parts[click[0] - crop.r0, click[1] - crop.c0]
    if label == 0:
        return region
    # The thick part itself: its opened core, grown back by the disc it was opened with.
    near_core = ndi.distance_transform_edt(labels != label) <= radius
    return crop.paste((parts == label) & near_core, region.shape)


def remove_touched(
    mask: np.ndarray,
    image: np.ndarray,
    click: np.ndarray,
    keep: np.ndarray,
    params: DefaultParams,
    geo: PixelGeometry,
) -> np.ndarray:
    """``mask`` without the part a negative ``click`` touches.

    The touched part is, in order of preference: the whole connected
    component, when the mask has others and this one holds no positive click;
    the part beyond a neck thinner than ``2 * neck_mm``; else the side of a
    watershed split (on the image gradient) between the click and what is
    kept: the positive clicks, or else the parts of the component deep inside
    it and far from the click (none: the whole component goes). The split,
    not a disc around the click, decides what goes: where the false part is
    thinner than a disc (a rim along the object), a disc cut into the object
    (breast1, third click: slice Dice 0.837 -> 0.727). A click off the mask is
    already satisfied and changes nothing, so re-predicting is stable.

    Args:
        mask: (H, W) bool mask.
        image: The full slice in [0, 1].
        click: (row, col) of the negative click.
        keep: (K, 2) positive clicks, never removed.
        params: Settings.
        geo: Pixel geometry.
    """
    out = mask.copy()
    if not mask[tuple(click)]:
        return out
    out[tuple(click)] = False
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    comp = labels == labels[tuple(click)]
    keep_mask = points_mask(mask.shape, keep, 0) & comp
    if n > 1 and not keep_mask.any():
        return out & ~comp
    crop = Crop.around(comp, 2)
    assert crop is not None
    part = _touched_part(
        comp[crop.slices],
        smooth(image[crop.slices], params.image_sigma_px),
        click - [crop.r0, crop.c0],
        keep_mask[crop.slices],
        params,
        geo,
    )
    return out & ~crop.paste(part, mask.shape)


def _touched_part(
    comp: np.ndarray,
    img: np.ndarray,
    click: np.ndarray,
    keep: np.ndarray,
    params: DefaultParams,
    geo: PixelGeometry,
) -> np.ndarray:
    """The part of the component ``comp`` that a negative click at ``click`` removes."""
    depth = ndi.distance_transform_edt(comp, sampling=geo.spacing)
    neck = params.neck_mm / min(geo.spacing)
    opened = ndi.binary_opening(comp, disc(neck)) if neck >= 1 else comp
    labels, n = ndi.label(opened, structure=np.ones((3, 3)))
    if n > 1:
        # Split the component at its necks: each pixel joins the nearest thick part.
        parts = watershed(-depth, labels, mask=comp)
        part = parts == parts[tuple(click)]
        if not (keep & part).any():
            return part
        comp, keep_inside = part, keep & part
    else:
        keep_inside = keep
    click_px = points_mask(comp.shape, click[None], 0)
    if not keep_inside.any():
        dist = distance_mm(points_mask(comp.shape, click[None], 0), geo.spacing)
        deep = depth.max()
        keep_inside = comp & (depth > 0.5 * deep) & (dist > 1.5 * deep)
        if not keep_inside.any():
            return comp
    markers = np.zeros(comp.shape, dtype=np.int32)
    markers[keep_inside] = 1
    markers[click_px & comp & ~keep_inside] = 2
    # Flood from both sides over the image gradient, scaled so that a strong
    # edge outweighs ~20 pixels of distance: the split follows edges where there
    # are some, and runs half-way between the markers where there are none.
    gradient = ndi.gaussian_gradient_magnitude(img, 1.0)
    gradient = gradient / max(float(np.percentile(gradient[comp], 99)), 1e-6)
    return watershed(gradient, markers, mask=comp, compactness=0.05) == 2
