"""Errors the web API answers with a 4xx status and a one-line message.

Any :class:`~sam2vol.errors.InputError` becomes a 400; these subclasses pick
another status. Everything else becomes a 500 without details (the traceback
goes to the server log, never to the client).
"""

from __future__ import annotations

from sam2vol.errors import InputError


class WebError(InputError):
    """A user error with an HTTP status."""

    status_code = 400


class NotFound(WebError):
    """No such session, file or resource."""

    status_code = 404


class Busy(WebError):
    """The session is running a job (loading, propagating); try again when it is done."""

    status_code = 409


class Exists(WebError):
    """Refusing to overwrite a file."""

    status_code = 409


class TooLarge(WebError):
    """An upload or a volume over a size limit."""

    status_code = 413


class Stale(WebError):
    """A change made against a version of the session another tab has changed since."""

    status_code = 409


class ServerFull(WebError):
    """The memory budget cannot hold another session now."""

    status_code = 503


def status_of(exc: InputError) -> int:
    """The HTTP status for a user error."""
    return getattr(exc, "status_code", 400)
