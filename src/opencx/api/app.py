"""The FastAPI application: ingestion, the read API, and error mapping in one place."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from opencx import __version__, web
from opencx.access import AuditBuffer
from opencx.api import (
    admin,
    audit,
    backup,
    ingest,
    journeys,
    metrics,
    orchestrate,
    privacy,
    profiles,
    voc,
)
from opencx.api._limits import BodySizeLimit, IngestionAndSignInLimits, RateLimiters
from opencx.api._state import ServerState
from opencx.api.deps import StateDep
from opencx.config import Settings, load_settings
from opencx.documents import describe_errors
from opencx.errors import InvalidInput, OpenCXError, Overloaded
from opencx.store import Store
from opencx.web.app import SecurityHeaders

log = logging.getLogger("opencx.api")


class IngestionCORS:
    """CORS for the ingestion endpoints only, and only for the configured origins."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "content-encoding"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _every_second(work: Callable[[], object]) -> threading.Event:
    """Run `work` every second on a thread until the returned event is set."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(1.0):
            try:
                work()
            except Exception:
                log.exception("audit log flush failed; retried in a second")

    threading.Thread(target=loop, name="opencx-audit", daemon=True).start()
    return stop


class ReadinessPublic(BaseModel):
    status: str
    checks: dict[str, str]


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """The OpenCX server app; owns the database for its lifetime."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ServerState.open(settings, store)
        app.state.opencx = state
        app.state.audit = AuditBuffer(state.store.cursor)
        flusher = _every_second(app.state.audit.flush)
        state.start()
        try:
            yield
        finally:
            flusher.set()
            state.stop()
            app.state.audit.flush()
            if store is None:
                state.store.close()

    app = FastAPI(
        title="OpenCX",
        version=__version__,
        description="Customer-experience management: Segment-compatible ingestion, "
        "identity resolution, profiles and timelines, journey analytics.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(OpenCXError)
    async def opencx_error(request: Request, exc: OpenCXError) -> Response:
        path = request.url.path
        if not path.startswith(("/v1/", "/api/")):
            return web.error_page(request, exc)
        headers = {}
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = (
                'Basic realm="opencx"' if request.url.path.startswith("/v1/") else "Bearer"
            )
        body = {"error": {"type": type(exc).__name__, "message": exc.message}}
        if exc.details is not None:
            body["error"]["details"] = exc.details
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        # Answered in the same shape as every other error (the traceback goes to the log);
        # web pages keep their security headers, which this outermost layer would miss.
        error = OpenCXError("internal error: the server log has the details")
        if request.url.path.startswith(("/v1/", "/api/")):
            return await opencx_error(request, error)
        response = web.error_page(request, error)
        response.headers.update(SecurityHeaders.headers_for(request.scope))
        return response

    @app.exception_handler(ValidationError)
    async def invalid_request(request: Request, exc: ValidationError) -> Response:
        # A request that passed the route's schema but not a library model's rules.
        message = f"invalid request: {describe_errors(exc)}"
        return await opencx_error(request, InvalidInput(message))

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    def healthz() -> dict[str, str]:
        """The process answers HTTP; says nothing of the database (that is `/readyz`)."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness",
        response_model=ReadinessPublic,
        responses={503: {"description": "Not ready: the error names each failed check"}},
    )
    def readyz(state: StateDep) -> Response:
        """200 when the database answers a query and the writer runs and keeps up; 503
        (in the API's error shape, each check in `details`) when it should get no traffic."""
        readiness = state.readiness()
        if readiness.ready:
            return JSONResponse({"status": "ready", "checks": readiness.checks})
        message = "not ready: " + "; ".join(readiness.problems)
        body = {"error": {"type": "NotReady", "message": message, "details": readiness.checks}}
        return JSONResponse(body, status_code=503)

    app.include_router(ingest.router)
    app.include_router(profiles.router)
    app.include_router(admin.router)
    app.include_router(backup.router)
    app.include_router(journeys.router)
    app.include_router(voc.router)
    app.include_router(metrics.router)
    app.include_router(orchestrate.router)
    app.include_router(audit.router)
    app.include_router(privacy.router)
    web.install(app)
    if settings.cors_origins:
        app.add_middleware(IngestionCORS, origins=settings.cors_origins)
    app.add_middleware(BodySizeLimit, limit=settings.rate_limits.max_body_bytes)
    app.add_middleware(ingest.IngestFastPath)
    app.state.limits = RateLimiters(settings.rate_limits)
    # Outermost: rate limits are checked before any other work, the fast path included.
    app.add_middleware(IngestionAndSignInLimits, limiters=app.state.limits)
    return app
