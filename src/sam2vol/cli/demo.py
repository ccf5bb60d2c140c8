"""``sam2vol demo``: the main job on a bundled sample, start to finish."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the mask, overlay PNG and prompt log.")
    ] = Path("demo_output"),
    sample: Annotated[str, typer.Option(help="lung2, brain1 or brain2.")] = "lung2",
    engine: Annotated[str, typer.Option(help="Engine name.")] = "default",
) -> None:
    """Segment a bundled sample from one click and score it against its label.

    The click is placed as a person would: in the middle (deepest point) of the
    lesion on the slice where it is largest. The mask is propagated both ways.
    """
    import json

    import numpy as np

    from sam2vol.cli.progress import consume
    from sam2vol.io import read_label, read_volume, write_mask
    from sam2vol.metrics import evaluate
    from sam2vol.render import save_overlay_grid
    from sam2vol.samples import sample_path
    from sam2vol.session import Session
    from sam2vol.simulate import deepest_pixel

    out.mkdir(parents=True, exist_ok=True)
    image = read_volume(sample_path(sample))
    label = read_label(sample_path(sample, "label"), like=image)
    session = Session(image, engine, background_encoding=False)  # a script: never idle
    g = session.geometry
    truth = g.to_stack(label.data > 0)
    areas = truth.sum(axis=(1, 2))
    s = int(np.argmax(areas))
    row, col = deepest_pixel(truth[s], spacing_mm=g.pixel_spacing_mm)
    voxel = g.slice_to_voxel(s, row, col)
    session.add_object("lesion")
    session.add_point(voxel, object_id=1)
    consume(session.propagate(), g.n_slices)
    mask = session.mask(1)
    mask_path = write_mask(mask, image, out / f"{sample}_mask.nii.gz")
    log_path = session.save_log(out / f"{sample}_prompts.json")
    result = evaluate(mask, label.data > 0, spacing_mm=image.spacing_mm, slice_axis=g.slice_axis)
    shown = [int(x) for x in np.flatnonzero(areas | session.mask_stack(1).any(axis=(1, 2)))]
    picks = np.unique(np.linspace(0, len(shown) - 1, min(8, len(shown))).round().astype(int))
    png = save_overlay_grid(
        session.engine.image,
        [(truth, (0, 200, 0)), (session.mask_stack(1), (230, 25, 75))],
        [shown[i] for i in picks],
        out / f"{sample}_overlay.png",
    )
    info = session.summary(1)
    metrics_path = out / f"{sample}_metrics.json"
    metrics_path.write_text(json.dumps(result.to_json_dict(), indent=1))
    typer.echo(f"sample {sample}: one click at voxel {voxel} (slice {s}), engine {engine}")
    typer.echo(
        f"mask: slices {info.first_slice}-{info.last_slice}, {info.volume_ml:.2f} ml; "
        f"Dice {result.dice:.3f}, HD95 {result.hd95_mm:.1f} mm vs the bundled label"
    )
    for what, path in [
        ("mask", mask_path),
        ("overlay (green: label, red: ours)", png),
        ("prompts", log_path),
        ("metrics", metrics_path),
    ]:
        typer.echo(f"wrote {what}: {path}")
