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
