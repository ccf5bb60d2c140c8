"""The FastAPI application: API routes, the page and its static files, error handling."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from sam2vol.errors import InputError
from sam2vol.web.auth import TokenMiddleware
from sam2vol.web.config import ServerConfig
from sam2vol.web.errors import status_of
from sam2vol.web.limits import BodyLimitMiddleware
from sam2vol.web.routes import build_router
from sam2vol.web.store import SessionStore

log = logging.getLogger("sam2vol.web")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def static_dir():
    """The folder of the page's files, inside the installed package."""
    return files("sam2vol.web") / "static"


def _one_line(text: str, limit: int = 300) -> str:
    line = (str(text).strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(x) for x in error.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "bad request: " + "; ".join(parts)


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The web app for one server (its sessions live in a :class:`SessionStore`).

    Example:
        >>> import tempfile
        >>> app = create_app(ServerConfig(state_dir=tempfile.mkdtemp()))
        >>> app.title
        'sam2vol'
    """
    config = config or ServerConfig()
    store = SessionStore(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        store.shutdown()

    app = FastAPI(
        title="sam2vol", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.store = store
    app.state.config = config
    # the last added runs first: Host check, then the token, then the body size
    app.add_middleware(BodyLimitMiddleware, limit=config.max_json_bytes)
    if config.token:
        app.add_middleware(TokenMiddleware, token=config.token)
    if config.allowed_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts))

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(str(exc))}, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(_validation_message(exc))}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": _one_line(str(exc.detail))}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        detail = "internal error; the server log has the details"
        return JSONResponse({"detail": detail}, status_code=500)

    app.include_router(build_router(store, config))
    from sam2vol.web.routes_edit import build_edit_router

    app.include_router(build_edit_router(store, config))
    static = static_dir()
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(static / "index.html"), headers={"Cache-Control": "no-cache"})

    return app
