"""The interactive annotation web app behind ``sam2vol serve``.

A FastAPI back end keeps one :class:`~sam2vol.session.Session` per browser
session (isolated, autosaved, recoverable after a restart) and a plain canvas
viewer (vanilla JavaScript in ``static/``, no build step) draws slices and
mask overlays the server renders as PNG. Needs the ``web`` extra.

Modules:
    config: :class:`ServerConfig`, what the server was started with.
    paths: safe paths inside the data folder, upload names.
    display: window presets, slice and overlay PNGs in the three views.
    jobs: long work (loading, propagation, recovery) off the request thread.
    meta: what a session was opened from, saved beside its autosave.
    websession: one browser session: its Session, lock, job and autosave.
    store: the sessions of a server, created, looked up and recovered.
    schemas: request bodies.
    routes: the HTTP API.
    app: :func:`create_app`.
"""
