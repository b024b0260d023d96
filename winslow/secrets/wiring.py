"""Winslow's own credentials from Vault: onto the settings at start, into the running parts
when they rotate.

With ``WINSLOW_VAULT_ADDR`` set, ``winslow up`` logs in first, before anything starts, and
reads three KV v2 secrets under ``<WINSLOW_VAULT_MOUNT>/<WINSLOW_VAULT_PATH>``
(``secret/winslow/...``), each optional; a missing one leaves its settings as they are:

    s3        access_key, secret_key (endpoint)    WINSLOW_S3_ACCESS_KEY, _SECRET_KEY (_ENDPOINT)
    database  url, or password                     WINSLOW_DATABASE_URL (or its password)
    nomad     token                                NOMAD_TOKEN

A refused token, a missing key or an unreachable Vault stops the start with one line
(``VaultError``). Once running, a ``SecretWatcher`` reads them again every
``WINSLOW_VAULT_WATCH_SECONDS`` and swaps what changed into the object store, the storage
probe and the backend (S3 keys), the store's connection pool (the database password) and
the Nomad client (its token), without a restart. The values only ever travel as arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from winslow.errors import ConflictError
from winslow.secrets.rotation import Secret, SecretWatcher
from winslow.secrets.vault import Vault, VaultConfig, VaultError

if TYPE_CHECKING:
    from winslow.api.context import AppContext
    from winslow.settings import Settings
    from winslow.storage.supervisor import S3Probe

log = logging.getLogger(__name__)

SECRET_NAMES = ("s3", "database", "nomad")
"""The secrets Winslow reads under ``<vault_mount>/<vault_path>``."""


@dataclass
class ServerSecrets:
    """The logged-in Vault, the secrets read at start, and the watcher of their rotation."""

    vault: Vault
    values: dict[str, dict[str, str]]
    """What was read at start and put in the settings, by secret name; absent ones left out."""
    watcher: SecretWatcher

    def close(self) -> None:
        """Stop watching and renewing."""
        self.watcher.stop()
        self.vault.close()


def vault_config(settings: Settings) -> VaultConfig:
    """``VaultConfig`` from the ``WINSLOW_VAULT_*`` settings (``vault_addr`` must be set)."""
    return VaultConfig(
        address=settings.vault_addr or "",
        token=settings.vault_token,
        token_file=settings.vault_token_file,
        role_id=settings.vault_role_id,
        role_id_file=settings.vault_role_id_file,
        secret_id=settings.vault_secret_id,
        secret_id_file=settings.vault_secret_id_file,
        approle_mount=settings.vault_approle_mount,
        mount=settings.vault_mount,
        path=settings.vault_path,
        namespace=settings.vault_namespace,
        ca_file=settings.vault_cacert,
    )


def read_server_secrets(settings: Settings) -> tuple[Settings, ServerSecrets | None]:
    """Log in to Vault and return the settings with Winslow's credentials from it, and the
    Vault session (renewing its token); ``settings`` and None without ``vault_addr``.

    Raises ``VaultError`` saying what to fix; nothing is left running then.
    """
    if not settings.vault_addr:
        return settings, None
    config = vault_config(settings)
    vault = Vault(config)
    try:
        vault.login()
        found = {name: vault.read(name) for name in SECRET_NAMES}
        values = {name: dict(value) for name, value in found.items() if value is not None}
        update = settings_update(settings, values, config)
        if "s3" in values and "s3_access_key" not in update:
            del values["s3"]  # Winslow's own SeaweedFS: nothing of it to rotate
    except BaseException:
        vault.close()
        raise
    for name in SECRET_NAMES:
        where = config.secret_path(name)
        secret = found[name]
        if secret is not None:
            log.info("vault: %s read (%s)", where, ", ".join(sorted(secret)))
        else:
            log.info("vault: no secret at %s; its settings stay as they are", where)
    vault.start_renewal()
    watcher = SecretWatcher(vault.read, settings.vault_watch_seconds)
    return settings.model_copy(update=update), ServerSecrets(vault, values, watcher)


def settings_update(
    settings: Settings, values: Mapping[str, Secret], config: VaultConfig
) -> dict[str, Any]:
    """The settings the secrets replace, by field name; raises ``VaultError`` naming a
    secret that lacks a key (never its values). An S3 secret is dropped, with a warning,
    where Winslow runs its own SeaweedFS (which makes its own keys)."""
    update: dict[str, Any] = {}
    s3 = values.get("s3")
    if s3 is not None:
        _require(s3, ("access_key", "secret_key"), config.secret_path("s3"))
        if settings.s3_endpoint or s3.get("endpoint"):
            update["s3_access_key"] = s3["access_key"]
            update["s3_secret_key"] = s3["secret_key"]
            if s3.get("endpoint"):
                update["s3_endpoint"] = s3["endpoint"]
        else:
            log.warning(
                "vault: %s is not used: WINSLOW_S3_ENDPOINT is unset, so Winslow runs its own "
                "SeaweedFS with keys of its own; set it (or the secret's `endpoint`) to use "
                "another S3",
                config.secret_path("s3"),
            )
    database = values.get("database")
    if database is not None:
        update["database_url"] = database_url(settings, database, config.secret_path("database"))
    nomad = values.get("nomad")
    if nomad is not None:
        _require(nomad, ("token",), config.secret_path("nomad"))
        update["nomad_token"] = nomad["token"]
    return update


def database_url(settings: Settings, secret: Secret, where: str) -> str:
    """The database URL a ``database`` secret means: its ``url``, or ``WINSLOW_DATABASE_URL``
    with the secret's ``password``."""
    if secret.get("url"):
        return secret["url"]
    _require(secret, ("password",), where, alternative="url")
    if not settings.database_url or settings.database_url.startswith("sqlite"):
        raise VaultError(
            f"The secret {where} holds a password, but WINSLOW_DATABASE_URL names no "
            "database server to use it with; set WINSLOW_DATABASE_URL (without the "
            "password), or put the whole `url` in the secret."
        )
    return with_password(settings.database_url, secret["password"])


