"""Intensity preparation for 2D foundation models.

Each preset maps raw voxel values to float32 in [0, 1]; :func:`to_uint8`
turns that into 8-bit for engines that want images. Presets:

| name           | what it does                                                  |
|----------------|---------------------------------------------------------------|
| ct-abdomen     | CT window W400 / L40 HU                                       |
| ct-lung        | CT window W1500 / L-600 HU                                    |
| ct-bone        | CT window W1800 / L400 HU                                     |
| ct-brain       | CT window W80 / L40 HU                                        |
| ct-liver       | CT window W150 / L30 HU                                       |
| ct-he2024      | fixed range [-1000, 1000] HU (He et al.)                      |
| mr-percentile  | whole-volume 0.5-99.5 percentile clip, then scale             |
| slice-minmax   | each slice scaled by its own min and max (Shen et al.)        |
| auto           | ct-he2024 if the volume looks like CT (min <= -500), else mr-percentile |

Any name may end in ``+uint8`` (``slice-minmax+uint8``): the result is then
quantised to 256 levels as the papers' pipelines did before writing JPEG
frames, ``floor(x * 255) / 255`` (their ``astype(np.uint8)`` truncates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sam2vol.errors import InputError


@dataclass(frozen=True)
class IntensityPreset:
    """A named intensity mapping to [0, 1]."""

    name: str
    description: str
    apply: Callable[[np.ndarray], np.ndarray]


def _window(width: float, level: float) -> Callable[[np.ndarray], np.ndarray]:
    low, high = level - width / 2, level + width / 2
    return lambda x: _scale(x, low, high)


def _scale(x: np.ndarray, low: float, high: float) -> np.ndarray:
    out = (np.asarray(x, dtype=np.float32) - np.float32(low)) / np.float32(max(high - low, 1e-6))
    return np.clip(out, 0.0, 1.0, out=out)


def _percentile(x: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    low, high = np.percentile(x, [low_pct, high_pct])
    return _scale(x, float(low), float(high))


def _slice_minmax(stack: np.ndarray) -> np.ndarray:
    x = np.asarray(stack, dtype=np.float32)
    low = x.min(axis=(1, 2), keepdims=True)
    high = x.max(axis=(1, 2), keepdims=True)
    return (x - low) / np.maximum(high - low, np.float32(1e-6))


PRESETS: dict[str, IntensityPreset] = {
    p.name: p
    for p in (
        IntensityPreset("ct-abdomen", "CT window W400/L40", _window(400, 40)),
        IntensityPreset("ct-lung", "CT window W1500/L-600", _window(1500, -600)),
        IntensityPreset("ct-bone", "CT window W1800/L400", _window(1800, 400)),
        IntensityPreset("ct-brain", "CT window W80/L40", _window(80, 40)),
        IntensityPreset("ct-liver", "CT window W150/L30", _window(150, 30)),
        IntensityPreset("ct-he2024", "fixed [-1000, 1000] HU (He et al.)", _window(2000, 0)),
        IntensityPreset("mr-percentile", "0.5-99.5 percentile normalisation", _percentile),
        IntensityPreset("slice-minmax", "per-slice min-max (Shen et al.)", _slice_minmax),
    )
}


def looks_like_ct(data: np.ndarray) -> bool:
    """CT volumes hold air near -1000 HU; MR intensities are non-negative."""
    return float(np.min(data)) <= -500


QUANTIZE_SUFFIX = "+uint8"


def _quantized(preset: IntensityPreset) -> IntensityPreset:
    def apply(x: np.ndarray) -> np.ndarray:
        levels = np.floor(np.clip(preset.apply(x), 0.0, 1.0) * np.float32(255))
        return (levels / np.float32(255)).astype(np.float32)

    return IntensityPreset(preset.name + QUANTIZE_SUFFIX, preset.description + ", 8-bit", apply)


def resolve_preset(name: str, data: np.ndarray | None = None) -> IntensityPreset:
    """The preset called ``name``; ``auto`` picks by modality from ``data``; ``+uint8`` quantises.

    Example:
        >>> resolve_preset("ct-he2024+uint8").apply(np.array([[[-1000.0, 1.0, 1000.0]]])).tolist()
        [[[0.0, 0.49803921580314636, 1.0]]]
    """
    if name.endswith(QUANTIZE_SUFFIX):
        return _quantized(resolve_preset(name[: -len(QUANTIZE_SUFFIX)], data))
    if name == "auto":
        if data is None:
            raise ValueError("auto intensity needs the data")
        return PRESETS["ct-he2024" if looks_like_ct(data) else "mr-percentile"]
    if name not in PRESETS:
        raise InputError(f"--intensity must be one of auto, {', '.join(PRESETS)}; got {name!r}")
    return PRESETS[name]


def prepare_stack(stack: np.ndarray, preset: str = "auto") -> np.ndarray:
    """Map a slice stack [s, row, col] to float32 in [0, 1] with a named preset.

    Example:
        >>> import numpy as np
        >>> prepare_stack(np.array([[[-1000.0, 0.0, 1000.0]]]), "ct-he2024").tolist()
        [[[0.0, 0.5, 1.0]]]
    """
    return np.ascontiguousarray(resolve_preset(preset, stack).apply(stack), dtype=np.float32)


def to_uint8(prepared: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 [0, 255], rounding to nearest."""
    return np.round(np.clip(prepared, 0, 1) * 255).astype(np.uint8)
