"""``NomadBackend`` against the Nomad stand-in, which really runs the stage's tasks.

Every test gets a fresh stand-in with one CPU node ("standin-1") and its own bucket in
the session's SeaweedFS; the S3 keys reach the tasks the way they do on a cluster, as a
Nomad Variable. Stages are command-only (``raw_exec``) and the stage-in/stage-out tools
run this checkout's ``winslow`` on the "node". Tests wait on ``on_event``, never for a
fixed while; where a stage must still be running, it waits for a file the test creates.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.backends.events import Events
from tests.fixtures.workspaces import put_workspace, read_workspace
from winslow.backends.base import JobState, RunSpec
from winslow.backends.nomad.backend import NomadBackend
from winslow.backends.nomad.client import NomadClient
from winslow.backends.nomad.config import NomadConfig
from winslow.core.resources import GpuRequest, ResourceRequest
from winslow.errors import ConflictError
from winslow.server import nomad_backend
from winslow.settings import Settings
from winslow.storage.s3 import S3Config

WINSLOW = str(Path(__file__).resolve().parents[3] / ".venv" / "bin" / "winslow")
WAIT_SECONDS = 60.0
ACTIVE = (JobState.PENDING, JobState.RUNNING)
ENDED = (JobState.SUCCEEDED, JobState.FAILED, JobState.LOST, JobState.CANCELLED)


class GatedTransport(httpx.BaseTransport):
    """The real network, except that opening the event stream can be held back or refused."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.open = threading.Event()
        self.open.set()
        self.refuse_stream = False
        self.stream_opens = 0
        self.drop_topics: set[str] = set()
        """Topics left out of every event stream opened from now on."""
        self.refuse_topics: set[str] = set()
        """Topics for which the stream is refused with 403, as for a token without them."""
        self.stream_topics: list[set[str]] = []
        """The topics of every event stream opened, in order."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/event/stream":
            if self.refuse_stream:
                return httpx.Response(404, text="Invalid URL path")
            self.open.wait()
            self.stream_opens += 1
            kept = [
                (key, value)
                for key, value in request.url.params.multi_items()
                if key != "topic" or value.split(":", 1)[0] not in self.drop_topics
            ]
            request.url = request.url.copy_with(params=httpx.QueryParams(kept))
            topics = {value.split(":", 1)[0] for key, value in kept if key == "topic"}
            self.stream_topics.append(topics)
            if topics & self.refuse_topics:
                return httpx.Response(403, text="Permission denied")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def job_id(name: str) -> str:
    return f"winslow-{name}-{secrets.token_hex(3)}"


def make_spec(job: str, script: str, **overrides) -> RunSpec:
    fields = {
        "job_id": job,
        "project_id": "p1",
        "project_name": "ulm-0603",
        "pipeline": "traffic",
        "stage": "detect",
        "run_id": 1,
        "attempt": 1,
        "command": ("sh", "-c", script),
        "env": {"WINSLOW_PROJECT": "ulm-0603", "WINSLOW_STAGE": "detect", "WINSLOW_RUN": "1"},
        "resources": ResourceRequest(cpus=1, memory_mb=256),
        "workspace_prefix": f"workspaces/{job}/",
        "log_key": f"logs/{job}.log",
        **overrides,
    }
    return RunSpec(**fields)


@pytest.fixture
def config(nomad_standin, object_store) -> NomadConfig:
    s3 = object_store.cfg
    cfg = NomadConfig(
        address=nomad_standin.address,
        allow_host_commands=True,
        tools_driver="raw_exec",
        winslow_command=WINSLOW,
        s3_endpoint=s3.endpoint_url,
        s3_bucket=s3.bucket,
        s3_region=s3.region,
    )
    nomad_standin.put_variable(
        cfg.credentials_path, {"access_key": s3.access_key, "secret_key": s3.secret_key}
    )
    return cfg


@pytest.fixture
def events() -> Events:
    return Events(within=WAIT_SECONDS, recheck=5.0)


@pytest.fixture
def transport() -> GatedTransport:
    return GatedTransport()


@pytest.fixture
def backend(config, events, transport) -> Iterator[NomadBackend]:
    b = NomadBackend(config, client=NomadClient(config, transport=transport))
    b.start(events)
    try:
        yield b
    finally:
        b.stop()
        transport.open.set()


def release(tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """A shell line that waits for a file, and the function that creates it."""
    marker = tmp_path / f"go-{secrets.token_hex(3)}"
    return f'while [ ! -e "{marker}" ]; do sleep 0.05; done', marker.touch


def has_readat(standin) -> bool:
    """The run's log is read with /v1/client/fs/readat, which the stand-in may lack yet:
    then its router answers 404 in JSON, where Nomad answers errors in plain text."""
    answer = httpx.get(f"{standin.address}/v1/client/fs/readat/none?path=x&offset=0&limit=1")
    return not answer.headers.get("content-type", "").startswith("application/json")


# Running stages ------------------------------------------------------------------------


def test_stage_that_succeeds_publishes_workspace_and_archives_its_log(
    backend, events, object_store
):
    put_workspace(object_store, "workspaces/p1/0/", {"model.txt": b"weights\n"})
    spec = make_spec(
        job_id("ok"),
        "echo hello; echo oops >&2; cp model.txt out.txt; echo more >> out.txt",
        workspace_sources=("workspaces/p1/0/",),
    )
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, *ENDED)

    assert status.state is JobState.SUCCEEDED, status.reason
    assert (status.exit_code, status.reason, status.node) == (0, None, "standin-1")
    assert status.started_at is not None and status.ended_at > status.started_at
    assert spec.job_id in events.seen
    assert read_workspace(object_store, spec.workspace_prefix)["out.txt"] == b"weights\nmore\n"
    archived = object_store.get_bytes(spec.log_key).decode()
    assert "stdout | hello" in archived
    assert "stderr | oops" in archived
    assert "winslow | exited with code 0" in archived


def test_stage_that_exits_3_fails_with_its_exit_code(backend, events, object_store):
    spec = make_spec(job_id("fail"), "echo bad input >&2; exit 3")
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, *ENDED)
    assert (status.state, status.exit_code, status.reason) == (
        JobState.FAILED,
        3,
        "exited with code 3",
    )
    # The poststop task still archives the log of a failed stage.
    assert "stderr | bad input" in object_store.get_bytes(spec.log_key).decode()


def test_submitting_twice_registers_one_job_and_runs_it_once(backend, events):
    spec = make_spec(job_id("twice"), "echo once")
    backend.submit(spec)
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    backend.submit(spec)  # after it ended, too: no second run
    allocs, _ = backend.client.jobs.allocations(spec.job_id)
    job, _ = backend.client.jobs.read(spec.job_id)
    assert len(allocs) == 1
    assert job["Version"] == 0
    assert backend.status(spec.job_id).state is JobState.SUCCEEDED


def test_stage_past_its_time_limit_times_out(backend, events):
    spec = make_spec(job_id("slow"), "sleep 30", timeout_seconds=1)
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, *ENDED)
    assert (status.state, status.reason) == (JobState.FAILED, "timed out after 1 s")


# Placement -----------------------------------------------------------------------------


def test_unplaceable_stage_waits_with_nomads_reason_until_a_gpu_node_joins(
    backend, events, nomad_standin
):
    spec = make_spec(
        job_id("gpu"),
        "echo on a gpu",
        resources=ResourceRequest(cpus=1, memory_mb=256, gpu=GpuRequest(count=2)),
    )
    backend.submit(spec)
    events.wait_until(
        lambda: (backend.status(spec.job_id).reason or "").startswith("no node can place it"),
        "Nomad's blocked evaluation",
    )
    pending = backend.status(spec.job_id)
    assert pending.state is JobState.PENDING
    assert pending.node is None
    # Nomad's device checker filters nodes without the device ("missing devices").
    assert pending.reason == "no node can place it: 1 filtered by missing devices"

    nomad_standin.add_node("gpu-1", gpus=[("NVIDIA A100 80GB", 81920)] * 2)
    status = events.wait_for(backend, spec.job_id, *ENDED)
    assert (status.state, status.node) == (JobState.SUCCEEDED, "gpu-1")


# Failures and cancel -------------------------------------------------------------------


def test_node_that_stops_answering_makes_the_run_lost_after_the_grace_and_stops_its_job(
    config, events, nomad_standin, tmp_path
):
    """Nomad keeps the allocation of a ``disconnect.replace = false`` group ``unknown`` for
    as long as its node is away and never gives it up itself (scheduler/reconcile.go
    computeGroup, see the stand-in's ``kill_node``); the backend counts the run lost once
    ``lost_after_seconds`` passed and stops the job, so the stage cannot end a second time
    when the node returns."""
    backend = NomadBackend(dataclasses.replace(config, lost_after_seconds=3))
    backend.start(events)
    try:
        wait, _go = release(tmp_path)
        spec = make_spec(job_id("lost"), wait)
        backend.submit(spec)
        events.wait_for(backend, spec.job_id, JobState.RUNNING)
        nomad_standin.kill_node("standin-1")
        # The backend hears of it on the event stream, a moment later.
        events.wait_until(lambda: backend.status(spec.job_id).reason, "the node reported away")
        waiting = backend.status(spec.job_id)
        assert (waiting.state, waiting.node) == (JobState.RUNNING, "standin-1")
        assert waiting.reason.startswith("node standin-1 stopped answering "), waiting.reason
        assert waiting.reason.endswith("; the run counts as lost unless it answers within 3 s")

        status = events.wait_for(backend, spec.job_id, *ENDED)
        assert (status.state, status.node) == (JobState.LOST, "standin-1")
        assert status.reason.startswith("node standin-1 stopped answering at "), status.reason
        assert status.reason.endswith(" UTC and did not answer within 3 s")
        job, _ = backend.client.jobs.read(spec.job_id)
        assert job["Stop"] is True
        assert backend.status(spec.job_id) == status  # the stopped job stays lost
    finally:
        backend.stop()


def test_watcher_reports_the_jobs_of_a_node_that_goes_down_from_the_node_topic(
    backend, events, nomad_standin, transport, tmp_path
):
    """Nomad publishes a node's status change on the Node topic (a NodeStreamEvent,
    nomad/state/events.go); the watcher maps it to the jobs with allocations on that node.
    With allocation and evaluation events held back, nothing else tells of the node."""
    transport.drop_topics = {"Allocation", "Evaluation"}
    nomad_standin.drop_event_streams()
    wait, _go = release(tmp_path)
    spec = make_spec(job_id("node"), wait)
    backend.submit(spec)
    # Asked of Nomad itself: with allocation events held back, the backend may learn only
    # from a resync that the allocation started, and the node must go down under a
    # running one.
    allocations = f"{nomad_standin.address}/v1/job/{spec.job_id}/allocations"
    events.wait_until(
        lambda: any(a["ClientStatus"] == "running" for a in httpx.get(allocations).json()),
        "the stage's allocation running",
    )
    seen = events.count(spec.job_id)
    nomad_standin.kill_node("standin-1")
    events.wait_until(
        lambda: events.count(spec.job_id) > seen, "the job reported once its node went down"
    )


def test_token_without_node_read_follows_the_stream_without_the_node_topic(
    config, events, transport
):
    """Nomad checks ``node:read`` for a stream with the Node topic and refuses the whole
    stream without it (403); the watcher then follows the other topics."""
    transport.refuse_topics = {"Node"}
    backend = NomadBackend(config, client=NomadClient(config, transport=transport))
    backend.start(events)
    try:
        spec = make_spec(job_id("nonode"), "echo fine")
        backend.submit(spec)
        assert events.wait_for(backend, spec.job_id, *ENDED).state is JobState.SUCCEEDED
        assert transport.stream_topics[0] == {"Job", "Allocation", "Evaluation", "Node"}
        assert transport.stream_topics[1:] and all(
            topics == {"Job", "Allocation", "Evaluation"} for topics in transport.stream_topics[1:]
        )
    finally:
        backend.stop()


def test_lost_after_setting_reaches_the_backend_and_a_bad_one_is_named():
    s3 = S3Config(endpoint_url="http://s3:8333", access_key="a", secret_key="b", bucket="w")
    base = {
        "backend": "nomad",
        "nomad_tools_driver": "raw_exec",
        "nomad_allow_host_commands": True,
        "nomad_publish_credentials": False,
    }
    backend = nomad_backend(Settings(**base, nomad_lost_after="90s"), s3)
    assert backend.config.lost_after_seconds == 90
    assert nomad_backend(Settings(**base), s3).config.lost_after_seconds == 120
    with pytest.raises(SystemExit, match="WINSLOW_NOMAD_LOST_AFTER: 'soon' is not a duration"):
        nomad_backend(Settings(**base, nomad_lost_after="soon"), s3)


def test_cancel_stops_the_stage_and_reads_cancelled(backend, events, nomad_standin, tmp_path):
    wait, _go = release(tmp_path)
    spec = make_spec(job_id("cancel"), wait)
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.RUNNING)
    started = time.monotonic()
    backend.cancel(spec.job_id)
    status = events.wait_for(backend, spec.job_id, *ENDED)
    assert (status.state, status.reason) == (JobState.CANCELLED, "cancelled")
    assert time.monotonic() - started < 20
    backend.cancel(spec.job_id)  # again: nothing changes
    assert backend.status(spec.job_id) == status


def test_remove_purges_an_ended_job_and_refuses_a_running_one(backend, events, tmp_path):
    wait, go = release(tmp_path)
    spec = make_spec(job_id("remove"), wait)
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.RUNNING)
    with pytest.raises(ConflictError, match="cancel it"):
        backend.remove(spec.job_id)
    go()
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    backend.remove(spec.job_id)
    assert backend.status(spec.job_id) is None
    assert spec.job_id not in [s.job_id for s in backend.list_jobs()]


def test_unknown_job_has_no_status_no_log_and_cancels_quietly(backend):
    assert backend.status("winslow-never-submitted") is None
    assert backend.logs("winslow-never-submitted") == b""
    backend.cancel("winslow-never-submitted")
    backend.remove("winslow-never-submitted")


# Logs ------------------------------------------------------------------------------------


def test_log_is_readable_while_the_stage_runs_and_offsets_match_the_archive(
    backend, events, nomad_standin, object_store, tmp_path
):
    if not has_readat(nomad_standin):
        pytest.skip("the Nomad stand-in does not serve /v1/client/fs/readat yet")
    wait, go = release(tmp_path)
    spec = make_spec(job_id("logs"), f"echo first line; {wait}; echo second line")
    backend.submit(spec)
    events.wait_until(lambda: b"stdout | first line" in backend.logs(spec.job_id), "first line")
    live = backend.logs(spec.job_id)
    go()
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    archived = object_store.get_bytes(spec.log_key)
    assert archived.startswith(live)
    assert backend.logs(spec.job_id, offset=len(live)).startswith(archived[len(live) :][:20])


@pytest.mark.containers
def test_container_stage_log_is_live_and_the_archive_keeps_its_offsets(
    backend, events, nomad_standin, object_store, stage_image
):
    """A container stage has no ``stage-exec`` around it: the ``stage-follow`` sidecar
    copies its stdout and stderr from Nomad's log files into the run's log as they come.
    Nomad starts it once the main task runs and kills it once the main task is dead
    (client/allocrunner/tasklifecycle/coordinator.go ``isMainDone``; alloc_runner.go
    handleTaskStateUpdates, ``TaskMainDead``), before the poststop stage-out, which
    archives the log as it then is: every offset read live holds in the archive."""
    nomad_standin.add_node("docker-1", drivers=("raw_exec", "docker"))
    script = (
        "echo line 1; echo warning 1 >&2; "
        "while [ ! -e /alloc/workspace/go ]; do sleep 0.05; done; "
        "for i in 2 3 4; do echo line $i; sleep 0.2; done; echo warning 2 >&2; echo done"
    )
    spec = make_spec(job_id("container-logs"), script, image=stage_image)
    backend.submit(spec)
    events.wait_until(lambda: b"stdout | line 1" in backend.logs(spec.job_id), "a live line")
    live = backend.logs(spec.job_id)
    assert backend.status(spec.job_id).state is JobState.RUNNING
    [alloc], _ = backend.client.jobs.allocations(spec.job_id)
    (nomad_standin.client.alloc_dir(alloc["ID"]) / "alloc" / "workspace" / "go").touch()
    events.wait_until(lambda: b"stdout | line 3" in backend.logs(spec.job_id), "later lines")
    middle = backend.logs(spec.job_id)
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)

    archived = object_store.get_bytes(spec.log_key)
    assert middle.startswith(live) and archived.startswith(middle)
    assert backend.logs(spec.job_id, offset=len(middle)) == archived[len(middle) :]
    texts = [line.split(b" ", 1)[1] for line in archived.splitlines()]
    assert [t for t in texts if t.startswith(b"stdout")] == [
        *(f"stdout | line {i}".encode() for i in (1, 2, 3, 4)),
        b"stdout | done",
    ]
    assert [t for t in texts if t.startswith(b"stderr")] == [
        b"stderr | warning 1",
        b"stderr | warning 2",
    ]


# Watching ------------------------------------------------------------------------------


def test_cut_event_stream_resumes_from_the_last_index_without_a_resync(
    backend, events, nomad_standin, transport
):
    first = make_spec(job_id("before"), "echo one")
    backend.submit(first)
    events.wait_for(backend, first.job_id, JobState.SUCCEEDED)
    resyncs = backend.resyncs

    transport.open.clear()  # the watcher's reconnect waits here
    nomad_standin.drop_event_streams()
    second = make_spec(job_id("during"), "echo two")
    backend.submit(second)
    assert backend.client.jobs.read(second.job_id)[0] is not None
    transport.open.set()

    status = events.wait_for(backend, second.job_id, JobState.SUCCEEDED)
    assert status.state is JobState.SUCCEEDED
    assert events.count(second.job_id) >= 1
    assert backend.resyncs == resyncs  # Nomad still held the index: nothing was missed
    assert transport.stream_opens >= 2


def test_event_index_nomad_no_longer_holds_makes_the_watcher_resync(
    backend, events, nomad_standin, transport
):
    first = make_spec(job_id("before"), "echo one")
    backend.submit(first)
    events.wait_for(backend, first.job_id, JobState.SUCCEEDED)
    resyncs = backend.resyncs

    transport.open.clear()
    nomad_standin.drop_event_streams()
    nomad_standin.set_event_buffer(1)
    second = make_spec(job_id("missed"), "echo two")
    backend.submit(second)
    deadline = time.monotonic() + WAIT_SECONDS
    while backend.status(second.job_id).state is not JobState.SUCCEEDED:
        assert time.monotonic() < deadline, "the second stage never ended"
        time.sleep(0.1)
    seen_before = events.count(second.job_id)
    transport.open.set()

    events.wait_until(lambda: backend.resyncs > resyncs, "a resync")
    events.wait_until(lambda: events.count(second.job_id) > seen_before, "the missed job reported")


@pytest.fixture
def without_stream(config, transport) -> Iterator[tuple[NomadBackend, Events]]:
    """A started backend whose every event stream Nomad refuses: it follows blocking queries."""
    transport.refuse_stream = True
    events = Events(within=WAIT_SECONDS, recheck=5.0)
    b = NomadBackend(config, client=NomadClient(config, transport=transport))
    b.start(events)
    try:
        yield b, events
    finally:
        b.stop()


def test_unavailable_event_stream_falls_back_to_blocking_queries(without_stream, transport):
    b, events = without_stream
    spec = make_spec(job_id("fallback"), "echo polled")
    b.submit(spec)
    events.wait_until(lambda: events.count(spec.job_id) >= 1, "a change reported")
    status = events.wait_for(b, spec.job_id, JobState.SUCCEEDED)
    assert status.exit_code == 0
    assert transport.stream_opens == 0


def test_blocking_query_fallback_forgets_the_allocations_nomad_collected(
    without_stream, nomad_standin
):
    """Without the event stream the watcher remembers each allocation it saw; one that
    Nomad garbage-collected must leave that memory, or it grows with every stage."""
    b, events = without_stream
    spec = make_spec(job_id("collected"), "echo polled")
    b.submit(spec)
    events.wait_for(b, spec.job_id, JobState.SUCCEEDED)
    assert b._watcher is not None
    watcher = b._watcher
    events.wait_until(lambda: len(watcher.polled) == 1, "the allocation polled")

    b.remove(spec.job_id)
    assert httpx.put(nomad_standin.address + "/v1/system/gc").status_code == 200

    events.wait_until(lambda: watcher.polled == {}, "the collected allocation forgotten")


def test_new_backend_after_a_restart_adopts_the_running_job(config, backend, events, tmp_path):
    wait, go = release(tmp_path)
    spec = make_spec(job_id("adopt"), wait)
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.RUNNING)
    backend.stop()  # the server goes away; the job keeps running in Nomad

    later = Events(within=WAIT_SECONDS, recheck=5.0)
    restarted = NomadBackend(config)
    restarted.start(later)
    try:
        later.wait_until(lambda: spec.job_id in later.seen, "the running job reported at start")
        adopted = {s.job_id: s for s in restarted.list_jobs()}
        assert adopted[spec.job_id].state is JobState.RUNNING
        seen = later.count(spec.job_id)
        go()
        status = later.wait_for(restarted, spec.job_id, JobState.SUCCEEDED)
        assert status.node == "standin-1"
        assert later.count(spec.job_id) > seen
    finally:
        restarted.stop()


def test_stop_ends_the_watcher_promptly_and_silences_on_event(backend, events, nomad_standin):
    nomad_standin.pause_heartbeats()  # only closing the stream can wake the watcher now
    events.wait_until(lambda: backend.resyncs == 1, "the watcher's first listing")
    time.sleep(0.3)  # the watcher now waits in a read on the idle stream
    watcher = backend._watcher.thread
    started = time.monotonic()
    backend.stop()
    assert time.monotonic() - started < 1.0
    assert watcher is not None and not watcher.is_alive()
    count = len(events.seen)
    spec = make_spec(job_id("after-stop"), "true")
    backend.submit(spec)
    time.sleep(0.5)
    assert len(events.seen) == count


# Nodes -----------------------------------------------------------------------------------


def test_nodes_show_the_standin_node_and_its_gpus(backend, nomad_standin):
    nomad_standin.add_node("gpu-1", gpus=[("NVIDIA A100 80GB", 81920)] * 2)
    nodes = {n.name: n for n in backend.nodes()}
    assert set(nodes) == {"standin-1", "gpu-1"}
    cpu = nodes["standin-1"]
    assert (cpu.cpus, cpu.memory_mb, cpu.gpus, cpu.status) == (16.0, 32768, (), "ready")
    assert "raw_exec" in cpu.attributes["drivers"]
    gpus = nodes["gpu-1"].gpus
    assert [(g.index, g.name, g.memory_mb, g.healthy) for g in gpus] == [
        (0, "NVIDIA A100 80GB", 81920, True),
        (1, "NVIDIA A100 80GB", 81920, True),
    ]
    assert all(g.uuid and g.uuid.startswith("GPU-") for g in gpus)
    nomad_standin.kill_node("gpu-1")
    assert {n.name: n.status for n in backend.nodes()}["gpu-1"] == "down"


def test_nodes_show_eligibility_and_the_drain_an_operator_set(backend, nomad_standin):
    """A drained node reads ``draining`` with its deadline, an ineligible one
    ``ineligible``: neither takes new stages (Nomad's DrainStrategy and
    SchedulingEligibility; there is no Drain field in structs.Node)."""
    nomad_standin.add_node("gpu-1")
    nomad_standin.add_node("gpu-2")
    nomad_standin.drain_node("gpu-1", deadline_seconds=3600)
    nomad_standin.set_eligibility("gpu-2", eligible=False)
    nodes = {n.name: n for n in backend.nodes()}
    drained, ineligible = nodes["gpu-1"], nodes["gpu-2"]
    assert (drained.status, drained.eligible) == ("draining", False)
    assert drained.drain is not None and drained.drain.deadline is not None
    assert drained.drain.started_at is not None
    assert round((drained.drain.deadline - drained.drain.started_at).total_seconds()) == 3600
    assert (ineligible.status, ineligible.eligible, ineligible.drain) == ("ineligible", False, None)
    nomad_standin.set_eligibility("gpu-2", eligible=True)
    assert {n.name: n.status for n in backend.nodes()}["gpu-2"] == "ready"


def test_missing_input_fails_the_run_in_stage_in(backend, events, object_store):
    spec = make_spec(job_id("no-input"), "echo never", inputs=("videos/missing.mp4",))
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, *ENDED)
    assert status.state is JobState.FAILED
    assert status.reason == "stage-in failed: exited with code 1", status.reason
    assert status.exit_code is None
    # stage-out still ran: the log says why, in the archive.
    assert "stage-in failed" in object_store.get_bytes(spec.log_key).decode()


def test_backend_started_again_after_stop_watches_with_one_watcher(backend, events):
    backend.stop()
    again = Events(within=WAIT_SECONDS, recheck=5.0)
    backend.start(again)
    with pytest.raises(RuntimeError, match="twice"):
        backend.start(again)
    spec = make_spec(job_id("again"), "true")
    backend.submit(spec)
    again.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    assert spec.job_id in again.seen
    assert spec.job_id not in events.seen  # the first callback heard nothing after stop
