"""Winslow's data folder is its user's alone: 0700, with the database and keys 0600.

A folder or file found with bits for its group or others loses them at start, and the
log says once what was tightened (issue 14: "make the data folder 0700 and winslow.db
0600").
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from tests.fixtures.winslow import build_context
from winslow.filemodes import private_dir, private_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_dir_makes_a_new_folder_0700_and_tightens_an_open_one_once(tmp_path, caplog):
    new = private_dir(tmp_path / "a" / "new")
    assert mode(new) == 0o700
    old = tmp_path / "old"
    old.mkdir(mode=0o775)
    old.chmod(0o775)
    with caplog.at_level(logging.INFO, logger="winslow.filemodes"):
        private_dir(old)
        private_dir(old)
    assert mode(old) == 0o700
    assert [r.getMessage() for r in caplog.records] == [
        f"{old}: mode 775 tightened to 700 (owner only)"
    ]


def test_private_file_makes_a_missing_file_0600_and_keeps_an_existing_ones_content(tmp_path):
    private_file(tmp_path / "new")
    assert mode(tmp_path / "new") == 0o600
    old = tmp_path / "old"
    old.write_text("kept")
    old.chmod(0o644)
    private_file(old)
    assert (mode(old), old.read_text()) == (0o600, "kept")
    private_file(tmp_path / "no-such-folder" / "file")  # whoever opens it reports that
    assert not (tmp_path / "no-such-folder").exists()


def test_winslow_tightens_its_data_folder_and_database_at_start(tmp_path, object_store, caplog):
    data_dir = tmp_path / "winslow"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    (data_dir / "winslow.db").touch(mode=0o644)
    (data_dir / "winslow.db").chmod(0o644)
    with caplog.at_level(logging.INFO, logger="winslow.filemodes"):
        context = build_context(data_dir, object_store)
    try:
        context.store.create_token("tester")  # a write: SQLite makes its -wal file now
        databases = sorted(p.name for p in data_dir.glob("winslow.db*"))
        assert {name: mode(data_dir / name) for name in databases} == dict.fromkeys(
            databases, 0o600
        )
    finally:
        context.store.close()
    assert mode(data_dir) == 0o700
    assert "winslow.db-wal" in databases
    assert sorted(r.getMessage() for r in caplog.records) == [
        f"{data_dir / 'winslow.db'}: mode 644 tightened to 600 (owner only)",
        f"{data_dir}: mode 755 tightened to 700 (owner only)",
    ]


def test_a_new_database_is_0600_from_its_first_byte(tmp_path, object_store):
    data_dir = tmp_path / "fresh"
    context = build_context(data_dir, object_store)
    try:
        assert mode(data_dir) == 0o700
        assert mode(data_dir / "winslow.db") == 0o600
    finally:
        context.store.close()
