"""``SecretWatcher`` over a real OpenBao: a new version is handed on once, a failed swap is
offered again, and a Vault that stops answering leaves the credentials in use alone."""

from __future__ import annotations

import logging

import pytest

from tests.secrets.conftest import OpenBao, make_token, put_secret
from winslow.errors import ConflictError
from winslow.secrets.policy import server_policy
from winslow.secrets.rotation import SecretWatcher, changed_keys
from winslow.secrets.vault import Vault, VaultConfig


@pytest.fixture
def vault(openbao: OpenBao, vault_path: str):  # type: ignore[no-untyped-def]
    put_secret(openbao, f"{vault_path}/s3", access_key="AK1", secret_key="SK1")
    token = make_token(openbao, server_policy("secret", vault_path))
    opened = Vault(VaultConfig(address=openbao.address, token=token, path=vault_path))
    opened.login()
    try:
        yield opened
    finally:
        opened.close()


def test_a_new_version_is_handed_on_once(openbao: OpenBao, vault_path: str, vault: Vault):
    seen: list[dict[str, str]] = []
    watcher = SecretWatcher(vault.read, every=60)
    watcher.subscribe(
        "s3", {"access_key": "AK1", "secret_key": "SK1"}, lambda s: seen.append(dict(s))
    )
    assert watcher.check_once() == []  # unchanged: nobody is bothered
    put_secret(openbao, f"{vault_path}/s3", access_key="AK1", secret_key="SK2")
    assert watcher.check_once() == ["s3"]
    assert watcher.check_once() == []
    assert seen == [{"access_key": "AK1", "secret_key": "SK2"}]


def test_a_failed_swap_is_offered_again(
    openbao: OpenBao, vault_path: str, vault: Vault, caplog: pytest.LogCaptureFixture
):
    attempts: list[str] = []

    def flaky(secret):  # type: ignore[no-untyped-def]
        attempts.append(secret["secret_key"])
        if len(attempts) == 1:
            raise ConflictError("The S3 endpoint changed; restart Winslow to use it.")

    watcher = SecretWatcher(vault.read, every=60)
    watcher.subscribe("s3", {"access_key": "AK1", "secret_key": "SK1"}, flaky)
    put_secret(openbao, f"{vault_path}/s3", access_key="AK1", secret_key="SK-NEW")
    assert watcher.check_once() == []
    assert watcher.check_once() == ["s3"]
    assert attempts == ["SK-NEW", "SK-NEW"]
    assert "the new s3 could not be put in use (The S3 endpoint changed" in caplog.text
    assert "SK-NEW" not in caplog.text


def test_vault_gone_keeps_what_is_in_use(
    openbao: OpenBao, vault_path: str, vault: Vault, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING)
    seen: list[object] = []
    watcher = SecretWatcher(vault.read, every=60)
    watcher.subscribe("s3", {"access_key": "AK1", "secret_key": "SK1"}, seen.append)
    openbao.client().auth.token.revoke(vault._client.token)
    assert watcher.check_once() == []
    assert seen == []
    assert "secrets: cannot read s3 again; the current one stays in use: Vault at" in caplog.text


def test_a_deleted_secret_leaves_the_credentials_alone(
    openbao: OpenBao, vault_path: str, vault: Vault
):
    seen: list[object] = []
    watcher = SecretWatcher(vault.read, every=60)
    watcher.subscribe("s3", {"access_key": "AK1", "secret_key": "SK1"}, seen.append)
    openbao.client().secrets.kv.v2.delete_latest_version_of_secret(
        path=f"{vault_path}/s3", mount_point="secret"
    )
    assert vault.read("s3") is None
    assert watcher.check_once() == []
    assert seen == []


def test_changed_keys_names_keys_not_values():
    assert changed_keys({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == ["b", "c"]
    assert changed_keys(None, {"a": "1"}) == ["a"]
