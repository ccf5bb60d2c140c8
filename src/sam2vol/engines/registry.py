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


def create_engine(name: str = "default", **options: Any) -> Engine:
    """An engine by name, e.g. ``create_engine("default")``."""
    if name not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {name!r}")
    module_name, cls_name = ENGINES[name].split(":")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        extra = name if name != "default" else "core"
        raise InputError(
            f"engine {name!r} needs extra dependencies: pip install 'sam2vol[{extra}]' ({exc})"
        ) from exc
    return getattr(module, cls_name)(**options)
