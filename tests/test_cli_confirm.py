"""What the CLI asks of a person and tells them: `winslow project delete` at a terminal
asks first (a script, with no terminal, or `--yes` does not), run in a real
pseudo-terminal as a person types; `project wait` on a project never started says so.

Found by trying it: a mistyped project name deleted that project, its runs, workspaces
and logs at once, without a word; and `wait` on a project created without `--start`
waited its whole hour for something only a person could do.
"""

from __future__ import annotations

import os
import pty
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.server import BIN, Server

pytestmark = pytest.mark.slow

QUICK = 'name: quick\nstages:\n  - name: a\n    command: ["true"]\n'


@pytest.fixture
def server(module_server: Server, tmp_path: Path) -> Server:
    (tmp_path / "q.yaml").write_text(QUICK)
    module_server.cli("pipeline", "apply", str(tmp_path / "q.yaml"))
    return module_server


def at_a_terminal(server: Server, *args: str, answer: str) -> tuple[int, str]:
    """Run `winslow ARGS` with a terminal as stdin and stdout, answer its question (once it
    asks one, or at once if it ends first) and return its exit status and what it wrote."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [str(BIN / "winslow"), *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=server.env,
    )
    os.close(secondary)
    shown = b""
    deadline = time.monotonic() + 60
    while b"? [" not in shown and time.monotonic() < deadline:
        try:
            shown += os.read(primary, 4096)
        except OSError:  # the terminal closed: it ended without asking
            break
    if process.poll() is None:
        os.write(primary, answer.encode() + b"\n")
    status = process.wait(timeout=60)
    try:
        while chunk := os.read(primary, 4096):
            shown += chunk
    except OSError:
        pass
    os.close(primary)
    return status, shown.decode().replace("\r\n", "\n")


def test_delete_at_a_terminal_asks_and_no_keeps_the_project(server: Server) -> None:
    server.cli("project", "create", "kept", "--pipeline", "quick", "--start")
    server.wait_for("kept", {"succeeded"})

    status, shown = at_a_terminal(server, "project", "delete", "kept", answer="n")
    assert "Delete project 'kept' with its 1 run, history, workspaces and logs? [y/N]" in shown
    assert status == 1 and "Nothing deleted." in shown
    assert server.json("project", "show", "kept")["name"] == "kept"

    status, shown = at_a_terminal(server, "project", "delete", "kept", answer="y")
    assert status == 0 and "project 'kept' deleted" in shown
    assert server.cli("project", "show", "kept", check=False).returncode == 1


def test_a_script_or_yes_deletes_without_asking(server: Server) -> None:
    for name in ("scripted", "said-yes"):
        server.cli("project", "create", name, "--pipeline", "quick")
    # No terminal: as before, for the scripts that delete projects.
    assert server.cli("project", "delete", "scripted").stdout == "project 'scripted' deleted\n"
    status, shown = at_a_terminal(server, "project", "delete", "said-yes", "--yes", answer="")
    assert status == 0 and "? [" not in shown and "project 'said-yes' deleted" in shown


def test_wait_on_a_project_never_started_returns_at_once_saying_it_needs_a_person(
    server: Server,
) -> None:
    server.cli("project", "create", "unstarted", "--pipeline", "quick")
    waited = server.cli("project", "wait", "unstarted", "--timeout", "30", check=False)
    assert waited.returncode == 3, waited.stderr  # not 4: it did not wait the time out
    assert waited.stdout == "unstarted: idle (created; start it when ready)\n"


def test_removing_a_resource_folder_at_a_terminal_asks_naming_its_files(
    server: Server, tmp_path: Path
) -> None:
    """Found by trying it: `resources rm -r videos` took a folder of uploads (every
    project reads the pool) at once, where `project delete` asks first."""
    folder = tmp_path / "survey"
    (folder / "day1").mkdir(parents=True)
    (folder / "day1" / "a.mp4").write_bytes(b"a" * 2048)
    (folder / "b.mp4").write_bytes(b"b" * 1024)
    server.cli("resources", "upload", str(folder), "confirm-survey")

    status, shown = at_a_terminal(server, "resources", "rm", "-r", "confirm-survey", answer="n")
    assert (
        "Delete 'confirm-survey' with its 2 files (3.0 KiB) from the resource pool? [y/N]" in shown
    ), shown
    assert status == 1 and "Nothing deleted." in shown
    kept = server.json("resources", "ls", "confirm-survey", "--recursive")["data"]
    assert sorted(e["name"] for e in kept if not e["is_dir"]) == ["a.mp4", "b.mp4"]

    status, shown = at_a_terminal(server, "resources", "rm", "-r", "confirm-survey", answer="y")
    assert status == 0 and "deleted confirm-survey" in shown
    assert server.json("resources", "ls", "confirm-survey")["data"] == []


def test_a_script_or_yes_removes_a_resource_folder_without_asking(
    server: Server, tmp_path: Path
) -> None:
    for name in ("scripted-folder", "yes-folder"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f.txt").write_text("x")
        server.cli("resources", "upload", str(tmp_path / name), name)
    assert server.cli("resources", "rm", "-r", "scripted-folder").stdout == (
        "deleted scripted-folder\n"
    )
    status, shown = at_a_terminal(server, "resources", "rm", "-r", "yes-folder", "-y", answer="")
    assert status == 0 and "? [" not in shown and "deleted yes-folder" in shown
