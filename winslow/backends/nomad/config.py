"""How Winslow reaches Nomad and what its stage jobs may use, read once from settings.

Kept apart from the client and the job renderer so both take the same frozen value and
tests can build one without an environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CredentialSource = Literal["vault", "nomad-variables"]
ToolsDriver = Literal["docker", "raw_exec"]


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
    tools_driver: ToolsDriver = "docker"
    """Driver of the stage-in/stage-out tasks: ``docker`` runs ``winslow_image``;
    ``raw_exec`` runs ``winslow_command`` on the node and needs ``allow_host_commands``."""
    winslow_command: str = "winslow"
    """The ``winslow`` executable on the nodes, for ``raw_exec`` tools and host stages."""
    credentials: CredentialSource = "nomad-variables"
    """How tasks get the S3 credentials: a Nomad Variable, or Vault via workload identity."""
    credentials_path: str = "nomad/jobs"
    """Nomad Variable path, or Vault KV v2 API path (``secret/data/winslow/s3``), holding
    ``access_key`` and ``secret_key``.

    A task may read the Variables ``nomad/jobs`` and ``nomad/jobs/<job ID>[/<group>[/<task>]]``
    without any ACL policy; any other path needs one, and a policy can only be attached to
    one job ID, while every run is a job of its own. With ACLs on, put the keys at
    ``nomad/jobs`` in a namespace that only Winslow's jobs use."""
    vault_role: str | None = None
    vault_identity_audience: tuple[str, ...] = ("vault.io",)
    """Audience of the ``vault_default`` workload identity the tools tasks get for Vault;
    empty: add none and rely on the servers' ``vault.default_identity``."""
    s3_endpoint: str = ""
    """S3 endpoint as the tasks on the nodes reach it (not always the server's)."""
    s3_bucket: str = "winslow"
    s3_region: str = "us-east-1"
    extra_meta: dict[str, str] = field(default_factory=dict)
    node_cache_dir: str | None = None
    """Absolute folder on every node where stage-in keeps the input cache, so a video is
    fetched once per node; None: each run downloads its inputs. With docker tools it is
    bind-mounted, which needs ``volumes { enabled = true }`` in the nodes' docker plugin."""
    node_cache_max_bytes: int = 0
    """Size cap of the node cache, bytes; 0: no cap."""
    ephemeral_disk_mb: int = 10_240
    """Disk each stage job asks for, MB: the workspace, the inputs and the logs live in the
    allocation's folder. Nomad places by it; it does not enforce it."""
    jobspecs_dir: str | None = None
    """Folder with ``stage.json.j2`` (and optionally ``job-register.schema.json``), to try a
    changed template; None: ``jobspecs/`` inside the installed package."""
