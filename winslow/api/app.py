"""The FastAPI application: routers, and domain errors turned into HTTP in one place.

Every error body is ``{"detail": <words for a person>, "code": <machine word>}``: Winslow's
own errors, malformed requests, Starlette's (unknown path, wrong method), bodies over their
limit (``api/limits.py``), and unexpected exceptions, whose 500 is JSON too.
"""

from __future__ import annotations

import logging

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from winslow import __version__
from winslow.api.access import mark_operations
from winslow.api.audit import AuditCommands
from winslow.api.context import AppContext
from winslow.api.guard import AuthenticateFirst
from winslow.api.hub import Hub
from winslow.api.limits import TOO_LARGE_CODE, BodyLimit, BodyLimits
from winslow.api.openapi import install_openapi
from winslow.api.routes import (
    admin,
    audit,
    bulk,
    console,
    console_people,
    console_pipelines,
    console_project,
    console_resources,
    files,
    gates,
    grants,
    graph,
    health,
    logsearch,
    metrics,
    nodes,
    nodes_live,
    nomad_ui,
    notifications,
    oidc,
    people,
    pipelines,
    previews,
    progress,
    projects,
    quotas,
    series,
    sessions,
    telemetry,
    tokens,
    triggers,
    usage,
    workspaces,
)
from winslow.api.routes.console import SignInRequiredError, sign_in_redirect
from winslow.errors import (
    AuthError,
    BackendError,
    BackendUnavailableError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PipelineError,
    StorageError,
    ValidationError,
    WinslowError,
)
from winslow.identity.base import IdentityUnavailable
from winslow.storage.keys import name_projects

log = logging.getLogger(__name__)

STATUS_OF: list[tuple[type[WinslowError], int]] = [
    (PipelineError, 422),
    (ValidationError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (AuthError, 401),
    (ForbiddenError, 403),
    (BackendUnavailableError, 503),
    (IdentityUnavailable, 503),
    # Nomad (or S3) refused what Winslow asked: the server's setup, not the caller's.
    (BackendError, 502),
    (StorageError, 502),
    (WinslowError, 500),
]


def status_for(exc: WinslowError) -> int:
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            return status
    return 500


async def _winslow_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WinslowError)
    status = status_for(exc)
    detail = exc.message
    if "project '" in detail:
        detail = await to_thread.run_sync(_with_project_names, request, detail)
    body: dict[str, object] = {"detail": detail, "code": exc.code}
    if isinstance(exc, PipelineError):
        body["problems"] = [problem.__dict__ for problem in exc.problems]
    fields = getattr(exc, "fields", None)
    if not isinstance(fields, dict) and isinstance(exc, ValidationError) and exc.field:
        fields = {exc.field: exc.message}
    if isinstance(fields, dict):
        # Where in the request each problem sits, for a form to mark its fields.
        body["fields"] = fields
    if status >= 500:
        log.error("request failed: %s", exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _with_project_names(request: Request, words: str) -> str:
    """``words`` naming projects by name where storage keys named them by id."""
    store = request.app.state.context.store

    def name_of(project_id: str) -> str | None:
        try:
            project = store.get_project(project_id)
        except NotFoundError:
            return None
        return project.name if project.id == project_id else None

    return name_projects(words, name_of)


async def _request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    words = []
    fields: dict[str, str] = {}
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            # Its place is a character offset, not a field: "0: JSON decode error" said nothing.
            at = error.get("loc", ("body", 0))[-1]
            why = str(error.get("ctx", {}).get("error", "cannot be read"))
            words.append(f"the body is not valid JSON ({why} at character {at})")
            continue
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        words.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        if where:
            # The first problem of each field, for a form to show beside it.
            fields.setdefault(where, str(error.get("msg")))
    return JSONResponse(
        {
            "detail": "The request is malformed: " + "; ".join(words),
            "code": "invalid_request",
            "fields": fields,
        },
        status_code=422,
    )


HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: TOO_LARGE_CODE,
}
"""The ``code`` of Starlette's and FastAPI's own HTTP errors."""


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status < 400:
        return Response(status_code=status, headers=exc.headers)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    where = f"{request.method} {request.url.path}"
    if status == 400 and detail == "There was an error parsing the body":
        detail = f"The body of {where} could not be read; send JSON, in UTF-8."
    elif status == 404 and detail == "Not Found":
        detail = f"Nothing answers {where}; /docs lists the API."
    headers = exc.headers
    if status == 405:
        allowed = ", ".join(allowed_methods(request)) or (exc.headers or {}).get("Allow", "")
        headers = {**(exc.headers or {}), "Allow": allowed}
        detail = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}."
    code = HTTP_CODES.get(status, f"http_{status}")
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on the request's path. Starlette's 405 names only
    the methods of the first route whose path matches, and ``GET`` and ``POST`` of
    ``/projects`` are two routes."""
    path = request.scope["path"]
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        route_path, route_methods = context.path, context.methods
        if route_path and route_methods and compile_path(route_path)[0].fullmatch(path):
            methods |= route_methods
    return sorted(methods)


async def _unexpected(request: Request, _exc: Exception) -> JSONResponse:
    # The server logs the traceback: Starlette raises the exception again after this answer.
    return JSONResponse(
        {
            "detail": f"{request.method} {request.url.path} failed unexpectedly; the server's "
            "log has the details. Please report it.",
            "code": "internal_error",
        },
        status_code=500,
    )


API_ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    pipelines.router,
    bulk.router,
    projects.router,
    projects.events_router,
    logsearch.router,
    progress.router,
    nomad_ui.router,
    series.router,
    usage.router,
    triggers.router,
    workspaces.router,
    previews.router,
    files.router,
    nodes.router,
    nodes_live.router,
    telemetry.router,
    admin.router,
    console.api_router,
    sessions.router,
    oidc.router,
    notifications.router,
    graph.router,
    gates.router,
    audit.router,
    people.router,
    grants.router,
    tokens.router,
    quotas.router,
)
"""The API's routers, each with ``/api/v1`` in its prefix, in the order they match."""

