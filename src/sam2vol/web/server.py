"""The uvicorn server of the web app, made to stop promptly and without losing work."""

from __future__ import annotations

import uvicorn

# Requests still running this long after a stop are cancelled (the event streams and long polls
# end at once; this is for real work: a save, an upload). Writes are atomic, so a cancelled one
# leaves nothing half-written.
GRACE_S = 30.0


class Server(uvicorn.Server):
    """A uvicorn server whose stop ends the app's event streams and long polls at once.

    Without that, an open page (its change stream never ends by itself) holds a stopping server
    forever, and a second Ctrl+C skips the app's shutdown: pending autosaves would be lost.
    Requests still running ``GRACE_S`` seconds after a stop are cancelled, then the app's
    shutdown runs (pending autosaves written, background encoding stopped).
    """

    async def shutdown(self, sockets=None) -> None:
        store = getattr(getattr(self.config.app, "state", None), "store", None)
        if store is not None:
            store.closing.set()
        await super().shutdown(sockets)


def make_server(app, **options) -> Server:
    """A server for ``app`` (made by ``create_app``); ``options`` go to ``uvicorn.Config``."""
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=GRACE_S, **options
    )
    return Server(config)
