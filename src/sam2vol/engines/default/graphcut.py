"""Binary graph cuts on a 2D pixel grid (PyMaxflow), and the crops they run on."""

from __future__ import annotations

from dataclasses import dataclass

import maxflow
import numpy as np

# Cost standing for "never" in the terminal edges.
HARD = 1e6

# (row offset, col offset) of the four forward neighbours of an 8-connected grid.
_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class Crop:
    """A rectangle of a slice: rows ``r0:r1``, columns ``c0:c1``."""

    r0: int
    r1: int
    c0: int
    c1: int

    @classmethod
    def around(cls, mask: np.ndarray, margin: int) -> Crop | None:
        """The bounding box of ``mask`` grown by ``margin`` pixels, or None if it is empty."""
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(mask.any(axis=0))
        return cls.of_box(rows[0], cols[0], rows[-1], cols[-1], margin, mask.shape)

    @classmethod
    def of_box(
        cls, r0: int, c0: int, r1: int, c1: int, margin: int, shape: tuple[int, ...]
    ) -> Crop:
        """An inclusive box grown by ``margin``, clipped to ``shape``."""
        return cls(
            max(int(r0) - margin, 0),
            min(int(r1) + margin + 1, shape[0]),
            max(int(c0) - margin, 0),
            min(int(c1) + margin + 1, shape[1]),
        )

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.r0, self.r1), slice(self.c0, self.c1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.r1 - self.r0, self.c1 - self.c0

    def paste(self, part: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """A full-size bool mask holding ``part`` at this crop."""
        full = np.zeros(shape, dtype=bool)
        full[self.slices] = part
        return full


def contrast_weights(
    image: np.ndarray, spacing: tuple[float, float]
) -> list[tuple[tuple[int, int], np.ndarray]]:
    """Contrast-sensitive edge weights exp(-beta dI^2) / length for 8 neighbours.

    ``beta`` adapts to the image (1 / (2 mean dI^2)), as in GrabCut. Returns, per
    forward offset, an array the size of ``image`` holding the weight of the
    edge from each pixel to its neighbour at that offset (0 where there is none).
    """
    diffs = [_neighbour_diff(image, offset) for offset in _OFFSETS]
    valid = np.concatenate([d[np.isfinite(d)] for d in diffs])
    mean_sq = float(np.mean(valid**2)) if valid.size else 0.0
    beta = 1.0 / (2.0 * mean_sq) if mean_sq > 0 else 0.0
    out = []
    for offset, diff in zip(_OFFSETS, diffs, strict=True):
        length = float(np.hypot(offset[0] * spacing[0], offset[1] * spacing[1]))
        length /= min(spacing)
        weight = np.where(np.isfinite(diff), np.exp(-beta * np.nan_to_num(diff) ** 2), 0.0)
        out.append((offset, (weight / length).astype(np.float32)))
    return out


def _neighbour_diff(image: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """image[p + offset] - image[p], NaN where p + offset is off the grid."""
    dr, dc = offset
    diff = np.full(image.shape, np.nan, dtype=np.float32)
    h, w = image.shape
    c_lo, c_hi = max(0, -dc), w - max(0, dc)
    diff[: h - dr, c_lo:c_hi] = image[dr:, c_lo + dc : c_hi + dc] - image[: h - dr, c_lo:c_hi]
    return diff


def graph_cut(
    cost_fg: np.ndarray,
    cost_bg: np.ndarray,
    weights: list[tuple[tuple[int, int], np.ndarray]],
    gamma: float,
    fixed_fg: np.ndarray | None = None,
) -> np.ndarray:
    """Minimise sum of unary costs + gamma * cut edge weights; True = foreground.

    Pixels that cannot be foreground (``cost_fg >= HARD``) and those in
    ``fixed_fg`` keep their label and stay out of the graph; they only weigh on
    their neighbours' terminal edges. On large crops this makes the graph, and
    the time to build it, several times smaller.

    Args:
        cost_fg: Cost of labelling each pixel foreground (``HARD`` forbids it).
        cost_bg: Cost of labelling each pixel background.
        weights: Output of :func:`contrast_weights` for the same grid.
        gamma: Weight of the smoothness term.
        fixed_fg: Pixels taken as foreground without solving.
    """
    fixed_bg = cost_fg >= HARD
    fg = np.zeros(cost_fg.shape, dtype=bool) if fixed_fg is None else fixed_fg
    h, w = cost_fg.shape
    pairs = []
    for (dr, dc), weight in weights:
        c_lo, c_hi = max(0, -dc), w - max(0, dc)
        here = (slice(0, h - dr), slice(c_lo, c_hi))
        there = (slice(dr, h), slice(c_lo + dc, c_hi + dc))
        pairs.append((here, there, gamma * weight[here].astype(np.float64)))
    return solve_cut(cost_fg, cost_bg, pairs, fg, fixed_bg)


Pair = tuple[tuple[slice, ...], tuple[slice, ...], np.ndarray]


def solve_cut(
    cost_fg: np.ndarray,
    cost_bg: np.ndarray,
    pairs: list[Pair],
    fixed_fg: np.ndarray,
    fixed_bg: np.ndarray,
) -> np.ndarray:
    """Minimum cut of unary costs plus pairwise edges, on a grid of any dimension.

    Fixed voxels keep their label and stay out of the graph; they only weigh on
    their free neighbours' terminal edges, so the graph holds the free voxels only.

    Args:
        cost_fg: Cost of labelling each voxel foreground.
        cost_bg: Cost of labelling each voxel background.
        pairs: ``(here, there, cap)``: the voxels ``grid[here]`` and ``grid[there]``
            are neighbours joined by an edge of capacity ``cap`` (shaped like them).
        fixed_fg: Voxels taken as foreground without solving.
        fixed_bg: Voxels taken as background without solving (wins over ``fixed_fg``).

    Returns:
        The labelling, True = foreground.
    """
    fg = fixed_fg & ~fixed_bg
    active = ~(fixed_bg | fg)
    out = fg.copy()
    n = int(active.sum())
    if n == 0:
        return out
    node = np.full(active.shape, -1, dtype=np.int64)
    node[active] = np.arange(n)
    # Terminal costs of the free voxels, with the pull of their fixed neighbours.
    to_fg = np.where(active, cost_fg, 0).astype(np.float64)
    to_bg = np.where(active, cost_bg, 0).astype(np.float64)
    heads, tails, caps = [], [], []
    for here, there, cap in pairs:
        a_act, b_act = active[here], active[there]
        both = a_act & b_act
        heads.append(node[here][both])
        tails.append(node[there][both])
        caps.append(cap[both])
        # A free voxel next to a fixed one pays the edge if it takes the other label.
        to_bg[here] += np.where(a_act & fg[there], cap, 0)
        to_fg[here] += np.where(a_act & fixed_bg[there], cap, 0)
        to_bg[there] += np.where(b_act & fg[here], cap, 0)
        to_fg[there] += np.where(b_act & fixed_bg[here], cap, 0)
    graph = maxflow.GraphFloat()
    graph.add_nodes(n)
    cap = np.concatenate(caps)
    graph.add_edges(np.concatenate(heads), np.concatenate(tails), cap, cap)
    low = np.minimum(to_fg, to_bg)[active]
    # A node in the source set (foreground) pays its sink capacity.
    graph.add_grid_tedges(np.arange(n), to_bg[active] - low, to_fg[active] - low)
    graph.maxflow()
    out[active] = ~graph.get_grid_segments(np.arange(n))
    return out
