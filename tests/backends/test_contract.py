"""The ``Backend`` contract: one set of assertions, every backend.

The ``backend`` fixture is parametrized over ``local`` (this machine), ``nomad_standin``
(the Nomad stand-in) and ``nomad_cluster`` (a real Nomad agent; skipped unless
``WINSLOW_TEST_NOMAD_ADDR`` is set, see ``make test-nomad-live``). Each gets the same
command-only ``sh -c`` stages, and every assertion here must hold for each: what the
engine relies on, whatever runs the stage. A real agent must run on this machine with
``raw_exec`` enabled (``make nomad-dev``): its tasks use this checkout's ``winslow`` and
the test's SeaweedFS on 127.0.0.1.
"""

from __future__ import annotations

import secrets
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.backends.events import Events
from tests.nomad_api.shapes import ALLOC_STATS_EXTRAS, assert_shape, sample, table_extras
from winslow.backends.base import TERMINAL_JOB_STATES, Backend, JobState, RunSpec, UsageSample
from winslow.backends.local import LocalBackend
from winslow.backends.nomad.backend import NomadBackend
from winslow.backends.nomad.client import NomadClient
from winslow.backends.nomad.config import NomadConfig
from winslow.core.resources import ResourceRequest

WINSLOW = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "winslow")
BUSY_MB = 120
BUSY_STAGE = (
    f"{shlex.quote(sys.executable)} -c 'b = b\"x\" * ({BUSY_MB} << 20); any(iter(int, 1))' & "
    f"{shlex.quote(sys.executable)} -c 'any(iter(int, 1))' & wait"
)
"""Two processes that keep a core busy each, one holding ``BUSY_MB`` of touched memory."""
WAIT_SECONDS = 60.0
CANCEL_SECONDS = 20.0
"""How quickly a cancelled stage must read CANCELLED (Nomad's kill timeout is 15 s)."""


@dataclass
class Subject:
    """A started backend under contract, with what the tests need around it."""

    name: str
    backend: Backend
    events: Events
    folder: Path
    can_read_live_logs: bool = True

    def spec(self, name: str, script: str) -> RunSpec:
        job_id = f"winslow-contract-{name}-{secrets.token_hex(3)}"
        return RunSpec(
            job_id=job_id,
            project_id="p1",
            project_name="ulm-0603",
            pipeline="traffic",
            stage="detect",
            run_id=1,
            attempt=1,
            command=("sh", "-c", script),
            env={"WINSLOW_PROJECT": "ulm-0603", "WINSLOW_STAGE": "detect", "WINSLOW_RUN": "1"},
            resources=ResourceRequest(cpus=1, memory_mb=256),
            workspace_prefix=f"workspaces/{job_id}/",
            log_key=f"logs/{job_id}.log",
        )

    def release(self) -> tuple[str, Callable[[], None]]:
        """A shell line that waits for a file, and the function that creates it."""
        marker = self.folder / f"go-{secrets.token_hex(3)}"
        return f'while [ ! -e "{marker}" ]; do sleep 0.05; done', marker.touch


def nomad_config(address: str, token: str | None, object_store) -> NomadConfig:
    s3 = object_store.cfg
    return NomadConfig(
        address=address,
        token=token,
        allow_host_commands=True,
        tools_driver="raw_exec",
        winslow_command=WINSLOW,
        s3_endpoint=s3.endpoint_url,
        s3_bucket=s3.bucket,
        s3_region=s3.region,
    )


def _serves_readat(address: str) -> bool:
    """Whether the agent answers /v1/client/fs/readat (the stand-in may not yet)."""
    answer = httpx.get(f"{address}/v1/client/fs/readat/none?path=x&offset=0&limit=1")
    return not answer.headers.get("content-type", "").startswith("application/json")


