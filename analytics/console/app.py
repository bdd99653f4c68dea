"""The operator console's FastAPI app (``analytics serve``, or ``analytics run --serve``).

The page is plain HTML, CSS and JavaScript served from ``static/`` (no Node build step). The API is JSON; a
WebSocket (:mod:`.hub`) pushes the ranked queue. Bad input always gets a 4xx with a ``detail`` message, never
a 500: request validation errors are flattened into one readable sentence.

Routes by role (see :mod:`.accounts`): :mod:`.auth` (login), :mod:`.routes_alerts` (operator),
:mod:`.routes_audit` (supervisor), :mod:`.routes_admin` (admin).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from analytics.console import auth, hub, routes_admin, routes_alerts, routes_audit, routes_records
from analytics.console.context import ConsoleContext

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
#: Same-origin only; no inline script (the page has none), so injected markup cannot run code.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _flatten(err: RequestValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def create_app(ctx: ConsoleContext) -> FastAPI:
    """The console app over ``ctx`` (its store stays open for the app's life; the caller closes it)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.hub.start()
        try:
            yield
        finally:
            await app.state.hub.stop()

    app = FastAPI(title="analytics operator console", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.ctx = ctx
    app.state.hub = hub.Hub(ctx)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": f"invalid request: {_flatten(err)}"}, status_code=422)

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette's middleware signature
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    for module in (auth, routes_alerts, routes_audit, routes_admin, routes_records, hub):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
