"""Console sessions: signing in and out, and seeing and ending the sessions that go on.

Signing in with a password (a local user's or, where set up, the LDAP directory's), or
with an API token, starts a session the server keeps (``store/sessions.py``);
the browser gets only the session's random secret, in an HttpOnly, SameSite=Strict
cookie (Secure over https). Signing out ends the session on the server, so a copy of the
cookie is worth nothing afterwards. Everyone sees and may end their own sessions; an
admin token sees and may end everybody's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from winslow.api.context import AppContext
from winslow.api.deps import SESSION_COOKIE, ContextDep, CurrentCaller, session_secret
from winslow.api.models import SessionCreate, SessionPublic, SessionsPublic
from winslow.api.routes import API_V1
from winslow.errors import AuthError
from winslow.store import people
from winslow.store.sessions import (
    ConsoleSession,
    end_session,
    list_sessions,
    revoke_session,
    start_session,
)

router = APIRouter(prefix=API_V1, tags=["sessions"])


def _public(session: ConsoleSession, current: str | None) -> SessionPublic:
    return SessionPublic(
        handle=session.handle,
        user=session.user,
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        expires_at=session.expires_at,
        idle_expires_at=session.idle_expires_at,
        user_agent=session.user_agent,
        address=session.address,
        current=session.handle == current,
    )


def set_session_cookie(
    request: Request, response: Response, secret: str, session: ConsoleSession
) -> None:
    """Give the browser the new session's secret: HttpOnly, SameSite=Strict, Secure over
    https, for as long as the session can last."""
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int((session.expires_at - session.created_at).total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def _forget_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


@router.post(
    "/session",
    response_model=SessionPublic,
    # The token comes in the body, so no security scheme says this one answers 401.
    responses={401: {"description": "The token is wrong or revoked."}},
)
def sign_in(
    body: SessionCreate, request: Request, response: Response, context: ContextDep
) -> SessionPublic:
    """Start a console session with a user name and password, or an API token; the
    cookie carries the session's secret, never the password or token. A session the
    browser had before ends."""
    user_agent = request.headers.get("user-agent", "")
    address = request.client.host if request.client else ""
    if body.token is not None:
        started = start_session(
            context.store, body.token.strip(), user_agent=user_agent, address=address
        )
        if started is None:
            raise AuthError("That token is not valid (wrong or revoked). Ask for a new one.")
    else:
        assert body.username is not None and body.password is not None
        user = check_password(context, body.username.strip(), body.password)
        started = start_session(context.store, user=user, user_agent=user_agent, address=address)
        if started is None:
            raise AuthError("That user is disabled; ask an admin.")
    if previous := session_secret(request):
        end_session(context.store, previous)
    secret, session = started
    set_session_cookie(request, response, secret, session)
    return _public(session, session.handle)


def check_password(context: AppContext, username: str, password: str) -> str:
    """The name of the user whose password this is: a local user's first, then the
    directory's where LDAP is set up (which makes or updates the user and their groups).
    ``AuthError`` otherwise, the same whichever part was wrong."""
    if people.verify_password(context.store, username, password) is not None:
        return username
    if context.settings.ldap_url and password:
        # ldap3 takes a fifth of a second to import: only a server that signs people in
        # through LDAP pays for it, and only once.
        from winslow.identity.ldap import LdapConfig, ldap_authenticate

        config = LdapConfig.from_settings(context.settings)
        identity = ldap_authenticate(config, username, password) if config else None
        if identity is not None:
            return people.sync_external(context.store, identity).name
    raise AuthError("Wrong user name or password.")


@router.delete("/session", status_code=204)
def sign_out(request: Request, context: ContextDep) -> Response:
    """End the console session of this browser on the server, and forget its cookie.
    Signing out without a session (or of one that has ended) is done too."""
    if secret := session_secret(request):
        end_session(context.store, secret)
    response = Response(status_code=204)
    _forget_cookie(request, response)
    return response


@router.get("/sessions", response_model=SessionsPublic)
def sessions(context: ContextDep, caller: CurrentCaller) -> SessionsPublic:
    """The console sessions that go on, newest first: an admin token sees everybody's,
    any other only its own."""
    found = list_sessions(context.store, user=None if caller.admin else caller.name)
    return SessionsPublic(data=[_public(s, caller.session) for s in found])


@router.delete("/sessions/{handle}", status_code=204)
def revoke(handle: str, request: Request, context: ContextDep, caller: CurrentCaller) -> Response:
    """End a console session at once: any with an admin token, else only your own."""
    revoke_session(context.store, handle, user=None if caller.admin else caller.name)
    response = Response(status_code=204)
    if handle == caller.session:
        _forget_cookie(request, response)
    return response