@pytest.fixture(params=["local", "nomad_standin", "nomad_cluster"])
def subject(request, tmp_path, object_store) -> Iterator[Subject]:
    events = Events(within=WAIT_SECONDS)
    folder = tmp_path / "markers"
    folder.mkdir()
    live_logs = True
    backend: Backend
    if request.param == "local":
        backend = LocalBackend(
            tmp_path / "data", object_store.cfg, container_engine=False, kill_grace_seconds=1.0
        )
    else:
        agent = request.getfixturevalue(request.param)
        config = nomad_config(agent.address, getattr(agent, "token", None), object_store)
        s3 = object_store.cfg
        with NomadClient(config) as client:
            client.variables.put(
                config.credentials_path, {"access_key": s3.access_key, "secret_key": s3.secret_key}
            )
        backend = NomadBackend(config)
        live_logs = _serves_readat(agent.address)
    backend.start(events)
    try:
        yield Subject(request.param, backend, events, folder, live_logs)
    finally:
        backend.stop()
        _stop_leftovers(backend)


def _stop_leftovers(backend: Backend) -> None:
    """No test leaves a stage running, whatever it asserted."""
    for status in backend.list_jobs():
        if status.state not in TERMINAL_JOB_STATES and "contract" in status.job_id:
            backend.cancel(status.job_id)
            deadline = time.monotonic() + CANCEL_SECONDS
            while time.monotonic() < deadline:
                current = backend.status(status.job_id)
                if current is None or current.state in TERMINAL_JOB_STATES:
                    break
                time.sleep(0.1)


# The contract ----------------------------------------------------------------------------


def test_stage_that_succeeds_reads_succeeded_with_its_node_and_times(subject):
    spec = subject.spec("ok", "echo hello")
    subject.backend.submit(spec)
    status = subject.events.wait_for(subject.backend, spec.job_id, *TERMINAL_JOB_STATES)
    assert status.state is JobState.SUCCEEDED, status.reason
    assert (status.job_id, status.exit_code, status.reason) == (spec.job_id, 0, None)
    assert status.node
    assert status.started_at is not None and status.ended_at is not None
    assert status.ended_at >= status.started_at
    assert spec.job_id in subject.events.seen


def test_stage_that_exits_3_fails_with_exit_code_3(subject):
    spec = subject.spec("fail", "echo bad input >&2; exit 3")
    subject.backend.submit(spec)
    status = subject.events.wait_for(subject.backend, spec.job_id, *TERMINAL_JOB_STATES)
    assert (status.state, status.exit_code) == (JobState.FAILED, 3)
    assert "code 3" in status.reason


def test_submitting_twice_runs_the_stage_once(subject):
    runs = subject.folder / "runs"
    spec = subject.spec("twice", f'echo ran >> "{runs}"')
    subject.backend.submit(spec)
    subject.backend.submit(spec)
    subject.events.wait_for(subject.backend, spec.job_id, JobState.SUCCEEDED)
    subject.backend.submit(spec)  # a late repeat starts nothing either
    time.sleep(0.5)
    assert runs.read_text() == "ran\n"
    assert [s.job_id for s in subject.backend.list_jobs()].count(spec.job_id) == 1
    assert subject.backend.status(spec.job_id).state is JobState.SUCCEEDED


def test_cancel_of_a_sleeping_stage_reads_cancelled_quickly(subject):
    spec = subject.spec("cancel", "sleep 120")
    subject.backend.submit(spec)
    subject.events.wait_for(subject.backend, spec.job_id, JobState.RUNNING)
    time.sleep(0.3)  # let the stage itself start, not just its wrapper
    subject.backend.cancel(spec.job_id)
    status = subject.events.wait_for(
        subject.backend, spec.job_id, *TERMINAL_JOB_STATES, within=CANCEL_SECONDS
    )
    assert status.state is JobState.CANCELLED, status.reason


