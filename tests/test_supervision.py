"""The embedded SeaweedFS is supervised: a weed that dies is reaped, reported as down in
health and the console, and restarted with a growing pause; SIGTERM stops the server as
cleanly as Ctrl+C, and a weed left by an earlier start is adopted and stopped with it."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.ports import pick_ports
from tests.fixtures.server import Server, running_server
from tests.fixtures.winslow import Harness
from winslow.storage.objects import ObjectStore
from winslow.storage.s3 import S3Config
from winslow.storage.seaweed import PID_FILE, SeaweedServer
from winslow.storage.supervisor import (
    RESTART_BACKOFF_SECONDS,
    S3Probe,
    StorageSupervisor,
    describe_exit,
    restart_delay,
)


def health(server: Server) -> dict:
    return httpx.get(server.addr + "/api/v1/health", timeout=5).json()  # type: ignore[no-any-return]


def weed_pid(data_dir: Path) -> int:
    return int((data_dir / "s3" / PID_FILE).read_text())


def gone(pid: int) -> bool:
    """No such process, or one that has ended and only waits for a parent that is not
    ours to reap it (an adopted weed's parent is whoever started it)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def embedded_store(server: Server) -> ObjectStore:
    keys = json.loads((server.data_dir / "s3" / "s3-credentials.json").read_text())
    return ObjectStore(
        S3Config(
            endpoint_url=f"http://127.0.0.1:{server.s3_port}",
            access_key=keys["access_key"],
            secret_key=keys["secret_key"],
            bucket="winslow",
        )
    )


# -- the pure parts ----------------------------------------------------------------------


def test_the_restart_pause_doubles_up_to_its_cap() -> None:
    assert [restart_delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert RESTART_BACKOFF_SECONDS[-1] == 30


def test_an_exit_is_described_as_a_person_reads_it() -> None:
    assert describe_exit(41, -9) == "SeaweedFS (pid 41) was killed by signal 9"
    assert describe_exit(41, 2) == "SeaweedFS (pid 41) exited with code 2"
    assert describe_exit(41, None) == "SeaweedFS (pid 41) is gone"


# -- health and the console --------------------------------------------------------------


def test_health_says_degraded_with_the_reason_while_s3_does_not_answer(
    winslow: Harness, object_store: ObjectStore
) -> None:
    nowhere = dataclasses.replace(
        object_store.cfg, endpoint_url=f"http://127.0.0.1:{pick_ports(1)[0]}"
    )
    supervisor = StorageSupervisor(S3Probe(nowhere))
    winslow.context.supervisor = supervisor
    supervisor.check_once()

    response = winslow.api.get("/api/v1/health", headers={"Authorization": ""})
    assert response.status_code == 200  # the server itself runs: keep sending it requests
    body = response.json()
    assert body["status"] == "degraded"
    assert [p["component"] for p in body["problems"]] == ["s3"]
    assert body["problems"][0]["reason"].startswith(f"S3 at {nowhere.endpoint_url} does not")
    assert not supervisor.s3_up()

    console = TestClient(winslow.api.app)
    console.post("/api/v1/session", json={"token": winslow.token})
    page = console.get("/")
    assert page.status_code == 200
    assert f"Storage (s3) is down: S3 at {nowhere.endpoint_url} does not answer" in page.text

    winslow.context.supervisor = StorageSupervisor(S3Probe(object_store.cfg))
    winslow.context.supervisor.check_once()
    body = winslow.api.get("/api/v1/health").json()
    assert (body["status"], body["problems"]) == ("ok", [])
    assert "is down" not in console.get("/").text


# -- a weed that dies under a running server ------------------------------------------------


@pytest.mark.slow
def test_a_killed_seaweedfs_is_reaped_reported_restarted_and_keeps_its_data(
    winslow_server: Server,
) -> None:
    server = winslow_server
    store = embedded_store(server)
    store.put_bytes("before/kill.txt", b"written before")
    pid = weed_pid(server.data_dir)
    assert health(server)["status"] == "ok"

    os.kill(pid, signal.SIGKILL)

    degraded = wait_until(
        lambda: (h := health(server))["status"] == "degraded" and h, 20, "degraded health"
    )
    assert degraded["problems"][0]["component"] == "s3"
    assert f"SeaweedFS (pid {pid}) was killed by signal 9" in degraded["problems"][0]["reason"]
    # Reaped by the server: no zombie left behind.
    wait_until(lambda: not psutil.pid_exists(pid), 20, f"pid {pid} leaving the process table")

    wait_until(lambda: health(server)["status"] == "ok", 60, "health back to ok")
    restarted = weed_pid(server.data_dir)
    assert restarted != pid and not gone(restarted)
    assert store.get_bytes("before/kill.txt") == b"written before"
    assert "s3: SeaweedFS restarted" in server.log_path.read_text()


@pytest.mark.slow
def test_a_failed_restart_is_tried_again_after_a_growing_pause(tmp_path: Path) -> None:
    weed = SeaweedServer(tmp_path / "s3", pick_ports(1)[0], detach=True)
    config = weed.start()
    now = [0.0]
    supervisor = StorageSupervisor(S3Probe(config), weed, clock=lambda: now[0])
    try:
        supervisor.check_once()
        assert supervisor.s3_up()
        pid = weed.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not weed.is_running(), 10, "weed's exit seen")
        # Its port taken meanwhile: the restart fails, and the next waits longer.
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", int(config.endpoint_url.rsplit(":", 1)[1])))
        squatter.listen()
        try:
            supervisor.check_once()  # notices; the first restart waits its pause
            assert supervisor.problems()[0].reason.endswith("was killed by signal 9; restarting it")
            now[0] += restart_delay(0)
            supervisor.check_once()
            reason = supervisor.problems()[0].reason
            assert reason.startswith("SeaweedFS did not start again (attempt #1: Port ")
            assert f"next try in {restart_delay(1):.0f} s" in reason
            now[0] += restart_delay(1) - 0.5
            supervisor.check_once()  # still pausing: no attempt #2 yet
            assert "attempt #1" in supervisor.problems()[0].reason
        finally:
            squatter.close()
        now[0] += 0.5
        supervisor.check_once()
        assert supervisor.s3_up() and supervisor.restarts == 1
        assert weed.pid != pid and weed.is_running()
        assert ObjectStore(config).answers()
    finally:
        supervisor.stop()
        weed.stop()


@pytest.mark.slow
def test_an_adopted_weed_that_dies_is_seen_without_waiting_for_it_and_restarted(
    tmp_path: Path,
) -> None:
    port = pick_ports(1)[0]
    first = SeaweedServer(tmp_path / "s3", port, detach=True)
    first.start()
    adopted = SeaweedServer.adopt(tmp_path / "s3", port)
    assert adopted is not None and adopted.adopted and adopted.pid == first.pid
    supervisor = StorageSupervisor(S3Probe(adopted.config), adopted, interval=0.2)
    try:
        supervisor.start()
        assert supervisor.s3_up()
        os.kill(first.pid or 0, signal.SIGKILL)  # a zombie of *this* process: not the adopter's
        wait_until(lambda: not supervisor.s3_up(), 10, "the adopted weed's death seen")
        wait_until(lambda: supervisor.restarts == 1, 60, "the restart")
        assert supervisor.s3_up() and not adopted.adopted and adopted.pid != first.pid
    finally:
        supervisor.stop()
        adopted.stop()
        first.stop()


# -- stopping ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_stop_while_a_stage_runs_leaves_seaweedfs_up_for_it_and_says_so(
    tmp_path: Path,
) -> None:
    """The stage still writes its log and workspace to S3: its SeaweedFS must outlive the
    server. The log said so as "1 stages still run"."""
    pipeline = tmp_path / "nap.yaml"
    pipeline.write_text('name: nap\nstages:\n  - name: nap\n    command: ["sleep", "60"]\n')
    with running_server(tmp_path) as server:
        pid = weed_pid(server.data_dir)
        server.cli("pipeline", "apply", str(pipeline))
        server.cli("project", "create", "nap", "--pipeline", "nap", "--start")
        wait_until(
            lambda: [run["state"] for run in server.api("/projects/nap")["runs"]] == ["running"],
            30,
            "the stage running",
        )
        server.stop()
        assert server.process is not None and server.process.returncode == 0
        assert not gone(pid)
        assert (
            f"s3: 1 stage still runs; SeaweedFS (pid {pid}) stays up for it, and the next "
            "`winslow up` adopts it"
        ) in server.log_path.read_text()


