"""Migration 0006 makes exactly the notification tables the code declares, and an upgraded
Winslow starts telling of what happens from the upgrade on, not of its whole history."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from tests.fixtures.postgres import ON_BOTH_DATABASES
from winslow.store.db import MIGRATIONS
from winslow.store.notifications import read_cursor
from winslow.store.repo import Store
from winslow.store.tables import Base

pytestmark = ON_BOTH_DATABASES


def test_notification_tables_match_their_migration(store: Store) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "notify" in str(d)] == []


def test_the_cursor_starts_at_the_end_of_the_history_of_an_upgrade(database_url: str) -> None:
    engine = create_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        for kind in ("state", "run"):
            connection.execute(
                text(
                    "INSERT INTO events (project_id, at, actor, kind, message, data) "
                    "VALUES ('p1', :at, 'engine', :kind, 'old news', '{}')"
                ),
                {"at": datetime(2026, 1, 1, tzinfo=UTC), "kind": kind},
            )
        latest = connection.execute(text("SELECT MAX(id) FROM events")).scalar()
    engine.dispose()
    store = Store(database_url)
    try:
        store.migrate()
        assert latest and read_cursor(store) == latest
    finally:
        store.close()


def test_a_new_database_starts_reading_at_the_beginning(store: Store) -> None:
    assert read_cursor(store) == 0
