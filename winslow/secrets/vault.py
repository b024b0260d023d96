"""``Vault``: one logged-in hvac client that keeps its token alive and reads KV v2.

Winslow logs in once at start, with a token (``WINSLOW_VAULT_TOKEN``) or AppRole
(``role_id`` and ``secret_id``, each from a setting or a file, so a mounted secret works),
and checks the token at once: a revoked or expired one stops ``winslow up`` before anything
starts. A token with a TTL is renewed by a daemon thread at two thirds of its TTL; when a
renewal is refused, or the token reaches its max TTL, AppRole logs in again, and a plain
token can only be reported (a person must hand Winslow a new one).

hvac's and requests' exceptions stop here and become ``VaultError`` (``VaultAuthError`` for a
refused token) naming ``WINSLOW_VAULT_ADDR`` and what to do. Secret values and tokens are
never logged nor put in a message: only paths and the names of keys are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests.exceptions

from winslow.errors import WinslowError

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
"""How long one request to Vault may take, seconds."""

RENEW_AT_FRACTION = 2 / 3
"""A token is renewed once this fraction of its TTL has passed."""

MIN_RENEW_SECONDS = 1.0
"""Shortest wait between two renewals, seconds; keeps a tiny TTL from spinning."""

RETRY_SECONDS = 10.0
"""Wait before trying again after a renewal or login that did not reach Vault, seconds."""


class VaultError(WinslowError):
    """Vault could not be reached, or refused or lacks what Winslow asked for."""


class VaultAuthError(VaultError):
    """Vault refused Winslow's token or login: revoked, expired, or a wrong secret_id."""


@dataclass(frozen=True)
class VaultConfig:
    """Where Vault is, how Winslow logs in, and where its secrets are.

    Tokens and the AppRole secret_id are left out of ``repr`` so a logged config never
    shows them.
    """

    address: str
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    """A file holding the token, read at each login: Nomad's ``secrets/vault_token``."""
    role_id: str | None = None
    role_id_file: Path | None = None
    secret_id: str | None = field(default=None, repr=False)
    secret_id_file: Path | None = None
    approle_mount: str = "approle"
    mount: str = "secret"
    """Mount point of the KV v2 secrets engine."""
    path: str = "winslow"
    """Folder of Winslow's secrets under ``mount``."""
    namespace: str | None = None
    ca_file: Path | None = None

    @property
    def uses_approle(self) -> bool:
        return not self.token and self.token_file is None

    def secret_path(self, name: str) -> str:
        """Where the secret ``name`` is, as a person writes it: ``secret/winslow/s3``."""
        return f"{self.mount.strip('/')}/{self.relative_path(name)}"

    def relative_path(self, name: str) -> str:
        """The secret's path inside the mount: ``winslow/s3``."""
        return f"{self.path.strip('/')}/{name}".lstrip("/")


def renew_delay(ttl_seconds: float) -> float:
    """Seconds to wait before renewing a token that has ``ttl_seconds`` left."""
    return max(ttl_seconds * RENEW_AT_FRACTION, MIN_RENEW_SECONDS)


