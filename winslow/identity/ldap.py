"""Signing in against an LDAP directory: search, bind as the person, read their groups.

The usual three steps of an LDAP sign-in, with ``ldap3``: the service account (or an
anonymous bind) finds the person's entry with ``ldap_user_filter``; a simple bind as that
entry's DN with the typed password proves the password; the service account then reads
the names (``cn``) of the groups ``ldap_group_filter`` finds under ``ldap_group_base``.

Wrong name or password is an answer, ``None``; a directory that cannot be reached, refuses
the service account or has no such search base is ``IdentityUnavailable`` (the API's
503): the person can do nothing about that, an admin can. Every value typed by the person
is escaped before it goes into a filter, and an empty password is refused here, since a
simple bind without a password is an anonymous bind that succeeds (RFC 4513, 5.1.2).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ldap3
from ldap3.core.exceptions import (
    LDAPCommunicationError,
    LDAPException,
    LDAPResponseTimeoutError,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_filter_chars

from winslow.identity.base import ExternalIdentity, IdentityUnavailable

if TYPE_CHECKING:
    from winslow.settings import Settings

log = logging.getLogger(__name__)

LDAP_TIMEOUT_SECONDS = 5
"""Connect and answer timeout of each LDAP request, whole seconds (ldap3 sets the
socket's SO_RCVTIMEO from it): a sign-in waits no longer for each step."""

USER_ATTRIBUTES = ("uid", "cn", "displayName", "mail")

SUCCESS = 0
SIZE_LIMIT_EXCEEDED = 4
NO_SUCH_OBJECT = 32

UNREACHABLE = (LDAPCommunicationError, LDAPStartTLSError, LDAPResponseTimeoutError)
"""What ldap3 raises when the network or TLS fails, rather than our request."""


@dataclass(frozen=True)
class LdapConfig:
    """Where the directory is and how people and their groups are found in it."""

    url: str
    bind_dn: str | None = None
    """The service account that searches; None: an anonymous search."""
    bind_password: str | None = field(default=None, repr=False)
    user_base: str = ""
    user_filter: str = "(uid={username})"
    group_base: str = ""
    """Empty: group membership is not read."""
    group_filter: str = "(|(member={dn})(uniqueMember={dn})(memberUid={username}))"
    start_tls: bool = False
    cacert: Path | None = None
    timeout: int = LDAP_TIMEOUT_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> LdapConfig | None:
        """The ``ldap_*`` settings, or None when ``ldap_url`` is unset (no LDAP sign-in)."""
        if not settings.ldap_url:
            return None
        return cls(
            url=settings.ldap_url,
            bind_dn=settings.ldap_bind_dn or None,
            bind_password=settings.ldap_bind_password,
            user_base=settings.ldap_user_base,
            user_filter=settings.ldap_user_filter,
            group_base=settings.ldap_group_base,
            group_filter=settings.ldap_group_filter,
            start_tls=settings.ldap_start_tls,
            cacert=settings.ldap_cacert,
        )


def ldap_authenticate(config: LdapConfig, username: str, password: str) -> ExternalIdentity | None:
    """Check ``username`` and ``password`` against the directory.

    Returns the person with their display name, email and group names, or None for an
    unknown name, a wrong or empty password, or a name that matches several entries.
    Raises ``IdentityUnavailable`` when the directory cannot be reached, TLS fails, the
    service account is refused or a search base does not exist.
    """
    if not username or not password:
        return None
    if config.bind_dn and not config.bind_password:
        raise IdentityUnavailable(
            f"WINSLOW_LDAP_BIND_DN is {config.bind_dn!r} but WINSLOW_LDAP_BIND_PASSWORD is "
            "not set; set both for a service account, or neither for an anonymous search."
        )
    server = _server(config)
    service = _connect(server, config, config.bind_dn, config.bind_password)
    try:
        if not service.bind():
            raise IdentityUnavailable(
                f"The LDAP server {config.url} refused the "
                + (f"service account {config.bind_dn}" if config.bind_dn else "anonymous search")
                + f": {_describe(service)}. Check WINSLOW_LDAP_BIND_DN and "
                "WINSLOW_LDAP_BIND_PASSWORD."
            )
        entry = _find_user(service, config, username)
        if entry is None:
            return None
        dn, attributes = entry
        if not _password_ok(server, config, dn, password):
            return None
        name = _canonical_name(attributes, username)
        groups = _group_names(service, config, dn, name) if config.group_base else ()
    except LDAPException as exc:
        raise _unavailable(config, exc) from exc
    finally:
        _close(service)
    return ExternalIdentity(
        name=name,
        source="ldap",
        display_name=_first(attributes, "displayName") or _first(attributes, "cn"),
        email=_first(attributes, "mail"),
        groups=groups,
    )


def _server(config: LdapConfig) -> ldap3.Server:
    # ldap3's Tls verifies nothing unless asked; a sign-in must not send passwords to
    # whoever answers, so the certificate and the host name are always checked.
    try:
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED, ca_certs_file=str(config.cacert) if config.cacert else None
        )
        return ldap3.Server(
            config.url, tls=tls, connect_timeout=config.timeout, get_info=ldap3.NONE
        )
    except LDAPException as exc:
        raise IdentityUnavailable(
            f"Cannot use the LDAP server {config.url}: {exc}. Check WINSLOW_LDAP_URL and "
            f"WINSLOW_LDAP_CACERT ({config.cacert or 'unset'})."
        ) from exc


