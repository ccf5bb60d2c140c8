"""Engines by name, imported lazily so the light ones need no heavy library."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from sam2vol.engines.base import Engine
from sam2vol.errors import InputError

ENGINES: dict[str, str] = {
    "default": "sam2vol.engines.default:DefaultEngine",
    "sam2": "sam2vol.engines.sam2:Sam2Engine",
}
# How to install what an engine imports. SAM 2 is not installed by any extra: its registry
# package must go in after torch, without its declared dependencies (see README).
SAM2_INSTALL = (
    "make install-sam2 (or: pip install torch==2.13.0 -r requirements/sam2.txt, then "
    "SAM2_BUILD_CUDA=0 pip install --no-build-isolation --no-deps sam2==1.1.0)"
)
INSTALL_HINTS: dict[str, str] = {
    "default": "reinstall sam2vol (pip install sam2vol): the core install holds all it needs",
    "sam2": SAM2_INSTALL,
}


def create_engine(name: str = "default", **options: Any) -> Engine:
    """An engine by name, e.g. ``create_engine("default")``."""
    if name not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {name!r}")
    module_name, cls_name = ENGINES[name].split(":")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise InputError(f"engine {name!r} cannot load ({exc}): {INSTALL_HINTS[name]}") from exc
    return getattr(module, cls_name)(**options)
