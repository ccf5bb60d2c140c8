"""Fixtures of the SAM 2 engine tests (the tiny random model is built only when asked for)."""

from __future__ import annotations

import pytest

from tests.engines.sam2_helpers import make_engine, volume


@pytest.fixture(scope="module")
def engine():
    """One engine per test module: the tiny random model on :func:`volume`."""
    eng = make_engine()
    eng.set_image(volume(), (2.0, 1.0, 1.0))
    return eng


@pytest.fixture
def fresh(engine):
    """The shared engine with a fresh session (features stay valid: same image)."""
    engine.set_image(engine.image, engine.spacing_mm)
    return engine


@pytest.fixture
def groups(monkeypatch):
    """The memory-attention groups (rows attended together) of every batched slice."""
    from sam2vol.engines.sam2 import batched

    seen: list[list[list[int]]] = []

    class Spy(batched._BatchedModel):
        def _prepare_memory_conditioned_features(self, *args, **kwargs):
            out = super()._prepare_memory_conditioned_features(*args, **kwargs)
            seen.append(self.groups)
            return out

    monkeypatch.setattr(batched, "_BatchedModel", Spy)
    return seen
