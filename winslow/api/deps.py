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


def current_user(request: Request, context: ContextDep) -> str:
    """Return the name of the caller's token; raise ``AuthError`` without a valid one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
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
