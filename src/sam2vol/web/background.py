"""Run the web app on a background thread (for tests, benchmarks and notebooks)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from sam2vol.web.config import ServerConfig


@dataclass
class BackgroundServer:
    """A running server: its address and how to stop it.

    Attributes:
        url: Base address, e.g. ``http://127.0.0.1:41234/``.
        app: The FastAPI app (its session store is ``app.state.store``).
    """

    url: str
    app: object
    _server: object
    _thread: threading.Thread

    def stop(self, timeout: float | None = None) -> None:
        """Shut down (pending autosaves are written) and wait for the thread.

        Args:
            timeout: Seconds to wait; default: the server's grace for running requests, plus 10.

        Raises:
            RuntimeError: The server is still running after ``timeout`` seconds.
        """
        from sam2vol.web.server import GRACE_S

        timeout = GRACE_S + 10.0 if timeout is None else timeout
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"the web server did not stop within {timeout:g} s")


def serve_in_background(config: ServerConfig, host: str = "127.0.0.1") -> BackgroundServer:
    """Start the app with uvicorn on a free port of ``host``; returns once it accepts requests."""
    from sam2vol.web.app import create_app
    from sam2vol.web.server import make_server

    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = make_server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sam2vol-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    return BackgroundServer(f"http://{host}:{port}/", app, server, thread)
