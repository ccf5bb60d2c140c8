"""``sam2vol evaluate``: score an engine under a published protocol on a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def evaluate(
    dataset: Annotated[
        str,
        typer.Option(
            help="KIND:PATH with KIND msd, brats, btcv, abdomenct1k, folder; or samples:[NAMES]."
        ),
    ],
    protocol: Annotated[
        str,
        typer.Option(
            help="shen2024-mask, shen2024-clicks, he2024, he2024-code, ma2024, dong2024, "
            "dong2024-3slices; options as NAME:key=value,key=value."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder (run.json, results.jsonl).")],
    engine: Annotated[
        str, typer.Option(help="default, sam2, or module:factory for your own engine.")
    ] = "default",
    checkpoint: Annotated[
        str | None, typer.Option(help="SAM 2 checkpoint file (--engine sam2).")
    ] = None,
    config: Annotated[str | None, typer.Option(help="SAM 2 config name (--engine sam2).")] = None,
    engine_option: Annotated[
        list[str] | None,
        typer.Option(help="Extra engine keyword argument key=value (e.g. image_size=512)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out, skipping finished objects.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: CPUs, at most 4).")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(help="Run cases as Ray tasks on this cluster address ('local': start one)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Run seed (each object's seed derives from it).")] = 0,
    axis: Annotated[str, typer.Option(help="Slicing view: axial, coronal or sagittal.")] = "axial",
    channel: Annotated[
        str | None, typer.Option(help="Channel of 4D images (MSD index; BraTS flair/t1/t1ce/t2).")
    ] = None,
    merge: Annotated[
        list[str] | None, typer.Option(help="Evaluate label values as one object, e.g. 1+2.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N cases.")] = None,
    progress: Annotated[
        bool | None, typer.Option(help="Progress bar (default: on a terminal).")
    ] = None,
) -> None:
    """Run a protocol on every case and object of a dataset; one JSON line per object.

    Lines are appended to OUT/results.jsonl as each case ends, so a killed run
    continues with --resume; at the end the file is sorted by key. Summarise
    one or more runs with `sam2vol report`.
    """
    import os
    import sys

    from sam2vol.cli.options import engine_options, parse_number
    from sam2vol.evaluation.runner import run_evaluation
    from sam2vol.evaluation.tasks import RunConfig

    options = engine_options(engine, checkpoint=checkpoint, config=config, extra=engine_option)
    chosen = parse_number(channel) if channel is not None else None
    run_config = RunConfig(
        dataset=dataset,
        protocol=protocol,
        engine=engine,
        engine_options=options,
        seed=seed,
        axis=axis,
        channel=chosen,  # type: ignore[arg-type]
        merge=tuple(merge or ()),
    )
    n_workers = workers if workers is not None else max(1, min(4, os.cpu_count() or 1))
    summary = run_evaluation(
        run_config,
        out,
        resume=resume,
        workers=n_workers,
        ray_address=ray,
        limit=limit,
        progress=progress,
        echo=lambda text: typer.echo(text, err=True),
    )
    typer.echo(
        f"{summary.results}: {summary.records} line(s) written for {summary.cases_run} case(s)"
        + (f", {summary.cases_skipped} case(s) already done" if summary.cases_skipped else "")
        + (f"; {summary.errors} error(s), see their 'error' field" if summary.errors else "")
    )
    if summary.errors:
        sys.exit(1)
