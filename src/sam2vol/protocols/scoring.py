"""Scoring a protocol's masks against the reference (kept apart from the simulated user).

Three slice scopes are scored: ``all`` slices, ``foreground`` slices
(background-slice removal: only slices where the reference has the object)
and, when a protocol asks for it, ``salient`` slices (more than 256 reference
pixels, Shen et al.).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sam2vol.slicing import SliceGeometry

SCOPES = ("all", "foreground", "salient")


def _dice(pred: np.ndarray, gt: np.ndarray) -> float:
    total = int(np.count_nonzero(pred)) + int(np.count_nonzero(gt))
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(pred & gt)) / total


class Scorer:
    """Dice per round and the final metrics of one object.

    Args:
        reference: Reference mask on the volume grid ``[i, j, k]``.
        geometry: The session's slicing geometry.
        scopes: Slice scopes to score.
        tolerance_mm: NSD tolerance.
    """

    def __init__(
        self,
        reference: np.ndarray,
        geometry: SliceGeometry,
        scopes: tuple[str, ...] = ("all", "foreground"),
        tolerance_mm: float = 2.0,
    ) -> None:
        from sam2vol.metrics import select_slices

        self._reference = np.asarray(reference, dtype=bool)
        self._geometry = geometry
        self._stack = geometry.to_stack(self._reference)
        self.scopes = tuple(scopes)
        self.tolerance_mm = tolerance_mm
        self._keep = {
            scope: select_slices(self._stack, axis=0, mode=scope)  # type: ignore[arg-type]
            for scope in self.scopes
            if scope in SCOPES
        }
        self.scopes = tuple(self._keep)

    def add_scope(self, name: str, keep: np.ndarray) -> None:
        """A protocol-defined scope: ``keep`` is a bool per slice."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self._stack.shape[0],):
            raise ValueError(f"scope {name!r} needs one bool per slice, got shape {keep.shape}")
        self._keep[name] = keep
        self.scopes = tuple(dict.fromkeys((*self.scopes, name)))

    def _slices(self, scope: str):
        return scope if scope in SCOPES else self._keep[scope]

    def unit_nsd(self, pred: np.ndarray, scope: str, tolerance: float) -> float:
        """NSD at ``tolerance`` voxels with unit spacing on every axis (the papers' pixel units)."""
        from sam2vol.metrics import evaluate

        return evaluate(
            pred,
            self._reference,
            spacing_mm=(1.0, 1.0, 1.0),
            tolerance_mm=tolerance,
            slice_axis=self._geometry.slice_axis,
            slices=self._slices(scope),  # type: ignore[arg-type]
        ).nsd

    def round_dice(self, pred_stack: np.ndarray) -> dict[str, float]:
        """Volume Dice of a slice stack in every scope."""
        return {
            scope: _dice(pred_stack[keep], self._stack[keep]) for scope, keep in self._keep.items()
        }

    def final(self, pred: np.ndarray) -> dict[str, dict[str, Any]]:
        """All metrics (:func:`sam2vol.metrics.evaluate`) of a volume-grid mask, per scope."""
        from sam2vol.metrics import evaluate

        return {
            scope: evaluate(
                pred,
                self._reference,
                spacing_mm=self._geometry.spacing_mm,
                tolerance_mm=self.tolerance_mm,
                slice_axis=self._geometry.slice_axis,
                slices=self._slices(scope),  # type: ignore[arg-type]
            ).to_json_dict()
            for scope in self.scopes
        }

    def slice_dice(self, pred_stack: np.ndarray, scope: str = "all") -> list[list[float]]:
        """``[slice, 2D Dice, reference pixels]`` of every reference-foreground slice.

        With a protocol-defined ``scope`` (e.g. Shen et al.'s video), only its slices.
        """
        keep = self._keep.get(scope) if scope not in SCOPES else None
        out = []
        for s in np.flatnonzero(self._stack.any(axis=(1, 2))):
            if keep is not None and not keep[s]:
                continue
            gt, pred = self._stack[s], pred_stack[s]
            out.append([int(s), round(_dice(pred, gt), 6), int(gt.sum())])
        return out

    @property
    def extent(self) -> tuple[int, int]:
        """First and last reference slice."""
        covered = np.flatnonzero(self._stack.any(axis=(1, 2)))
        return int(covered[0]), int(covered[-1])