def test_log_holds_the_stage_output_while_and_after_it_runs(subject):
    if not subject.can_read_live_logs:
        pytest.skip(f"{subject.name} does not serve /v1/client/fs/readat, which logs() reads")
    wait, go = subject.release()
    spec = subject.spec("logs", f"echo early-line; {wait}; echo late-line")
    subject.backend.submit(spec)
    subject.events.wait_until(
        lambda: b"early-line" in subject.backend.logs(spec.job_id), "the first line, live"
    )
    assert subject.backend.status(spec.job_id).state is JobState.RUNNING
    go()
    subject.events.wait_for(subject.backend, spec.job_id, JobState.SUCCEEDED)
    log = subject.backend.logs(spec.job_id)
    assert b"early-line" in log and b"late-line" in log
    assert subject.backend.logs(spec.job_id, offset=len(log)) == b""


def test_list_jobs_includes_the_job(subject):
    spec = subject.spec("listed", "true")
    subject.backend.submit(spec)
    subject.events.wait_for(subject.backend, spec.job_id, JobState.SUCCEEDED)
    listed = {s.job_id: s for s in subject.backend.list_jobs()}
    assert listed[spec.job_id].state is JobState.SUCCEEDED


def test_nodes_are_listed_with_their_capacity(subject):
    nodes = subject.backend.nodes()
    assert nodes
    assert all(n.name and n.cpus > 0 and n.memory_mb > 0 for n in nodes)


def test_unknown_job_has_no_status_and_no_log_and_cancels_quietly(subject):
    unknown = f"winslow-contract-never-{secrets.token_hex(3)}"
    assert subject.backend.status(unknown) is None
    assert subject.backend.logs(unknown) == b""
    subject.backend.cancel(unknown)


def test_usage_of_a_busy_stage_counts_all_its_processes(subject):
    spec = subject.spec("usage", BUSY_STAGE)
    assert subject.backend.usage(spec.job_id) is None  # never submitted
    subject.backend.submit(spec)
    subject.events.wait_for(subject.backend, spec.job_id, JobState.RUNNING)

    seen: list[UsageSample | None] = []

    def shows_the_busy_stage() -> bool:
        # The stage takes a moment to hold its memory, and on a machine shared with other
        # work its two busy processes may get less than a core for a while.
        seen.append(subject.backend.usage(spec.job_id))
        return seen[-1] is not None and seen[-1].memory_mb >= BUSY_MB and seen[-1].cpu_percent > 50

    subject.events.wait_until(shows_the_busy_stage, f"a sample of {BUSY_MB} MB, >50 % CPU")
    usage = seen[-1]
    assert usage is not None
    assert usage.memory_mb < 4 * BUSY_MB, usage  # the stage's processes, not the machine's
    assert (usage.gpu_percent, usage.gpu_memory_mb) == (None, None)  # it has no GPUs

    subject.backend.cancel(spec.job_id)
    subject.events.wait_for(
        subject.backend, spec.job_id, *TERMINAL_JOB_STATES, within=CANCEL_SECONDS
    )
    assert subject.backend.usage(spec.job_id) is None


def test_allocation_stats_answer_in_the_documented_shape(subject):
    if not isinstance(subject.backend, NomadBackend):
        pytest.skip(f"{subject.name} is no Nomad agent")
    spec = subject.spec("stats", BUSY_STAGE)
    subject.backend.submit(spec)
    subject.events.wait_for(subject.backend, spec.job_id, JobState.RUNNING)
    client = subject.backend.client
    allocs, _ = client.jobs.allocations(spec.job_id)
    alloc_id = allocs[0]["ID"]
    answers: list[dict] = []

    def main_is_measured() -> bool:
        answers[:] = [dict(client.allocations.stats(alloc_id) or {})]
        return "main" in (answers[0].get("Tasks") or {})

    subject.events.wait_until(main_is_measured, "figures of the running main task")
    documented = sample("client_allocation_stats_response.json")
    assert_shape(documented, answers[0], table_extras(ALLOC_STATS_EXTRAS))
    assert answers[0]["Tasks"]["main"]["ResourceUsage"]["MemoryStats"]["Measured"]
    assert client.allocations.stats("00000000-0000-0000-0000-000000000000") is None
