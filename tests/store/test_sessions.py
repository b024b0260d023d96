"""Console sessions in the store, on SQLite and on PostgreSQL: kept by their hash only,
ended by the server (absolute and idle expiry, sign-out, revocation, the token's
revocation), listed without their secrets."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text

from tests.fixtures.postgres import ON_BOTH_DATABASES
from winslow import defaults
from winslow.core.access import Scope
from winslow.errors import NotFoundError
from winslow.store import tokens
from winslow.store.db import MIGRATIONS
from winslow.store.repo import Store
from winslow.store.sessions import (
    Caller,
    end_session,
    list_sessions,
    revoke_session,
    session_caller,
    start_session,
)
from winslow.store.tables import Base, ConsoleSessionRow
from winslow.store.tokens import token_caller

pytestmark = ON_BOTH_DATABASES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def sign_in(store: Store, token: str, at: datetime = T0, **kw) -> tuple[str, str]:
    started = start_session(store, token, at=at, **kw)
    assert started is not None
    secret, session = started
    return secret, session.handle


def test_a_session_is_kept_by_its_hash_and_named_by_another_random_handle(store: Store) -> None:
    token = store.create_token("ana")
    secret, handle = sign_in(store, token, user_agent="Firefox/140", address="10.0.0.7")
    with store.sessions() as session:
        [row] = session.scalars(select(ConsoleSessionRow)).all()
        stored = [str(getattr(row, c.key)) for c in ConsoleSessionRow.__table__.columns]
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in value or token in value for value in stored)
    assert handle != secret and len(secret) >= 43  # 256 random bits
    assert session_caller(store, secret, at=T0) == Caller(
        "ana", session=handle, scope=Scope.STEER, token="ana"
    )
    assert session_caller(store, handle, at=T0) is None  # the handle signs nobody in
    assert session_caller(store, token, at=T0) is None  # nor does the API token as a secret
    [listed] = list_sessions(store, at=T0)
    assert (listed.user, listed.user_agent, listed.address) == ("ana", "Firefox/140", "10.0.0.7")
    assert listed.expires_at == T0 + timedelta(seconds=defaults.SESSION_MAX_AGE_SECONDS)


def test_a_wrong_or_revoked_token_starts_no_session(store: Store) -> None:
    token = store.create_token("ana")
    assert start_session(store, token + "x") is None
    tokens.revoke_token(store, "ana", "ana")
    assert start_session(store, token) is None
    assert list_sessions(store) == []


def test_a_session_used_every_day_still_ends_fourteen_days_after_sign_in(store: Store) -> None:
    secret, _ = sign_in(store, store.create_token("ana"))
    for day in range(14):
        assert session_caller(store, secret, at=T0 + day * DAY) is not None, day
    end = T0 + timedelta(seconds=defaults.SESSION_MAX_AGE_SECONDS)
    assert session_caller(store, secret, at=end - timedelta(seconds=1)) is not None
    assert session_caller(store, secret, at=end) is None
    assert list_sessions(store, at=end) == []


def test_a_session_unused_for_three_days_ends_and_each_use_moves_that_on(store: Store) -> None:
    secret, _ = sign_in(store, store.create_token("ana"))
    idle = timedelta(seconds=defaults.SESSION_IDLE_SECONDS)
    used = T0 + idle - timedelta(minutes=1)
    assert session_caller(store, secret, at=used) is not None  # just in time
    [listed] = list_sessions(store, at=used)
    assert (listed.last_seen_at, listed.idle_expires_at) == (used, used + idle)
    assert session_caller(store, secret, at=used + idle - timedelta(seconds=1)) is not None
    other, _ = sign_in(store, store.create_token("ben"))
    assert session_caller(store, other, at=T0 + idle) is None  # never used since sign-in


def test_last_seen_is_written_at_most_once_a_minute(store: Store) -> None:
    secret, _ = sign_in(store, store.create_token("ana"))
    session_caller(store, secret, at=T0 + timedelta(seconds=30))
    assert list_sessions(store, at=T0)[0].last_seen_at == T0
    session_caller(store, secret, at=T0 + timedelta(seconds=61))
    assert list_sessions(store, at=T0)[0].last_seen_at == T0 + timedelta(seconds=61)


def test_signing_out_ends_the_session_for_good(store: Store) -> None:
    token = store.create_token("ana")
    secret, _ = sign_in(store, token)
    kept, kept_handle = sign_in(store, token)
    assert end_session(store, secret, at=T0) is True
    assert session_caller(store, secret, at=T0) is None
    assert end_session(store, secret, at=T0) is False  # twice changes nothing
    assert [s.handle for s in list_sessions(store, at=T0)] == [kept_handle]
    assert session_caller(store, kept, at=T0) is not None  # the other browser stays in


def test_revoking_a_token_ends_every_session_made_with_it(store: Store) -> None:
    ana, ben = store.create_token("ana"), store.create_token("ben")
    first, _ = sign_in(store, ana)
    second, _ = sign_in(store, ana)
    kept, _ = sign_in(store, ben)
    tokens.revoke_token(store, "ana", "ana")
    assert session_caller(store, first, at=T0) is None
    assert session_caller(store, second, at=T0) is None
    assert [s.user for s in list_sessions(store, at=T0)] == ["ben"]
    assert session_caller(store, kept, at=T0) is not None


def test_sessions_list_newest_first_and_a_user_sees_and_revokes_only_their_own(
    store: Store,
) -> None:
    ana, ben = store.create_token("ana"), store.create_token("ben", admin=True)
    _, ana_old = sign_in(store, ana)
    _, ben_handle = sign_in(store, ben, at=T0 + timedelta(minutes=1))
    ana_secret, ana_new = sign_in(store, ana, at=T0 + timedelta(minutes=2))
    at = T0 + timedelta(minutes=3)
    assert [s.handle for s in list_sessions(store, at=at)] == [ana_new, ben_handle, ana_old]
    assert [s.handle for s in list_sessions(store, user="ana", at=at)] == [ana_new, ana_old]

    with pytest.raises(NotFoundError, match=f"No session '{ben_handle}' of ana"):
        revoke_session(store, ben_handle, user="ana", at=at)
    assert revoke_session(store, ana_new, user="ana", at=at).user == "ana"
    assert session_caller(store, ana_secret, at=at) is None
    assert revoke_session(store, ana_old, at=at).handle == ana_old  # an admin: anyone's
    with pytest.raises(NotFoundError, match=f"No session '{ana_old}'"):
        revoke_session(store, ana_old, at=at)  # ended already
    assert [s.handle for s in list_sessions(store, at=at)] == [ben_handle]


def test_ended_sessions_are_deleted_at_the_next_sign_in(store: Store) -> None:
    token = store.create_token("ana")
    signed_out, _ = sign_in(store, token)
    end_session(store, signed_out, at=T0)
    sign_in(store, token)  # will expire
    sign_in(store, token, at=T0 + 15 * DAY)
    with store.sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM console_sessions")) == 1


def test_token_caller_says_whether_the_token_is_an_admin_token(store: Store) -> None:
    admin, plain = store.create_token("root", admin=True), store.create_token("ana")
    assert token_caller(store, admin) == Caller("root", admin=True, token="root")
    assert token_caller(store, plain) == Caller("ana", admin=False, scope=Scope.STEER, token="ana")
    assert token_caller(store, plain + "x") is None
    assert [(t.name, t.admin) for t in tokens.list_tokens(store)] == [
        ("ana", False),
        ("root", True),
    ]


def test_console_sessions_table_matches_its_migration(store: Store) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "console_sessions" in str(d) or "admin" in str(d)] == []


def test_tokens_made_before_the_upgrade_become_admin_tokens(database_url: str) -> None:
    # Before, every token could do everything: nobody loses a right by upgrading.
    engine = create_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        connection.execute(
            text(
                "INSERT INTO tokens (name, token_hash, created_at, revoked) "
                "VALUES ('old', :hash, :at, false)"
            ),
            {"hash": "0" * 64, "at": T0},
        )
    engine.dispose()
    store = Store(database_url)
    try:
        store.migrate()
        new = store.create_token("new")
        assert [(t.name, t.admin) for t in tokens.list_tokens(store)] == [
            ("new", False),
            ("old", True),
        ]
        assert token_caller(store, new) == Caller("new", scope=Scope.STEER, token="new")
    finally:
        store.close()
