"""``sam2vol serve``: the interactive annotation web app (needs the ``web`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sam2vol.engines.registry import ENGINES


def serve(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder whose volumes the page may open (and save exports into)."),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 127.0.0.1 keeps it on this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    engine: Annotated[str, typer.Option(help=f"Engine: {', '.join(ENGINES)}.")] = "default",
    checkpoint: Annotated[str | None, typer.Option(help="SAM 2 checkpoint file.")] = None,
    config: Annotated[str | None, typer.Option(help="SAM 2 config name (else detected).")] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where sessions are autosaved (default ~/.local/state/sam2vol/serve)."),
    ] = None,
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload accepted, in MB.")] = 512,
) -> None:
    """Start the annotation web app: open the printed address in a browser."""
    import logging

    from sam2vol.cli.options import engine_options
    from sam2vol.errors import InputError
    from sam2vol.web.config import LOOPBACK_HOSTS, ServerConfig, default_state_dir

    try:
        import uvicorn

        from sam2vol.web.app import create_app
    except ImportError as exc:
        raise InputError(f"serve needs the web extra: pip install 'sam2vol[web]' ({exc})") from exc
    options = engine_options(engine, checkpoint=checkpoint, config=config)
    if data_dir is not None and not data_dir.is_dir():
        raise InputError(f"--data-dir {data_dir}: not a folder")
    if not 0 < max_upload_mb <= 1024 * 64:
        raise InputError(f"--max-upload-mb must be between 1 and 65536, got {max_upload_mb}")
    if not 0 < port < 65536:
        raise InputError(f"--port must be between 1 and 65535, got {port}")
    loopback = host in LOOPBACK_HOSTS
    settings = ServerConfig(
        state_dir=state_dir or default_state_dir(),
        data_dir=data_dir,
        engine=engine,
        engine_options=options,
        max_upload_bytes=max_upload_mb * 1024 * 1024,
        allowed_hosts=LOOPBACK_HOSTS if loopback else None,
        # each session holds its own engine; SAM 2 models are big, so keep fewer in memory
        max_live_sessions=2 if engine == "sam2" else 16,
    )
    typer.echo(f"checking the {engine} engine...", err=True)
    settings.make_engine()  # fail now, not at the first volume
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not loopback:
        typer.echo(
            f"warning: listening on {host}: anyone who can reach this machine can open the page "
            "(and the files under --data-dir)",
            err=True,
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"sam2vol: open http://{shown}:{port}/  (Ctrl+C stops; sessions autosave)")
    typer.echo(f"sessions are autosaved in {settings.state_dir}", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
