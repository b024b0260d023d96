"""Failures of storage or the node are never the stage's: the run is lost, with the reason.

Object storage goes away for real here: the runners reach SeaweedFS through a TCP gate
that the test closes (connections refused, as from a stopped server) and opens again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends.events import Events
from tests.backends.test_local import make_spec, sh
from tests.fixtures.winslow import Harness, _serve, build_context
from winslow.backends.base import JobState
from winslow.backends.local import LocalBackend
from winslow.storage import keys
from winslow.storage.objects import ObjectStore
from winslow.storage.s3 import S3Config


class TcpGate:
    """A port on 127.0.0.1 that forwards to ``target`` while open and refuses while shut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def shut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def gate(object_store: ObjectStore) -> Iterator[TcpGate]:
    host, port = object_store.cfg.endpoint_url.removeprefix("http://").split(":")
    gate = TcpGate((host, int(port.rstrip("/"))))
    try:
        yield gate
    finally:
        gate.shut()


def through(gate: TcpGate, cfg: S3Config) -> S3Config:
    return dataclasses.replace(cfg, endpoint_url=f"http://127.0.0.1:{gate.port}")


def wait_for_text(path: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.05)


def test_stage_in_retries_while_storage_is_away_and_runs_the_stage_when_it_is_back(
    tmp_path: Path, object_store: ObjectStore, gate: TcpGate
) -> None:
    object_store.put_bytes(keys.resource_key("videos/a.txt"), b"frame data")
    events = Events(within=180)
    backend = LocalBackend(
        tmp_path / "data",
        through(gate, object_store.cfg),
        container_engine=False,
        transfer_retry_delays=(1, 1, 1, 1, 1, 1, 1, 1),
    )
    backend.start(events)
    try:
        spec = make_spec("brief-outage", sh("cat $WINSLOW_INPUTS/videos/a.txt"))
        spec = dataclasses.replace(spec, inputs=("videos/a.txt",))
        backend.submit(spec)
        wait_for_text(backend.jobs_dir / spec.job_id / "log.txt", "stage-in: attempt #1/9 failed")
        gate.open()
        status = events.wait_for(
            backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED, JobState.LOST
        )
    finally:
        backend.stop()
    assert status.state is JobState.SUCCEEDED, status.reason
    log = (backend.jobs_dir / spec.job_id / "log.txt").read_text()
    assert "stdout | frame data" in log


def test_storage_away_longer_than_the_retries_loses_the_run_and_on_lost_retries_it(
    tmp_path: Path, object_store: ObjectStore, gate: TcpGate
) -> None:
    object_store.put_bytes(keys.resource_key("videos/a.txt"), b"frame data")
    backend = LocalBackend(
        tmp_path / "winslow" / "local",
        through(gate, object_store.cfg),
        container_engine=False,
        kill_grace_seconds=2,
        transfer_retry_delays=(0.1, 3),
    )
    context = build_context(tmp_path / "winslow", object_store, backend=backend)
    harness: Harness = next(serve := _serve(context, tmp_path))
    try:
        harness.apply_pipeline("""
name: reads
stages:
  - name: detect
    inputs: [videos/a.txt]
    command: ["sh", "-c", "cat $WINSLOW_INPUTS/videos/a.txt > seen.txt"]
    retry: {on_failure: 0, on_lost: 1}
""")
        harness.create("outage", "reads", start=True)
        deadline = time.monotonic() + 180
        harness.engine.reconcile_once()
        while (first := harness.show("outage")["runs"][0])["state"] != "lost":
            assert first["state"] in ("pending", "running"), first
            assert time.monotonic() < deadline, first
            time.sleep(0.1)
            harness.engine.reconcile_once()
        gate.open()
        harness.engine.run_until_idle(timeout=180)
        project: dict[str, Any] = harness.show("outage")
    finally:
        with contextlib.suppress(StopIteration):
            next(serve)
    lost, retried = project["runs"]
    assert lost["attempt"] == 1
    assert lost["reason"].startswith("stage-in failed on node"), lost["reason"]
    assert "object storage or the node, not the stage" in lost["reason"]
    assert "after 3 attempts" in lost["reason"]
    # on_failure is 0: only on_lost could start this second attempt.
    assert (retried["attempt"], retried["state"]) == (2, "succeeded")
    assert project["state"] == "succeeded"


def test_missing_input_still_fails_the_run(tmp_path: Path, object_store: ObjectStore) -> None:
    events = Events()
    backend = LocalBackend(tmp_path / "data", object_store.cfg, container_engine=False)
    backend.start(events)
    try:
        spec = make_spec("no-such-input", ["true"], inputs=("videos/missing.mp4",))
        backend.submit(spec)
        status = events.wait_for(backend, spec.job_id, JobState.FAILED, JobState.LOST)
    finally:
        backend.stop()
    assert status.state is JobState.FAILED  # the pipeline's mistake: a retry would not help


@pytest.mark.slow  # stage-in's default retries on a Nomad node: about two minutes
def test_nomad_stage_in_that_cannot_reach_storage_loses_the_run(
    nomad_standin: Any, object_store: ObjectStore, gate: TcpGate
) -> None:
    """stage-in exits ``INFRASTRUCTURE_EXIT_CODE`` after its retries; the stand-in reports
    the failed prestart task as Nomad does (``Terminated`` with the exit code, the main
    task killed as ``Sibling Task Failed``), and the backend calls the run lost."""
    from tests.backends.nomad.test_backend import WINSLOW, job_id
    from tests.backends.nomad.test_backend import make_spec as nomad_spec
    from winslow.backends.nomad.backend import NomadBackend
    from winslow.backends.nomad.config import NomadConfig

    s3 = object_store.cfg
    config = NomadConfig(
        address=nomad_standin.address,
        allow_host_commands=True,
        tools_driver="raw_exec",
        winslow_command=WINSLOW,
        s3_endpoint=f"http://127.0.0.1:{gate.port}",  # shut for the whole test
        transfer_retry_delays=(0.2, 0.2),
        s3_bucket=s3.bucket,
        s3_region=s3.region,
    )
    nomad_standin.put_variable(
        config.credentials_path, {"access_key": s3.access_key, "secret_key": s3.secret_key}
    )
    events = Events(within=300, recheck=5.0)
    backend = NomadBackend(config)
    backend.start(events)
    try:
        spec = nomad_spec(job_id("s3-away"), "echo never", inputs=("videos/a.txt",))
        backend.submit(spec)
        status = events.wait_for(
            backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED, JobState.LOST
        )
    finally:
        backend.stop()
    assert status.state is JobState.LOST, status.reason
    assert status.reason.startswith("stage-in failed on node standin-1 (object storage"), (
        status.reason
    )
