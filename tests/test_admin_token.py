"""The admin of a new server: ``winslow up`` makes the first admin and writes their token to
``admin-token`` in the data folder, once, and says so; later starts keep that admin."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from winslow.core.access import Scope
from winslow.server import ensure_admin_token
from winslow.settings import Settings
from winslow.store import people
from winslow.store.repo import Store, open_store
from winslow.store.tokens import list_tokens, token_caller


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """The data folder's own SQLite store, as `winslow up` opens it without a database URL."""
    settings.data_dir.mkdir()
    opened = open_store(settings.resolved_database_url())
    try:
        yield opened
    finally:
        opened.close()


def test_first_start_makes_an_admin_whose_token_only_the_owner_reads(
    settings: Settings, store: Store
) -> None:
    note = ensure_admin_token(settings, store)

    token_file = settings.data_dir / "admin-token"
    assert note is not None and str(token_file) in note and "created" in note
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    caller = token_caller(store, token)
    assert caller is not None
    assert (caller.name, caller.admin, caller.scope) == ("admin", True, Scope.ADMIN)
    assert caller.principal.acts_as_admin
    # Only the token's hash is kept: the database files never hold the token itself.
    for kept in settings.data_dir.iterdir():
        if kept != token_file:
            assert token.encode() not in kept.read_bytes(), kept


def test_a_later_start_keeps_the_admin_and_makes_no_other(settings: Settings, store: Store) -> None:
    ensure_admin_token(settings, store)
    token_file = settings.data_dir / "admin-token"
    first = token_file.read_text()

    store.close()
    restarted = open_store(settings.resolved_database_url())
    try:
        note = ensure_admin_token(settings, restarted)
        assert note == f"admin token: {token_file}"
        assert token_file.read_text() == first
        assert [(t.user, t.name) for t in list_tokens(restarted)] == [("admin", "admin")]
        assert [u.name for u in people.list_users(restarted) if u.admin] == ["admin"]
    finally:
        restarted.close()


def test_a_deleted_token_file_is_not_replaced_and_the_note_says_how_to_make_one(
    settings: Settings, store: Store
) -> None:
    ensure_admin_token(settings, store)
    token_file = settings.data_dir / "admin-token"
    token_file.unlink()

    note = ensure_admin_token(settings, store)

    assert note == (
        "admin token file is gone; create a new one with "
        "`winslow token create NAME --local --admin`."
    )
    assert not token_file.exists()
    assert [t.name for t in list_tokens(store)] == ["admin"]


def test_a_token_file_the_store_does_not_know_is_replaced_by_a_new_admins_token(
    settings: Settings, store: Store
) -> None:
    ensure_admin_token(settings, store)
    token_file = settings.data_dir / "admin-token"
    # As after the database was swapped for another server's: the file's token is unknown.
    token_file.write_text("wsl_not-a-token-of-this-server\n")

    note = ensure_admin_token(settings, store)

    assert note is not None and "created" in note
    name = f"admin-{os.getpid()}"
    assert sorted(t.name for t in list_tokens(store)) == ["admin", name]
    caller = token_caller(store, token_file.read_text().strip())
    assert caller is not None and (caller.name, caller.admin) == (name, True)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
