"""Geodesic competition (engines/default/geodesic.py) and the click fallback that uses it."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from sam2vol.engines.base import SlicePrompts
from sam2vol.engines.default import DefaultEngine, interaction
from sam2vol.engines.default.appearance import noise_std
from sam2vol.engines.default.geodesic import LENGTH_COST_PER_MM, geodesic_competition
from sam2vol.engines.default.masks import points_mask


def reference_labels(image, fg, bg, spacing):
    """Plain Dijkstra from every seed over the 4-neighbourhood, written from the definition."""
    h, w = image.shape
    scale = 1.0 / max(noise_std(image), 1e-3)
    best = np.full((h, w), np.inf)
    owner = np.zeros((h, w), dtype=bool)
    heap = []
    for mask, is_fg in ((fg, True), (bg, False)):
        for r, c in zip(*np.nonzero(mask), strict=True):
            best[r, c] = 0.0
            owner[r, c] = is_fg
            heap.append((0.0, int(r), int(c), is_fg))
    heapq.heapify(heap)
    done = np.zeros((h, w), dtype=bool)
    while heap:
        d, r, c, is_fg = heapq.heappop(heap)
        if done[r, c]:
            continue
        done[r, c] = True
        owner[r, c] = is_fg
        for dr, dc, length in ((0, 1, spacing[1]), (0, -1, spacing[1]), (1, 0, spacing[0]),
                               (-1, 0, spacing[0])):  # fmt: skip
            rr, cc = r + dr, c + dc
            if 0 <= rr < h and 0 <= cc < w and not done[rr, cc]:
                step = abs(float(image[r, c]) - float(image[rr, cc])) * scale
                nd = d + step + LENGTH_COST_PER_MM * length
                if nd < best[rr, cc]:
                    best[rr, cc] = nd
                    heapq.heappush(heap, (nd, rr, cc, is_fg))
    return owner, best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geodesic_competition_matches_a_plain_dijkstra(seed):
    rng = np.random.default_rng(seed)
    image = rng.random((14, 17)).astype(np.float32)
    fg = np.zeros(image.shape, dtype=bool)
    bg = np.zeros(image.shape, dtype=bool)
    fg[rng.integers(0, 14, 3), rng.integers(0, 17, 3)] = True
    bg[rng.integers(0, 14, 4), rng.integers(0, 17, 4)] = True
    bg &= ~fg
    spacing = (0.7, 1.3)
    got = geodesic_competition(image, fg, bg, spacing)
    want, dist = reference_labels(image, fg, bg, spacing)
    assert np.array_equal(got, want)
    assert got[fg].all() and not got[bg].any()
    assert np.isfinite(dist).all()


def test_region_stops_at_the_strongest_edge():
    rng = np.random.default_rng(0)
    rows, cols = np.ogrid[:80, :80]
    radius = np.hypot(rows - 40, cols - 40)
    image = np.where((radius > 12) & (radius <= 14), 0.3, 0.5) + rng.normal(0, 0.02, (80, 80))
    fg = points_mask((80, 80), np.array([[40, 40]]), 2)
    bg = radius >= 30
    region = geodesic_competition(image.astype(np.float32), fg, bg, (0.8, 0.8))
    truth = radius <= 13
    assert 2 * (region & truth).sum() / (region.sum() + truth.sum()) > 0.9


def test_a_click_that_grows_nothing_falls_back_to_the_competition(monkeypatch):
    # The seeded graph cut fails (as on structures whose intensity is not
    # distinctive): it returns the seed disc alone. The fallback must still
    # give the region the edges outline.
    rng = np.random.default_rng(0)
    rows, cols = np.ogrid[:96, :96]
    radius = np.hypot(rows - 48, cols - 48)
    slice_ = np.where((radius > 9) & (radius <= 11), 0.3, 0.5) + rng.normal(0, 0.02, (96, 96))
    image = np.repeat(slice_[None].astype(np.float32), 3, axis=0)

    def grows_nothing(image, positive, negative, params, geo, **kwargs):
        return points_mask(image.shape, positive, params.click_radius_mm / min(geo.spacing))

    monkeypatch.setattr(interaction, "grow_from_clicks", grows_nothing)
    engine = DefaultEngine()
    engine.set_image(image, (2.0, 0.8, 0.8))
    prompts = SlicePrompts()
    prompts.add_point(48, 48, positive=True)
    mask = engine.predict_slice(1, prompts)
    truth = radius <= 10
    assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.85
    # Switched off, the seed disc is all there is.
    off = DefaultEngine(min_click_growth=0.0)
    off.set_image(image, (2.0, 0.8, 0.8))
    assert off.predict_slice(1, prompts).sum() < 20
