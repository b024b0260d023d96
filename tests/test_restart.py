"""The server killed with `kill -9` while stages run: nothing is lost, nothing runs twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fixtures.server import Server

pytestmark = pytest.mark.slow

PIPELINE = """
name: restartable
variables:
  MARKER: {required: true}
stages:
  - name: detect
    command: ["sh", "-c", "echo detect-$WINSLOW_RUN >> ${MARKER}; sleep 3; echo found > found.txt"]
  - name: track
    command: ["sh", "-c", "echo track-$WINSLOW_RUN >> ${MARKER}; sleep 2; cat found.txt"]
"""


def wait_for_running(server: Server, stage: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        project = server.json("project", "show", "p")
        runs = [r for r in project["runs"] if r["stage"] == stage and r["state"] == "running"]
        if runs:
            return runs[0]
        time.sleep(0.2)
    raise AssertionError(f"stage {stage} never ran: {project}")


def test_kill_9_during_stages_then_restart_finishes_each_stage_once(
    winslow_server: Server, tmp_path: Path
) -> None:
    server = winslow_server
    marker = tmp_path / "marker.txt"
    pipeline = tmp_path / "restartable.yaml"
    pipeline.write_text(PIPELINE)
    server.cli("pipeline", "apply", str(pipeline))
    server.cli(
        "project",
        "create",
        "p",
        "--pipeline",
        "restartable",
        "--var",
        f"MARKER={marker}",
        "--start",
    )

    # 1. Killed while detect runs, restarted at once: the running stage is adopted.
    wait_for_running(server, "detect")
    server.kill9()
    server.start()

    # 2. Killed while track runs, and track ends while no server is up.
    wait_for_running(server, "track")
    server.kill9()
    time.sleep(3)
    server.start()

    project = server.wait_for("p", {"succeeded", "failed"})
    assert project["state"] == "succeeded", project
    assert [(r["stage"], r["state"], r["attempt"]) for r in project["runs"]] == [
        ("detect", "succeeded", 1),
        ("track", "succeeded", 1),
    ]
    detect, track = project["runs"]
    assert marker.read_text().splitlines() == [f"detect-{detect['id']}", f"track-{track['id']}"]
    log = server.cli("logs", "p", "--stage", "track").stdout
    assert "stdout | found" in log
