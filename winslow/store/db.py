"""Connections to the SQL database and its migrations.

SQLite runs in WAL mode. Write transactions begin ``IMMEDIATE``: the write lock is taken
at the start, so two commands on one project are serialised instead of one of them
failing half way with "database is locked". Reads go through a second engine whose
transactions begin deferred, so in WAL mode they never wait for a writer. PostgreSQL
gets row locks (``SELECT ... FOR UPDATE``) from the store instead, and one engine.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from winslow import defaults
from winslow.errors import SchemaError
from winslow.filemodes import private_file

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, *, for_writes: bool = True) -> Engine:
    """Return a SQLAlchemy engine for ``url``, tuned for Winslow's access pattern.

    On SQLite, ``for_writes`` engines begin every transaction ``IMMEDIATE``; the others
    are for reads only.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )
        database = engine.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            private_file(Path(database))  # token hashes, every variable: owner only (0600)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Each pooled connection keeps its own page cache, filled as the history it
            # reads grows; the operating system caches the file for all of them anyway.
            cursor.execute(f"PRAGMA cache_size=-{defaults.SQLITE_CACHE_KIB}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if for_writes else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def newest_revision() -> str:
    """The newest migration's revision; each file is named after its own (``0007_...``)."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("*_*.py"))


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for one never migrated."""
    with engine.connect() as connection:
        try:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        except DBAPIError:
            return None
    return str(row[0]) if row is not None else None


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest migration; safe to call on every start.

    A database already at the newest revision is left alone without importing alembic:
    alembic stays in memory once imported, about 11 MB the server would carry for ever.
    Raises ``SchemaError`` for a database a newer Winslow has migrated.
    """
    if _needs_migration(engine) is None:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.debug("database schema is current")


def migrate_apart(url: str) -> None:
    """``migrate`` the database at ``url`` in a child process, so that alembic never loads
    into this one (the server's; it would hold those 11 MB for its whole life after the
    first start on a new database or the first after an upgrade).

    Raises ``SchemaError`` for a database a newer Winslow has migrated or a migration
    that failed, with the child's last words.
    """
    engine = make_engine(url)
    try:
        at = _needs_migration(engine)
    finally:
        engine.dispose()
    if at is None:
        return
    if at:
        log.info("migrating the database schema from %s to %s", at, newest_revision())
    else:
        log.info("creating the database's tables (schema %s)", newest_revision())
    # The URL may hold a password: on stdin, not in the arguments every user can list.
    done = subprocess.run(
        [sys.executable, "-m", "winslow.store.migrate"],
        input=url,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise SchemaError(
            f"Migrating the database {shown_url(url)} to schema {newest_revision()} failed: "
            f"{said[-1] if said else f'exit status {done.returncode}'}. Nothing was changed: "
            "the migrations run in one transaction."
        )


def _needs_migration(engine: Engine) -> str | None:
    """The revision a database to migrate is at ('' for none yet); None when it is current.

    Raises ``SchemaError`` when it is newer than this Winslow: alembic would only say it
    cannot find that revision, and running on would misread its tables.
    """
    at = current_revision(engine)
    newest = newest_revision()
    if at == newest:
        log.debug("database schema is current")
        return None
    if at is not None and at > newest:
        raise SchemaError(
            f"The database {shown_url(str(engine.url))} has schema {at}, newer than this "
            f"Winslow knows (up to {newest}): a newer Winslow has used it. Run that "
            "version, or restore the backup taken before the upgrade (README: Upgrades)."
        )
    return at or ""


def shown_url(url: str) -> str:
    """``url`` as it may be printed: without its password."""
    return make_url(url).render_as_string(hide_password=True)
