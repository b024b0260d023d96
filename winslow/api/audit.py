"""The audit trail's recorder: every command the API takes, with who, from where and what.

``AuditCommands`` is the outermost ASGI middleware of the API. Every request below
``/api/v1/`` whose method is not ``GET``, ``HEAD`` or ``OPTIONS`` is a command, and each
one is recorded (``store/audit.py``) once its answer's status is known, refused and failed
ones included: a 401 for a wrong token, a 403, a 413, a 500, and every sign-in attempt
(under the name tried, never the password or token).

What changed is the request's JSON body with every secret-looking value masked; only a
JSON body up to ``AUDIT_BODY_BYTES`` is kept in memory for that, while the body passes on
to the app untouched; a larger one or an upload is recorded by its size. For as long as
the command runs an ``Origin`` (``store/origin.py``) is current, so the history lines it
writes say from where it came; a command on a project that wrote none gets a
``command`` line there, so a project's history names every command made on it.

The entry is written before the last byte of the answer leaves, so whoever got the answer
finds its entry in ``GET /api/v1/audit``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import anyio
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.routing import compile_path

from winslow.api.deps import CALLER_STATE, authenticate
from winslow.api.guard import API_PREFIX
from winslow.api.routes.triggers import TRIGGER_HEADER
from winslow.errors import AuthError
from winslow.store.audit import Command, project_id_of, record
from winslow.store.origin import ANONYMOUS, Origin, acting_from
from winslow.store.tokens import Caller

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from winslow.store.repo import Store

log = logging.getLogger(__name__)

AUDIT_BODY_BYTES = 4096
"""The largest JSON body recorded as it is, bytes; a larger one is recorded by its size."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that only read: not commands, not recorded."""

SECRET_WORDS = ("password", "token", "secret", "key")
"""A body's key (or a query parameter) naming one of these has its value masked."""

MASK = "***"

SIGN_IN = "/api/v1/session"

ASKS_ONLY: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"/api/v1/projects/[^/]+/runs/[^/]+/workspace/uploads/[^/]+/urls")),
)
"""Commands that change nothing of a project (signing part URLs: a large upload asks
dozens of times): in the trail, but no ``command`` line in the project's history."""

_PROJECT_PATH = re.compile(r"/api/v1/projects/([^/]+)(?:/.*)?")
_TRIGGER_PATH = re.compile(r"/api/v1/projects/([^/]+)/trigger")


# -- what a command changed, as a person may read it ---------------------------------------


def is_secret(name: str) -> bool:
    """Whether a key or parameter called ``name`` holds something nobody should read back."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact(value: Any) -> Any:
    """``value`` (parsed JSON) with the value of every secret-looking key masked."""
    if isinstance(value, dict):
        return {key: MASK if is_secret(str(key)) else redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def changes_of(body: bytes | None, size: int) -> Any:
    """What a request's body changes, for the trail: the JSON masked, ``{"bytes": n}``
    for a body not kept (large, not JSON, not parseable), ``None`` for no body."""
    if size == 0:
        return None
    if body is None:
        return {"bytes": size}
    try:
        return redact(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        return {"bytes": size}


def masked_path(path: str, query: str) -> str:
    """``path`` with its query, secret-looking parameters masked."""
    if not query:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    shown = [(k, MASK if is_secret(k) else v) for k, v in pairs]
    # Slashes and the mask stay readable: a person reads this.
    return path + "?" + urlencode(shown, safe="/*")


def asks_only(method: str, path: str) -> bool:
    """Whether ``method path`` is one of ``ASKS_ONLY``."""
    return any(method == wanted and pattern.fullmatch(path) for wanted, pattern in ASKS_ONLY)


def via_of(caller: Caller | None, trigger: str | None = None) -> str:
    """Through what a request came: its console session, its API token, a trigger token."""
    if caller is not None:
        return caller.via
    return f"trigger:{trigger}" if trigger else ANONYMOUS


# -- which operation answered ---------------------------------------------------------------


class Operations:
    """The OpenAPI ``operationId`` of a method and path, as the app's document names it.

    Read off the routes, not the document: building the document costs megabytes, and
    the first command (perhaps a refused one) would pay for it.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        found: list[tuple[int, str, re.Pattern[str], str]] = []
        for context in iter_route_contexts(routes):
            template = context.path_format
            if not isinstance(context.original_route, APIRoute) or template is None:
                continue
            operation = str(context.operation_id or context.unique_id)
            pattern = compile_path(template)[0]
            for method in context.methods or ():
                found.append((template.count("{"), method, pattern, operation))
        # A fixed path beats a template: /pipelines/validate before /pipelines/{name}.
        self._operations = sorted(found, key=lambda entry: entry[0])

    def of(self, method: str, path: str) -> str:
        """The operation ``method path`` names; empty where none does."""
        for _, wanted, pattern, operation in self._operations:
            if wanted == method and pattern.fullmatch(path):
                return operation
        return ""


# -- the middleware ------------------------------------------------------------------------