PAGE_ROUTERS: tuple[APIRouter, ...] = (
    console.router,
    console_project.router,
    console_resources.router,
    console_pipelines.router,
    console_people.router,
    metrics.router,
)
"""The console's pages and ``/metrics``."""


def _take_routes(app: FastAPI, router: APIRouter) -> None:
    """Serve ``router``'s routes in ``app`` as they are.

    Not ``include_router``: that has FastAPI build every route of the router again for
    each app (its dependencies analysed, its models made), 0.1 s of CPU per app, which a
    server pays once but the suite, with an app per test, hundreds of times. A route
    holds no state of its app (the app's own is found through the request), so apps
    can share them. Event handlers would not come along: none of our routers has any.
    """
    if router.on_startup or router.on_shutdown:
        raise RuntimeError("a router with event handlers needs app.include_router")
    app.router.routes.extend(router.routes)


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
    app.state.hub = Hub(context.store, push=context.settings.sse_push)
    app.add_exception_handler(WinslowError, _winslow_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    for router in API_ROUTERS:
        _take_routes(app, router)
    app.add_exception_handler(SignInRequiredError, _sign_in_first)
    # Credentials before bodies: an unauthenticated request gets its 401 unread.
    mark_operations(API_ROUTERS)
    app.add_middleware(AuthenticateFirst)
    # A body over its limit is refused before anything but the audit looks at it.
    app.add_middleware(BodyLimit, limits=BodyLimits.of(context.settings))
    # Around everything: a command refused by the two above is recorded too.
    app.add_middleware(AuditCommands)
    for page_router in PAGE_ROUTERS:
        _take_routes(app, page_router)
    static = context.settings.resolved_ui_dir() / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    install_openapi(app)
    return app


async def _sign_in_first(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequiredError)
    return sign_in_redirect(exc.next_url)
