"""The OpenAPI document, telling the truth about credentials and errors.

FastAPI documents what it can see: bodies, parameters, the 200, and a 422 in its own list
shape. Winslow answers every error as ``{"detail": ..., "code": ...}`` (``ErrorPublic``),
checks credentials in a dependency FastAPI does not know as a security scheme, and refuses
what it cannot handle with 401, 403, 404, 409 and 413. ``install_openapi`` lets FastAPI
build its document once, then declares the security schemes and, for every operation,
which credentials it takes and the errors it can answer, each with the real shape:

- 401 where credentials are needed (and the scheme: a bearer token or the console's
  session; a project's trigger token for ``/trigger``); 403 where a role or a token's
  scope matters: every change (a read-only token), every operation whose access
  (``x-winslow-access``, ``api/access.py``) not every signed-in user passes, ``/trigger``;
- 404 where the request names a thing (a path parameter, a ``path``, ``run`` or
  ``version`` query, a ``pipeline`` in the body);
- 409 on every change a thing's state may refuse (POST, PUT, PATCH, DELETE, but the
  pure checks ``/pipelines/validate`` and ``/gc``);
- 400 and 413 where a body is taken (not JSON; larger than ``api/limits.py`` allows);
- 422 where anything is taken, with ``problems`` for pipeline errors;
- 500 everywhere, also JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic.json_schema import models_json_schema

from winslow.api.access import ACCESS_KEY
from winslow.api.deps import SESSION_COOKIE
from winslow.api.guard import needs_caller
from winslow.api.models import ErrorPublic
from winslow.api.routes.triggers import TRIGGER_HEADER

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.routing import BaseRoute

ERROR_REF = {"$ref": "#/components/schemas/ErrorPublic"}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`winslow token create`; `winslow up` writes the admin's "
        "to `admin-token` in the data folder).",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The console's session, made by signing in; a change through it also "
        "needs the `X-Winslow-Console` header.",
    },
    "trigger_token": {
        "type": "apiKey",
        "in": "header",
        "name": TRIGGER_HEADER,
        "description": "A project token with the `trigger` capability "
        "(`winslow project token create`); it works on its project's `/trigger` only.",
    },
}

ERROR_WORDS: dict[int, str] = {
    400: "The body is not JSON (or not UTF-8, or nested too deep).",
    401: "No credentials, or wrong, revoked or expired ones.",
    403: "The credentials are valid but may not do this.",
    404: "The thing the request names does not exist; the detail names it and where to look.",
    409: "The thing's current state refuses this; the detail says why and what to do.",
    413: "The body is larger than this route takes (`WINSLOW_MAX_BODY_BYTES`, "
    "`WINSLOW_MAX_PIPELINE_BYTES`).",
    422: "A parameter or the body is malformed, or asks for what cannot be; the detail says "
    "which (`invalid_request`, `invalid_input`). Invalid pipeline text is `invalid_pipeline` "
    "with every problem in `problems`.",
    500: "An unexpected error; the server's log has the details.",
}

NAMING_QUERIES = frozenset({"path", "run", "version"})
"""Query parameters that name a thing, which may not exist (404)."""

NAMING_FIELDS = frozenset({"pipeline", "projects"})
"""Body fields that name a thing, which may not exist (404)."""

NEVER_CONFLICT = frozenset({"/api/v1/pipelines/validate", "/api/v1/gc"})
"""Paths whose POST only checks or tidies and so never meets a refusing state (no 409)."""

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/api/v1/openapi.json``) return Winslow's document."""
    build: Callable[[], dict[str, Any]] = app.openapi
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        document = build()
        if not done:
            describe_errors(document, app.routes)
            done = True
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def describe_errors(document: dict[str, Any], routes: list[BaseRoute]) -> None:
    """Declare the security schemes, and every operation's credentials and error answers."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _, top = models_json_schema(
        [(ErrorPublic, "serialization")], ref_template="#/components/schemas/{model}"
    )
    schemas.update(top.get("$defs", {}))
    components["securitySchemes"] = SECURITY_SCHEMES
    paths: dict[str, dict[str, Any]] = document.get("paths", {})
    for context in iter_route_contexts(routes):
        route = context.original_route
        path = context.path_format
        if not isinstance(route, APIRoute) or not route.include_in_schema or path is None:
            continue
        for method in sorted(context.methods or ()):
            operation = paths.get(path, {}).get(method.lower())
            if operation is not None:
                _describe_operation(operation, route, method, path)
    if "#/components/schemas/HTTPValidationError" not in json.dumps(paths):
        # FastAPI's own 422 list, which Winslow never sends, is no longer referenced.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def _describe_operation(operation: dict[str, Any], route: APIRoute, method: str, path: str) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if (label := _access_label(route)) is not None:
        operation[ACCESS_KEY] = label
    statuses = set(error_statuses(route, method, path))
    statuses |= {int(code) for code in responses if code.isdigit() and int(code) >= 400}
    security = _security(route, method, path)
    if security:
        operation["security"] = security
    for status in sorted(statuses):
        answer: dict[str, Any] = {
            "description": ERROR_WORDS.get(status, "An error."),
            "content": {"application/json": {"schema": ERROR_REF}},
        }
        if status == 401:
            answer["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}
            }
        responses[str(status)] = answer
    operation["responses"] = dict(sorted(responses.items()))


def error_statuses(route: APIRoute, method: str, path: str) -> list[int]:
    """The error statuses ``method path`` can answer, by the rules of the module."""
    # The access dependencies take the path's names (``ref``), so look at them all.
    path_params, query_params, header_params = _params(route.dependant)
    takes_body = route.body_field is not None
    takes_anything = takes_body or bool(path_params or query_params or header_params)
    security = _security(route, method, path)
    statuses = {500}
    if security:
        statuses.add(401)
    if any("trigger_token" in scheme for scheme in security) or (
        security and (method in CHANGES or _access_label(route) not in OPEN_TO_ALL)
    ):
        statuses.add(403)
    if (
        path_params
        or NAMING_QUERIES & {param.name for param in query_params}
        or NAMING_FIELDS & _body_fields(route)
    ):
        statuses.add(404)
    if method in CHANGES and security and path not in NEVER_CONFLICT:
        statuses.add(409)
    if takes_body:
        statuses |= {400, 413}
    if takes_anything:
        statuses.add(422)
    return sorted(statuses)


def _params(dependant: Dependant) -> tuple[list[Any], list[Any], list[Any]]:
    """The path, query and header parameters of ``dependant`` and its dependencies."""
    path, query, header = (
        list(dependant.path_params),
        list(dependant.query_params),
        list(dependant.header_params),
    )
    for sub in dependant.dependencies:
        more = _params(sub)
        path, query, header = path + more[0], query + more[1], header + more[2]
    return path, query, header


OPEN_TO_ALL = frozenset({"signed-in"})
"""Access labels (``api/access.py``) every signed-in user passes: they read without 403.
Not ``self``: another's things (``GET /users/{name}``, everyone's tokens) answer 403."""


def _access_label(route: APIRoute) -> str | None:
    label = (route.openapi_extra or {}).get(ACCESS_KEY)
    return str(label) if label is not None else None


def _security(route: APIRoute, method: str, path: str) -> list[dict[str, list[str]]]:
    """The credentials ``method path`` takes: what ``api/guard.py`` demands before anything
    else, or the trigger token the route checks itself."""
    if any(param.alias == TRIGGER_HEADER for param in route.dependant.header_params):
        return [{"trigger_token": []}]
    if needs_caller(method, path):
        return [{"bearer": []}, {"session": []}]
    return []


def _body_fields(route: APIRoute) -> set[str]:
    fields: set[str] = set()
    for param in route.dependant.body_params:
        model = getattr(param.field_info, "annotation", None)
        names = getattr(model, "model_fields", None)
        if isinstance(names, dict):
            fields |= set(names)
    return fields
