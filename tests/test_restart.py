"""The server killed with `kill -9` while stages run: nothing is lost, nothing runs twice."""

from __future__ import annotations

import random
import time
from pathlib import Path

import psutil
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
    # Read over HTTP from here: a CLI process per look took longer on a loaded machine
    # than the two seconds `track` runs.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        project = server.api("/projects/p")
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


CHAIN_STAGES = 8

CHAIN = "name: chain\nvariables:\n  MARKER: {required: true}\nstages:\n" + "".join(
    f"  - name: s{i}\n"
    f'    command: ["sh", "-c", "echo s{i}-$WINSLOW_RUN >> ${{MARKER}}; sleep 0.3"]\n'
    for i in range(CHAIN_STAGES)
)


def warm_runners(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if "winslow.node.warm" in cmdline and str(data_dir) in cmdline:
            found.append(process)
    return found


def test_kill_9_at_random_moments_with_the_warm_runner_runs_every_stage_once(
    winslow_server: Server, tmp_path: Path
) -> None:
    """Issue 17: stages forked by the warm runner outlive the server like cold runners
    did. The server is killed at random moments (launches, stage-outs, records) while a
    chain of short stages runs; at the end each stage ran exactly once, and every warm
    runner of a killed server went with it (no process piles up)."""
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    server = winslow_server
    marker = tmp_path / "marker.txt"
    pipeline = tmp_path / "chain.yaml"
    pipeline.write_text(CHAIN)
    server.cli("pipeline", "apply", str(pipeline))
    server.cli("project", "create", "p", "--pipeline", "chain", "--var", f"MARKER={marker}")
    server.cli("project", "start", "p")
    for _ in range(5):
        time.sleep(chance.uniform(0.1, 1.2))
        server.kill9()
        if chance.random() < 0.5:
            time.sleep(chance.uniform(0.1, 1.0))  # stages end while no server is up
        server.start()

    project = server.wait_for("p", {"succeeded", "failed"}, timeout=120)
    assert project["state"] == "succeeded", (seed, project)
    runs = project["runs"]
    assert [(r["stage"], r["attempt"]) for r in runs] == [
        (f"s{i}", 1) for i in range(CHAIN_STAGES)
    ], seed
    assert marker.read_text().splitlines() == [f"s{i}-{r['id']}" for i, r in enumerate(runs)]
    assert "starting a cold runner instead" not in server.log_path.read_text(), seed
    # At most the last server's: one starts with a server's first launch, and the last
    # server may have had none to make (its stages ran under the ones before).
    deadline = time.monotonic() + 10
    while len(warm_runners(server.data_dir)) > 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(warm_runners(server.data_dir)) <= 1, seed
