"""Signing in to the console through the lab's OpenID provider (``identity/oidc.py``).

``GET /oidc/start`` sends the browser to the provider; what the way back needs (the
state, the nonce, the PKCE verifier, where to go afterwards) waits in a short-lived
HttpOnly cookie that only these routes see. It is SameSite=Lax, not Strict: the way back
is a top-level navigation from the provider's site, on which a Strict cookie is not sent.

``GET /oidc/callback`` checks the state against that cookie, trades the code, makes or
updates the user and their groups (``people.sync_external``) and starts a console
session. It answers with a small page that moves on to ``next`` rather than with a
redirect: the session cookie is SameSite=Strict, and a browser does not send it on a
redirect that continues a chain that began on another site, while a navigation the page
itself starts is same-site and carries it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import json
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from winslow import defaults
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, session_secret
from winslow.api.redirects import HOME, same_origin_path
from winslow.api.routes import API_V1
from winslow.api.routes.sessions import set_session_cookie
from winslow.errors import AuthError, NotFoundError, ValidationError
from winslow.identity.oidc import OidcAttempt, OidcConfig, OidcProvider, provider_name
from winslow.store import people
from winslow.store.sessions import end_session, start_session

log = logging.getLogger(__name__)

router = APIRouter(prefix=API_V1, tags=["sessions"])

ATTEMPT_COOKIE = "winslow_oidc"
"""The cookie that remembers a sign-in under way between leaving for the provider and
coming back; never a credential (the code is worthless without the provider)."""


class OidcPublic(BaseModel):
    """Whether the console offers signing in through an OpenID provider, and its name."""

    configured: bool
    provider: str | None = None
    """The provider's host, as the sign-in button names it."""


@router.get("/oidc", response_model=OidcPublic)
def oidc(context: ContextDep) -> OidcPublic:
    """Whether signing in through an OpenID provider is set up (``WINSLOW_OIDC_ISSUER``)."""
    issuer = context.settings.oidc_issuer
    return OidcPublic(configured=bool(issuer), provider=provider_name(issuer) if issuer else None)


@router.get(
    "/oidc/start",
    status_code=303,
    response_class=Response,
    responses={
        303: {"description": "To the provider's sign-in page."},
        404: {"description": "No OpenID provider is set up."},
        503: {"description": "The provider cannot be reached or is misconfigured."},
    },
)
def start(request: Request, context: ContextDep, next: str = HOME) -> Response:
    """Send the browser to the OpenID provider to sign in; it comes back to
    ``/oidc/callback``, then the console goes to ``next`` (a path of this server)."""
    target = same_origin_path(next)
    if target == HOME and next.strip() not in ("", HOME):
        raise ValidationError(
            f"next={next!r} does not lead to a page of this server; give a path such as /projects.",
            field="next",
        )
    provider = _provider(request, context)
    redirect_uri = provider.config.redirect_url or str(request.url_for("oidc_callback"))
    url, attempt = provider.begin(redirect_uri, target)
    response = Response(status_code=303, headers={"Location": url})
    response.set_cookie(
        ATTEMPT_COOKIE,
        _encode(attempt),
        max_age=defaults.OIDC_ATTEMPT_SECONDS,
        path=_cookie_path(request),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get(
    "/oidc/callback",
    name="oidc_callback",
    response_class=HTMLResponse,
    responses={
        401: {"description": "The provider refused, or its ID token failed a check."},
        404: {"description": "No OpenID provider is set up."},
        409: {"description": "A user of another source (local, LDAP) has that name."},
        503: {"description": "The provider cannot be reached or is misconfigured."},
    },
)
def callback(
    request: Request,
    context: ContextDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> HTMLResponse:
    """Where the provider sends the browser back: check, sign in, move on to ``next``."""
    provider = _provider(request, context)
    attempt = _decode(request.cookies.get(ATTEMPT_COOKIE))
    name = provider.config.display_name
    if attempt is None:
        raise ValidationError(
            f"This browser has no sign-in through {name} under way (it was used already, or "
            f"took over {defaults.OIDC_ATTEMPT_SECONDS // 60} minutes); start again from "
            "the sign-in page.",
            field="state",
        )
    if not state or not hmac.compare_digest(state, attempt.state):
        raise ValidationError(
            f"The way back from {name} does not match the sign-in this browser started "
            "(its state differs); start again from the sign-in page.",
            field="state",
        )
    if error is not None:
        raise AuthError(f"{name} did not sign you in: {error_description or error}.")
    if not code:
        raise ValidationError(f"{name} sent the browser back without a code.", field="code")
    identity = provider.finish(attempt, code)
    user = people.sync_external(context.store, identity)
    started = start_session(
        context.store,
        user=user.name,
        user_agent=request.headers.get("user-agent", ""),
        address=request.client.host if request.client else "",
    )
    if started is None:
        raise AuthError(f"The user {user.name!r} is disabled in Winslow; ask an admin.")
    if previous := session_secret(request):
        end_session(context.store, previous)
    log.info("oidc: %s signed in through %s", user.name, provider.config.issuer)
    response = _moving_on(same_origin_path(attempt.next), user.name)
    secret, session = started
    set_session_cookie(request, response, secret, session)
    response.delete_cookie(ATTEMPT_COOKIE, path=_cookie_path(request))
    return response


def _provider(request: Request, context: AppContext) -> OidcProvider:
    """The provider the settings name, one client per app (it keeps what it discovered)."""
    config = OidcConfig.from_settings(context.settings)
    if config is None:
        raise NotFoundError(
            "Signing in through an OpenID provider is not set up here: an admin sets "
            "WINSLOW_OIDC_ISSUER and WINSLOW_OIDC_CLIENT_ID."
        )
    provider: OidcProvider | None = getattr(request.app.state, "oidc_provider", None)
    if provider is None or provider.config != config:
        if provider is not None:
            provider.close()
        provider = OidcProvider(config)
        request.app.state.oidc_provider = provider
    return provider


def _cookie_path(request: Request) -> str:
    """Only the OIDC routes see the attempt cookie (below a proxy's ``root_path`` too)."""
    return f"{request.scope.get('root_path', '')}/api/v1/oidc/"


def _encode(attempt: OidcAttempt) -> str:
    return base64.urlsafe_b64encode(json.dumps(attempt.as_dict()).encode()).decode("ascii")


def _decode(value: str | None) -> OidcAttempt | None:
    if not value:
        return None
    try:
        return OidcAttempt.from_dict(json.loads(base64.urlsafe_b64decode(value.encode())))
    except (binascii.Error, ValueError):
        return None


def _moving_on(target: str, user: str) -> HTMLResponse:
    """A page that goes on to ``target`` by itself (a link, for a browser that does not)."""
    where = html.escape(target, quote=True)
    return HTMLResponse(
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={where}">'
        "<title>Signed in · Winslow</title></head>"
        f'<body><main><p>Signed in as {html.escape(user)}. <a href="{where}">Continue to '
        "Winslow</a>.</p></main></body></html>\n"
    )
