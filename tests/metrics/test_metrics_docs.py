"""The docstring examples of sam2vol.metrics run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "sam2vol.metrics",
    "sam2vol.metrics.overlap",
    "sam2vol.metrics.surface",
    "sam2vol.metrics.slices",
    "sam2vol.metrics.summary",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
