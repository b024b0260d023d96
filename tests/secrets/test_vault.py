"""Logging in to a real OpenBao (token and AppRole), reading KV v2, renewing the token, and
the errors a person sees when Vault refuses; never a secret in the log."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from tests.secrets.conftest import OpenBao, make_token, put_secret
from winslow.secrets.policy import server_policy
from winslow.secrets.vault import Vault, VaultAuthError, VaultConfig, VaultError, renew_delay


def config(server: OpenBao, path: str, **changes: object) -> VaultConfig:
    return VaultConfig(address=server.address, path=path, **changes)  # type: ignore[arg-type]


def test_token_login_reads_the_secrets_of_its_folder(openbao: OpenBao, vault_path: str) -> None:
    put_secret(openbao, f"{vault_path}/s3", access_key="AK1", secret_key="SK1")
    token = make_token(openbao, server_policy("secret", vault_path))
    vault = Vault(config(openbao, vault_path, token=token))
    try:
        vault.login()
        assert vault.read("s3") == {"access_key": "AK1", "secret_key": "SK1"}
        assert vault.read("database") is None  # allowed, but not written: settings stay
    finally:
        vault.close()


def test_approle_login_with_ids_from_files(
    openbao: OpenBao, vault_path: str, tmp_path: Path
) -> None:
    put_secret(openbao, f"{vault_path}/nomad", token="nomad-secret-token")
    root = openbao.client()
    root.sys.create_or_update_policy(name=vault_path, policy=server_policy("secret", vault_path))
    root.auth.approle.create_or_update_approle(
        role_name=vault_path, token_policies=[vault_path], token_ttl="1h"
    )
    role_id = root.auth.approle.read_role_id(role_name=vault_path)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role_name=vault_path)["data"]["secret_id"]
    (tmp_path / "role-id").write_text(role_id + "\n")
    (tmp_path / "secret-id").write_text(secret_id + "\n")
    vault = Vault(
        config(
            openbao,
            vault_path,
            role_id_file=tmp_path / "role-id",
            secret_id_file=tmp_path / "secret-id",
        )
    )
    try:
        vault.login()
        assert vault.read("nomad") == {"token": "nomad-secret-token"}
        assert 3000 < vault.ttl_seconds <= 3600
    finally:
        vault.close()


def test_a_wrong_secret_id_is_refused_clearly(openbao: OpenBao, vault_path: str) -> None:
    root = openbao.client()
    root.auth.approle.create_or_update_approle(role_name=vault_path, token_ttl="1h")
    role_id = root.auth.approle.read_role_id(role_name=vault_path)["data"]["role_id"]
    vault = Vault(config(openbao, vault_path, role_id=role_id, secret_id="not-it"))
    with pytest.raises(VaultAuthError) as caught:
        vault.login()
    assert caught.value.message.startswith(
        f"Vault at {openbao.address} refused the AppRole login (auth/approle/login):"
    )
    assert "WINSLOW_VAULT_ROLE_ID and WINSLOW_VAULT_SECRET_ID" in caught.value.message
    assert "not-it" not in caught.value.message


def test_renewal_keeps_a_short_lived_token_alive(openbao: OpenBao, vault_path: str) -> None:
    put_secret(openbao, f"{vault_path}/s3", access_key="AK", secret_key="SK")
    # A periodic token dies 5 s after its last renewal; only the thread keeps it alive.
    token = make_token(openbao, server_policy("secret", vault_path), period="5s")
    vault = Vault(config(openbao, vault_path, token=token))
    try:
        vault.login()
        assert vault.renewable and 0 < vault.ttl_seconds <= 5
        vault.start_renewal()
        time.sleep(12)
        assert vault.read("s3") == {"access_key": "AK", "secret_key": "SK"}
        lookup = openbao.client().auth.token.lookup(token)["data"]
        assert lookup["ttl"] > 0
    finally:
        vault.close()


def test_without_renewal_the_same_token_expires(openbao: OpenBao, vault_path: str) -> None:
    """The other half of the renewal test: it is the thread that keeps the token alive."""
    token = make_token(openbao, server_policy("secret", vault_path), period="3s")
    vault = Vault(config(openbao, vault_path, token=token))
    try:
        vault.login()
        time.sleep(6)
        with pytest.raises(VaultAuthError):
            vault.read("s3")
    finally:
        vault.close()


def test_approle_logs_in_again_when_renewal_is_refused(openbao: OpenBao, vault_path: str) -> None:
    root = openbao.client()
    root.sys.create_or_update_policy(name=vault_path, policy=server_policy("secret", vault_path))
    root.auth.approle.create_or_update_approle(
        role_name=vault_path, token_policies=[vault_path], token_ttl="1h"
    )
    role_id = root.auth.approle.read_role_id(role_name=vault_path)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role_name=vault_path)["data"]["secret_id"]
    put_secret(openbao, f"{vault_path}/s3", access_key="AK", secret_key="SK")
    vault = Vault(config(openbao, vault_path, role_id=role_id, secret_id=secret_id))
    try:
        vault.login()
        first = vault._client.token
        root.auth.token.revoke(first)
        vault.renew_once()
        assert vault._client.token != first
        assert vault.read("s3") == {"access_key": "AK", "secret_key": "SK"}
    finally:
        vault.close()


def test_a_revoked_token_is_named_at_login(openbao: OpenBao, vault_path: str) -> None:
    token = make_token(openbao, server_policy("secret", vault_path))
    openbao.client().auth.token.revoke(token)
    vault = Vault(config(openbao, vault_path, token=token))
    with pytest.raises(VaultAuthError) as caught:
        vault.login()
    message = caught.value.message
    assert message.startswith(
        f"Vault at {openbao.address} refused the token (lookup-self): permission denied."
    )
    assert "WINSLOW_VAULT_TOKEN" in message and token not in message


def test_a_path_the_policy_does_not_allow_is_refused(openbao: OpenBao, vault_path: str) -> None:
    put_secret(openbao, f"{vault_path}/s3", access_key="AK", secret_key="SK")
    token = make_token(openbao, server_policy("secret", f"{vault_path}-other"))
    vault = Vault(config(openbao, vault_path, token=token))
    try:
        vault.login()
        with pytest.raises(VaultAuthError, match=rf"refused the secret secret/{vault_path}/s3"):
            vault.read("s3")
    finally:
        vault.close()


def test_vault_that_does_not_answer_says_where(tmp_path: Path) -> None:
    from tests.fixtures.ports import pick_ports

    (port,) = pick_ports(1)
    vault = Vault(VaultConfig(address=f"http://127.0.0.1:{port}", token="t"))
    with pytest.raises(VaultError) as caught:
        vault.login()
    assert caught.value.message.startswith(
        f"Cannot reach Vault at http://127.0.0.1:{port} (WINSLOW_VAULT_ADDR) for the token"
    )


def test_secrets_and_tokens_never_reach_the_log(
    openbao: OpenBao, vault_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, hvac's and urllib3's included
    put_secret(openbao, f"{vault_path}/s3", access_key="AKVISIBLE", secret_key="SK-never-logged")
    token = make_token(openbao, server_policy("secret", vault_path), period="4s")
    vault = Vault(config(openbao, vault_path, token=token))
    try:
        vault.login()
        vault.read("s3")
        vault.renew_once()
    finally:
        vault.close()
    assert "vault: logged in at" in caplog.text
    for value in ("SK-never-logged", "AKVISIBLE", token):
        assert value not in caplog.text


@pytest.mark.parametrize(("ttl", "delay"), [(30, 20), (3600, 2400), (0.6, 1.0)])
def test_renewal_at_two_thirds_of_the_ttl(ttl: float, delay: float) -> None:
    assert renew_delay(ttl) == pytest.approx(delay)


def test_an_approle_mount_that_is_not_there_is_named(openbao: OpenBao, vault_path: str) -> None:
    vault = Vault(config(openbao, vault_path, role_id="r", secret_id="s", approle_mount="nope"))
    with pytest.raises(VaultError) as caught:
        vault.login()
    assert caught.value.message.startswith(f"Vault at {openbao.address} ")
    assert "auth/nope/login" in caught.value.message
    assert "WINSLOW_VAULT_APPROLE_MOUNT" in caught.value.message


def test_a_token_file_is_read_again_when_its_token_is_refused(
    openbao: OpenBao, vault_path: str, tmp_path: Path
) -> None:
    """As in a Nomad job whose ``vault`` block keeps ``secrets/vault_token`` fresh."""
    put_secret(openbao, f"{vault_path}/s3", access_key="AK", secret_key="SK")
    policy = server_policy("secret", vault_path)
    first, second = make_token(openbao, policy), make_token(openbao, policy)
    token_file = tmp_path / "vault_token"
    token_file.write_text(first + "\n")
    vault = Vault(config(openbao, vault_path, token_file=token_file))
    try:
        vault.login()
        openbao.client().auth.token.revoke(first)
        token_file.write_text(second)
        vault.renew_once()
        assert vault.read("s3") == {"access_key": "AK", "secret_key": "SK"}
    finally:
        vault.close()


def test_no_way_to_log_in_is_said_before_asking_vault(openbao: OpenBao) -> None:
    with pytest.raises(VaultError, match=r"neither WINSLOW_VAULT_TOKEN \(or _FILE\) nor"):
        Vault(VaultConfig(address=openbao.address)).login()
