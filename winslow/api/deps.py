"""FastAPI dependencies, as ``Annotated`` aliases the routes declare, and who a request is from.

A caller shows who they are with an API token (``Authorization: Bearer``: the CLI,
scripts) or, from the console, with the cookie of a session the server keeps
(``store/sessions.py``). A route that declares ``CurrentUser`` or ``CurrentCaller`` is
authenticated by ``api/guard.py`` before its body is read; the dependency then takes the
caller the guard found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Query, Request
from starlette.requests import HTTPConnection

from winslow import defaults
from winslow.api.context import AppContext
from winslow.errors import AuthError
from winslow.store.sessions import session_caller
from winslow.store.tokens import Caller, token_caller

if TYPE_CHECKING:
    from winslow.store.repo import Store


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


SESSION_COOKIE = "winslow_session"
"""The console's cookie: the secret of a session the server keeps (HttpOnly,
SameSite=Strict), never an API token."""

CONSOLE_HEADER = "x-winslow-console"
"""Sent by the console's scripts with every change they ask for. A cross-site form cannot
set it, so a cookie alone never authorises a change (no CSRF)."""

CALLER_STATE = "caller"
"""Where ``api/guard.py`` leaves the caller it found, in the request's state."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_secret(connection: HTTPConnection) -> str | None:
    """The secret in the console's session cookie, if any."""
    return connection.cookies.get(SESSION_COOKIE) or None


def authenticate(connection: HTTPConnection, store: Store) -> Caller:
    """Return who sent ``connection``, from its headers alone; raise ``AuthError`` without
    a valid API token or console session.

    ``Authorization`` wins over the cookie; a change through the cookie also needs the
    console's header.
    """
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header and (secret := session_secret(connection)):
        method = connection.scope.get("method", "GET")
        if method not in _SAFE_METHODS and CONSOLE_HEADER not in connection.headers:
            raise AuthError(
                f"A change through the console's session needs the {CONSOLE_HEADER} header."
            )
        caller = session_caller(store, secret)
        if caller is None:
            raise AuthError(
                "Your console session has ended (signed out, expired, or revoked); sign in again."
            )
        return caller
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(
            "This endpoint needs a bearer token: send 'Authorization: Bearer <token>'. "
            "`winslow up` printed where the admin token is."
        )
    caller = token_caller(store, token.strip())
    if caller is None:
        raise AuthError("The bearer token is not valid (wrong or revoked); check WINSLOW_TOKEN.")
    return caller


def current_caller(request: Request, context: ContextDep) -> Caller:
    """Return who sent the request (the guard's finding); raise ``AuthError`` if nobody."""
    found = getattr(request.state, CALLER_STATE, None)
    if isinstance(found, Caller):
        return found
    return authenticate(request, context.store)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def current_user(caller: CurrentCaller) -> str:
    """Return the name of the caller's token: the actor the history names."""
    return caller.name


CurrentUser = Annotated[str, Depends(current_user)]


PageSkip = Annotated[int, Query(ge=0, description="Leave out this many projects first.")]
"""``skip`` of a paged list: the same words on every list route."""
PageLimit = Annotated[
    int, Query(ge=1, le=defaults.MAX_PAGE_SIZE, description="Give at most this many.")
]
"""``limit`` of a paged list; its default is ``defaults.PAGE_SIZE``."""
