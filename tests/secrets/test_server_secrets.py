"""The server with its credentials in a real OpenBao: S3 keys read at start, rotated keys
picked up without a restart, a revoked token that stops `winslow up` in one line before
anything starts, and no secret in the log."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.postgres import superuser
from tests.secrets.conftest import OpenBao, make_token, put_secret
from tests.test_startup_errors import error_line, up, weeds_of
from winslow import server
from winslow.errors import StorageError
from winslow.secrets.policy import server_policy
from winslow.settings import Settings
from winslow.storage import seaweed
from winslow.storage.s3 import S3Config
from winslow.storage.seaweed import S3Credentials, SeaweedServer, find_weed
from winslow.store import tokens

OLD = S3Credentials("WNOLDKEY" + secrets.token_hex(4).upper(), "old-" + secrets.token_hex(12))
NEW = S3Credentials("WNNEWKEY" + secrets.token_hex(4).upper(), "new-" + secrets.token_hex(12))


@pytest.fixture(scope="module")
def two_key_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Config]:
    """A SeaweedFS that takes both the old and the new keys, as an S3 server does while an
    operator rotates them (both valid until the old is retired), besides its own."""
    try:
        find_weed()
    except StorageError as exc:
        pytest.skip(str(exc))

    def both(credentials: S3Credentials) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": name,
                    "credentials": [{"accessKey": keys.access_key, "secretKey": keys.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
                for name, keys in (("own", credentials), ("old", OLD), ("new", NEW))
            ]
        }

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seaweed, "_identities", both)
        weed = SeaweedServer(tmp_path_factory.mktemp("two-keys"), bucket="unused")
        try:
            yield weed.start()
        finally:
            weed.stop()


def settings_for(openbao: OpenBao, token: str, path: str, tmp_path: Path, s3: S3Config) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        s3_endpoint=s3.endpoint_url,
        s3_bucket=f"vault-{secrets.token_hex(4)}",
        telemetry_seconds=0,
        vault_addr=openbao.address,
        vault_token=token,
        vault_path=path,
        vault_watch_seconds=0.5,
    )


def wait_until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def test_rotated_s3_keys_are_used_without_a_restart(
    openbao: OpenBao,
    vault_path: str,
    tmp_path: Path,
    two_key_s3: S3Config,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="winslow")
    put_secret(openbao, f"{vault_path}/s3", access_key=OLD.access_key, secret_key=OLD.secret_key)
    token = make_token(openbao, server_policy("secret", vault_path))
    running = server.start_services(settings_for(openbao, token, vault_path, tmp_path, two_key_s3))
    try:
        objects = running.context.objects
        assert objects.cfg.access_key == OLD.access_key  # from Vault: the settings had none
        objects.put_bytes("resources/before.txt", b"old keys")

        put_secret(
            openbao, f"{vault_path}/s3", access_key=NEW.access_key, secret_key=NEW.secret_key
        )
        wait_until(lambda: objects.cfg.access_key == NEW.access_key, 30, "the new keys in use")

        assert objects.cfg.secret_key == NEW.secret_key
        objects.put_bytes("resources/after.txt", b"new keys")
        url = objects.presign_get("resources/before.txt")
        assert f"X-Amz-Credential={NEW.access_key}" in url  # signed with the new keys
        assert httpx.get(url).content == b"old keys"
        assert running.context.supervisor is not None
        running.context.supervisor.check_once()
        assert running.context.supervisor.s3_up()
    finally:
        server.stop_services(running)
    assert "secrets: s3 rotated (access_key, secret_key changed)" in caplog.text
    for value in (OLD.secret_key, NEW.secret_key, token):
        assert value not in caplog.text


def test_an_s3_secret_without_its_keys_stops_the_start(
    openbao: OpenBao, vault_path: str, tmp_path: Path, two_key_s3: S3Config
) -> None:
    put_secret(openbao, f"{vault_path}/s3", access_key=OLD.access_key, secret=OLD.secret_key)
    token = make_token(openbao, server_policy("secret", vault_path))
    settings = settings_for(openbao, token, vault_path, tmp_path, two_key_s3)
    with pytest.raises(server.StartupError) as caught:
        server.start_services(settings)
    assert caught.value.message == (
        f"The secret secret/{vault_path}/s3 has no `secret_key`; it has `access_key`, "
        "`secret`. Write the missing key into it, then start again."
    )
    assert OLD.secret_key not in caught.value.message


def test_a_revoked_token_stops_winslow_up_before_anything_starts(
    openbao: OpenBao, vault_path: str, tmp_path: Path
) -> None:
    token = make_token(openbao, server_policy("secret", vault_path))
    openbao.client().auth.token.revoke(token)
    result, _ = up(
        tmp_path,
        WINSLOW_VAULT_ADDR=openbao.address,
        WINSLOW_VAULT_TOKEN=token,
        WINSLOW_VAULT_PATH=vault_path,
    )
    line = error_line(result)
    assert line == (
        f"error: Vault at {openbao.address} refused the token (lookup-self): permission "
        "denied. The token may be revoked or expired, or its policy may not allow this path; "
        "check WINSLOW_VAULT_TOKEN (or WINSLOW_VAULT_TOKEN_FILE) and the policy, then start "
        "again."
    )
    assert token not in result.stderr
    assert not (tmp_path / "data" / "s3").exists()  # no SeaweedFS was started
    assert weeds_of(tmp_path / "data") == []
    assert not (tmp_path / "data" / "winslow.db").exists()  # nor the store opened


def test_without_vault_addr_the_settings_are_used_as_they_are(tmp_path: Path) -> None:
    from winslow.secrets.wiring import read_server_secrets

    settings = Settings(data_dir=tmp_path, s3_access_key="ak", vault_token="unused")
    assert read_server_secrets(settings) == (settings, None)


def test_a_rotated_database_password_is_used_for_new_connections(
    openbao: OpenBao,
    vault_path: str,
    tmp_path: Path,
    two_key_s3: S3Config,
    password_role: tuple[str, str],
    postgres_server: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="winslow")
    role, url = password_role
    put_secret(openbao, f"{vault_path}/s3", access_key=OLD.access_key, secret_key=OLD.secret_key)
    put_secret(openbao, f"{vault_path}/database", password="first-pw")
    token = make_token(openbao, server_policy("secret", vault_path))
    settings = settings_for(openbao, token, vault_path, tmp_path, two_key_s3)
    running = server.start_services(settings.model_copy(update={"database_url": url}))
    try:
        store = running.context.store
        store.create_token("before")
        with superuser(postgres_server) as connection:
            connection.execute(f"ALTER ROLE {role} PASSWORD 'second-pw'")
        put_secret(openbao, f"{vault_path}/database", password="second-pw")
        wait_until(lambda: "second-pw" in store.url, 30, "the new password in use")
        with superuser(postgres_server) as connection:
            # As Vault's database engine does with the old credentials: cut them off.
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
        store.create_token("after")  # a new connection, with the new password
        assert {token.name for token in tokens.list_tokens(store)} >= {"before", "after"}
    finally:
        server.stop_services(running)
    assert "secrets: database rotated (password changed)" in caplog.text
    assert "first-pw" not in caplog.text and "second-pw" not in caplog.text


def test_a_rotated_nomad_token_is_sent_from_then_on(
    openbao: OpenBao, vault_path: str, tmp_path: Path, two_key_s3: S3Config
) -> None:
    from tests.nomad_standin import NomadStandin
    from winslow.backends.nomad.backend import NomadBackend
    from winslow.errors import BackendError

    put_secret(openbao, f"{vault_path}/s3", access_key=OLD.access_key, secret_key=OLD.secret_key)
    put_secret(openbao, f"{vault_path}/nomad", token="nomad-token-1")
    token = make_token(openbao, server_policy("secret", vault_path))
    settings = settings_for(openbao, token, vault_path, tmp_path, two_key_s3).model_copy(
        update={
            "backend": "nomad",
            "nomad_tools_driver": "raw_exec",
            "nomad_allow_host_commands": True,
            "nomad_publish_credentials": False,
        }
    )
    with NomadStandin(token="nomad-token-1") as standin:
        standin.add_node("standin-1", cpu_mhz=16000, memory_mb=32768, drivers=("raw_exec",))
        running = server.start_services(settings.model_copy(update={"nomad_addr": standin.address}))
        try:
            backend = running.context.backend
            assert isinstance(backend, NomadBackend)
            assert [node.name for node in backend.nodes()] == ["standin-1"]
            standin.token = "nomad-token-2"  # the operator rotates Winslow's ACL token

            def answers() -> bool:
                try:
                    backend.client.nodes.list()
                except BackendError:
                    return False
                return True

            assert not answers()
            put_secret(openbao, f"{vault_path}/nomad", token="nomad-token-2")
            wait_until(answers, 30, "Nomad answering with the new token")
        finally:
            server.stop_services(running)


def test_token_create_finds_the_database_through_vault(
    openbao: OpenBao, vault_path: str, tmp_path: Path
) -> None:
    import os
    import subprocess

    from tests.fixtures.server import BIN

    database = tmp_path / "from-vault.db"
    put_secret(openbao, f"{vault_path}/database", url=f"sqlite:///{database}")
    token = make_token(openbao, server_policy("secret", vault_path))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WINSLOW_")},
        "WINSLOW_DATA_DIR": str(tmp_path / "empty"),
        "WINSLOW_VAULT_ADDR": openbao.address,
        "WINSLOW_VAULT_TOKEN": token,
        "WINSLOW_VAULT_PATH": vault_path,
    }
    result = subprocess.run(
        [str(BIN / "winslow"), "token", "create", "ops", "--local"],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 1  # the API token, and nothing else
    assert database.exists()
    openbao.client().auth.token.revoke(token)
    refused = subprocess.run(
        [str(BIN / "winslow"), "token", "list", "--local"],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: Vault at {openbao.address} refused the token")
