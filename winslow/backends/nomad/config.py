"""How Winslow reaches Nomad and what its stage jobs may use, read once from settings.

Kept apart from the client and the job renderer so both take the same frozen value and
tests can build one without an environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CredentialSource = Literal["vault", "nomad-variables"]


@dataclass(frozen=True)
class NomadConfig:
    """Where Nomad is and how stage jobs are written for it."""

    address: str = "http://127.0.0.1:4646"
    token: str | None = None
    namespace: str = "default"
    region: str | None = None
    ca_file: str | None = None
    """PEM bundle to verify Nomad's TLS certificate; None: the system's trust store."""
    datacenters: tuple[str, ...] = ("*",)
    job_prefix: str = "winslow-"
    """Every job Winslow submits has an ID starting with this; adoption looks for it."""
    winslow_image: str = "winslow:0.1.0"
    """Image of the prestart/poststop tasks that run `winslow stage-in`/`stage-out`."""
    allow_host_commands: bool = False
    """Let command-only stages (no `image:`) run with the `raw_exec` driver."""
    host_driver: Literal["raw_exec", "exec"] = "raw_exec"
    credentials: CredentialSource = "nomad-variables"
    """How tasks get the S3 credentials: a Nomad Variable, or Vault via workload identity."""
    credentials_path: str = "winslow/s3"
    """Nomad Variable path, or Vault KV path, holding access_key and secret_key."""
    vault_role: str | None = None
    s3_endpoint: str = ""
    """S3 endpoint as the tasks on the nodes reach it (not always the server's)."""
    s3_bucket: str = "winslow"
    s3_region: str = "us-east-1"
    extra_meta: dict[str, str] = field(default_factory=dict)
