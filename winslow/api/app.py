"""The FastAPI application: routers, and domain errors turned into HTTP in one place.

Every error body is ``{"detail": <words for a person>, "code": <machine word>}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from winslow import __version__
from winslow.api.context import AppContext
from winslow.api.routes import (
    admin,
    console,
    console_pipelines,
    console_project,
    console_resources,
    files,
    health,
    nodes,
    pipelines,
    progress,
    projects,
    series,
    triggers,
    usage,
    workspaces,
)
from winslow.api.routes.console import SignInRequiredError, sign_in_redirect
from winslow.errors import (
    AuthError,
    BackendUnavailableError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PipelineError,
    StorageError,
    ValidationError,
    WinslowError,
)

log = logging.getLogger(__name__)

STATUS_OF: list[tuple[type[WinslowError], int]] = [
    (PipelineError, 422),
    (ValidationError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (AuthError, 401),
    (ForbiddenError, 403),
    (BackendUnavailableError, 503),
    (StorageError, 502),
    (WinslowError, 500),
]


def status_for(exc: WinslowError) -> int:
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            return status
    return 500


async def _winslow_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WinslowError)
    status = status_for(exc)
    body: dict[str, object] = {"detail": exc.message, "code": exc.code}
    if isinstance(exc, PipelineError):
        body["problems"] = [problem.__dict__ for problem in exc.problems]
    if status >= 500:
        log.error("request failed: %s", exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    words = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        words.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return JSONResponse(
        {"detail": "The request is malformed: " + "; ".join(words), "code": "invalid_request"},
        status_code=422,
    )


def create_app(context: AppContext) -> FastAPI:
    """Return the API application serving ``context``."""
    app = FastAPI(
        title="Winslow",
        version=__version__,
        description="Long, GPU-heavy computer-vision pipelines with a person in the loop.",
        docs_url="/docs",
        openapi_url="/api/v1/openapi.json",
    )
    app.state.context = context
    app.add_exception_handler(WinslowError, _winslow_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    for router in (
        health.router,
        pipelines.router,
        projects.router,
        projects.events_router,
        progress.router,
        series.router,
        usage.router,
        triggers.router,
        workspaces.router,
        files.router,
        nodes.router,
        admin.router,
        console.api_router,
    ):
        app.include_router(router, prefix="/api/v1")
    app.add_exception_handler(SignInRequiredError, _sign_in_first)
    for page_router in (
        console.router,
        console_project.router,
        console_resources.router,
        console_pipelines.router,
    ):
        app.include_router(page_router)
    static = context.settings.resolved_ui_dir() / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    return app


async def _sign_in_first(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequiredError)
    return sign_in_redirect(exc.next_url)