class Vault:
    """A logged-in Vault client for Winslow's own secrets.

    Usage::

        vault = Vault(VaultConfig("https://vault.lab:8200", token=...))
        vault.login()                       # VaultAuthError for a revoked token
        keys = vault.read("s3")             # {"access_key": ..., "secret_key": ...} or None
        vault.start_renewal()
        ...
        vault.close()
    """

    def __init__(self, config: VaultConfig) -> None:
        self.config = config
        verify: bool | str = str(config.ca_file) if config.ca_file else True
        self._client = hvac.Client(
            url=config.address,
            namespace=config.namespace,
            verify=verify,
            timeout=TIMEOUT_SECONDS,
        )
        # The renewal thread and the rotation watcher share one requests session.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.ttl_seconds = 0.0
        """TTL the token had at its last login or renewal; 0: it never expires."""
        self.renewable = False

    # Login ------------------------------------------------------------------------------

    def login(self) -> None:
        """Log in (AppRole) or take the token, and check it with ``lookup-self``.

        Raises ``VaultAuthError`` when Vault refuses the token or the login, ``VaultError``
        when it cannot be reached or the settings are incomplete.
        """
        with self._lock:
            if self.config.uses_approle:
                self._approle_login()
            else:
                self._client.token = _setting_or_file(
                    self.config.token, self.config.token_file, "TOKEN"
                )
            info = self._call(
                lambda: self._client.auth.token.lookup_self(), "the token (lookup-self)"
            )
        data = info.get("data") or {}
        self.ttl_seconds = float(data.get("ttl") or 0)
        self.renewable = bool(data.get("renewable"))
        log.info(
            "vault: logged in at %s with %s (TTL %s)",
            self.config.address,
            "AppRole" if self.config.uses_approle else "a token",
            f"{self.ttl_seconds:.0f} s" if self.ttl_seconds else "none",
        )

    def _approle_login(self) -> None:
        role_id = _setting_or_file(self.config.role_id, self.config.role_id_file, "ROLE_ID")
        secret_id = _setting_or_file(self.config.secret_id, self.config.secret_id_file, "SECRET_ID")
        if role_id is None:
            raise VaultError(
                "WINSLOW_VAULT_ADDR is set but neither WINSLOW_VAULT_TOKEN (or _FILE) nor "
                "WINSLOW_VAULT_ROLE_ID (or _FILE) is; set a token or an AppRole role_id and "
                "secret_id."
            )
        mount = self.config.approle_mount
        self._call(
            lambda: self._client.auth.approle.login(
                role_id=role_id, secret_id=secret_id, mount_point=mount
            ),
            f"the AppRole login (auth/{mount}/login)",
            login=True,
        )

    # Reading ----------------------------------------------------------------------------

    def read(self, name: str) -> dict[str, str] | None:
        """The newest version of the KV v2 secret ``<path>/<name>``; None where there is
        none (or its newest version is deleted). Values are made text.

        Raises ``VaultAuthError`` when the token may not read it, ``VaultError`` otherwise.
        """
        where = self.config.secret_path(name)
        try:
            with self._lock:
                answer = self._call(
                    lambda: self._client.secrets.kv.v2.read_secret_version(
                        path=self.config.relative_path(name),
                        mount_point=self.config.mount.strip("/"),
                        raise_on_deleted_version=True,
                    ),
                    f"the secret {where}",
                    missing_ok=True,
                )
        except _Missing:
            return None
        data = (answer.get("data") or {}).get("data")
        if not isinstance(data, dict):
            raise VaultError(
                f"Vault's answer for {where} holds no KV v2 data; is "
                f"'{self.config.mount}' a KV version 2 mount (WINSLOW_VAULT_MOUNT)?"
            )
        return {str(key): "" if value is None else str(value) for key, value in data.items()}

    # Renewal ----------------------------------------------------------------------------

    def start_renewal(self) -> None:
        """Renew the token in a daemon thread until ``close``; nothing to do for a token
        that never expires."""
        if self._renewer is not None or not self.ttl_seconds:
            return
        self._renewer = threading.Thread(target=self._renew_loop, name="vault-renew", daemon=True)
        self._renewer.start()

    def renew_once(self) -> None:
        """Renew the token; with AppRole, log in again where that is refused or the token
        stopped growing (its max TTL). Raises ``VaultError`` when neither works."""
        if not self.renewable:
            self._relogin("the token is not renewable")
            return
        before = self.ttl_seconds
        try:
            with self._lock:
                answer = self._call(
                    lambda: self._client.auth.token.renew_self(), "the token's renewal"
                )
        except VaultAuthError:
            self._relogin("Vault refused to renew the token")
            return
        auth = answer.get("auth") or {}
        self.ttl_seconds = float(auth.get("lease_duration") or 0)
        self.renewable = bool(auth.get("renewable", self.renewable))
        log.debug("vault: token renewed for %.0f s", self.ttl_seconds)
        if self.ttl_seconds < before * RENEW_AT_FRACTION:
            self._relogin("the token nears its max TTL")

    def _relogin(self, why: str) -> None:
        if self.config.token_file is not None and not self.config.token:
            # Whoever writes the file (Nomad's vault block) may have written a new token.
            log.info("vault: %s; reading %s again", why, self.config.token_file)
            self.login()
            return
        if not self.config.uses_approle:
            raise VaultAuthError(
                f"{why} and WINSLOW_VAULT_TOKEN cannot be renewed by logging in again; give "
                "Winslow a new token, or log in with AppRole (WINSLOW_VAULT_ROLE_ID), and "
                "restart it."
            )
        log.info("vault: %s; logging in again with AppRole", why)
        self.login()

    def _renew_loop(self) -> None:
        delay = renew_delay(self.ttl_seconds) if self.ttl_seconds else RETRY_SECONDS
        while not self._stop.wait(delay):
            try:
                self.renew_once()
            except VaultError as exc:
                log.error("vault: %s", exc.message)
                delay = min(RETRY_SECONDS, renew_delay(self.ttl_seconds or RETRY_SECONDS))
                continue
            delay = renew_delay(self.ttl_seconds) if self.ttl_seconds else RETRY_SECONDS

    def close(self) -> None:
        """Stop renewing; the token is left to expire, not revoked (a restart may use it)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=TIMEOUT_SECONDS + 1)
            self._renewer = None
        self._client.adapter.close()

    # Errors -----------------------------------------------------------------------------

    def _call(
        self,
        request: Callable[[], Any],
        what: str,
        *,
        login: bool = False,
        missing_ok: bool = False,
    ) -> Any:
        """Send one request; hvac's and requests' failures become our errors. A ``login``
        Vault answers 400 was refused too (AppRole says "invalid role or secret ID"); a
        404 raises ``_Missing`` where ``missing_ok``, else names the path."""
        address = self.config.address
        refused: tuple[type[Exception], ...] = (
            hvac.exceptions.Forbidden,
            hvac.exceptions.Unauthorized,
        )
        if login:
            refused += (hvac.exceptions.InvalidRequest,)
        try:
            answer = request()
        except hvac.exceptions.InvalidPath as exc:
            if missing_ok:
                raise _Missing() from exc
            raise VaultError(
                f"Vault at {address} has nothing at the path of {what}; check that the auth "
                "method is enabled there (WINSLOW_VAULT_APPROLE_MOUNT)."
            ) from exc
        except refused as exc:
            assert isinstance(exc, hvac.exceptions.VaultError)
            raise VaultAuthError(
                f"Vault at {address} refused {what}: {_reason(exc)}. {_refusal_hint(self.config)}"
            ) from exc
        except (hvac.exceptions.VaultDown, hvac.exceptions.VaultNotInitialized) as exc:
            raise VaultError(
                f"Vault at {address} is sealed or not initialised ({what}); unseal it, "
                "then start again."
            ) from exc
        except hvac.exceptions.VaultError as exc:
            raise VaultError(f"Vault at {address} failed {what}: {_reason(exc)}.") from exc
        except requests.exceptions.SSLError as exc:
            raise VaultError(
                f"Vault at {address} has a certificate Winslow does not trust ({what}); set "
                "WINSLOW_VAULT_CACERT to the CA bundle that signed it."
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise VaultError(
                f"Cannot reach Vault at {address} (WINSLOW_VAULT_ADDR) for {what}: "
                f"{type(exc).__name__}. Check that Vault runs there, then start again."
            ) from exc
        return answer if isinstance(answer, dict) else {}


class _Missing(Exception):
    """Vault answered 404: no such secret (or path)."""


def _reason(exc: hvac.exceptions.VaultError) -> str:
    """Vault's own words, without the URL hvac appends (it is ours anyway)."""
    errors = exc.errors if isinstance(exc.errors, list) else []
    text = "; ".join(str(error) for error in errors) or str(exc.args[0] if exc.args else "")
    return text.strip()[:300] or type(exc).__name__


def _refusal_hint(config: VaultConfig) -> str:
    if config.uses_approle:
        return (
            "The secret_id may be wrong, used up or expired, AppRole not enabled at "
            "WINSLOW_VAULT_APPROLE_MOUNT, or the role's policy may not allow this path; check "
            "WINSLOW_VAULT_ROLE_ID and WINSLOW_VAULT_SECRET_ID (or their _FILE) and the "
            "policy, then start again."
        )
    return (
        "The token may be revoked or expired, or its policy may not allow this path; check "
        "WINSLOW_VAULT_TOKEN (or WINSLOW_VAULT_TOKEN_FILE) and the policy, then start again."
    )


def _setting_or_file(value: str | None, path: Path | None, name: str) -> str | None:
    """A setting's value, else the stripped text of its ``_FILE`` companion."""
    if value:
        return value
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise VaultError(
            f"Cannot read WINSLOW_VAULT_{name}_FILE {path}: {exc.strerror}; fix the path or "
            "its permissions."
        ) from exc
