"""The TLS side of talking to Nomad, set up as the ``nomad`` CLI does from its variables.

``NOMAD_CACERT`` verifies the agents' certificate (else the system's trust store),
``NOMAD_CLIENT_CERT`` and ``NOMAD_CLIENT_KEY`` are shown to agents that require a client
certificate (``tls { verify_https_client = true }``), ``NOMAD_TLS_SERVER_NAME`` is the
name checked instead of ``NOMAD_ADDR``'s host (Nomad's own certificates name
``server.<region>.nomad``), and ``NOMAD_SKIP_VERIFY`` accepts any certificate
(hashicorp/nomad api/api.go ``TLSConfig``, command/meta.go).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import httpx

_CLIENT_CERT_REFUSED = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    }
)
"""OpenSSL's reasons for an agent refusing the client's certificate, or its absence."""

if TYPE_CHECKING:
    from winslow.backends.nomad.config import NomadConfig


def ssl_context(config: NomadConfig) -> ssl.SSLContext:
    """The context every connection to Nomad uses; ``ValueError`` names an unusable file."""
    try:
        context = ssl.create_default_context(cafile=config.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"NOMAD_CACERT={config.ca_file!r} cannot be used: {exc}") from exc
    if config.skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.client_cert is not None:
        try:
            context.load_cert_chain(config.client_cert, config.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"NOMAD_CLIENT_CERT={config.client_cert!r} with NOMAD_CLIENT_KEY="
                f"{config.client_key!r} cannot be used: {exc}"
            ) from exc
    return context


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind a transport error, if a TLS handshake is what failed."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def tls_problem(exc: BaseException, config: NomadConfig, address: str) -> str | None:
    """What a failed TLS handshake with Nomad means and which setting changes it; None
    when ``exc`` is no TLS failure. These do not pass on their own, so nothing retries them.
    """
    failure = tls_failure(exc)
    if failure is None:
        if isinstance(exc, httpx.RemoteProtocolError) and address.startswith("https:"):
            return _hung_up(config, address)
        return None
    if isinstance(failure, ssl.SSLCertVerificationError):
        why = failure.verify_message or str(failure)
        if "mismatch" in why.lower():
            return (
                f"Nomad at {address} shows a certificate for another name ({why}); set "
                "NOMAD_TLS_SERVER_NAME to the name in it (server.<region>.nomad for the "
                "certificates Nomad makes)."
            )
        trust = (
            f"NOMAD_CACERT ({config.ca_file})"
            if config.ca_file
            else "the system's trust store (NOMAD_CACERT is not set)"
        )
        return (
            f"Nomad at {address} shows a certificate that {trust} does not vouch for "
            f"({why}); set NOMAD_CACERT to the CA that signed Nomad's certificate."
        )
    reason = failure.reason or ""
    if reason in _CLIENT_CERT_REFUSED:
        if config.client_cert is None:
            return (
                f"Nomad at {address} requires a client certificate ({reason}); set "
                "NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY to one its CA signed."
            )
        return (
            f"Nomad at {address} refused the client certificate NOMAD_CLIENT_CERT "
            f"({config.client_cert}): {reason}; use one signed by the CA Nomad trusts."
        )
    if reason == "WRONG_VERSION_NUMBER":
        return (
            f"Nomad at {address} does not answer TLS ({reason}); if its agents serve plain "
            "HTTP, NOMAD_ADDR starts with http://."
        )
    return f"TLS with Nomad at {address} failed: {failure}"


def _hung_up(config: NomadConfig, address: str) -> str | None:
    """An HTTPS agent that hangs up after the handshake without a word: what that usually
    means when Winslow showed no client certificate; None otherwise."""
    if config.client_cert is not None:
        return None
    return (
        f"Nomad at {address} closed the connection without answering; if its agents "
        "require client certificates (tls { verify_https_client = true }), set "
        "NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY to one its CA signed."
    )
