"""Entry point: ``sam2vol COMMAND``. Heavy libraries are imported inside commands."""

from __future__ import annotations

import sys

import typer

from sam2vol.cli import demo, evaluate, info, metrics, report, segment, serve, train
from sam2vol.errors import InputError

app = typer.Typer(
    name="sam2vol",
    help="Interactive 3D medical image segmentation with SAM 2.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("info")(info.info)
app.command("metrics")(metrics.metrics)
app.command("segment")(segment.segment)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("evaluate")(evaluate.evaluate)
app.command("report")(report.report)
app.command("train")(train.train)


def main() -> None:
    """Run the app; user errors print one line and exit 2, with no traceback."""
    try:
        app(standalone_mode=False)
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # a file system refusal anywhere: one line with the path
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
