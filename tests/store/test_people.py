"""People and access in the store, on SQLite and on PostgreSQL: users, passwords, groups
from a directory, grants, personal tokens, and the upgrade that turns every old token
into a user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from tests.fixtures.postgres import ON_BOTH_DATABASES
from winslow.core.access import EVERYONE, ExternalIdentity, Grant, Role, Scope
from winslow.errors import ConflictError, NotFoundError, ValidationError
from winslow.store import people, tokens
from winslow.store.db import MIGRATIONS
from winslow.store.repo import Store
from winslow.store.sessions import session_caller, start_session

pytestmark = ON_BOTH_DATABASES

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_local_password_is_kept_hashed_and_checked(store: Store) -> None:
    people.create_user(store, "ana", password="correct horse")
    assert people.verify_password(store, "ana", "correct horse") is not None
    assert people.verify_password(store, "ana", "wrong horse") is None
    assert people.verify_password(store, "nobody", "correct horse") is None
    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    with pytest.raises(ValidationError, match="at least 8 characters"):
        people.set_password(store, "ana", "short")
    with pytest.raises(ConflictError, match="A user named 'ana' exists already"):
        people.create_user(store, "ana")


def test_a_disabled_user_cannot_sign_in_and_their_sessions_end(store: Store) -> None:
    people.create_user(store, "ana", password="correct horse")
    started = start_session(store, user="ana")
    assert started is not None
    secret, _ = started
    token, _ = tokens.create_token(store, "ana", "laptop")
    assert session_caller(store, secret) is not None

    people.update_user(store, "ana", disabled=True)

    assert session_caller(store, secret) is None
    assert tokens.token_caller(store, token) is None
    assert people.verify_password(store, "ana", "correct horse") is None
    assert start_session(store, user="ana") is None


def test_directory_groups_follow_each_sign_in_and_local_ones_stay(store: Store) -> None:
    people.create_group(store, "lab")
    first = ExternalIdentity("ana", "ldap", display_name="Ana", groups=("vision", "traffic"))
    assert people.sync_external(store, first).groups == {"traffic": "member", "vision": "member"}
    people.set_member(store, "lab", "ana", "maintainer")

    again = people.sync_external(store, ExternalIdentity("ana", "ldap", groups=("vision",)))

    assert again.groups == {"lab": "maintainer", "vision": "member"}
    assert again.display_name == "Ana" and again.source == "ldap"
    assert people.get_group(store, "vision").source == "ldap"
    with pytest.raises(ValidationError, match="follows LDAP"):
        people.set_member(store, "vision", "ana", "owner")


def test_a_directory_cannot_take_over_a_local_user(store: Store) -> None:
    people.create_user(store, "ana", password="correct horse")
    with pytest.raises(ConflictError, match="'ana' is a local user here"):
        people.sync_external(store, ExternalIdentity("ana", "oidc"))


def test_a_project_keeps_an_owner_and_only_well_formed_grants(store: Store) -> None:
    with pytest.raises(ValidationError, match="at least one owner"):
        people.set_access(store, "project", "p1", [Grant("group:vision", Role.MAINTAINER)])
    with pytest.raises(ValueError, match="names nobody"):
        people.set_access(store, "project", "p1", [Grant("vision", Role.OWNER)])
    kept = people.set_access(
        store, "project", "p1", [Grant("user:ana", Role.OWNER), Grant(EVERYONE, Role.PUBLIC)]
    )
    assert set(people.get_access(store, "project", "p1")) == set(kept)
    people.create_group(store, "vision")
    people.set_access(store, "project", "p2", [Grant("group:vision", Role.OWNER)])
    people.delete_group(store, "vision")
    assert people.get_access(store, "project", "p2") == ()  # its grants went with it


def test_a_token_is_scoped_ends_and_tells_when_it_was_last_used(store: Store) -> None:
    people.create_user(store, "ana")
    with pytest.raises(ValidationError, match="Only an admin holds an admin token"):
        tokens.create_token(store, "ana", "root", scope=Scope.ADMIN)
    at = datetime.now(UTC)
    secret, made = tokens.create_token(
        store, "ana", "ci", scope=Scope.READ, projects=["p1"], expires_at=at + timedelta(days=1)
    )
    assert made.scope is Scope.READ and made.projects == ("p1",)
    with store.engine.connect() as connection:
        [row] = connection.execute(text("SELECT * FROM api_tokens")).mappings().all()
    assert row["token_hash"] == tokens.hash_token(secret)
    assert not [column for column, value in row.items() if secret in str(value)]

    caller = tokens.token_caller(store, secret, at=at)
    assert caller is not None
    assert (caller.name, caller.scope, caller.projects, caller.token) == (
        "ana",
        Scope.READ,
        frozenset({"p1"}),
        "ci",
    )
    [listed] = tokens.list_tokens(store, "ana")
    assert listed.last_used_at == at
    assert tokens.token_caller(store, secret, at=at + timedelta(days=2)) is None  # ended
    with pytest.raises(ConflictError, match="'ana' has a token named 'ci' already"):
        tokens.create_token(store, "ana", "ci")
    with pytest.raises(NotFoundError, match="'ana' has no token 'nope'"):
        tokens.revoke_token(store, "ana", "nope")


def test_every_old_token_becomes_a_user_who_keeps_every_project(database_url: str) -> None:
    engine = create_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
        for name, admin in (("root", True), ("ci", False)):
            connection.execute(
                text(
                    "INSERT INTO tokens (name, token_hash, created_at, revoked, admin) "
                    "VALUES (:name, :hash, :at, false, :admin)"
                ),
                {"name": name, "hash": name.ljust(64, "0"), "at": T0, "admin": admin},
            )
        connection.execute(
            text(
                "INSERT INTO projects (id, name, pipeline_name, pipeline, state, waiting_for, "
                "approved_gates, labels, variables, version, created_at, updated_at, "
                "run_overrides, hold_after) VALUES ('p1', 'ulm', 'tiny', '{}', 'idle', '{}', "
                "'[]', '[]', '{}', 1, :at, :at, '{}', '[]')"
            ),
            {"at": T0},
        )
    engine.dispose()
    store = Store(database_url)
    try:
        store.migrate()
        users = {user.name: user for user in people.list_users(store)}
        assert {name: (u.admin, u.groups) for name, u in users.items()} == {
            "ci": (False, {"users": "member"}),
            "root": (True, {"users": "member"}),
        }
        assert people.get_access(store, "project", "p1") == (Grant("group:users", Role.OWNER),)
        scopes = {t.name: (t.user, t.scope) for t in tokens.list_tokens(store)}
        assert scopes == {"ci": ("ci", Scope.STEER), "root": ("root", Scope.ADMIN)}
        # New rows after the carried-over ones (PostgreSQL's sequences too).
        assert people.create_user(store, "new").name == "new"
    finally:
        store.close()


def test_grants_of_thousands_of_projects_come_in_slices(store: Store) -> None:
    keys = [f"p{i}" for i in range(2500)]
    for key in ("p0", "p1200", "p2499"):
        people.set_access(store, "project", key, [Grant("user:ana", Role.OWNER)])
    found = people.access_of(store, "project", keys)
    assert len(found) == 2500
    assert {key for key, grants in found.items() if grants} == {"p0", "p1200", "p2499"}
