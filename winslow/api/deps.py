"""FastAPI dependencies, as ``Annotated`` aliases the routes declare."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from winslow.api.context import AppContext
from winslow.errors import AuthError


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


SESSION_COOKIE = "winslow_session"
"""The console's cookie: the token a person signed in with (HttpOnly, SameSite=Strict)."""

CONSOLE_HEADER = "x-winslow-console"
"""Sent by the console's scripts with every change they ask for. A cross-site form cannot
set it, so a cookie alone never authorises a change (no CSRF)."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_token(request: Request) -> str | None:
    """The token of the console's session cookie, if any."""
    return request.cookies.get(SESSION_COOKIE) or None


def current_user(request: Request, context: ContextDep) -> str:
    """Return the name of the caller's token; raise ``AuthError`` without a valid one.

    The token comes as ``Authorization: Bearer`` (CLI, scripts) or, from the console, in
    its session cookie; a change through the cookie also needs the console's header.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header and (cookie := session_token(request)):
        if request.method not in _SAFE_METHODS and CONSOLE_HEADER not in request.headers:
            raise AuthError(
                f"A change through the console's session needs the {CONSOLE_HEADER} header."
            )
        scheme, token = "bearer", cookie
    if scheme.lower() != "bearer" or not token:
        raise AuthError(
            "This endpoint needs a bearer token: send 'Authorization: Bearer <token>'. "
            "`winslow up` printed where the admin token is."
        )
    owner = context.store.token_owner(token.strip())
    if owner is None:
        raise AuthError("The bearer token is not valid (wrong or revoked); check WINSLOW_TOKEN.")
    return owner


CurrentUser = Annotated[str, Depends(current_user)]
