"""One step of propagation: the previous slice's mask -> this slice's mask, or the end."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sam2vol.engines.default.appearance import AppearanceModel, smooth
from sam2vol.engines.default.graphcut import Crop, contrast_weights, graph_cut
from sam2vol.engines.default.masks import components_touching, drop_small, fill_holes, ring
from sam2vol.engines.default.params import DefaultParams, PixelGeometry
from sam2vol.engines.default.shape_prior import shape_prior_costs

# Score of a slice without the object.
ABSENT_SCORE = -1.0
# Confidence that the object is absent on the n-th slice past where tracking
# ended is 1 - ABSENT_DOUBT**n: the first slice past the end is where stops go
# wrong most (early or late by one), each further slice halves the doubt.
ABSENT_DOUBT = 0.5
# Slices past the end after which absence counts as sure (an erased object).
END_SURE_AFTER = 10


def absent_confidence(slices_past_end: int) -> float:
    """Confidence of an empty mask ``slices_past_end`` (>= 1) slices past the object's end."""
    return 1.0 - ABSENT_DOUBT ** max(slices_past_end, 1)


@dataclass(frozen=True)
class TrackState:
    """What propagation carries from slice to slice for one object.

    Attributes:
        mask: The last slice's (H, W) mask.
        model: Intensity model learned on the last anchor (prompted slice).
        ring_fg_ref: Fraction of object-looking pixels around the anchor's mask.
        peak_area: The largest area (pixels) of the object met so far.
        trough_area: The smallest area since that peak.
        radius_mm: Radius of a disc with the anchor mask's area (the object's scale).
        anchor_llr: Mean log-likelihood ratio inside the anchor's mask.
        anchor_fit: Share of the anchor mask's pixels that look like the object.
    """

    mask: np.ndarray
    model: AppearanceModel
    ring_fg_ref: float
    peak_area: int
    trough_area: int
    radius_mm: float = float("inf")
    anchor_llr: float = 1.0
    anchor_fit: float = 1.0


@dataclass(frozen=True)
class Step:
    """One slice's outcome: its mask and score, and the state to go on with (None: ended).

    Attributes:
        mask: (H, W) bool mask, empty when the object has ended.
        score: Mean log-likelihood ratio inside the mask; ``ABSENT_SCORE`` if ended.
        state: The state for the next slice, or None where the object ended.
        note: What the stopping rule measured, for logs.
        confidence: How sure the mask is right, 0..1: the share of its
            pixels that look like the object, times its mean log-likelihood
            ratio relative to the anchor's (capped at 1); 0 where it ended.
    """

    mask: np.ndarray
    score: float
    state: TrackState | None
    note: str = ""
    confidence: float = 0.0


def anchor_state(
    image: np.ndarray, mask: np.ndarray, params: DefaultParams, geo: PixelGeometry
) -> tuple[TrackState, float]:
    """The state propagation starts from on a prompted slice, and the mask's score there.

    Learns the intensity model of ``mask`` (non-empty) against a ring around it.
    """
    crop = Crop.around(mask, geo.px(params.ring_outer_mm) + 2)
    assert crop is not None, "anchor_state needs a non-empty mask"
    img = smooth(image[crop.slices], params.image_sigma_px)
    m = mask[crop.slices]
    bg = ring(m, params.ring_inner_mm, params.ring_outer_mm, geo.spacing)
    bg_values = img[bg] if bg.any() else np.linspace(0, 1, 64)
    model = AppearanceModel.learn(
        img[m],
        bg_values,
        bins=params.bins,
        smooth_bins=params.hist_smooth_bins,
        clip=params.llr_clip,
    )
    llr = model.llr(img)
    area = int(m.sum())
    radius = math.sqrt(area * geo.pixel_area / math.pi)
    score = max(float(llr[m].mean()), 0.01)
    ring_fg = ring_fg_fraction(llr, m, params, geo)
    fit = max(float(np.mean(llr[m] > 0)), 0.01)
    state = TrackState(mask, model, ring_fg, area, area, radius, score, fit)
    return state, score


