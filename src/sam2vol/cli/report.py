"""``sam2vol report``: tables and figures from evaluation runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    runs: Annotated[
        list[Path], typer.Argument(help="Run folders written by `sam2vol evaluate` (or .jsonl).")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: RUN/report for one run, else ./report)."),
    ] = None,
    title: Annotated[str, typer.Option(help="Heading of report.md.")] = "sam2vol evaluation",
    per_structure: Annotated[
        bool, typer.Option(help="A row per structure; --no-per-structure: pooled rows only.")
    ] = True,
) -> None:
    """Per-structure mean Dice with 95% CIs (Markdown + CSV) and PNG plots.

    Dice is shown on all slices and with background-slice removal; the plots
    show mean Dice against the number of prompted slices (He et al.) and the
    mean per-slice Dice by position in the object's extent.
    """
    from sam2vol.evaluation.report import make_report, markdown_table

    target = out or (runs[0] / "report" if len(runs) == 1 and runs[0].is_dir() else Path("report"))
    result = make_report(list(runs), target, title=title, per_structure=per_structure)
    typer.echo(markdown_table(result.rows))
    for path in (result.markdown, result.csv, *result.figures):
        typer.echo(f"wrote {path}")
