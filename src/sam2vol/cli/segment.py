"""``sam2vol segment``: prompt a volume, propagate, write the 3D mask."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sam2vol.engines.registry import ENGINES


def segment(
    volume: Annotated[Path, typer.Argument(help="Image: NIfTI, NRRD, MHA, DICOM folder, .npy")],
    out: Annotated[Path, typer.Option(help="Output mask (.nii.gz, .nii, .nrrd).")],
    point: Annotated[
        list[str] | None, typer.Option(help="Click 'i,j,k' or 'i,j,k,neg' (voxel indices); repeat.")
    ] = None,
    box: Annotated[
        str | None, typer.Option(help="Box 'i0,j0,k0,i1,j1,k1': two corners on one slice.")
    ] = None,
    mask_on_slice: Annotated[
        Path | None, typer.Option(help="Mask file on the image grid; each non-empty slice prompts.")
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="Prompt log JSON to replay (from --log or the web app).")
    ] = None,
    engine: Annotated[str, typer.Option(help=f"Engine: {', '.join(ENGINES)}.")] = "default",
    checkpoint: Annotated[str | None, typer.Option(help="SAM 2 checkpoint file.")] = None,
    config: Annotated[str | None, typer.Option(help="SAM 2 config name (else detected).")] = None,
    image_size: Annotated[
        int | None,
        typer.Option(help="SAM 2 input size (default: the checkpoint's, else 1024; MedSAM2 512)."),
    ] = None,
    axis: Annotated[str, typer.Option(help="axial, coronal or sagittal.")] = "axial",
    intensity: Annotated[str, typer.Option(help="Intensity preset (see docs).")] = "auto",
    direction: Annotated[str, typer.Option(help="forward, backward or both.")] = "both",
    channel: Annotated[int | None, typer.Option(help="Channel of a 4D volume.")] = None,
    spacing: Annotated[str | None, typer.Option(help="Spacing 'x,y,z' mm for .npy.")] = None,
    log: Annotated[Path | None, typer.Option(help="Write the prompt log here (JSON).")] = None,
) -> None:
    """Segment one object from prompts on a slice and write the 3D mask."""
    import numpy as np

    from sam2vol.cli.options import parse_ints, parse_point, parse_spacing
    from sam2vol.cli.progress import consume
    from sam2vol.engines import create_engine
    from sam2vol.errors import InputError
    from sam2vol.io import check_writable, read_label, read_volume, write_mask
    from sam2vol.prompts import Propagate
    from sam2vol.session import Session, read_log
    from sam2vol.slicing import SliceGeometry

    given = [x for x in (point, box, mask_on_slice, prompts) if x]
    if len(given) != 1:
        raise InputError("give one of --point (repeatable), --box, --mask-on-slice, --prompts")
    check_writable(out)
    image = read_volume(volume, channel=channel, spacing_mm=parse_spacing(spacing))
    geometry = SliceGeometry.for_volume(image, axis)  # type: ignore[arg-type]
    # Parse and check every prompt before the (possibly slow) engine starts.
    clicks = [parse_point(text) for text in point or []]
    for voxel, _ in clicks:
        geometry.check_voxel(voxel)
    corners = parse_ints(box, 6, "--box") if box else None
    events = read_log(prompts) if prompts else None
    prompt_mask = read_label(mask_on_slice, like=image).data > 0 if mask_on_slice else None
    options = {}
    if engine == "sam2":
        if checkpoint is None:
            raise InputError("--engine sam2 needs --checkpoint PATH")
        options = {"checkpoint": checkpoint, "config": config, "image_size": image_size}
    elif checkpoint or config or image_size:
        raise InputError(
            f"--checkpoint/--config/--image-size are for --engine sam2, not {engine!r}"
        )
    session = Session(image, create_engine(engine, **options), axis=axis, intensity=intensity)
    for voxel, positive in clicks:
        session.add_point(voxel, positive=positive)
    if corners:
        session.add_box(corners[:3], corners[3:])
    if prompt_mask is not None:
        stack = geometry.to_stack(prompt_mask)
        for s in np.flatnonzero(stack.any(axis=(1, 2))):
            session.add_mask(prompt_mask.take(int(s), axis=geometry.slice_axis), int(s))
    if events is not None:
        session.replay(events)
    if not any(isinstance(e, Propagate) for e in session.events):
        consume(session.propagate(direction=direction), geometry.n_slices)  # type: ignore[arg-type]
    write_mask(session.label_map().data, image, out)
    if log:
        session.save_log(log)
    for oid in session.objects:
        info = session.summary(oid)
        extent = (
            f"slices {info.first_slice}-{info.last_slice} ({info.n_slices} {axis})"
            if info.n_slices
            else "empty"
        )
        typer.echo(f"{out}: object {oid} '{info.name}': {extent}, {info.volume_ml:.2f} ml")
