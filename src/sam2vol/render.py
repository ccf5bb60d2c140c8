"""Render slices with mask overlays to PNG (for the demo and reports)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from sam2vol.intensity import to_uint8


def _outline(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def overlay_slice(
    image: np.ndarray,
    masks: list[tuple[np.ndarray, tuple[int, int, int]]],
    *,
    fill_alpha: float = 0.35,
) -> np.ndarray:
    """RGB uint8 of a [0, 1] slice with each (mask, colour) filled and outlined."""
    gray = to_uint8(image).astype(np.float32)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    for mask, color in masks:
        mask = np.asarray(mask, dtype=bool)
        tint = np.asarray(color, dtype=np.float32)
        rgb[mask] = (1 - fill_alpha) * rgb[mask] + fill_alpha * tint
        rgb[_outline(mask)] = tint
    return rgb.astype(np.uint8)


def save_overlay_grid(
    image_stack: np.ndarray,
    layers: list[tuple[np.ndarray, tuple[int, int, int]]],
    slices: list[int],
    path: str | Path,
    *,
    columns: int = 4,
    scale: int = 2,
) -> Path:
    """Save chosen slices of a stack [s, row, col] with mask stacks overlaid, in a grid PNG.

    Args:
        image_stack: Prepared image in [0, 1].
        layers: (mask stack, RGB colour) pairs drawn in order.
        slices: Slice indices to show.
        path: Output PNG (written atomically).
        columns: Tiles per row.
        scale: Nearest-neighbour magnification of each tile.
    """
    import os

    from PIL import Image, ImageDraw

    tiles = []
    for s in slices:
        tile = overlay_slice(image_stack[s], [(m[s], c) for m, c in layers])
        tile = np.kron(tile, np.ones((scale, scale, 1), dtype=np.uint8))
        picture = Image.fromarray(tile)
        ImageDraw.Draw(picture).text((4, 4), f"slice {s}", fill=(255, 255, 0))
        tiles.append(np.asarray(picture))
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    grid = np.zeros((rows * h, min(columns, len(tiles)) * w, 3), dtype=np.uint8)
    for n, tile in enumerate(tiles):
        r, c = divmod(n, columns)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(grid).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
