"""Helpers shared by tests."""

from __future__ import annotations

import numpy as np


def lps_affine(spacing, origin_lps, direction_lps=None) -> np.ndarray:
    """RAS affine of an image given in DICOM/ITK (LPS) terms."""
    direction_lps = np.eye(3) if direction_lps is None else direction_lps
    flip = np.diag([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = flip @ np.asarray(direction_lps) @ np.diag(spacing)
    affine[:3, 3] = flip @ np.asarray(origin_lps)
    return affine


class ThresholdEngine:
    """A tiny engine for session tests: objects are bright (> 0.5) connected regions.

    Positive clicks and boxes pick the bright components they touch, negative
    clicks remove the component they touch, a mask is taken as is. Tracking
    keeps bright components overlapping the previous slice's mask.
    """

    def __new__(cls):
        from scipy import ndimage

        from sam2vol.engines.base import Engine, SliceResult

        class _Engine(Engine):
            name = "threshold"

            def predict_slice(self, slice_index, prompts, *, current=None, object_id=1):
                bright = self.image[slice_index] > 0.5
                labels, _ = ndimage.label(bright)
                out = np.zeros_like(bright) if current is None else current.copy()
                if prompts.mask is not None:
                    out = prompts.mask.copy()
                if prompts.box is not None:
                    r0, c0, r1, c1 = prompts.box
                    inside = np.zeros_like(bright)
                    inside[r0 : r1 + 1, c0 : c1 + 1] = True
                    out |= bright & inside
                for (r, c), positive in zip(prompts.points, prompts.labels, strict=True):
                    hit = labels == labels[r, c] if labels[r, c] else np.zeros_like(bright)
                    out = out | hit if positive else out & ~hit
                return out

            def _track(self, objects, start, end, reverse, fresh):
                step = -1 if reverse else 1
                for oid, prompts in objects.items():
                    prev = None
                    for s in range(start, end, step):
                        if s in prompts and not prompts[s].is_empty:
                            mask = prompts[s].result
                        elif prev is None or not prev.any():
                            mask = np.zeros(self.image.shape[1:], bool)
                        else:
                            labels, _ = ndimage.label(self.image[s] > 0.5)
                            keep = np.unique(labels[prev & (labels > 0)])
                            mask = np.isin(labels, keep[keep > 0])
                        prev = mask
                        yield SliceResult(s, {oid: mask}, {oid: float(mask.any())})

        return _Engine()
