"""Authenticate first: a request without valid credentials is refused before its body is read.

FastAPI reads and parses a request's body before it resolves the route's dependencies, so
with ``CurrentUser`` alone anybody could make the server take in a body of any size (and
hold it several times over while parsing it) before hearing 401. This ASGI middleware
checks every request below ``/api/v1/`` from its headers alone, the API token or the
session cookie, and answers 401 without reading a byte of the body; otherwise it leaves
the caller in the request's state, where ``current_caller`` takes it, so the store is
asked once.

The few operations that need no caller are named in ``PUBLIC_OPERATIONS``: health,
the OpenAPI document, signing in and out, and the trigger endpoint (it checks its own
project tokens). Everything else below ``/api/v1/`` is closed by default, so a new route
cannot be left open by mistake, and ``tests/api/test_auth_first.py`` checks that these are
exactly the operations that declare no caller. The console's pages (they redirect to
sign in), the docs and static files lie outside ``/api/v1/``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from winslow.api.deps import CALLER_STATE, authenticate, current_caller
from winslow.core.access import scope_allows
from winslow.errors import AuthError, ForbiddenError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from winslow.api.context import AppContext

API_PREFIX = "/api/v1/"

PUBLIC_OPERATIONS: tuple[tuple[frozenset[str], re.Pattern[str]], ...] = (
    (frozenset({"GET", "HEAD"}), re.compile(r"/api/v1/health")),
    (frozenset({"GET", "HEAD"}), re.compile(r"/api/v1/openapi\.json")),
    (frozenset({"POST", "DELETE"}), re.compile(r"/api/v1/session")),
    (frozenset({"GET", "HEAD"}), re.compile(r"/api/v1/oidc(/start|/callback)?")),
    (frozenset({"POST"}), re.compile(r"/api/v1/projects/[^/]+/trigger")),
)
"""Methods and paths below ``/api/v1/`` that anybody may call."""


def needs_caller(method: str, path: str) -> bool:
    """Whether a request for ``method`` and ``path`` must show a token or session first."""
    if not path.startswith(API_PREFIX):
        return False
    return not any(
        method in methods and pattern.fullmatch(path) for methods, pattern in PUBLIC_OPERATIONS
    )


def depends_on_caller(dependant: Dependant) -> bool:
    """Whether ``dependant`` (a route's, or one of its dependencies') declares a caller:
    ``CurrentUser`` or ``CurrentCaller``, directly or through another dependency."""
    return any(
        sub.call is current_caller or depends_on_caller(sub) for sub in dependant.dependencies
    )


def unauthorized(exc: AuthError) -> JSONResponse:
    """The 401 every refused request gets, in Winslow's error shape."""
    return JSONResponse(
        {"detail": exc.message, "code": exc.code},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def forbidden(message: str) -> JSONResponse:
    return JSONResponse({"detail": message, "code": ForbiddenError.code}, status_code=403)


class AuthenticateFirst:
    """ASGI middleware: authenticate requests to the API before anything reads their body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not needs_caller(scope["method"], _route_path(scope)):
            await self.app(scope, receive, send)
            return
        context: AppContext = scope["app"].state.context
        try:
            caller = await run_in_threadpool(authenticate, HTTPConnection(scope), context.store)
        except AuthError as exc:
            await unauthorized(exc)(scope, receive, send)
            return
        # Before any refusal: the audit trail names who was refused.
        scope.setdefault("state", {})[CALLER_STATE] = caller
        if not scope_allows(caller.principal, scope["method"]):
            # A read-only token is refused every change here, before its body is read.
            await forbidden("This token may only read; use a steer token to change things.")(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The request's path as the routes see it: without the ``root_path`` a proxy set."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
