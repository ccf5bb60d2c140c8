"""``sam2vol metrics``: compare a predicted mask with a reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def metrics(
    pred: Annotated[Path, typer.Argument(help="Predicted mask (any readable volume).")],
    gt: Annotated[Path, typer.Argument(help="Reference mask on the same grid.")],
    tolerance_mm: Annotated[float, typer.Option(help="NSD tolerance in mm.")] = 2.0,
    label: Annotated[
        int | None, typer.Option(help="Compare this label value only (default: any non-zero).")
    ] = None,
    slices: Annotated[
        str,
        typer.Option(help="Slices scored: all, foreground (background-slice removal), salient"),
    ] = "all",
    axis: Annotated[str, typer.Option(help="Slicing axis for --slices.")] = "axial",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Dice, IoU, HD95 (mm), NSD and ASSD (mm) with the volumes' physical spacing."""
    import json

    from sam2vol.errors import InputError
    from sam2vol.io import read_label
    from sam2vol.metrics import evaluate
    from sam2vol.slicing import SliceGeometry

    if tolerance_mm < 0:
        raise InputError(f"--tolerance-mm must be >= 0, got {tolerance_mm}")
    reference = read_label(gt, allow_empty=True)
    predicted = read_label(pred, like=reference, allow_empty=True)
    select = (lambda a: a == label) if label is not None else (lambda a: a > 0)
    geometry = SliceGeometry.for_volume(reference, axis)  # type: ignore[arg-type]
    result = evaluate(
        select(predicted.data),
        select(reference.data),
        spacing_mm=reference.spacing_mm,
        tolerance_mm=tolerance_mm,
        slice_axis=geometry.slice_axis,
        slices=slices,
    )
    values = result.to_json_dict()
    if as_json:
        typer.echo(json.dumps(values))
        return
    units = {"hd95_mm": " mm", "assd_mm": " mm"}
    for key, value in values.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        typer.echo(f"{key:10} {shown}{units.get(key, '')}")
