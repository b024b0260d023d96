"""Migrations on start: a database at the newest revision is not handed to alembic."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from winslow.store.db import MIGRATIONS, current_revision, newest_revision
from winslow.store.repo import Store, open_store

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
