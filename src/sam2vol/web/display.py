"""What the page shows: slices of the three views in a display window, and mask overlays, as PNG.

Slices come out in each view's display orientation (see :mod:`sam2vol.slicing`);
the page stretches them by the pixel spacing. Masks live in the session's
working view (its slicing axis) and are resliced here for the other two.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np

from sam2vol.errors import InputError
from sam2vol.intensity import looks_like_ct, resolve_preset, to_uint8
from sam2vol.slicing import AXES, Axis, SliceGeometry
from sam2vol.volume import Volume

# Display windows offered in the page: CT presets and MR auto-contrast.
CT_WINDOWS = ("ct-lung", "ct-abdomen", "ct-bone", "ct-brain", "ct-liver", "ct-he2024")
MR_WINDOW = "mr-percentile"
WINDOWS = (*CT_WINDOWS, MR_WINDOW)
# Most voxels sampled for the MR percentiles.
PERCENTILE_SAMPLE = 2_000_000
FILL_ALPHA = 110


@dataclass(frozen=True)
class ViewInfo:
    """One view's slice grid, as the page needs it.

    Attributes:
        name: ``axial``, ``coronal`` or ``sagittal``.
        n_slices, rows, cols: Stack size.
        row_mm, col_mm: Pixel size, to draw slices with the right aspect.
        line: In the other views, whether the working view's current slice
            is a ``row`` or a ``col`` of this one (None in the working view).
        line_flipped: The line sits at ``n - 1 - slice`` instead of ``slice``.
    """

    name: Axis
    n_slices: int
    rows: int
    cols: int
    row_mm: float
    col_mm: float
    line: str | None
    line_flipped: bool


def stack_as_volume(g: SliceGeometry, stack: np.ndarray) -> np.ndarray:
    """A slice stack [s, row, col] seen as [i, j, k] without copying (cf. ``from_stack``)."""
    if g.flip_rows:
        stack = stack[:, ::-1, :]
    if g.flip_cols:
        stack = stack[:, :, ::-1]
    return np.transpose(stack, np.argsort((g.slice_axis, g.row_axis, g.col_axis)))


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 (H, W) grey or (H, W, 4) RGBA -> PNG bytes (fast compression)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (or on the image edge)."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def overlay_rgba(layers: list[tuple[np.ndarray, tuple[int, int, int]]], shape) -> np.ndarray:
    """RGBA of masks filled translucent and outlined opaque in their colours (later on top)."""
    rgba = np.zeros((*shape, 4), dtype=np.uint8)
    for mask, color in layers:
        if not mask.any():
            continue
        rgba[mask] = (*color, FILL_ALPHA)
        rgba[outline(mask)] = (*color, 255)
    return rgba


class Display:
    """Renders one volume in the three views around the session's working geometry."""

    def __init__(self, volume: Volume, working: SliceGeometry) -> None:
        self.volume = volume
        self.working = working
        self.views: dict[str, SliceGeometry] = {
            axis: working if axis == working.axis else SliceGeometry.for_volume(volume, axis)
            for axis in AXES
        }
        self.is_ct = looks_like_ct(volume.data)
        self._percentiles: tuple[float, float] | None = None
        self._lock = threading.Lock()

    @property
    def default_window(self) -> str:
        return "ct-lung" if self.is_ct else MR_WINDOW

    def view(self, name: str) -> SliceGeometry:
        if name not in self.views:
            raise InputError(f"view must be one of {', '.join(AXES)}, got {name!r}")
        return self.views[name]

    def check(self, view: str, s: int) -> SliceGeometry:
        g = self.view(view)
        g.check_slice(s)
        return g

    def infos(self) -> list[ViewInfo]:
        w = self.working
        out = []
        for name, g in self.views.items():
            line, flipped = None, False
            if name != w.axis:
                if w.slice_axis == g.row_axis:
                    line, flipped = "row", g.flip_rows
                else:
                    line, flipped = "col", g.flip_cols
            rows, cols = g.slice_shape
            row_mm, col_mm = g.pixel_spacing_mm
            out.append(ViewInfo(g.axis, g.n_slices, rows, cols, row_mm, col_mm, line, flipped))
        return out

    def _mr_range(self) -> tuple[float, float]:
        with self._lock:
            if self._percentiles is None:
                flat = self.volume.data.ravel(order="K")
                step = max(1, flat.size // PERCENTILE_SAMPLE)
                low, high = np.percentile(flat[::step], [0.5, 99.5])
                self._percentiles = (float(low), float(max(high, low + 1e-6)))
            return self._percentiles

    def windowed(self, plane: np.ndarray, window: str) -> np.ndarray:
        """A raw 2D plane mapped to [0, 1] by a display window."""
        if window not in WINDOWS:
            raise InputError(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
        if window == MR_WINDOW:
            low, high = self._mr_range()
            out = (np.asarray(plane, dtype=np.float32) - low) / np.float32(high - low)
            return np.clip(out, 0.0, 1.0, out=out)
        return resolve_preset(window).apply(plane)

    def image_png(self, view: str, s: int, window: str) -> bytes:
        """Slice ``s`` of ``view`` in a display window, as a grey PNG."""
        g = self.check(view, s)
        plane = g.to_stack(self.volume.data)[s]
        return encode_png(to_uint8(self.windowed(plane, window)))

    def mask_plane(self, view: str, s: int, stack: np.ndarray) -> np.ndarray:
        """Slice ``s`` of ``view`` from a mask stack in the working geometry."""
        g = self.check(view, s)
        if view == self.working.axis:
            return stack[s]
        return g.to_stack(stack_as_volume(self.working, stack))[s]

    def overlay_png(
        self, view: str, s: int, layers: list[tuple[np.ndarray, tuple[int, int, int]]]
    ) -> bytes:
        """Masks (working-geometry stacks with colours) on slice ``s`` of ``view``, as RGBA PNG."""
        g = self.check(view, s)
        planes = [(np.asarray(self.mask_plane(view, s, m), dtype=bool), c) for m, c in layers]
        return encode_png(overlay_rgba(planes, g.slice_shape))

    def to_working(self, view: str, s: int, row: int, col: int) -> tuple[tuple[int, int, int], ...]:
        """A pixel of ``view`` -> (voxel (i, j, k), (slice, row, col) in the working view)."""
        g = self.check(view, s)
        rows, cols = g.slice_shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise InputError(f"pixel ({row}, {col}) is outside the {view} slice ({rows}x{cols})")
        voxel = g.slice_to_voxel(s, row, col)
        return voxel, self.working.voxel_to_slice(voxel)
