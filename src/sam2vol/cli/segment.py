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
    engine: Annotated[
        str | None,
        typer.Option(help=f"Engine: {', '.join(ENGINES)} (default: the log's, else default)."),
    ] = None,
    checkpoint: Annotated[str | None, typer.Option(help="SAM 2 checkpoint file.")] = None,
    config: Annotated[str | None, typer.Option(help="SAM 2 config name (else detected).")] = None,
    image_size: Annotated[
        int | None,
        typer.Option(help="SAM 2 input size (default: the checkpoint's, else 1024; MedSAM2 512)."),
    ] = None,
    axis: Annotated[
        str | None, typer.Option(help="axial, coronal or sagittal (default: log's, else axial).")
    ] = None,
    intensity: Annotated[
        str | None, typer.Option(help="Intensity preset (default: the log's, else auto).")
    ] = None,
    direction: Annotated[str, typer.Option(help="forward, backward or both.")] = "both",
    channel: Annotated[int | None, typer.Option(help="Channel of a 4D volume.")] = None,
    spacing: Annotated[str | None, typer.Option(help="Spacing 'x,y,z' mm for .npy.")] = None,
    log: Annotated[Path | None, typer.Option(help="Write the prompt log here (JSON).")] = None,
    dicom_irregular: Annotated[
        str,
        typer.Option(help="DICOM series with a gap or unequal spacing: refuse or resample."),
    ] = "refuse",
    max_voxels: Annotated[
        int | None, typer.Option(help="Refuse larger volumes (default: what memory holds).")
    ] = None,
) -> None:
    """Segment one object from prompts on a slice and write the 3D mask."""
    import numpy as np

    from sam2vol.cli.options import engine_options, parse_ints, parse_point, parse_spacing
    from sam2vol.cli.progress import consume
    from sam2vol.engines import create_engine
    from sam2vol.errors import InputError
    from sam2vol.intensity import resolve_preset
    from sam2vol.io import check_output, check_writable, read_label, read_volume, write_mask
    from sam2vol.prompts import Propagate
    from sam2vol.session import LogSettings, Session, read_log, read_log_settings
    from sam2vol.slicing import SliceGeometry

    given = [x for x in (point, box, mask_on_slice, prompts) if x]
    if len(given) != 1:
        raise InputError("give one of --point (repeatable), --box, --mask-on-slice, --prompts")
    check_writable(out, inputs=[p for p in (volume, mask_on_slice, prompts) if p])
    if log:
        check_output(log, "--log", inputs=[p for p in (volume, mask_on_slice, prompts) if p])
    settings = read_log_settings(prompts) if prompts else LogSettings()
    image = read_volume(
        volume,
        channel=channel,
        spacing_mm=parse_spacing(spacing),
        max_voxels=max_voxels,
        dicom_irregular=dicom_irregular,
    )
    # A log replays with the settings it was made with; a flag saying otherwise is an error.
    for flag, value, logged in (
        ("--axis", axis, settings.axis),
        ("--engine", engine, settings.engine),
    ):
        if value is not None and logged is not None and value != logged:
            raise InputError(f"{flag} {value} conflicts with {prompts}, made with {flag} {logged}")
    axis = axis or settings.axis or "axial"
    engine = engine or settings.engine or "default"
    if intensity is not None and settings.intensity is not None:
        chosen = resolve_preset(intensity, image.data).name
        if chosen != settings.intensity:
            raise InputError(
                f"--intensity {intensity} conflicts with {prompts}, "
                f"made with --intensity {settings.intensity}"
            )
    intensity = intensity or settings.intensity or "auto"
    geometry = SliceGeometry.for_volume(image, axis)  # type: ignore[arg-type]
    # Parse and check every prompt before the (possibly slow) engine starts.
    clicks = [parse_point(text) for text in point or []]
    for voxel, _ in clicks:
        geometry.check_voxel(voxel)
    corners = parse_ints(box, 6, "--box") if box else None
    events = read_log(prompts) if prompts else None
    prompt_mask = read_label(mask_on_slice, like=image).data > 0 if mask_on_slice else None
    logged_options = settings.engine_options or {}
    if engine == "sam2" and checkpoint is None and logged_options.get("checkpoint"):
        checkpoint = str(logged_options["checkpoint"])
        config = config or logged_options.get("config")
        image_size = image_size or logged_options.get("image_size")
    options = engine_options(engine, checkpoint=checkpoint, config=config, image_size=image_size)
    for key, value in options.items():
        if key in logged_options and logged_options[key] != value:
            flag = "--" + key.replace("_", "-")
            raise InputError(
                f"{flag} {value} conflicts with {prompts}, made with {flag} {logged_options[key]}"
            )
    session = Session(
        image,
        create_engine(engine, **options),
        axis=axis,  # type: ignore[arg-type]
        intensity=intensity,
        engine_options=options,
        background_encoding=False,  # not interactive: slices are encoded as they are needed
    )
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
