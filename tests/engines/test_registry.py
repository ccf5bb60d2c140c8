"""Engine names and the install hints given when an engine's libraries are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sam2vol import InputError
from sam2vol.engines import registry


@pytest.mark.parametrize("name", ["default", "sam2"])
def test_a_missing_library_names_a_command_that_installs_it(monkeypatch, name):
    def missing(module_name):
        raise ModuleNotFoundError(f"No module named '{module_name.split('.')[-1]}'")

    monkeypatch.setattr(registry, "import_module", missing)
    with pytest.raises(InputError) as exc:
        registry.create_engine(name)
    message = str(exc.value)
    assert "[core]" not in message and "sam2vol[sam2]" not in message  # neither works
    if name == "sam2":  # SAM 2 only installs after torch, without its dependencies
        assert "--no-deps sam2==1.1.0" in message and "torch==2.13.0" in message
    else:
        assert "pip install sam2vol" in message


def test_the_sam2_hint_matches_the_makefile():
    """The hint's commands are the ones `make install-sam2` runs."""
    text = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "SAM2 := sam2==1.1.0" in text and "TORCH ?= torch==2.13.0" in text
    assert "SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation --no-deps $(SAM2)" in text


def test_unknown_engine():
    with pytest.raises(InputError, match="--engine must be one of default, sam2"):
        registry.create_engine("nope")
