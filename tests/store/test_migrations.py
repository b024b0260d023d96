"""Migrations on start: a database at the newest revision is not handed to alembic."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from winslow.errors import SchemaError
from winslow.store.db import (
    MIGRATIONS,
    current_revision,
    make_engine,
    migrate,
    migrate_apart,
    newest_revision,
)
from winslow.store.repo import Store, open_store

APART = """
import sys
from winslow.store.db import migrate_apart
from winslow.store.repo import open_store
migrate_apart(sys.argv[1])
store = open_store(sys.argv[1])
assert store.list_projects() == []
print("alembic" in sys.modules)
"""

CHECK = """
import sys
from winslow.store.repo import open_store
store = open_store(sys.argv[1])
assert store.list_projects() == []
print("alembic" in sys.modules)
"""


def test_each_migration_is_named_after_its_revision_and_they_form_one_chain() -> None:
    """``newest_revision`` reads the newest revision from the file names."""
    revisions: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*_*.py")):
        assigned = {
            node.targets[0].id: ast.literal_eval(node.value)
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        }
        assert assigned["revision"] == path.name.split("_", 1)[0], path.name
        revisions[assigned["revision"]] = assigned["down_revision"]
    chain = sorted(revisions)
    assert [revisions[r] for r in chain] == [None, *chain[:-1]]
    assert newest_revision() == chain[-1]


def test_a_current_database_starts_without_alembic(database_url: str, tmp_path: Path) -> None:
    """Issue 17: alembic costs the server about 11 MB for ever once imported; a database
    already at the newest revision (every start after the first) needs none of it."""
    fresh = Store(database_url)
    assert current_revision(fresh.engine) is None
    fresh.close()
    first = subprocess.run(
        [sys.executable, "-c", CHECK, database_url], capture_output=True, text=True, check=True
    )
    assert first.stdout.strip() == "True"  # it had to migrate
    again = subprocess.run(
        [sys.executable, "-c", CHECK, database_url], capture_output=True, text=True, check=True
    )
    assert again.stdout.strip() == "False"
    store = open_store(database_url)
    try:
        assert current_revision(store.engine) == newest_revision()
    finally:
        store.close()


def test_a_database_migrated_apart_leaves_alembic_out_of_the_server(database_url: str) -> None:
    """Issue 17: the first start on a new database (and the first after an upgrade)
    migrated in the server's own process, which then carried alembic's 11 MB for good
    (the upload benchmark's server: 158 MB idle). ``migrate_apart`` runs it in a child."""
    first = subprocess.run(
        [sys.executable, "-c", APART, database_url], capture_output=True, text=True, check=True
    )
    assert first.stdout.strip() == "False"
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == newest_revision()
    finally:
        engine.dispose()


def test_a_database_a_newer_winslow_migrated_is_refused_by_name(database_url: str) -> None:
    """Run after a downgrade, alembic said only that it could not locate the revision;
    the server must say what happened and what to do, and leave the database alone."""
    open_store(database_url).close()
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(SchemaError, match=r"schema 9999, newer than this Winslow .* backup"):
            migrate(engine)
        with pytest.raises(SchemaError, match=r"schema 9999, newer than this Winslow"):
            migrate_apart(database_url)
        assert current_revision(engine) == "9999"
    finally:
        engine.dispose()


def test_a_migration_that_fails_apart_says_why_and_changes_nothing(tmp_path: Path) -> None:
    """A database that already holds a table of that name (another program's): the child's
    error reaches the server's message, and the tables the migration made before it are
    rolled back."""
    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE projects (theirs INTEGER)"))
        with pytest.raises(
            SchemaError,
            match=r"failed: OperationalError: table projects already exists\. Nothing was",
        ):
            migrate_apart(url)
        assert inspect(engine).get_table_names() == ["projects"]
        assert current_revision(engine) is None
    finally:
        engine.dispose()