@pytest.mark.slow
def test_sigterm_stops_the_server_and_its_seaweedfs_like_ctrl_c(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        pid = weed_pid(server.data_dir)
        assert server.process is not None
        token = (server.data_dir / "admin-token").read_text().strip()
        # A console tab's event stream stays open: the stop must not wait for it forever.
        with httpx.stream(
            "GET",
            server.addr + "/api/v1/events",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as events:
            assert events.status_code == 200
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=30) == 0
        assert gone(pid)
        assert not (server.data_dir / "s3" / PID_FILE).exists()
        log = server.log_path.read_text()
        assert "winslow: SIGTERM received; stopping" in log
        assert f"seaweedfs: stopped (pid {pid})" in log
        assert "winslow: stopped" in log
        assert "Traceback" not in log


@pytest.mark.slow
def test_a_seaweedfs_left_by_a_killed_server_is_adopted_and_stopped_by_the_next(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path) as server:
        pid = weed_pid(server.data_dir)
        server.kill9()
        assert not gone(pid)  # detached: it outlives the server
        server.start()
        assert f"SeaweedFS from an earlier start (pid {pid}) still answers" in (
            server.log_path.read_text()
        )
        assert health(server)["status"] == "ok"
        server.stop()
        assert server.process is not None and server.process.returncode == 0
        wait_until(lambda: gone(pid), 20, f"the adopted weed {pid} ending")
        assert f"seaweedfs: stopped (pid {pid}, adopted)" in server.log_path.read_text()
