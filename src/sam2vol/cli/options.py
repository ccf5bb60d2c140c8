"""Parsing helpers shared by commands."""

from __future__ import annotations

from sam2vol.errors import InputError


def parse_ints(text: str, n: int, what: str) -> tuple[int, ...]:
    """'1,2,3' -> (1, 2, 3), checking there are ``n`` integers."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{what} {text!r}: expected {n} integers separated by commas") from None
    if len(values) != n:
        raise InputError(f"{what} {text!r}: expected {n} integers, got {len(values)}")
    return values


def parse_spacing(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--spacing {text!r}: expected three numbers 'x,y,z' in mm") from None
    if len(values) != 3 or min(values) <= 0:
        raise InputError(f"--spacing {text!r}: expected three positive numbers 'x,y,z' in mm")
    return values  # type: ignore[return-value]


def parse_point(text: str) -> tuple[tuple[int, int, int], bool]:
    """'i,j,k' or 'i,j,k,neg' (also 'pos') -> (voxel, positive)."""
    parts = text.split(",")
    positive = True
    if len(parts) == 4:
        flag = parts.pop().strip().lower()
        if flag not in ("neg", "pos", "-", "+", "0", "1"):
            raise InputError(f"--point {text!r}: the 4th field must be 'neg' or 'pos'")
        positive = flag in ("pos", "+", "1")
    voxel = parse_ints(",".join(parts), 3, "--point")
    return voxel, positive  # type: ignore[return-value]


def parse_number(text: str) -> object:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True; anything else stays text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def engine_options(
    engine: str,
    *,
    checkpoint: str | None = None,
    config: str | None = None,
    image_size: int | None = None,
    extra: list[str] | None = None,
) -> dict[str, object]:
    """The engine keyword arguments from the command line, one parser for every command.

    Args:
        engine: Engine name (``default``, ``sam2``, or ``module:factory``).
        checkpoint: SAM 2 checkpoint file (``--checkpoint``; SAM 2 only).
        config: SAM 2 config name (``--config``; SAM 2 only).
        image_size: SAM 2 input size (``--image-size``; SAM 2 only).
        extra: ``key=value`` items (``--engine-option``), numbers parsed.

    Raises:
        InputError: A SAM 2 option for another engine, SAM 2 without a
            checkpoint, or an item that is not ``key=value``.
    """
    options: dict[str, object] = {}
    for item in extra or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InputError(f"--engine-option {item!r}: expected key=value")
        options[key] = parse_number(value)
    sam2_given = {"checkpoint": checkpoint, "config": config, "image_size": image_size}
    sam2_given = {k: v for k, v in sam2_given.items() if v is not None}
    if engine == "sam2":
        if checkpoint is None:
            raise InputError("--engine sam2 needs --checkpoint PATH (or random:CONFIG for tests)")
        options.update(sam2_given)
    elif sam2_given:
        flags = "--checkpoint/--config" + ("/--image-size" if image_size is not None else "")
        raise InputError(f"{flags} are for --engine sam2, not {engine!r}")
    return options
