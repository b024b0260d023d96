"""SeaweedFS's own locks on a local ``weed mini``: JWT keys and gRPC mTLS, in its folder.

Besides S3 (which checks our signed keys), ``weed mini`` serves a master, a volume
server, a filer and an admin server, each over HTTP and gRPC, and out of the box none of
them asks who is calling: anyone on the machine could list, read, write and delete every
object through them. ``write_security_config`` writes the ``security.toml`` that weed
reads (``weed -config_dir=<folder>``, the first place it looks; ``weed scaffold
-config=security`` documents every key) with fresh random keys at each start:

- ``[jwt.signing]`` and ``[jwt.signing.read]``: the volume server accepts a write, read or
  delete only with a JWT that the master signs for that one file (weed/security/guard.go);
- ``[jwt.filer_signing]`` and ``[jwt.filer_signing.read]``: the same for the filer's HTTP
  API, which ``-disableHttp`` switches off anyway (with the master's ``/dir/assign``,
  ``/dir/lookup``, ``/col/delete`` and ``/vol/*``: weed/server/master_server.go);
- ``[grpc.*]``: every gRPC server demands a client certificate signed by ``[grpc].ca``
  (mutual TLS, weed/security/tls.go ``LoadServerTLS``: ``RequireClientCert``), so only
  weed itself, holding ``grpc-key.pem``, gets in; gRPC would otherwise let anyone delete
  any file through the filer.

One self-signed certificate is CA, server and client at once: weed checks the chain, not
the host name ("The host name is not checked, so the certificate files can be shared").
Keys and certificate are made anew at each start; only the weed process reads them.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from winslow.filemodes import PRIVATE_FILE_MODE

SECURITY_FILE = "security.toml"
GRPC_CERT_FILE = "grpc-cert.pem"
GRPC_KEY_FILE = "grpc-key.pem"

JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
"""The signing keys of security.toml: volume writes, volume reads, filer writes, filer reads."""

JWT_EXPIRES_SECONDS = 10
"""Life of a JWT weed signs for one request, seconds (weed's own default)."""

GRPC_COMPONENTS = ("master", "volume", "filer", "s3", "admin", "worker", "client")
"""``[grpc.<component>]`` sections: the servers ``weed mini`` runs and the clients it dials."""

CERT_VALID_DAYS = 3650
"""How long the gRPC certificate is valid, days; it is renewed at every start anyway."""

CERT_COMMON_NAME = "winslow-seaweedfs"

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
"""A client's HTTP/2 connection preface and an empty SETTINGS frame: what gRPC sends first."""

HTTP2_SETTINGS = 0x04
"""Frame type of the SETTINGS frame a gRPC server answers the preface with."""


@dataclass(frozen=True)
class SecurityFiles:
    """The files ``write_security_config`` wrote; all mode 0600."""

    config: Path
    certificate: Path
    key: Path


def write_security_config(folder: Path) -> SecurityFiles:
    """Write ``security.toml``, the gRPC certificate and its key into ``folder``.

    Everything is new: random JWT keys, a new key pair. Returns the three paths.
    """
    certificate, key = folder / GRPC_CERT_FILE, folder / GRPC_KEY_FILE
    cert_pem, key_pem = self_signed_certificate()
    _write_private(key, key_pem)
    _write_private(certificate, cert_pem)
    config = folder / SECURITY_FILE
    _write_private(config, security_toml(certificate.resolve(), key.resolve()).encode())
    return SecurityFiles(config=config, certificate=certificate, key=key)


def security_toml(certificate: Path, key: Path) -> str:
    """Return weed's ``security.toml`` with fresh JWT keys and mTLS from these two files."""
    lines = [
        "# Written by Winslow at each start of its SeaweedFS; edits here are lost.",
        "# See `weed scaffold -config=security` for what each key does.",
    ]
    for section in JWT_SECTIONS:
        lines += [
            "",
            f"[{section}]",
            f'key = "{secrets.token_urlsafe(32)}"',
            f"expires_after_seconds = {JWT_EXPIRES_SECONDS}",
        ]
    # json.dumps writes a TOML basic string: the same quotes and escapes.
    cert, private = json.dumps(str(certificate)), json.dumps(str(key))
    lines += ["", "[grpc]", f"ca = {cert}"]
    for component in GRPC_COMPONENTS:
        lines += ["", f"[grpc.{component}]", f"cert = {cert}", f"key = {private}"]
    return "\n".join(lines) + "\n"


def self_signed_certificate(common_name: str = CERT_COMMON_NAME) -> tuple[bytes, bytes]:
    """Return a new self-signed CA certificate and its private key (P-256), both as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=CERT_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def grpc_answers_plaintext(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a gRPC server on ``host:port`` talks to a client without TLS.

    Sends what a plaintext gRPC client sends first and looks for the server's SETTINGS
    frame. A server that demands TLS drops the connection; one not listening is no door.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(HTTP2_PREFACE)
            head = sock.recv(9)
    except OSError:
        return False
    return len(head) >= 4 and head[3] == HTTP2_SETTINGS


def _write_private(path: Path, content: bytes) -> None:
    """Write ``content`` readable by the owner only, atomically (temp file, then rename)."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