def _connect(
    server: ldap3.Server, config: LdapConfig, user: str | None, password: str | None
) -> ldap3.Connection:
    """An open connection (StartTLS done where configured), not yet bound."""
    connection = ldap3.Connection(
        server,
        user=user,
        password=password,
        authentication=ldap3.SIMPLE if user else ldap3.ANONYMOUS,
        receive_timeout=config.timeout,
        read_only=True,
        raise_exceptions=False,
        # A referral would have ldap3 bind elsewhere with these credentials.
        auto_referrals=False,
    )
    try:
        connection.open()
        if config.start_tls:
            connection.start_tls()
    except LDAPException as exc:
        _close(connection)
        raise _unavailable(config, exc) from exc
    return connection


def _close(connection: ldap3.Connection) -> None:
    # Unbinding a connection whose socket broke (a failed TLS handshake) fails in turn;
    # nothing is left open then, and the first error is the one worth reporting.
    with contextlib.suppress(LDAPException):
        connection.unbind()


def _find_user(
    service: ldap3.Connection, config: LdapConfig, username: str
) -> tuple[str, dict[str, Any]] | None:
    """The one entry the user filter finds for ``username``, or None."""
    query = config.user_filter.replace("{username}", escape_filter_chars(username))
    service.search(
        config.user_base, query, search_scope=ldap3.SUBTREE, attributes=list(USER_ATTRIBUTES),
        size_limit=2,
    )  # fmt: skip
    _check_search(service, config, config.user_base)
    entries = [e for e in service.response or [] if e.get("type") == "searchResEntry"]
    if len(entries) > 1:
        log.warning(
            "ldap: more than one entry under %r matches %r; refused", config.user_base, query
        )
        return None
    if not entries:
        return None
    return str(entries[0]["dn"]), dict(entries[0]["attributes"])


def _password_ok(server: ldap3.Server, config: LdapConfig, dn: str, password: str) -> bool:
    """Whether a simple bind as ``dn`` with ``password`` succeeds."""
    person = _connect(server, config, dn, password)
    try:
        if person.bind():
            return True
        log.info("ldap: bind as %s refused: %s", dn, _describe(person))
        return False
    finally:
        _close(person)


def _group_names(
    service: ldap3.Connection, config: LdapConfig, dn: str, username: str
) -> tuple[str, ...]:
    query = config.group_filter.replace("{dn}", escape_filter_chars(dn)).replace(
        "{username}", escape_filter_chars(username)
    )
    service.search(config.group_base, query, search_scope=ldap3.SUBTREE, attributes=["cn"])
    _check_search(service, config, config.group_base)
    names = {
        name
        for entry in service.response or []
        if entry.get("type") == "searchResEntry"
        if (name := _first(entry["attributes"], "cn"))
    }
    return tuple(sorted(names))


def _check_search(service: ldap3.Connection, config: LdapConfig, base: str) -> None:
    code = service.result.get("result") if service.result else None
    if code == NO_SUCH_OBJECT:
        raise IdentityUnavailable(
            f"The LDAP server {config.url} has no entry {base!r} to search under; check "
            "WINSLOW_LDAP_USER_BASE and WINSLOW_LDAP_GROUP_BASE."
        )
    if code not in (SUCCESS, SIZE_LIMIT_EXCEEDED):
        raise IdentityUnavailable(
            f"The LDAP server {config.url} refused a search under {base!r}: {_describe(service)}."
        )


def _canonical_name(attributes: dict[str, Any], username: str) -> str:
    """The entry's own ``uid`` when it is the typed name in another case, so ``Alice``
    and ``alice`` are one Winslow user; else the name as typed."""
    for uid in _values(attributes, "uid"):
        if uid.casefold() == username.casefold():
            return uid
    return username


def _values(attributes: dict[str, Any], name: str) -> list[str]:
    value = attributes.get(name)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _first(attributes: dict[str, Any], name: str) -> str:
    values = _values(attributes, name)
    return values[0] if values else ""


def _describe(connection: ldap3.Connection) -> str:
    result = connection.result or {}
    text = str(result.get("description") or "no answer")
    if result.get("message"):
        text += f" ({result['message']})"
    return text


def _unavailable(config: LdapConfig, exc: LDAPException) -> IdentityUnavailable:
    if not isinstance(exc, UNREACHABLE):
        return IdentityUnavailable(
            f"Cannot sign in with LDAP: the server {config.url} could not be asked ({exc}). "
            f"Check WINSLOW_LDAP_USER_FILTER ({config.user_filter}) and "
            f"WINSLOW_LDAP_GROUP_FILTER ({config.group_filter})."
        )
    tls = " with StartTLS" if config.start_tls else ""
    return IdentityUnavailable(
        f"Cannot sign in with LDAP: the server {config.url} could not be reached{tls} ({exc}). "
        "Check WINSLOW_LDAP_URL, that the server is up, and its certificate "
        "(WINSLOW_LDAP_CACERT)."
    )
