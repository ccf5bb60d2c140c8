"""The ``sam2`` engine: Meta's SAM 2 video predictor on a slice stack (extra ``sam2``).

Importing this package imports torch and SAM 2; the registry does it only when
the engine is asked for.
"""

from sam2vol.engines.sam2.engine import Sam2Engine

__all__ = ["Sam2Engine"]
