"""Personal API tokens: each user makes, lists and revokes their own.

A token is shown once, when it is made; only its hash is kept. Its scope caps what it
may do (read, steer, admin: the last for admins only), ``projects`` limits it to some
projects, ``expires_in_days`` ends it. Admins see and revoke everybody's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from winslow.api.access import AdminCaller, check_project
from winslow.api.deps import ContextDep, CurrentCaller
from winslow.api.models import Body
from winslow.api.routes import API_V1
from winslow.core.access import Action, Scope
from winslow.errors import ForbiddenError
from winslow.store import tokens
from winslow.store.rows import now

router = APIRouter(prefix=API_V1, tags=["tokens"])

_WIDTH = {Scope.READ: 0, Scope.STEER: 1, Scope.ADMIN: 2}


class TokenPublic(BaseModel):
    name: str
    user: str
    scope: Scope
    projects: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, token: tokens.Token) -> TokenPublic:
        return cls(
            name=token.name,
            user=token.user,
            scope=token.scope,
            projects=list(token.projects) if token.projects is not None else None,
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            revoked=token.revoked,
        )


class TokenCreated(TokenPublic):
    token: str
    """The token itself, shown this once."""


class TokensPublic(BaseModel):
    data: list[TokenPublic]
    count: int


class TokenCreate(Body):
    name: str
    scope: Scope = Scope.STEER
    projects: list[str] | None = Field(
        default=None, description="Names or ids of the only projects the token acts on."
    )
    expires_in_days: int | None = Field(default=90, ge=1, le=3650)
    """Unset (null): the token does not end by itself."""


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenCreate, caller: CurrentCaller, context: ContextDep) -> TokenCreated:
    """Make a token of yours; it cannot do more than the credentials making it."""
    if _WIDTH[body.scope] > _WIDTH[caller.scope]:
        raise ForbiddenError("A token cannot make a token of a wider scope than its own.")
    projects = None
    if body.projects is not None:
        projects = [
            check_project(context, caller, ref, Action.READ).project.id for ref in body.projects
        ]
    elif caller.projects is not None:
        projects = sorted(caller.projects)
    expires = now() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    secret, token = tokens.create_token(
        context.store,
        caller.name,
        body.name,
        scope=body.scope,
        projects=projects,
        expires_at=expires,
    )
    return TokenCreated(**TokenPublic.of(token).model_dump(), token=secret)


@router.get("/tokens", response_model=TokensPublic)
def list_tokens(
    caller: CurrentCaller,
    context: ContextDep,
    everyone: bool = Query(default=False, description="Every user's (admins only)."),
) -> TokensPublic:
    """Your tokens (never the tokens themselves), revoked ones included."""
    if everyone and not caller.principal.acts_as_admin:
        raise ForbiddenError("Only admins see everybody's tokens.")
    found = tokens.list_tokens(context.store, None if everyone else caller.name)
    return TokensPublic(data=[TokenPublic.of(t) for t in found], count=len(found))


@router.delete("/tokens/{name}", status_code=204)
def revoke_token(name: str, caller: CurrentCaller, context: ContextDep) -> Response:
    """Revoke a token of yours at once; console sessions signed in with it end."""
    tokens.revoke_token(context.store, caller.name, name)
    return Response(status_code=204)


@router.delete("/users/{user}/tokens/{name}", status_code=204)
def revoke_users_token(user: str, name: str, _admin: AdminCaller, context: ContextDep) -> Response:
    """Revoke anybody's token (admins)."""
    tokens.revoke_token(context.store, user, name)
    return Response(status_code=204)
