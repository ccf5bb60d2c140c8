"""Segmentation engines: one interface, several implementations.

``default`` is weights-free (numpy/scipy/scikit-image, graph cuts); ``sam2``
wraps Meta's SAM 2 video predictor (extra ``sam2``). Engines are created by
name with :func:`create_engine`, which imports heavy code only when needed.
"""

from sam2vol.engines.base import Engine, ObjectPrompts, SlicePrompts, SliceResult
from sam2vol.engines.registry import ENGINES, create_engine

__all__ = ["ENGINES", "Engine", "ObjectPrompts", "SlicePrompts", "SliceResult", "create_engine"]
