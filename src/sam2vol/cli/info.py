"""``sam2vol info``: what a volume is and how it will be sliced."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def info(
    volume: Annotated[Path, typer.Argument(help="Image: NIfTI, NRRD, MHA, DICOM folder, .npy")],
    channel: Annotated[int | None, typer.Option(help="Channel of a 4D volume.")] = None,
    spacing: Annotated[str | None, typer.Option(help="Spacing 'x,y,z' mm for .npy.")] = None,
) -> None:
    """Shape, spacing, orientation, slicing axes and intensity range of a volume."""
    import numpy as np

    from sam2vol.cli.options import parse_spacing
    from sam2vol.intensity import looks_like_ct
    from sam2vol.io import read_volume
    from sam2vol.slicing import AXES, SliceGeometry

    vol = read_volume(volume, channel=channel, spacing_mm=parse_spacing(spacing))
    data = vol.data
    typer.echo(f"file:         {vol.source}")
    typer.echo(f"shape:        {' x '.join(map(str, vol.shape))} (i, j, k) {data.dtype}")
    typer.echo(f"spacing:      {' x '.join(f'{s:.4g}' for s in vol.spacing_mm)} mm")
    typer.echo(f"orientation:  {vol.orientation} (RAS+ axis codes of i, j, k)")
    origin = ", ".join(f"{x:.2f}" for x in vol.origin_ras)
    typer.echo(f"origin:       ({origin}) mm RAS")
    for axis in AXES:
        g = SliceGeometry.for_volume(vol, axis)
        h, w = g.slice_shape
        typer.echo(
            f"{axis + ':':13} {g.n_slices} slices along array axis {'ijk'[g.slice_axis]}, "
            f"{h} x {w} px of {g.pixel_spacing_mm[0]:.3g} x {g.pixel_spacing_mm[1]:.3g} mm"
        )
    lo, hi = float(np.min(data)), float(np.max(data))
    kind = "CT-like (HU)" if looks_like_ct(data) else "MR-like / other"
    typer.echo(f"intensity:    {lo:g} .. {hi:g}, {kind}")