def ring_fg_fraction(
    llr: np.ndarray, mask: np.ndarray, params: DefaultParams, geo: PixelGeometry
) -> float:
    """Fraction of object-looking pixels (llr > 0) in the leak-check ring around ``mask``."""
    band = ring(mask, params.leak_ring_mm[0], params.leak_ring_mm[1], geo.spacing)
    return float(np.mean(llr[band] > 0)) if band.any() else 0.0


def track_step(
    image: np.ndarray, state: TrackState, params: DefaultParams, geo: PixelGeometry
) -> Step:
    """Segment ``image`` (one full slice) from the previous slice's state.

    A graph cut in a crop around the previous mask: the intensity
    log-likelihood ratio and the shape prior (distance to the previous mask)
    as unary terms, contrast-sensitive smoothness as the pairwise term. The
    object has ended when the result is too small, collapses or grows too
    fast, drifts off the previous mask, fits the intensity model poorly, or
    has merged into look-alike surroundings.
    """
    empty = np.zeros(image.shape, dtype=bool)
    max_move = min(
        max(params.max_move_mm, params.max_move_slices * geo.thickness),
        params.max_move_of_radius * state.radius_mm,
    )
    crop = Crop.around(state.mask, geo.px(max_move) + 3)
    if crop is None:
        return Step(empty, ABSENT_SCORE, None, "empty")
    img = smooth(image[crop.slices], params.image_sigma_px)
    prev = state.mask[crop.slices]
    cost_fg, cost_bg, sd = shape_prior_costs(
        prev,
        geo.spacing,
        weight=params.prior_weight,
        free_mm=params.free_move_mm,
        max_mm=max_move,
        cap=params.prior_cap,
    )
    llr = state.model.llr(img)
    # Deep inside the previous mask, pixels that look like the object stay so, unsolved.
    sure = (sd < -params.solve_depth_mm) & (llr > 0)
    cost_fg += params.intensity_weight * np.maximum(-llr, 0)
    cost_bg += params.intensity_weight * np.maximum(llr, 0)
    cut = graph_cut(cost_fg, cost_bg, contrast_weights(img, geo.spacing), params.gamma, sure)
    cut = fill_holes(components_touching(cut, prev))
    cut = drop_small(cut, geo.area_px(params.min_area_mm2))
    area = int(cut.sum())
    if area == 0:
        return Step(empty, ABSENT_SCORE, None, "area=0")
    mean_llr = float(llr[cut].mean())
    overlap = float((cut & prev).sum()) / area
    growth = area / max(int(prev.sum()), 1)
    ring_fg = ring_fg_fraction(llr, cut, params, geo)
    fit = float(np.mean(llr[cut] > 0))
    note = (
        f"area={area} overlap={overlap:.2f} llr={mean_llr:.2f} fit={fit:.2f} "
        f"growth={growth:.2f} ring={ring_fg:.2f}"
    )
    alive = (
        params.min_area_ratio <= growth <= params.max_growth
        and area >= params.min_area_of_peak * state.peak_area
        and not regrows(area, state, params)
        and overlap >= params.min_overlap
        and mean_llr >= params.min_llr_of_anchor * state.anchor_llr
        and fit >= params.min_fit_of_anchor * state.anchor_fit
        and ring_fg <= max(params.max_ring_fg, state.ring_fg_ref + params.ring_fg_slack)
    )
    if not alive:
        return Step(empty, ABSENT_SCORE, None, note)
    full = crop.paste(cut, image.shape)
    peak = max(state.peak_area, area)
    trough = area if area >= state.peak_area else min(state.trough_area, area)
    next_state = replace(state, mask=full, peak_area=peak, trough_area=trough)
    confidence = fit * min(max(mean_llr / state.anchor_llr, 0.0), 1.0)
    return Step(full, mean_llr, next_state, note, confidence)


def regrows(area: int, state: TrackState, params: DefaultParams) -> bool:
    """Whether a mask that was shrinking from its peak grows back large: a merge, mostly.

    Cross-sections of compact objects rise to one peak and fall; a mask that
    has shrunk and then grows by ``max_regrowth`` to over half its peak has
    usually run into a neighbouring structure that looks alike. A mask that
    has not shrunk since the anchor is growing towards its peak, not back.
    """
    shrank = state.trough_area < state.peak_area  # not just grown from the anchor
    return (
        shrank and area > params.max_regrowth * state.trough_area and area > 0.5 * state.peak_area
    )
