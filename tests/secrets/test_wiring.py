"""How secrets from Vault map onto the settings: which keys replace which settings, a
password merged into the database URL, and what is refused or left alone."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import make_url

from winslow.secrets.vault import VaultConfig, VaultError
from winslow.secrets.wiring import settings_update, with_password
from winslow.settings import Settings

VAULT = VaultConfig(address="https://vault.lab:8200")


def test_each_secret_replaces_its_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        s3_endpoint="http://minio:9000",
        database_url="postgresql+psycopg://winslow@db:5432/winslow",
    )
    update = settings_update(
        settings,
        {
            "s3": {"access_key": "AK", "secret_key": "SK"},
            "database": {"password": "p@ss/w:rd"},
            "nomad": {"token": "nomad-token"},
        },
        VAULT,
    )
    assert update["s3_access_key"] == "AK" and update["s3_secret_key"] == "SK"
    assert update["nomad_token"] == "nomad-token"
    url = make_url(update["database_url"])
    assert (url.username, url.password, url.host, url.database) == (
        "winslow",
        "p@ss/w:rd",
        "db",
        "winslow",
    )


def test_a_whole_url_and_an_endpoint_are_taken_as_they_are(tmp_path: Path) -> None:
    update = settings_update(
        Settings(data_dir=tmp_path),
        {
            "s3": {"access_key": "AK", "secret_key": "SK", "endpoint": "https://s3.lab:9000"},
            "database": {"url": "postgresql+psycopg://w:pw@db/w"},
        },
        VAULT,
    )
    assert update["s3_endpoint"] == "https://s3.lab:9000"
    assert update["database_url"] == "postgresql+psycopg://w:pw@db/w"


def test_s3_keys_are_not_used_with_winslows_own_seaweedfs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    update = settings_update(
        Settings(data_dir=tmp_path), {"s3": {"access_key": "AK", "secret_key": "SK"}}, VAULT
    )
    assert update == {}
    assert "secret/winslow/s3 is not used: WINSLOW_S3_ENDPOINT is unset" in caplog.text


def test_a_password_without_a_database_server_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VaultError) as caught:
        settings_update(Settings(data_dir=tmp_path), {"database": {"password": "pw"}}, VAULT)
    assert caught.value.message.startswith(
        "The secret secret/winslow/database holds a password, but WINSLOW_DATABASE_URL names "
        "no database server"
    )
    assert "pw" not in caught.value.message.replace("password", "")


def test_with_password_replaces_one_already_there() -> None:
    url = with_password("postgresql+psycopg://w:old@db:5432/w?sslmode=require", "new")
    assert url == "postgresql+psycopg://w:new@db:5432/w?sslmode=require"


def test_no_secret_no_change(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert settings_update(Settings(data_dir=tmp_path), {}, VAULT) == {}
