"""Is a SQLite database locked for writing, and by whom: asked once, at start-up.

The store waits up to 30 s for SQLite's write lock (``PRAGMA busy_timeout``), which is right
for a running server and wrong for one starting: a database held by another program would
leave the person looking at nothing for half a minute, then at a traceback. ``write_lock_problem``
asks with a short wait and, if the lock stays taken, names the processes that hold the file
open (read from ``/proc``, as ``fuser`` does) and what to do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

STARTUP_LOCK_WAIT_SECONDS = 5.0
"""How long start-up waits for SQLite's write lock before giving up, seconds."""

PROC = Path("/proc")
_COMMAND_CHARS = 80
"""Characters of a holder's command line quoted in the message."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database, memory or a ``file:`` URI."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database)


def write_lock_problem(url: str, wait: float = STARTUP_LOCK_WAIT_SECONDS) -> str | None:
    """Try SQLite's write lock for ``wait`` seconds; None if it was free (or the URL is no
    SQLite file that exists), else a message naming the file, its holders and what to do.

    Other failures (no such folder, a file that is no database) are left to the store,
    whose own error says what it is.
    """
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return None
    try:
        connection = sqlite3.connect(
            f"file:{quote(str(path))}?mode=rw", uri=True, timeout=wait, isolation_level=None
        )
    except sqlite3.Error:
        return None
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            return None
        holders = ", ".join(holders_of(path)) or "a process this user cannot see"
        return (
            f"The database {path} stayed locked for writing for {wait:g} s; held open by "
            f"{holders}. Is another `winslow up` using this data folder? Stop it, or end "
            "that program's transaction, then start again."
        )
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return None


def holders_of(path: Path) -> list[str]:
    """Other processes that have ``path`` (or its ``-wal``, ``-shm``, ``-journal``) open, as
    "pid 41 (sqlite3 winslow.db)"; those of other users stay unseen."""
    target = str(path.resolve())
    names = {target, target + "-wal", target + "-journal", target + "-shm"}
    found: list[str] = []
    with contextlib.suppress(OSError):
        for entry in sorted(PROC.iterdir(), key=lambda e: e.name):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            if _has_open(entry, names):
                found.append(f"pid {entry.name} ({_command(entry)})")
    return found


def _has_open(process: Path, names: set[str]) -> bool:
    try:
        descriptors = list((process / "fd").iterdir())
    except OSError:
        return False
    for fd in descriptors:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in names:
                return True
    return False


def _command(process: Path) -> str:
    try:
        raw = (process / "cmdline").read_bytes()
    except OSError:
        return "?"
    # Arguments may hold newlines (`python -c`): the message stays one line.
    text = " ".join(raw.replace(b"\0", b" ").decode(errors="replace").split())
    return text[:_COMMAND_CHARS] or "?"
