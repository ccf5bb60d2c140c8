"""The one engine-options parser that segment, evaluate and serve share."""

from __future__ import annotations

import pytest

from sam2vol import InputError
from sam2vol.cli.options import engine_options


def test_sam2_options_are_collected_and_checked():
    assert engine_options("sam2", checkpoint="m.pt", image_size=512) == {
        "checkpoint": "m.pt",
        "image_size": 512,
    }
    assert engine_options("default") == {}
    assert engine_options("pkg:make", extra=["depth=3", "scale=0.5", "fast=true", "name=x"]) == {
        "depth": 3,
        "scale": 0.5,
        "fast": True,
        "name": "x",
    }
    with pytest.raises(InputError, match="--engine sam2 needs --checkpoint"):
        engine_options("sam2")
    with pytest.raises(InputError, match="--checkpoint/--config/--image-size are for --engine"):
        engine_options("default", image_size=512)
    with pytest.raises(InputError, match="expected key=value"):
        engine_options("default", extra=["depth"])
