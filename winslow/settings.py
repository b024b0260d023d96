"""Winslow's settings, read from the environment once (``WINSLOW_*``, ``NOMAD_*``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from winslow import defaults
from winslow.client_settings import ClientSettings, default_data_dir

__all__ = ["ClientSettings", "RegistrySettings", "Settings", "default_data_dir"]


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
    s3_public_endpoint: str | None = None
    """The S3 endpoint as browsers and CLIs on other machines reach it
    (``https://s3.lab:9000``); presigned URLs are signed for it. Unset: ``s3_endpoint``."""
    poll_seconds: float = 5.0
    """Safety-net poll of the engine, seconds."""
    telemetry_seconds: float = Field(default=5.0, ge=0)
    """How often every node's telemetry is sampled, seconds (``WINSLOW_TELEMETRY_SECONDS``);
    0 turns node telemetry off."""
    nomad_addr: str = Field(
        default="http://127.0.0.1:4646",
        validation_alias=AliasChoices("WINSLOW_NOMAD_ADDR", "NOMAD_ADDR"),
    )
    """Nomad's HTTP API, read from Nomad's own ``NOMAD_*`` variables like its CLI does."""
    nomad_token: str | None = Field(
        default=None, validation_alias=AliasChoices("WINSLOW_NOMAD_TOKEN", "NOMAD_TOKEN")
    )
    nomad_namespace: str = Field(
        default="winslow",
        validation_alias=AliasChoices("WINSLOW_NOMAD_NAMESPACE", "NOMAD_NAMESPACE"),
    )
    """Namespace of the stage jobs, one only Winslow uses: every job of a namespace may read
    its ``nomad/jobs`` Variable, where the S3 keys are (``nomad namespace apply winslow``)."""
    nomad_region: str | None = Field(
        default=None, validation_alias=AliasChoices("WINSLOW_NOMAD_REGION", "NOMAD_REGION")
    )
    nomad_cacert: str | None = Field(
        default=None, validation_alias=AliasChoices("WINSLOW_NOMAD_CACERT", "NOMAD_CACERT")
    )
    nomad_client_cert: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WINSLOW_NOMAD_CLIENT_CERT", "NOMAD_CLIENT_CERT"),
    )
    """PEM certificate shown to Nomad when its agents require client certificates."""
    nomad_client_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WINSLOW_NOMAD_CLIENT_KEY", "NOMAD_CLIENT_KEY"),
    )
    nomad_tls_server_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WINSLOW_NOMAD_TLS_SERVER_NAME", "NOMAD_TLS_SERVER_NAME"),
    )
    """Name Nomad's certificate must carry, when not the host of ``NOMAD_ADDR``."""
    nomad_skip_verify: bool = Field(
        default=False,
        validation_alias=AliasChoices("WINSLOW_NOMAD_SKIP_VERIFY", "NOMAD_SKIP_VERIFY"),
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
    nomad_credentials: Literal["nomad-variables", "vault"] | None = None
    """Where stage jobs read the S3 keys: a Nomad Variable, or Vault through workload
    identity; default ``vault`` with ``WINSLOW_VAULT_ADDR``, else ``nomad-variables``."""
    nomad_credentials_path: str | None = None
    """Nomad Variable (or Vault KV v2 API) path of access_key and secret_key; default
    ``nomad/jobs``, which every job in the namespace may read without an extra ACL policy,
    or with Vault ``<vault_mount>/data/<vault_path>/s3`` (``secret/data/winslow/s3``)."""
    nomad_vault_role: str | None = None
    nomad_tools_driver: Literal["docker", "raw_exec"] = "docker"
    """How the stage-in/out tasks run: in ``nomad_image``, or the node's own `winslow`."""
    nomad_winslow_command: str = "winslow"
    """The `winslow` program on the nodes, for raw_exec tools."""
    nomad_node_cache_dir: str | None = None
    """Folder on every node for the node cache; unset: every run fetches what it needs."""
    node_cache_max: str = "100G"
    """Size cap of each node's cache (``500G``, ``2T``); least recently used entries go first."""
    warm_runner: bool = True
    """Local backend: fork each stage's runner from one long-lived process that has already
    imported what a runner needs (about 0.2 s less per stage); ``0``: a fresh process each."""
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
    sse_push: bool = True
    """Push changes to live streams (SSE) as they are committed; ``false`` makes every
    stream ask the store four times a second instead, as before (a benchmark's baseline)."""
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
    vault_addr: str | None = None
    """Vault (or OpenBao) to read Winslow's own S3, database and Nomad credentials from
    (KV v2, see ``winslow/secrets/``); unset: they come from these settings."""
    vault_token: str | None = Field(default=None, repr=False)
    """A Vault token; else AppRole login with ``vault_role_id`` and ``vault_secret_id``."""
    vault_token_file: Path | None = None
    """A file holding the token, read again when renewal fails (in a Nomad job with a
    ``vault`` block: ``${NOMAD_SECRETS_DIR}/vault_token``, which Nomad keeps fresh)."""
    vault_role_id: str | None = None
    vault_role_id_file: Path | None = None
    vault_secret_id: str | None = Field(default=None, repr=False)
    vault_secret_id_file: Path | None = None
    """A file holding the AppRole secret_id (a mounted secret), read at each login."""
    vault_approle_mount: str = "approle"
    vault_mount: str = "secret"
    """Mount of the KV v2 secrets engine."""
    vault_path: str = "winslow"
    """Folder under ``vault_mount`` with the secrets ``s3``, ``database`` and ``nomad``."""
    vault_namespace: str | None = None
    """Vault Enterprise namespace; unset: none."""
    vault_cacert: Path | None = None
    """PEM bundle to verify Vault's certificate; unset: the system's trust store."""
    vault_watch_seconds: float = Field(default=60.0, gt=0)
    """How often the secrets are read again to pick up rotated credentials, seconds."""

    ldap_url: str | None = None
    """LDAP server for signing in (``ldaps://ldap.lab:636``); unset: no LDAP sign-in."""
    ldap_bind_dn: str | None = None
    """A service account that searches for users; unset: an anonymous search."""
    ldap_bind_password: str | None = Field(default=None, repr=False)
    ldap_user_base: str = ""
    """Where users are searched (``ou=people,dc=lab,dc=org``)."""
    ldap_user_filter: str = "(uid={username})"
    """Finds the user who signs in; ``{username}`` is escaped before it is put in."""
    ldap_group_base: str = ""
    """Where groups are searched; empty: group membership is not read."""
    ldap_group_filter: str = "(|(member={dn})(uniqueMember={dn})(memberUid={username}))"
    """Finds the groups of the user (``{dn}``: the user's entry, ``{username}``)."""
    ldap_start_tls: bool = False
    ldap_cacert: Path | None = None
    """PEM bundle to verify the LDAP server's certificate; unset: the system's."""
    oidc_issuer: str | None = None
    """An OpenID Connect provider (its issuer URL); unset: no OIDC sign-in."""
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = Field(default=None, repr=False)
    """Unset for a public client (PKCE alone)."""
    oidc_scopes: str = "openid profile email"
    oidc_username_claim: str = "preferred_username"
    oidc_groups_claim: str = "groups"
    oidc_redirect_url: str | None = None
    """Where the provider sends the browser back (``https://winslow.lab/api/v1/oidc/callback``);
    unset: derived from the request."""
    oidc_cacert: Path | None = None
    resource_writers: str = "resource-writers"
    """Members of this group may change the resource pool, besides admins and anyone who
    maintains a group."""

    def resolved_nomad_credentials(self) -> Literal["nomad-variables", "vault"]:
        """``nomad_credentials``, else Vault where Winslow reads its own keys from Vault."""
        if self.nomad_credentials is not None:
            return self.nomad_credentials
        return "vault" if self.vault_addr else "nomad-variables"

    def resolved_nomad_credentials_path(self) -> str:
        """``nomad_credentials_path``, else the default of the credential source: the
        Variable ``nomad/jobs``, or the KV v2 API path of ``<vault_mount>/<vault_path>/s3``
        (``secret/data/winslow/s3``), the secret Winslow's own S3 keys come from."""
        if self.nomad_credentials_path:
            return self.nomad_credentials_path
        if self.resolved_nomad_credentials() == "vault":
            mount, path = self.vault_mount.strip("/"), self.vault_path.strip("/")
            return "/".join(part for part in (mount, "data", path, "s3") if part)
        return "nomad/jobs"

    @field_validator("s3_public_endpoint")
    @classmethod
    def _scheme_and_host(cls, value: str | None) -> str | None:
        # SigV4 signs the host: a path, query or missing scheme would sign a URL no
        # browser can send, so it is refused here rather than at the first upload.
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
            raise ValueError("give scheme, host and port only, like https://s3.lab:9000")
        return f"{parts.scheme}://{parts.netloc}"

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

    def nomad_connection(self) -> dict[str, Any]:
        """How to reach Nomad (address, token, region, TLS), as ``NomadConfig`` takes it:
        the server's backend and ``winslow deploy`` connect alike."""
        return {
            "address": self.nomad_addr,
            "token": self.nomad_token,
            "region": self.nomad_region,
            "ca_file": self.nomad_cacert,
            "client_cert": self.nomad_client_cert,
            "client_key": self.nomad_client_key,
            "tls_server_name": self.nomad_tls_server_name,
            "skip_verify": self.nomad_skip_verify,
        }

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


class RegistrySettings(BaseSettings):
    """What ``winslow images`` needs to list a container registry (``winslow/cli/images.py``)."""

    model_config = SettingsConfigDict(env_prefix="WINSLOW_", extra="ignore")

    registry: str | None = None
    """``host:port`` or URL of the Distribution registry the images are pushed to."""
    registry_user: str | None = None
    registry_password: str | None = Field(default=None, repr=False)
    """Basic auth; unset: what ``docker login`` stored in ``$DOCKER_CONFIG/config.json``."""
    registry_ca_file: Path | None = None
    """PEM bundle for the registry's TLS; unset: ``/etc/docker/certs.d/<host>/ca.crt`` where
    docker keeps one, else the system's trust store."""
    docker_config: Path = Field(
        default_factory=lambda: Path.home() / ".docker", validation_alias="DOCKER_CONFIG"
    )
