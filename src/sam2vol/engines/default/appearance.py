"""Intensity models: object vs background histograms, used as a log-likelihood ratio."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi


@dataclass(frozen=True)
class AppearanceModel:
    """What the object looks like against its surroundings.

    Attributes:
        fg: (bins,) density of object intensities over [0, 1].
        bg: (bins,) density of background intensities.
        clip: Bound on the log-likelihood ratio, in nats.
        llr_table: (bins,) clipped log fg - log bg (derived).
    """

    fg: np.ndarray
    bg: np.ndarray
    clip: float = 5.0
    llr_table: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        table = np.clip(np.log(self.fg) - np.log(self.bg), -self.clip, self.clip)
        object.__setattr__(self, "llr_table", table.astype(np.float32))

    @property
    def bins(self) -> int:
        return len(self.fg)

    def llr(self, image: np.ndarray) -> np.ndarray:
        """Per-pixel log-likelihood ratio (float32) of ``image`` in [0, 1]."""
        index = np.clip((image * self.bins).astype(np.intp), 0, self.bins - 1)
        return self.llr_table[index]

    @classmethod
    def learn(
        cls,
        fg_values: np.ndarray,
        bg_values: np.ndarray,
        *,
        bins: int = 128,
        smooth_bins: float = 1.5,
        clip: float = 5.0,
    ) -> AppearanceModel:
        """Learn from sample intensities (in [0, 1]) inside and outside the object."""
        return cls(
            density(fg_values, bins, smooth_bins), density(bg_values, bins, smooth_bins), clip
        )


def density(values: np.ndarray, bins: int, smooth_bins: float) -> np.ndarray:
    """Smoothed histogram density over [0, 1], mixed with a little of the uniform."""
    values = np.asarray(values, dtype=np.float32).ravel()
    index = np.clip((values * bins).astype(np.intp), 0, bins - 1)
    hist = np.bincount(index, minlength=bins).astype(np.float64)
    if smooth_bins > 0:
        hist = ndi.gaussian_filter1d(hist, smooth_bins, mode="constant")
    total = hist.sum()
    hist = hist / total if total > 0 else np.full(bins, 1.0 / bins)
    return 0.99 * hist + 0.01 / bins


def gaussian_density(values: np.ndarray, bins: int, min_std: float) -> np.ndarray:
    """A Gaussian density over the bins from the robust centre and spread of ``values``."""
    values = np.asarray(values, dtype=np.float64).ravel()
    centre = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - centre)))
    std = max(spread, min_std)
    x = (np.arange(bins) + 0.5) / bins
    dens = np.exp(-0.5 * ((x - centre) / std) ** 2)
    dens /= dens.sum()
    return 0.99 * dens + 0.01 / bins


def noise_std(image: np.ndarray) -> float:
    """Robust estimate of the pixel noise of a 2D image (from the median absolute Laplacian)."""
    if min(image.shape) < 3:
        return 0.0
    lap = 4 * image[1:-1, 1:-1] - image[:-2, 1:-1] - image[2:, 1:-1]
    lap = lap - image[1:-1, :-2] - image[1:-1, 2:]
    return float(1.4826 * np.median(np.abs(lap)) / np.sqrt(20.0))


def smooth(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Light Gaussian smoothing (float32) before modelling intensities."""
    image = np.asarray(image, dtype=np.float32)
    return ndi.gaussian_filter(image, sigma_px, mode="nearest") if sigma_px > 0 else image
