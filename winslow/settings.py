"""Winslow's settings, read from the environment once (``WINSLOW_*``, ``NOMAD_*``)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from winslow import defaults


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "winslow"


class Settings(BaseSettings):
    """Every knob of a Winslow server; each field maps to ``WINSLOW_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="WINSLOW_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    """Database, generated credentials, admin token, local stage files."""
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str | None = None
    """SQLAlchemy URL; default: a SQLite file in ``data_dir``."""
    pipelines_dir: Path | None = None
    """Folder of pipeline YAML files; default: ``data_dir/pipelines``."""
    backend: Literal["local", "nomad"] = "local"
    node_name: str = "local"
    s3_endpoint: str | None = None
    """An existing S3 server (MinIO); unset: ``winslow up`` starts SeaweedFS on loopback."""
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "winslow"
    s3_region: str = "us-east-1"
    s3_port: int = 8333
    """Port of the embedded S3 server when Winslow starts one."""
    poll_seconds: float = 5.0
    """Safety-net poll of the engine, seconds."""
    telemetry_seconds: float = Field(default=5.0, ge=0)
    """How often every node's telemetry is sampled, seconds (``WINSLOW_TELEMETRY_SECONDS``);
    0 turns node telemetry off."""
    nomad_addr: str = Field(
        default="http://127.0.0.1:4646",
        validation_alias=AliasChoices("NOMAD_ADDR", "WINSLOW_NOMAD_ADDR"),
    )
    """Nomad's HTTP API, read from Nomad's own ``NOMAD_*`` variables like its CLI does."""
    nomad_token: str | None = Field(
        default=None, validation_alias=AliasChoices("NOMAD_TOKEN", "WINSLOW_NOMAD_TOKEN")
    )
    nomad_namespace: str = Field(
        default="winslow",
        validation_alias=AliasChoices("NOMAD_NAMESPACE", "WINSLOW_NOMAD_NAMESPACE"),
    )
    """Namespace of the stage jobs, one only Winslow uses: every job of a namespace may read
    its ``nomad/jobs`` Variable, where the S3 keys are (``nomad namespace apply winslow``)."""
    nomad_region: str | None = Field(
        default=None, validation_alias=AliasChoices("NOMAD_REGION", "WINSLOW_NOMAD_REGION")
    )
    nomad_cacert: str | None = Field(
        default=None, validation_alias=AliasChoices("NOMAD_CACERT", "WINSLOW_NOMAD_CACERT")
    )
    nomad_client_cert: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NOMAD_CLIENT_CERT", "WINSLOW_NOMAD_CLIENT_CERT"),
    )
    """PEM certificate shown to Nomad when its agents require client certificates."""
    nomad_client_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NOMAD_CLIENT_KEY", "WINSLOW_NOMAD_CLIENT_KEY"),
    )
    nomad_tls_server_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NOMAD_TLS_SERVER_NAME", "WINSLOW_NOMAD_TLS_SERVER_NAME"),
    )
    """Name Nomad's certificate must carry, when not the host of ``NOMAD_ADDR``."""
    nomad_skip_verify: bool = Field(
        default=False,
        validation_alias=AliasChoices("NOMAD_SKIP_VERIFY", "WINSLOW_NOMAD_SKIP_VERIFY"),
    )
    """Accept any certificate from Nomad (logged as a warning at start); never in production."""
    nomad_datacenters: str = "*"
    """Comma-separated datacenters stage jobs may run in."""
    nomad_node_pool: str | None = None
    """Node pool stage jobs run in (Nomad 1.6+); unset: Nomad's ``default`` pool."""
    nomad_constraints: str = ""
    """Constraints every stage job carries: ``${node.class} = gpu; ${meta.rack} != r1``."""
    nomad_image: str | None = None
    """Image with Winslow inside for the stage-in and stage-out tasks, fully qualified
    (``registry.example:5000/winslow-tools:0.1.0``); required with docker tools."""
    nomad_allow_host_commands: bool = False
    """Let stages without an image (and the stage-in/out tools) run with raw_exec."""
    nomad_credentials: Literal["nomad-variables", "vault"] = "nomad-variables"
    nomad_credentials_path: str = "nomad/jobs"
    """Nomad Variable (or Vault KV v2) path of access_key and secret_key; every job in the
    namespace may read `nomad/jobs` without an extra ACL policy."""
    nomad_vault_role: str | None = None
    nomad_tools_driver: Literal["docker", "raw_exec"] = "docker"
    """How the stage-in/out tasks run: in ``nomad_image``, or the node's own `winslow`."""
    nomad_winslow_command: str = "winslow"
    """The `winslow` program on the nodes, for raw_exec tools."""
    nomad_node_cache_dir: str | None = None
    """Folder on every node for the node cache; unset: every run fetches what it needs."""
    node_cache_max: str = "100G"
    """Size cap of each node's cache (``500G``, ``2T``); least recently used entries go first."""
    nomad_publish_credentials: bool = True
    """Write the S3 keys to the Nomad Variable at start (needs a token that may)."""
    nomad_jobspecs_dir: str | None = None
    """Folder of the job templates, an override; default: ``jobspecs/`` in the package."""
    nomad_ui_url: str | None = None
    """Nomad's web UI, for the console's links to each run's job; default: ``NOMAD_ADDR/ui``."""
    nomad_s3_endpoint: str | None = None
    """The S3 endpoint as tasks on the Nomad clients reach it; default: ``s3_endpoint``."""
    nomad_lost_after: str = "2m"
    """How long a stage's Nomad node may stop answering before its run counts as lost and
    its job is stopped (``90s``, ``5m``); see the README on nodes that die."""
    placement_timeout: str = "10m"
    """How long a Nomad run no known node could ever hold waits for one to join before it
    fails (``90s``, ``30m``); the local backend fails such a run at once."""
    ui_dir: Path | None = None
    """The console's templates and assets, an override; default: ``ui/`` in the package."""
    max_body_bytes: int = Field(default=defaults.MAX_BODY_BYTES, ge=1024)
    """Largest request body the API reads, bytes; a larger one is answered 413 unread."""
    max_pipeline_bytes: int = Field(default=defaults.MAX_PIPELINE_BYTES, ge=1024)
    """Largest body of the routes that take pipeline text (validate, apply), bytes."""
    metrics_public: bool = False
    """Let anybody read ``GET /metrics``; unset, it takes an admin API token (bearer)."""
    public_url: str | None = None
    """The console's address as people reach it, for links in notifications; default:
    ``http://host:port``."""
    smtp_host: str | None = None
    """Mail server for e-mail notifications; unset: e-mail subscriptions are refused."""
    smtp_port: int = 25
    smtp_from: str = "winslow@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    """Upgrade the SMTP connection with STARTTLS before logging in and sending."""

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'winslow.db'}"

    def resolved_pipelines_dir(self) -> Path:
        return self.pipelines_dir or self.data_dir / "pipelines"

    def resolved_ui_dir(self) -> Path:
        """Return ``ui_dir``, else ``ui/`` of the installed ``winslow`` package."""
        # The package is installed as files, never zipped, so this is a real folder.
        return self.ui_dir or Path(str(resources.files("winslow") / "ui"))

    @property
    def token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def node_cache_max_bytes(self) -> int:
        """``node_cache_max`` in bytes (binary units; a bare number is MiB, as it always was)."""
        from winslow.units import parse_bytes

        try:
            return parse_bytes(self.node_cache_max, bare="M")
        except ValueError as exc:
            raise ValueError(f"WINSLOW_NODE_CACHE_MAX: {exc}") from None

    @property
    def placement_timeout_seconds(self) -> int:
        """``placement_timeout`` in seconds; ``ValueError`` names the setting."""
        from winslow.units import parse_duration

        try:
            return parse_duration(self.placement_timeout)
        except ValueError as exc:
            raise ValueError(f"WINSLOW_PLACEMENT_TIMEOUT: {exc}") from None

    @property
    def nomad_lost_after_seconds(self) -> int:
        """``nomad_lost_after`` in seconds; ``ValueError`` names the setting when it is no
        duration."""
        from winslow.units import parse_duration

        try:
            return parse_duration(self.nomad_lost_after)
        except ValueError as exc:
            raise ValueError(f"WINSLOW_NOMAD_LOST_AFTER: {exc}") from None


class ClientSettings(BaseSettings):
    """What the CLI needs to find a server."""

    model_config = SettingsConfigDict(env_prefix="WINSLOW_", extra="ignore")

    addr: str = "http://127.0.0.1:8080"
    token: str | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    cli_retry_seconds: float = Field(default=defaults.CLI_RETRY_SECONDS, ge=0)
    """How long an idempotent call is repeated while the server does not answer, seconds."""
