"""Protocols by name: ``create_protocol("he2024-code:max_slices=4")``."""

from __future__ import annotations

import types
import typing
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from sam2vol.errors import InputError
from sam2vol.protocols.dong2024 import Dong2024
from sam2vol.protocols.he2024 import He2024
from sam2vol.protocols.ma2024 import Ma2024
from sam2vol.protocols.shen2024 import Shen2024Clicks, Shen2024Mask
from sam2vol.protocols.suggest import Suggest

if TYPE_CHECKING:  # annotations only: base imports this module (Protocol.spec)
    from sam2vol.protocols.base import Protocol

# name -> (class, preset options)
PROTOCOLS: dict[str, tuple[type[Protocol], dict[str, Any]]] = {
    "shen2024-mask": (Shen2024Mask, {}),
    "shen2024-clicks": (Shen2024Clicks, {}),
    "he2024": (He2024, {}),
    "he2024-code": (He2024, {"variant": "code"}),
    "ma2024": (Ma2024, {}),
    "dong2024": (Dong2024, {}),
    "dong2024-3slices": (Dong2024, {"slices": 3}),
    "suggest": (Suggest, {}),
}


def _parse_value(text: str, annotation: Any, what: str) -> Any:
    hints = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    kinds = hints or (annotation,)
    if type(None) in kinds and text.lower() == "none":
        return None
    if bool in kinds:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise InputError(f"--protocol option {what}: expected true or false, got {text!r}")
    for kind in (int, float):
        if kind in kinds:
            try:
                return kind(text)
            except ValueError:
                raise InputError(
                    f"--protocol option {what}: expected {kind.__name__}, got {text!r}"
                ) from None
    return text


def create_protocol(spec: str) -> Protocol:
    """A protocol from ``NAME`` or ``NAME:key=value,key=value``.

    Example:
        >>> create_protocol("shen2024-clicks:clicks=3").spec
        'shen2024-clicks:clicks=3'
        >>> create_protocol("he2024:variant=code").spec
        'he2024-code'
    """
    name, _, rest = spec.partition(":")
    if name not in PROTOCOLS:
        raise InputError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")
    cls, preset = PROTOCOLS[name]
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls) if f.init}
    options = dict(preset)
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in known:
            raise InputError(
                f"--protocol {spec!r}: bad option {item!r}; {name} takes "
                + (", ".join(f"{k}=..." for k in sorted(known)) or "no options")
            )
        options[key] = _parse_value(value, hints[key], f"{name}:{key}")
    return cls(**options)


def protocol_spec(protocol: Protocol) -> str:
    """The canonical spec of a protocol: the registered name that fits best, then other options."""
    options = protocol.options
    best, best_preset = None, {}
    for name, (cls, preset) in PROTOCOLS.items():
        if cls is type(protocol) and all(options.get(k) == v for k, v in preset.items()):
            if best is None or len(preset) > len(best_preset):
                best, best_preset = name, preset
    if best is None:
        raise InputError(f"protocol class {type(protocol).__name__} is not registered")
    defaults = {f.name: f.default for f in fields(protocol) if f.init}
    extra = [
        f"{k}={str(v).lower() if isinstance(v, bool) else v}"
        for k, v in options.items()
        if k not in best_preset and v != defaults[k]
    ]
    return best + (":" + ",".join(extra) if extra else "")


def describe_protocols() -> dict[str, str]:
    """Name -> one-line description."""
    out = {}
    for name, (cls, preset) in PROTOCOLS.items():
        line = (cls.__doc__ or "").strip().splitlines()[0]
        options = ", ".join(f"{k}={v}" for k, v in preset.items())
        out[name] = line + (f" ({options})" if preset else "")
    return out
