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
    token: Annotated[
        str | None,
        typer.Option(
            help="Token every request must carry (else $SAM2VOL_TOKEN, else a new one when "
            "--host is not loopback; it is printed in the address)."
        ),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Host name the page is reached by (repeatable; '*' accepts any)."),
    ] = None,
    memory_budget_mb: Annotated[
        int | None,
        typer.Option(help="Memory all open sessions may hold, in MB (default: half the RAM)."),
    ] = None,
    max_json_kb: Annotated[int, typer.Option(help="Largest JSON request body, in KB.")] = 1024,
    keep_days: Annotated[
        float, typer.Option(help="Delete sessions unchanged for this many days (0 keeps all).")
    ] = 30,
    background_encoding: Annotated[
        bool,
        typer.Option(
            help="SAM 2: encode slices outward from the one in view while the user is idle, "
            "so a click on a new slice skips the image encoder (within --memory-budget-mb)."
        ),
    ] = True,
) -> None:
    """Start the annotation web app: open the printed address in a browser."""
    import logging
    import os

    from sam2vol.cli.options import engine_options
    from sam2vol.errors import InputError
    from sam2vol.web.auth import MIN_TOKEN_CHARS, TOKEN_ENV, new_token
    from sam2vol.web.config import ServerConfig, default_state_dir

    try:
        from sam2vol.web.app import create_app
        from sam2vol.web.server import make_server
    except ImportError as exc:
        raise InputError(f"serve needs the web extra: pip install 'sam2vol[web]' ({exc})") from exc
    options = engine_options(engine, checkpoint=checkpoint, config=config)
    if data_dir is not None and not data_dir.is_dir():
        raise InputError(f"--data-dir {data_dir}: not a folder")
    if not 0 < max_upload_mb <= 1024 * 64:
        raise InputError(f"--max-upload-mb must be between 1 and 65536, got {max_upload_mb}")
    if not 0 < port < 65536:
        raise InputError(f"--port must be between 1 and 65535, got {port}")
    if memory_budget_mb is not None and not 64 <= memory_budget_mb <= 1024 * 1024:
        raise InputError(
            f"--memory-budget-mb must be between 64 and 1048576, got {memory_budget_mb}"
        )
    if not 1 <= max_json_kb <= 64 * 1024:
        raise InputError(f"--max-json-kb must be between 1 and 65536, got {max_json_kb}")
    if keep_days < 0:
        raise InputError(f"--keep-days must be 0 (keep all) or more, got {keep_days}")
    loopback = host in ("127.0.0.1", "::1", "localhost")
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise InputError(f"--token / ${TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters")
    if token is None and not loopback:
        token = new_token()
    extra = {"memory_budget_bytes": memory_budget_mb * 1024 * 1024} if memory_budget_mb else {}
    settings = ServerConfig(
        state_dir=state_dir or default_state_dir(),
        data_dir=data_dir,
        engine=engine,
        engine_options=options,
        max_upload_bytes=max_upload_mb * 1024 * 1024,
        allowed_hosts=allowed_hosts(host, allow_host or []),
        token=token,
        max_json_bytes=max_json_kb * 1024,
        keep_days=keep_days,
        background_encoding=background_encoding,
        **extra,
        # each session holds its own engine; SAM 2 models are big, so keep fewer in memory
        max_live_sessions=2 if engine == "sam2" else 16,
    )
    typer.echo(f"checking the {engine} engine...", err=True)
    settings.make_engine()  # fail now, not at the first volume
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    query = f"?token={token}" if token else ""
    if not loopback:
        typer.echo(
            f"remote mode on {host}: every request needs the token; the Host header must be one "
            f"of {', '.join(settings.allowed_hosts or ['any'])} (add names with --allow-host)",
            err=True,
        )
    typer.echo(f"sam2vol: open http://{shown}:{port}/{query}  (Ctrl+C stops; sessions autosave)")
    budget = settings.memory_budget_bytes // (1024 * 1024)
    typer.echo(
        f"sessions are autosaved in {settings.state_dir}; memory budget {budget} MB", err=True
    )
    make_server(create_app(settings), host=host, port=port).run()


def allowed_hosts(host: str, extra: list[str]) -> tuple[str, ...] | None:
    """Host headers a server on ``host`` accepts: loopback names, this machine's, and ``extra``.

    Example:
        >>> allowed_hosts("127.0.0.1", ["gpu.example.org"])[-1]
        'gpu.example.org'
        >>> allowed_hosts("0.0.0.0", ["*"]) is None
        True
    """
    import socket

    from sam2vol.web.config import LOOPBACK_HOSTS

    if "*" in extra:
        return None
    names = list(LOOPBACK_HOSTS)
    if host not in LOOPBACK_HOSTS:
        if host not in ("0.0.0.0", "::"):
            names.append(host)
        machine = socket.gethostname()
        names += [machine, socket.getfqdn()]
        try:
            names += socket.gethostbyname_ex(machine)[2]
        except OSError:
            pass
    names += extra
    return tuple(dict.fromkeys(n for n in names if n))
