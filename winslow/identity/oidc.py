"""Signing in through an OpenID Connect provider: the authorization code flow with PKCE.

``OidcProvider.begin`` makes the address the browser is sent to, with a random ``state``
(ties the way back to this browser), a random ``nonce`` (ties the ID token to this
attempt) and a PKCE challenge (S256; only whoever holds the verifier can trade the code),
and returns the ``OidcAttempt`` the browser keeps meanwhile. ``OidcProvider.finish``
trades the code at the token endpoint and believes the ID token only after checking its
signature against the provider's published keys, its issuer, audience, expiry and nonce.

What the provider publishes (``/.well-known/openid-configuration``) is read once and
kept for ``OIDC_DISCOVERY_SECONDS``; its keys are read again when a token names a key
not seen yet, so a provider that rotates keys needs no restart. The provider being down
or answering nonsense is ``IdentityUnavailable`` (503); a token that fails a check is
``AuthError`` (401).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote, urlencode, urlsplit

import httpx

from winslow import defaults
from winslow.errors import AuthError
from winslow.identity.base import ExternalIdentity, IdentityUnavailable

if TYPE_CHECKING:
    import jwt

    from winslow.settings import Settings

log = logging.getLogger(__name__)

SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
"""ID token signatures we check against the provider's public keys; never ``none`` nor a
shared-secret HMAC."""

CLOCK_SKEW_SECONDS = 60
"""How far the provider's clock may be off ours when ``exp`` and ``iat`` are checked."""

BODY_CHARS = 300
"""Characters of a provider's error body quoted in a message or log."""


class ProviderMetadata(TypedDict, total=False):
    """The provider's discovery document, the fields we use (OpenID Connect Discovery 1.0)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str
    id_token_signing_alg_values_supported: list[str]


@dataclass(frozen=True)
class OidcConfig:
    """How Winslow signs people in through one OpenID provider (``WINSLOW_OIDC_*``)."""

    issuer: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    """Sent with HTTP Basic (``client_secret_basic``); ``None``: a public client."""
    scopes: str = "openid profile email"
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    redirect_url: str | None = None
    cacert: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The configuration the settings give, or ``None`` where no provider is set;
        raises ``IdentityUnavailable`` for an issuer without a client ID."""
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_client_id:
            raise IdentityUnavailable(
                "WINSLOW_OIDC_ISSUER is set but WINSLOW_OIDC_CLIENT_ID is not: set the client "
                "ID the provider gave Winslow, or unset the issuer."
            )
        scopes = settings.oidc_scopes.split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        return cls(
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret or None,
            scopes=" ".join(scopes),
            username_claim=settings.oidc_username_claim,
            groups_claim=settings.oidc_groups_claim,
            redirect_url=settings.oidc_redirect_url,
            cacert=settings.oidc_cacert,
        )

    @property
    def display_name(self) -> str:
        """What the sign-in button names the provider by: the issuer's host."""
        return provider_name(self.issuer)


def provider_name(issuer: str) -> str:
    """The host of ``issuer`` (``https://login.lab.org/realms/x`` → ``login.lab.org``)."""
    return urlsplit(issuer).hostname or issuer


