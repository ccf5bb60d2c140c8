"""The shape prior of propagation: the previous slice's mask, allowed to move a little."""

from __future__ import annotations

import numpy as np

from sam2vol.engines.default.graphcut import HARD
from sam2vol.engines.default.masks import signed_distance_mm


def shape_prior_costs(
    previous: np.ndarray,
    spacing: tuple[float, float],
    *,
    weight: float,
    free_mm: float,
    max_mm: float,
    cap: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unary costs that keep the new mask near ``previous``.

    Within ``free_mm`` of the previous border both labels are free; beyond it,
    being foreground outside (or background inside) costs ``weight`` per mm;
    the cost of background inside saturates at ``cap`` so that clear intensity
    evidence can still end the object. Foreground farther than ``max_mm``
    outside is forbidden.

    Returns:
        (cost_fg, cost_bg, signed distance in mm) as float32 arrays.
    """
    sd = signed_distance_mm(previous, spacing)
    cost_fg = weight * np.maximum(sd - free_mm, 0.0)
    cost_bg = np.minimum(weight * np.maximum(-sd - free_mm, 0.0), cap)
    cost_fg[sd > max_mm] = HARD
    return cost_fg.astype(np.float32), cost_bg.astype(np.float32), sd
