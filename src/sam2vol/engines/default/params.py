"""Tunable settings of the default engine, in physical units where it matters."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from sam2vol.errors import InputError


@dataclass(frozen=True)
class DefaultParams:
    """Settings of :class:`~sam2vol.engines.default.DefaultEngine`.

    Attributes:
        bins: Histogram bins of the intensity models over [0, 1].
        hist_smooth_bins: Gaussian smoothing of the histograms, in bins.
        llr_clip: Bound on the per-pixel log-likelihood ratio (nats).
        image_sigma_px: Gaussian pre-smoothing of a slice before modelling.
        ring_inner_mm: Gap between a mask and the background ring sampled for
            its intensity model.
        ring_outer_mm: Outer radius of that ring.
        gamma: Weight of the contrast-sensitive smoothness term.
        intensity_weight: Weight of the intensity log-likelihood ratio.
        prior_weight: Weight of the shape prior (per mm beyond the free band).
        prior_cap: Most a pixel inside the previous mask pays for leaving it.
        free_move_mm: Band around the previous mask where the prior is silent.
        solve_depth_mm: Pixels deeper than this inside the previous mask whose
            intensity favours the object are kept without solving (speed).
        max_move_mm: Hard limit of how far the boundary may move per slice;
            it also bounds the crop, as ``max(max_move_mm, max_move_slices
            * slice thickness)``.
        max_move_slices: See ``max_move_mm``.
        max_move_of_radius: The boundary may also move per slice at most this
            share of the anchor mask's equivalent radius (the radius of a disc
            of its area): a fixed 8 mm lets a 5 mm lesion double per slice
            into look-alike neighbours; half its radius is still more than a
            sphere's cross-section changes between slices as thick as the
            sphere is wide. Measured on the bundled samples (weights_free
            benchmark): mean Dice 1 click 0.647 -> 0.650, 3 clicks 0.682 ->
            0.687 (breast1's 5 mm lesion), the mask protocol unchanged.
        min_area_mm2: Below this area the object has ended.
        min_area_ratio: Least area ratio to the previous slice (a sudden
            collapse means the object ended; what is left is a vessel or noise).
        min_area_of_peak: Least area ratio to the largest area met on the way
            (what trails on beyond is usually a vessel).
        max_regrowth: Most growth over the smallest area since the peak, once
            over half the peak (see :func:`~.tracking.regrows`).
        min_overlap: Least fraction of a new mask lying on the previous one.
        min_llr_of_anchor: Least mean log-likelihood ratio inside a new mask,
            as a share of the anchor mask's own. Relative, because an object
            that barely differs from its surroundings has a low ratio on its
            own prompted slice too (a fixed 0.2 nats stopped such objects at
            once); 0.1 equals the old fixed 0.2 for an anchor at 2 nats.
        min_fit_of_anchor: Least share of a new mask's pixels that look like
            the object, relative to that share on the anchor (same reason).
        leak_ring_mm: Inner and outer radius of the ring around a new mask
            checked for object-looking pixels (many means it merged into a
            look-alike structure).
        max_ring_fg: Most fraction of object-looking pixels in that ring.
        ring_fg_slack: Allowed rise of that fraction over the anchor's own.
        max_growth: Largest area ratio between consecutive slices.
        click_radius_mm: Radius of the seed disc under a positive click.
        click_reach_mm: How far a positive click may grow a region.
        near_click_mm: Radius around a positive click whose intensities
            start the object model.
        grow_free_mm: Distance from the first positive click the region may
            grow freely; beyond it, growth costs ``grow_cost`` per mm.
        grow_cost: See ``grow_free_mm``.
        min_click_growth: A first click whose region is at most this many
            times its seed disc grew nothing: its region comes instead from a
            geodesic competition with a circle ``grow_free_mm`` around it
            (see :func:`~.interaction.click_fallback`). Twice the disc, so a
            region that crept a pixel beyond it still counts as nothing.
        fix_free_mm: Like ``grow_free_mm`` for a positive click that adds to
            an existing mask (a correction, expected to be local).
        fix_cost: See ``fix_free_mm``.
        neck_mm: Parts joined by a neck thinner than twice this are separate
            parts for negative clicks.
        appendage_of_depth: A first click's region loses appendages thinner
            than twice ``min(neck_mm, appendage_of_depth * depth)``, depth being
            the region's largest distance from its border (see
            :func:`~.clicks.clicked_part`). Half: an appendage under half as
            thick as the region's thickest part is a different structure (a
            vessel on a lesion), while a ribbon of even width keeps its arms.
        box_iterations: GrabCut iterations for a box prompt.
        refine_band_mm: After a run from one anchor, the tracked slices are
            re-cut together in 3D (:func:`~.refine3d.refine_run`); a voxel
            may become object at most this far outside its tracked mask. As
            ``free_move_mm``: the refinement is there to take back what
            tracking kept at tapering ends, not to grow. Measured on the five
            bundled samples (weights_free benchmark, mean Dice 1 click / 3
            clicks / mask): no refinement 0.691 / 0.713 / 0.795; 0.5 mm
            0.691 / 0.733 / 0.802; 1 mm 0.694 / 0.726 / 0.797; 2 mm (with the
            anchor's model) 0.683 / 0.704 / 0.791.
        refine_core_mm: Voxels deeper than this inside a tracked mask stay
            object (the confident core, whose intensities also make that
            slice's object model). 1.5 mm 0.707 / 0.730 / 0.794 (brain2 mask
            0.584 -> 0.543); 3 mm 0.677 / 0.724 / 0.799.
        refine_z_weight: Scale of the edges across slices relative to
            in-plane ones of the same length and contrast (edges weigh
            1 / length in mm, so 2-6.5 mm slices couple weakly). Measured: 0
            (each slice on its own) 0.691 / 0.734 / 0.802, 3 0.692 / 0.734 /
            0.803: on these thick-slice cases the coupling changes little.
        refine_local_model: The refinement's intensity model on each slice
            is learned there, its core against the ring ``refine_band_mm`` ..
            ``refine_band_mm + ring_outer_mm`` outside its tracked mask (the
            anchor's model where either has under 8 pixels). A tapering end
            is dimmer than the anchor's object (partial volume), so the
            anchor's model calls its blurred rim object; the slice's own core
            against its own surround does not. With the anchor's model: 0.688
            / 0.714 / 0.797 (4 mm core: 0.687 / 0.714 / 0.798).
    """

    bins: int = 128
    hist_smooth_bins: float = 1.5
    llr_clip: float = 5.0
    image_sigma_px: float = 0.7
    ring_inner_mm: float = 1.5
    ring_outer_mm: float = 10.0
    gamma: float = 2.0
    intensity_weight: float = 1.0
    prior_weight: float = 1.0
    prior_cap: float = 1.0
    free_move_mm: float = 0.5
    solve_depth_mm: float = 4.0
    max_move_mm: float = 8.0
    max_move_slices: float = 1.5
    max_move_of_radius: float = 0.5
    min_area_mm2: float = 4.0
    min_area_ratio: float = 0.2
    min_area_of_peak: float = 0.1
    max_regrowth: float = 1.3
    min_overlap: float = 0.3
    min_llr_of_anchor: float = 0.1
    min_fit_of_anchor: float = 0.4
    leak_ring_mm: tuple[float, float] = (3.0, 8.0)
    max_ring_fg: float = 0.6
    ring_fg_slack: float = 0.35
    max_growth: float = 2.5
    click_radius_mm: float = 1.5
    click_reach_mm: float = 40.0
    near_click_mm: float = 4.5
    grow_free_mm: float = 10.0
    grow_cost: float = 0.05
    min_click_growth: float = 2.0
    fix_free_mm: float = 3.0
    fix_cost: float = 0.3
    neck_mm: float = 2.0
    appendage_of_depth: float = 0.5
    box_iterations: int = 3
    refine_band_mm: float = 0.5
    refine_core_mm: float = 2.0
    refine_z_weight: float = 1.0
    refine_local_model: bool = True
    max_taper_of_radius: float = 0.25

    def updated(self, **overrides: object) -> DefaultParams:
        """These settings with some replaced; unknown names are an :class:`InputError`."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputError(
                f"unknown default-engine option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return replace(self, **overrides)


@dataclass(frozen=True)
class PixelGeometry:
    """Pixel size (row, col) and slice thickness of the stack, in mm."""

    spacing: tuple[float, float]
    thickness: float

    @property
    def pixel_area(self) -> float:
        return self.spacing[0] * self.spacing[1]

    def px(self, mm: float) -> int:
        """A distance in mm as a whole number of (the smaller) pixels, rounded up."""
        return math.ceil(mm / min(self.spacing) - 1e-9)

    def area_px(self, mm2: float) -> int:
        """An area in mm^2 as a whole number of pixels, rounded up (at least 1)."""
        return max(1, math.ceil(mm2 / self.pixel_area - 1e-9))