@dataclass(frozen=True)
class OidcAttempt:
    """One sign-in under way: what the browser keeps between leaving and coming back."""

    state: str
    nonce: str
    verifier: str
    """The PKCE code verifier; the provider saw only its SHA-256."""
    redirect_uri: str
    next: str
    """Where the console goes after signing in (a path of this server)."""

    def as_dict(self) -> dict[str, str]:
        return {
            "state": self.state,
            "nonce": self.nonce,
            "verifier": self.verifier,
            "redirect_uri": self.redirect_uri,
            "next": self.next,
        }

    @classmethod
    def from_dict(cls, data: Any) -> OidcAttempt | None:
        """The attempt ``data`` describes, or ``None`` if it is not one."""
        names = ("state", "nonce", "verifier", "redirect_uri", "next")
        if not isinstance(data, dict) or not all(isinstance(data.get(n), str) for n in names):
            return None
        return cls(**{name: data[name] for name in names})


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of ``verifier`` (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcProvider:
    """One OpenID provider, as Winslow's client of it; safe to share between threads.

    ``transport`` replaces the network in tests of failure modes.
    """

    def __init__(self, config: OidcConfig, *, transport: httpx.BaseTransport | None = None):
        self.config = config
        verify: ssl.SSLContext | bool = True
        if config.cacert is not None:
            verify = ssl.create_default_context(cafile=str(config.cacert))
        self._http = httpx.Client(
            timeout=httpx.Timeout(10.0), verify=verify, transport=transport, follow_redirects=True
        )
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = 0.0
        self._keys: dict[str, jwt.PyJWK] = {}

    def close(self) -> None:
        self._http.close()

    def begin(self, redirect_uri: str, next_path: str) -> tuple[str, OidcAttempt]:
        """Return the provider's authorization address to send the browser to, and the
        attempt the browser keeps until it comes back to ``redirect_uri``."""
        metadata = self.metadata()
        attempt = OidcAttempt(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),
            redirect_uri=redirect_uri,
            next=next_path,
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.config.scopes,
                "state": attempt.state,
                "nonce": attempt.nonce,
                "code_challenge": pkce_challenge(attempt.verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = metadata["authorization_endpoint"]
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", attempt

    def finish(self, attempt: OidcAttempt, code: str) -> ExternalIdentity:
        """Trade ``code`` for tokens and return who the verified ID token names.

        Raises ``AuthError`` when the provider refuses the code or the ID token fails a
        check, ``IdentityUnavailable`` when the provider cannot be reached or is misread.
        """
        tokens = self._redeem(attempt, code)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise IdentityUnavailable(
                f"The OpenID provider {self.config.issuer} answered without an ID token; "
                "check that the client may use the 'openid' scope."
            )
        claims = self.verify_id_token(id_token, attempt.nonce)
        access_token = tokens.get("access_token")
        if self._needs_userinfo(claims) and isinstance(access_token, str):
            claims = {**self._userinfo(access_token, claims), **claims}
        return self._identity(claims)

    # -- the provider's documents ----------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        """The provider's discovery document (kept for ``OIDC_DISCOVERY_SECONDS``)."""
        with self._lock:
            fresh = time.monotonic() - self._metadata_at < defaults.OIDC_DISCOVERY_SECONDS
            if self._metadata is not None and fresh:
                return self._metadata
        url = f"{self.config.issuer}/.well-known/openid-configuration"
        found = self._get_json(url, "discovery document")
        missing = [
            name
            for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
            if not isinstance(found.get(name), str)
        ]
        if missing:
            raise IdentityUnavailable(
                f"The discovery document of {self.config.issuer} lacks {', '.join(missing)}; "
                "is WINSLOW_OIDC_ISSUER the provider's issuer URL?"
            )
        if found["issuer"].rstrip("/") != self.config.issuer:
            raise IdentityUnavailable(
                f"The OpenID provider at {self.config.issuer} calls itself {found['issuer']!r}; "
                "set WINSLOW_OIDC_ISSUER to exactly that."
            )
        metadata: ProviderMetadata = found  # type: ignore[assignment]
        with self._lock:
            self._metadata, self._metadata_at = metadata, time.monotonic()
        return metadata

    def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        """The provider's public key ``kid`` (the only one, if the token names none);
        the key set is read again once when the key is not known yet."""
        with self._lock:
            keys = dict(self._keys)
        fetched = not keys
        if fetched:
            keys = self._read_keys()
        key = _pick(keys, kid)
        if key is None and not fetched:
            key = _pick(self._read_keys(), kid)
        if key is not None:
            return key
        raise AuthError(
            f"The ID token is signed with a key ({kid or 'unnamed'}) that "
            f"{self.config.issuer} does not publish; sign in again."
        )

    def _read_keys(self) -> dict[str, jwt.PyJWK]:
        import jwt  # with the cryptography it loads, 9 MB a server without OIDC never needs

        found = self._get_json(self.metadata()["jwks_uri"], "signing keys")
        keys: dict[str, jwt.PyJWK] = {}
        for index, entry in enumerate(found.get("keys") or []):
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK.from_dict(entry)
            except jwt.PyJWTError as exc:
                log.warning("oidc %s: key %s skipped: %s", self.config.issuer, index, exc)
                continue
            keys[str(entry.get("kid", index))] = key
        with self._lock:
            self._keys = keys
        return keys

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code != 200:
            raise IdentityUnavailable(
                f"The OpenID provider {self.config.issuer} answered {response.status_code} "
                f"for its {what} ({url}): {response.text[:BODY_CHARS]}"
            )
        return self._json_object(response, what)

    def _json_object(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise IdentityUnavailable(
                f"The OpenID provider {self.config.issuer} sent no JSON object as its {what}: "
                f"{response.text[:BODY_CHARS]}"
            )
        return body

    def _unreachable(self, exc: httpx.HTTPError) -> IdentityUnavailable:
        return IdentityUnavailable(
            f"The OpenID provider {self.config.issuer} cannot be reached "
            f"({type(exc).__name__}: {exc}); try again later, or sign in another way."
        )

    # -- the code and the tokens -----------------------------------------------------

    def _redeem(self, attempt: OidcAttempt, code: str) -> dict[str, Any]:
        """POST the code to the token endpoint (RFC 6749 section 4.1.3, RFC 7636)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": attempt.redirect_uri,
            "code_verifier": attempt.verifier,
        }
        headers = {"Accept": "application/json"}
        if self.config.client_secret is None:
            form["client_id"] = self.config.client_id
        else:
            # RFC 6749 section 2.3.1: both are form-encoded before they go into Basic.
            pair = ":".join(
                quote(part, safe="") for part in (self.config.client_id, self.config.client_secret)
            )
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        endpoint = self.metadata()["token_endpoint"]
        try:
            response = self._http.post(endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code == 200:
            return self._json_object(response, "token answer")
        error, description = _oauth_error(response)
        if response.status_code == 400 and error == "invalid_grant":
            raise AuthError(
                f"{self.config.display_name} refused the sign-in code ({description or error}); "
                "it may have been used already or taken too long. Sign in again."
            )
        log.warning(
            "oidc %s: token endpoint answered %s: %s",
            self.config.issuer,
            response.status_code,
            response.text[:BODY_CHARS],
        )
        said = " ".join(part for part in (str(response.status_code), error, description) if part)
        raise IdentityUnavailable(
            f"The OpenID provider {self.config.issuer} refused Winslow's token request "
            f"({said}); an admin should check WINSLOW_OIDC_CLIENT_ID and "
            "WINSLOW_OIDC_CLIENT_SECRET."
        )

    def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of ``id_token`` once its signature, issuer, audience, expiry and
        ``nonce`` check out; ``AuthError`` otherwise (OpenID Connect Core 3.1.3.7)."""
        import jwt  # see _read_keys

        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"The provider's ID token cannot be read ({exc}).") from exc
        algorithm = header.get("alg")
        allowed = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        if algorithm not in SIGNING_ALGORITHMS or algorithm not in allowed:
            raise AuthError(f"The ID token is signed with {algorithm!r}, which Winslow refuses.")
        kid = header.get("kid")
        key = self._signing_key(kid if isinstance(kid, str) else None)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key.key,
                algorithms=[algorithm],
                audience=self.config.client_id,
                issuer=self.metadata()["issuer"],
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(
                f"The ID token from {self.config.display_name} is not valid ({exc}); sign in again."
            ) from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise AuthError("The ID token was issued to another client (azp); sign in again.")
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise AuthError(
                "The ID token does not belong to this sign-in (its nonce differs); sign in again."
            )
        return claims

    def _needs_userinfo(self, claims: dict[str, Any]) -> bool:
        wanted = (self.config.username_claim, self.config.groups_claim)
        return any(name not in claims for name in wanted)

    def _userinfo(self, access_token: str, claims: dict[str, Any]) -> dict[str, Any]:
        """Claims the ID token left out, from the userinfo endpoint (Core 5.3); ``{}``
        where the provider has none. Its ``sub`` must be the ID token's."""
        endpoint = self.metadata().get("userinfo_endpoint")
        if not endpoint:
            return {}
        try:
            response = self._http.get(endpoint, headers={"Authorization": f"Bearer {access_token}"})
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code != 200:
            log.warning("oidc %s: userinfo answered %s", self.config.issuer, response.status_code)
            return {}
        info = self._json_object(response, "userinfo")
        if info.get("sub") != claims.get("sub"):
            raise AuthError("The provider's userinfo names another person than the ID token.")
        return info

    def _identity(self, claims: dict[str, Any]) -> ExternalIdentity:
        name = claims.get(self.config.username_claim)
        if not isinstance(name, str) or not name.strip():
            raise IdentityUnavailable(
                f"The ID token from {self.config.issuer} has no {self.config.username_claim!r} "
                "claim; set WINSLOW_OIDC_USERNAME_CLAIM to one it sends (such as 'email')."
            )
        return ExternalIdentity(
            name=name.strip(),
            source="oidc",
            display_name=str(claims.get("name") or ""),
            email=str(claims.get("email") or ""),
            groups=_groups(claims.get(self.config.groups_claim)),
        )


def _pick(keys: dict[str, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    """Key ``kid`` of ``keys``; without a ``kid``, the only key there is."""
    if kid is None:
        return next(iter(keys.values())) if len(keys) == 1 else None
    return keys.get(kid)


def _groups(value: Any) -> tuple[str, ...]:
    """Group names from a groups claim: a list, or one string; Keycloak's full paths
    (``/vision``) lose their leading slash."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    names = (item.strip().lstrip("/") for item in items if isinstance(item, str))
    return tuple(dict.fromkeys(name for name in names if name))


def _oauth_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """``error`` and ``error_description`` of an OAuth error answer (RFC 6749 5.2)."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error, description = body.get("error"), body.get("error_description")
    return (
        error if isinstance(error, str) else None,
        description[:BODY_CHARS] if isinstance(description, str) else None,
    )