@dataclass
class _Exchange:
    """One command as it passes: its body (as far as kept), its answer's status and, for
    a sign-in, the answer's body."""

    keep_body: bool
    keep_answer: bool
    declared: int = 0
    """The body's ``Content-Length``; 0 where it has none."""
    body: bytearray = field(default_factory=bytearray)
    size: int = 0
    status: int | None = None
    answer: bytearray = field(default_factory=bytearray)
    recorded: bool = False
    signing_out: Caller | None = None
    """Who signs out: found before the command, which ends their session."""

    def caller(self, state: dict[str, Any]) -> Caller | None:
        """Who sent the command, as far as known: the guard leaves it in ``state``."""
        found = state.get(CALLER_STATE, self.signing_out)
        return found if isinstance(found, Caller) else None

    def take(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.keep_body and len(self.body) + len(chunk) <= AUDIT_BODY_BYTES:
            self.body.extend(chunk)
        else:
            self.keep_body = False
            self.body.clear()


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _is_json(headers: Headers) -> bool:
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


class AuditCommands:
    """ASGI middleware: record every command to the API (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._operations: Operations | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _route_path(scope) if scope["type"] == "http" else ""
        if not path.startswith(API_PREFIX) or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        store: Store = scope["app"].state.context.store
        state: dict[str, Any] = scope.setdefault("state", {})
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        declared = int(length) if length.isdigit() else 0
        sign_in = scope["method"] == "POST" and path == SIGN_IN
        exchange = _Exchange(
            keep_body=_is_json(headers) and declared <= AUDIT_BODY_BYTES,
            keep_answer=sign_in,
            declared=declared,
        )
        project_id, trigger, exchange.signing_out = await run_in_threadpool(
            self._before, store, scope, path, headers
        )

        def via() -> str:
            return via_of(exchange.caller(state), trigger)

        client = scope.get("client")
        origin = Origin(address=client[0] if client else "", request=secrets.token_hex(8), via=via)

        async def taking() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.take(message.get("body", b""))
            return message

        async def answering(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = int(message["status"])
            elif message["type"] == "http.response.body":
                if exchange.keep_answer and len(exchange.answer) <= AUDIT_BODY_BYTES:
                    exchange.answer.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._record(scope, store, exchange, origin, project_id)
            await send(message)

        with acting_from(origin):
            try:
                await self.app(scope, taking, answering)
            finally:
                with anyio.CancelScope(shield=True):
                    await self._record(scope, store, exchange, origin, project_id)

    def _before(
        self, store: Store, scope: Scope, path: str, headers: Headers
    ) -> tuple[str | None, str | None, Caller | None]:
        """What must be found before the command runs: the id of the project it names (a
        deletion leaves none to find afterwards), the name of a valid trigger token it
        carries, and who signs out (their session is gone afterwards)."""
        project_id = trigger = caller = None
        if match := _PROJECT_PATH.fullmatch(path):
            project_id = project_id_of(store, match.group(1))
        token = headers.get(TRIGGER_HEADER, "").strip()
        if project_id and token and _TRIGGER_PATH.fullmatch(path):
            found = store.project_token(project_id, token)
            trigger = found.name if found is not None else None
        if scope["method"] == "DELETE" and path == SIGN_IN:
            try:
                caller = authenticate(HTTPConnection(scope), store)
            except AuthError:
                caller = None
        return project_id, trigger, caller

    async def _record(
        self,
        scope: Scope,
        store: Store,
        exchange: _Exchange,
        origin: Origin,
        project_id: str | None,
    ) -> None:
        if exchange.recorded:
            return
        exchange.recorded = True
        try:
            if self._operations is None:
                self._operations = Operations(scope["app"].routes)
            command = self._command(scope, exchange, origin, project_id)
            # Only a command that was done changed the project; a refused one is only
            # the trail's.
            in_history = (
                command.status < 400
                and command.project_id not in origin.written
                and not asks_only(command.method, _route_path(scope))
            )
            await run_in_threadpool(record, store, command, in_history=in_history)
        except Exception:
            log.exception("audit: could not record %s %s", scope["method"], _route_path(scope))

    def _command(
        self, scope: Scope, exchange: _Exchange, origin: Origin, project_id: str | None
    ) -> Command:
        method, path = scope["method"], _route_path(scope)
        status = exchange.status or 500
        caller = exchange.caller(scope["state"])
        via = origin.via()
        actor = caller.name if caller is not None else via
        if path == SIGN_IN and method == "POST":
            actor, via = _signed_in(exchange, status)
        if project_id is None and len(origin.written) == 1:
            project_id = next(iter(origin.written))
        shown = masked_path(path, scope.get("query_string", b"").decode("latin-1"))
        # A body refused before it was read (401, 413) is known by its declared size.
        size = max(exchange.size, exchange.declared)
        whole = exchange.keep_body and exchange.size == size
        body = bytes(exchange.body) if whole else None
        return Command(
            actor=actor,
            via=via,
            address=origin.address,
            method=method,
            path=shown,
            operation=self._operations.of(method, path) if self._operations else "",
            status=status,
            summary=f"{method} {shown} → {status}",
            changes=changes_of(body, size),
            project_id=project_id,
            request=origin.request,
        )


def _signed_in(exchange: _Exchange, status: int) -> tuple[str, str]:
    """Actor and via of a sign-in: the user and new session where it worked, else the
    name tried (``anonymous`` for a token)."""
    tried: Any = None
    if exchange.keep_body:
        try:
            tried = json.loads(bytes(exchange.body)).get("username")
        except (ValueError, AttributeError, UnicodeDecodeError):
            tried = None
    if status < 400:
        try:
            answer = json.loads(bytes(exchange.answer))
            return str(answer["user"]), f"session:{answer['handle']}"
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            pass
    return (tried if isinstance(tried, str) and tried else ANONYMOUS), ANONYMOUS