def with_password(url: str, password: str) -> str:
    """``url`` with its password replaced (percent-encoded, as SQLAlchemy reads it)."""
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo.partition(':')[0]}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def _require(secret: Secret, keys: tuple[str, ...], where: str, alternative: str = "") -> None:
    missing = [key for key in keys if not secret.get(key)]
    if missing:
        other = f" (or `{alternative}`)" if alternative else ""
        raise VaultError(
            f"The secret {where} has no `{'`, `'.join(missing)}`{other}; it has "
            f"{', '.join(f'`{key}`' for key in sorted(secret)) or 'no keys'}. Write the "
            "missing key into it, then start again."
        )


def watch_server_secrets(secrets: ServerSecrets, context: AppContext, probe: S3Probe) -> None:
    """Put rotated secrets in use in ``context``'s running parts, and start watching."""
    watcher, values = secrets.watcher, secrets.values
    where = secrets.vault.config.secret_path
    if "s3" in values:

        def use_s3(secret: Secret) -> None:
            _require(secret, ("access_key", "secret_key"), where("s3"))
            if secret.get("endpoint", "") != values["s3"].get("endpoint", ""):
                raise ConflictError("The S3 endpoint changed; restart Winslow to use it.")
            use_s3_keys(context, probe, secret["access_key"], secret["secret_key"])

        watcher.subscribe("s3", values["s3"], use_s3)
    if "database" in values:

        def use_database(secret: Secret) -> None:
            context.store.use_database_url(
                database_url(context.settings, secret, where("database"))
            )

        watcher.subscribe("database", values["database"], use_database)
    if "nomad" in values:
        from winslow.backends.nomad.backend import NomadBackend

        backend = context.backend
        if isinstance(backend, NomadBackend):

            def use_nomad(secret: Secret) -> None:
                _require(secret, ("token",), where("nomad"))
                backend.client.set_token(secret["token"])

            watcher.subscribe("nomad", values["nomad"], use_nomad)
    watcher.start()


def use_s3_keys(context: AppContext, probe: S3Probe, access_key: str, secret_key: str) -> None:
    """Sign S3 requests with these keys from now on: the object store, the storage probe,
    the local backend's new runners, and the Nomad Variable stage jobs read (when Winslow
    writes it)."""
    from winslow.backends.local.backend import LocalBackend
    from winslow.backends.nomad.backend import NomadBackend

    context.objects.use_credentials(access_key, secret_key)
    probe.use_config(context.objects.cfg)
    backend = context.backend
    if isinstance(backend, LocalBackend):
        backend.use_storage(context.objects.cfg)
    elif (
        isinstance(backend, NomadBackend)
        and backend.config.credentials == "nomad-variables"
        and context.settings.nomad_publish_credentials
    ):
        backend.client.variables.put(
            backend.config.credentials_path,
            {"access_key": access_key, "secret_key": secret_key},
        )
