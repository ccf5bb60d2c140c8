"""How sure a segmentation is of each slice, and which slice a person should check next.

Engines may report a confidence per slice (:attr:`SliceResult.confidence`, e.g.
SAM 2 from its predicted IoU and object score). For engines that do not, a
generic estimate is computed from the masks alone: a propagated slice whose
mask agrees poorly with its neighbours' (2D Dice with its non-empty
neighbours, averaged) is the one most likely wrong. Prompted slices are what
the user stated, so they count as sure.

Example:
    >>> import numpy as np
    >>> m = np.zeros((4, 8, 8), bool); m[:, 2:6, 2:6] = True; m[2, 0:8, 0:8] = True
    >>> conf = mask_confidence(m, prompted=())
    >>> int(np.argmin(conf)), round(float(conf[2]), 3)
    (2, 0.4)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.special import expit


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def mask_confidence(stack: np.ndarray, prompted: Iterable[int] = ()) -> np.ndarray:
    """Per-slice confidence (0..1) of one object's mask stack ``[s, row, col]``.

    A non-empty slice gets the mean 2D Dice with its non-empty neighbours
    (0 when it has none: an island); empty and prompted slices get 1.
    """
    stack = np.asarray(stack, dtype=bool)
    n = stack.shape[0]
    conf = np.ones(n, dtype=np.float64)
    present = stack.any(axis=(1, 2))
    fixed = set(int(s) for s in prompted)
    for s in np.flatnonzero(present):
        if int(s) in fixed:
            continue
        near = [t for t in (s - 1, s + 1) if 0 <= t < n and present[t]]
        conf[s] = float(np.mean([_dice(stack[s], stack[t]) for t in near])) if near else 0.0
    return conf


def session_confidence(session) -> np.ndarray:
    """Per-slice confidence of a :class:`~sam2vol.session.Session`, over all its objects.

    The engine's own figure where it gave one for a slice, else the mask-based
    estimate; with several objects, the least sure object decides.
    """
    n = session.geometry.n_slices
    conf = np.ones(n, dtype=np.float64)
    for oid in session.objects:
        conf = np.minimum(conf, mask_confidence(session.mask_stack(oid), session.prompts(oid)))
    for s, value in getattr(session, "slice_confidence", {}).items():
        if 0 <= s < n and not any(s in session.prompts(oid) for oid in session.objects):
            conf[s] = min(conf[s], float(value))
    return conf


def next_slice_to_check(conf: np.ndarray, exclude: Iterable[int] = ()) -> int | None:
    """The least sure slice not in ``exclude``; None when every slice is sure (1.0)."""
    conf = np.asarray(conf, dtype=np.float64).copy()
    for s in exclude:
        if 0 <= int(s) < conf.size:
            conf[int(s)] = np.inf
    best = int(np.argmin(conf)) if conf.size else None
    return None if best is None or conf[best] >= 1.0 else best


def logit_confidence(logits: np.ndarray, object_score: float, band: float = 4.0) -> float:
    """A model's confidence in one slice of one object, from its mask logits and object score.

    The presence decision counts by how sure it is (``max(p, 1 - p)``, ``p`` the
    sigmoid of the object score); the mask by the mean sigmoid margin
    ``sigmoid(|logit|)`` over the pixels near or inside the mask (logit above
    ``-band``), which falls when the boundary is uncertain. SAM 2's predicted
    IoU would be the natural figure, but the official tracking step of
    ``sam2`` 1.1.0 does not keep it.

    Example:
        >>> sure = np.full((4, 4), -20.0); sure[1:3, 1:3] = 20.0
        >>> round(logit_confidence(sure, 10.0), 3), round(logit_confidence(sure * 0.01, 0.0), 3)
        (1.0, 0.275)
    """
    p = float(expit(float(object_score)))  # no overflow for very negative scores
    logits = np.asarray(logits, dtype=np.float64)
    near = logits > -band
    margin = float(np.mean(expit(np.abs(logits[near])))) if near.any() else 1.0
    return float(max(p, 1.0 - p) * margin)
