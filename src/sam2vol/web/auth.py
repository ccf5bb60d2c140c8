"""Remote mode: every request carries the server's token, compared in constant time.

The page gets the token once in its address (``/?token=...``, as Jupyter does);
the server then sets it as a ``SameSite=Strict`` cookie, so images and static
files load, and the page's script also sends it as ``Authorization: Bearer``.
A request without a valid token gets 401 and nothing else.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

TOKEN_ENV = "SAM2VOL_TOKEN"
TOKEN_QUERY = "token"
MIN_TOKEN_CHARS = 16
UNAUTHORIZED = (
    "this server needs its token: open the address printed by `sam2vol serve` "
    "(it ends in ?token=...)"
)


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe)."""
    return secrets.token_urlsafe(32)


def cookie_name(port: int | None) -> str:
    """The token cookie's name; per port, since cookies do not tell ports apart."""
    return f"sam2vol-token-{port or 0}"


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the server's."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


class TokenMiddleware:
    """ASGI middleware refusing every HTTP request without the token (401).

    Args:
        app: The wrapped ASGI app.
        token: The server's token.
    """

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.token = token

    def _presented(self, scope) -> tuple[list[str], bool]:
        """Tokens presented by a request, and whether the query string held one."""
        found: list[str] = []
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            found.append(auth[7:].strip())
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        in_query = bool(query.get(TOKEN_QUERY))
        found += query.get(TOKEN_QUERY, [])[:1]
        if "cookie" in headers:
            cookie = SimpleCookie()
            try:
                cookie.load(headers["cookie"])
            except Exception:
                cookie = SimpleCookie()
            morsel = cookie.get(cookie_name(_port(scope)))
            if morsel is not None:
                found.append(morsel.value)
        return found, in_query

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        presented, in_query = self._presented(scope)
        if not any(token_matches(t, self.token) for t in presented):
            body = json.dumps({"detail": UNAUTHORIZED}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if not (in_query and scope.get("path") == "/"):
            await self.app(scope, receive, send)
            return
        # the page was opened with ?token=: keep it as a cookie for images and static files
        cookie = (
            f"{cookie_name(_port(scope))}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        ).encode()

        async def send_with_cookie(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _port(scope) -> int | None:
    server = scope.get("server")
    return server[1] if server else None
