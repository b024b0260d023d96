"""The Vault policies Winslow needs, written from the same mount and path it reads.

Two readers, two policies, each allowing exactly what it reads and nothing else:

- ``server_policy``: the Winslow server reads ``<mount>/<path>/{s3,database,nomad}``;
  renewing and looking up its own token is in Vault's ``default`` policy.
- ``stage_policy``: the stage-in/stage-out tasks of stage jobs (workload identity, the
  role ``WINSLOW_NOMAD_VAULT_ROLE``) read only the S3 keys, ``<mount>/<path>/s3``.

KV v2 serves a secret's values under ``<mount>/data/<path>``; that API path is what a
policy names and what Nomad's ``{{ with secret "..." }}`` template reads.
"""

from __future__ import annotations

from winslow.secrets.wiring import SECRET_NAMES


def kv2_data_path(mount: str, path: str, name: str) -> str:
    """The KV v2 API path of the secret ``<path>/<name>``: ``secret/data/winslow/s3``."""
    folder = "/".join(part for part in (path.strip("/"), name) if part)
    return f"{mount.strip('/')}/data/{folder}"


def server_policy(mount: str = "secret", path: str = "winslow") -> str:
    """HCL of the policy the Winslow server's token (or AppRole) needs."""
    return "".join(_read_rule(kv2_data_path(mount, path, name)) for name in SECRET_NAMES)


def stage_policy(mount: str = "secret", path: str = "winslow") -> str:
    """HCL of the policy the stage jobs' Vault role needs: the S3 keys, read only."""
    return _read_rule(kv2_data_path(mount, path, "s3"))


def _read_rule(api_path: str) -> str:
    return f'path "{api_path}" {{\n  capabilities = ["read"]\n}}\n'
