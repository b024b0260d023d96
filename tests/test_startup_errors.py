"""`winslow up` that cannot start says why in one line, with what to do, exits 1 without a
traceback, and stops what it had started (the SeaweedFS it spawned)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.fixtures.ports import pick_ports
from tests.fixtures.server import BIN, Server
from winslow.store.sqlitelock import write_lock_problem


def up(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `winslow up` to its end; return it and the seconds it took."""
    port, s3_port = pick_ports(2)
    server = Server(tmp_path / "data", port, s3_port)
    started = time.monotonic()
    result = subprocess.run(
        [str(BIN / "winslow"), "up"],
        env={**server.env, **env},
        text=True,
        capture_output=True,
        timeout=120,
    )
    return result, time.monotonic() - started


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line that says what went wrong: the last, the only `error:` one."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]), result.stderr
    return errors[0]


def weeds_of(data_dir: Path) -> list[psutil.Process]:
    """Live `weed` processes serving ``data_dir``."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        alive = process.info["status"] != psutil.STATUS_ZOMBIE
        if alive and "mini" in cmdline and str(data_dir) in cmdline:
            found.append(process)
    return found


def test_a_bad_setting_is_named_with_its_value(tmp_path: Path) -> None:
    result, _ = up(tmp_path, WINSLOW_POLL_SECONDS="soon")
    line = error_line(result)
    assert line.startswith("error: Bad setting: WINSLOW_POLL_SECONDS='soon': Input should be")
    assert line.endswith("Fix it and start again.")


def test_a_port_in_use_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result, _ = up(tmp_path, WINSLOW_PORT=str(port))
    line = error_line(result)
    assert line.startswith(f"error: Cannot listen on 127.0.0.1 port {port}: Address already in use")
    assert "--port or WINSLOW_PORT" in line
    assert not (tmp_path / "data" / "s3").exists()  # no SeaweedFS was started for nothing


def test_traceback_only_at_debug(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result, _ = up(tmp_path, WINSLOW_PORT=port, WINSLOW_LOG_LEVEL="DEBUG")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: Cannot listen on")


def test_an_unreachable_s3_endpoint_is_named_with_the_settings_to_check(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{pick_ports(1)[0]}"
    result, seconds = up(
        tmp_path,
        WINSLOW_S3_ENDPOINT=endpoint,
        WINSLOW_S3_ACCESS_KEY="key",
        WINSLOW_S3_SECRET_KEY="secret",
    )
    line = error_line(result)
    assert line.startswith(f"error: S3 at {endpoint} does not answer")
    assert "check WINSLOW_S3_ENDPOINT, WINSLOW_S3_ACCESS_KEY and WINSLOW_S3_SECRET_KEY" in line
    assert seconds < 60


@pytest.mark.slow
def test_a_write_locked_database_is_named_with_its_holder_and_fails_in_seconds(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    holder = sqlite3.connect(data / "winslow.db", isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")
        result, seconds = up(tmp_path)
    finally:
        holder.close()
    line = error_line(result)
    assert line.startswith(f"error: The database {data / 'winslow.db'} stayed locked for writing")
    assert f"pid {os.getpid()} (" in line  # the holder: this test
    assert "Is another `winslow up` using this data folder?" in line
    assert seconds < 25  # not the store's 30 s busy timeout
    assert weeds_of(data) == []


@pytest.mark.slow
def test_a_failure_after_seaweedfs_started_stops_it(tmp_path: Path) -> None:
    database = tmp_path / "no-such-folder" / "winslow.db"
    result, _ = up(tmp_path, WINSLOW_DATABASE_URL=f"sqlite:///{database}")
    line = error_line(result)
    assert line.startswith("error: Winslow could not start: OperationalError:")
    assert "unable to open database file" in line
    assert "seaweedfs: serving S3" in result.stderr  # it had started
    assert "seaweedfs: stopped" in result.stderr
    assert weeds_of(tmp_path / "data") == []


HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(60)
"""


def test_the_lock_check_names_the_process_holding_the_database(tmp_path: Path) -> None:
    database = tmp_path / "winslow.db"
    sqlite3.connect(database).execute("CREATE TABLE t (x)").connection.close()
    url = f"sqlite:///{database}"
    assert write_lock_problem(url, wait=0.2) is None  # free: nothing to say
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(database)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        started = time.monotonic()
        problem = write_lock_problem(url, wait=0.5)
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    assert problem is not None
    assert problem.startswith(f"The database {database} stayed locked for writing for 0.5 s")
    assert f"held open by pid {holder.pid} ({sys.executable} -c import sqlite3, sys" in problem
    assert "\n" not in problem
    assert write_lock_problem(url, wait=0.2) is None  # its holder gone, the lock is free


def test_the_lock_check_leaves_other_databases_and_missing_files_to_the_store(
    tmp_path: Path,
) -> None:
    assert write_lock_problem("postgresql://winslow@localhost/winslow", wait=0.1) is None
    assert write_lock_problem(f"sqlite:///{tmp_path / 'missing.db'}", wait=0.1) is None
    assert not (tmp_path / "missing.db").exists()  # not created by looking
