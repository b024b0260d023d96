"""The load Winslow puts on Nomad, counted where Nomad would see it: at the stand-in.

The engine asks the backend for the status of every active run on each event and every
tick, and the sampler for the usage of every running one; the backend answers from what
it keeps of each job while Nomad's event stream says nothing changed (``jobcache.py``).
These tests count the requests the stand-in received (``app.state.requests``), check
that what Nomad changes still reaches the engine at once through its event, or through
the quiet sweep when the event never came, that time-based decisions come on time from
what is kept, and that an answer from a follower behind an event is not kept.
"""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from tests.backends.events import Events
from tests.backends.nomad.test_backend import ENDED, GatedTransport, job_id, make_spec, release
from tests.backends.test_contract import nomad_config
from tests.fixtures.winslow import Harness
from winslow.backends.base import JobState
from winslow.backends.nomad import client as client_module
from winslow.backends.nomad.backend import NomadBackend
from winslow.backends.nomad.client import NomadClient
from winslow.backends.nomad.config import NomadConfig
from winslow.backends.nomad.status import latest_allocation, main_started_at
from winslow.engine.usage import UsageSampler

JOB_READ = "GET /v1/job/{job_id:path}"
JOB_ALLOCS = "GET /v1/job/{job_id:path}/allocations"
JOB_EVALS = "GET /v1/job/{job_id:path}/evaluations"
STATS = "GET /v1/client/allocation/{alloc_id}/stats"


@pytest.fixture
def config(nomad_standin, object_store) -> NomadConfig:
    cfg = nomad_config(nomad_standin.address, None, object_store)
    s3 = object_store.cfg
    nomad_standin.put_variable(
        cfg.credentials_path, {"access_key": s3.access_key, "secret_key": s3.secret_key}
    )
    return cfg


def reads_of(counts: dict[str, int]) -> int:
    """Requests a status costs: the job, its allocations and its evaluations."""
    return sum(counts.get(route, 0) for route in (JOB_READ, JOB_ALLOCS, JOB_EVALS))


# --- through the engine -------------------------------------------------------------------

RUNS = 6


def sweep_of(runs: int) -> str:
    """A pipeline whose one stage runs ``runs`` times at once, each sleeping."""
    return f"""
name: many
stages:
  - name: wait
    requirements: {{cpus: 0.25, memory: 64M}}
    sweep: {{over: {{N: {list(range(1, runs + 1))}}}}}
    command: ["sleep", "600"]
"""


def start_running(winslow: Harness, project: str, runs: int) -> None:
    """Start the engine and wait until all ``runs`` of ``project`` run their command
    (stage-in done: no task changes, so no events, until they end), and a moment more
    for the events of the last starts to come in."""
    winslow.apply_pipeline(sweep_of(runs))
    winslow.create(project, "many", start=True)
    winslow.engine.start()
    deadline = time.monotonic() + 120

    def commands_running() -> int:
        allocs, _ = winslow.context.backend.client.allocations.list()
        states = [alloc.get("TaskStates") or {} for alloc in allocs]
        return sum(
            (s.get("main") or {}).get("State") == "running"
            and (s.get("stage-in") or {}).get("State") == "dead"
            for s in states
        )

    while commands_running() < runs:
        assert time.monotonic() < deadline, winslow.show(project)["runs"]
        time.sleep(0.2)
    time.sleep(1.0)


@pytest.mark.slow
def test_running_runs_cost_nomad_almost_nothing_per_engine_tick(
    winslow_on_nomad: Harness, nomad_standin
) -> None:
    """Before, every tick read each active run's job, allocations and evaluations: three
    requests per run per tick (0.2 s here), 270 in this window."""
    winslow = winslow_on_nomad
    start_running(winslow, "many", RUNS)
    counter = nomad_standin.app.state.requests
    counter.reset()
    window = 3.0
    time.sleep(window)
    counts = counter.counts()
    ticks = window / winslow.context.settings.poll_seconds
    assert reads_of(counts) <= RUNS, (ticks, counts)  # before: RUNS * 3 * ticks
    assert counts.get(STATS, 0) <= RUNS, counts  # one sample per run at most in 3 s
    assert sum(counts.values()) <= 3 * RUNS, counts


def test_the_sampler_takes_nomads_usage_of_each_run_once_per_interval(
    winslow_on_nomad: Harness, nomad_standin
) -> None:
    winslow = winslow_on_nomad
    backend = winslow.context.backend
    assert (backend.usage_interval_seconds, backend.usage_requests_per_second) == (15.0, 5.0)
    start_running(winslow, "two", 2)
    winslow.engine.usage.stop()  # the rounds below are the only ones
    counter = nomad_standin.app.state.requests
    counter.reset()
    sampler = UsageSampler(winslow.context.store, backend)
    sampler.sample_once(due_only=True)
    sampler.sample_once(due_only=True)
    assert counter.counts().get(STATS, 0) == 2  # each run once, then not due for 15 s
    sampler.sample_once()  # asked for now, every run is sampled
    assert counter.counts().get(STATS, 0) == 4


# --- the backend ----------------------------------------------------------------------------


@pytest.fixture
def events() -> Events:
    return Events(within=60.0, recheck=5.0)


@pytest.fixture
def only_events() -> Events:
    """Waits wake on events alone: the re-check comes long after any test ends."""
    return Events(within=30.0, recheck=600.0)


def test_a_runs_end_reaches_the_engine_through_its_event_and_never_an_older_answer(
    config, only_events, nomad_standin, tmp_path
):
    backend = NomadBackend(config)
    seen: list[JobState | None] = []

    def on_event(job: str) -> None:
        # The engine reads the status on each event: it must see what the event told of.
        status = backend.status(job)
        seen.append(status.state if status is not None else None)
        only_events(job)

    backend.start(on_event)
    try:
        wait, go = release(tmp_path)
        spec = make_spec(job_id("end"), wait)
        backend.submit(spec)
        only_events.wait_until(
            lambda: backend.status(spec.job_id).state is JobState.RUNNING, "the stage running"
        )
        # Let the start's last events land (later under load) and be read once, so the
        # count below holds only what repeated looks at an unchanged job cost.
        time.sleep(1.5)
        backend.status(spec.job_id)
        counter = nomad_standin.app.state.requests
        counter.reset()
        for _ in range(20):
            assert backend.status(spec.job_id).state is JobState.RUNNING
        assert reads_of(counter.counts()) <= 3, counter.counts()  # before: 60

        go()
        status = only_events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
        assert status.state is JobState.SUCCEEDED
        assert seen[-1] is JobState.SUCCEEDED
    finally:
        backend.stop()


def test_a_container_stage_past_its_limit_is_stopped_on_time_from_what_is_kept(
    config, events, nomad_standin, stage_image
):
    """A container stage has no ``stage-exec``: the backend's backstop is its only time
    limit, and Nomad sends no event when it passes. The backend judges the kept answers
    against the clock on every call, so the job is stopped at the limit without reading
    Nomad on every call until then."""
    nomad_standin.add_node("docker-1", drivers=("raw_exec", "docker"))
    backend = NomadBackend(config)
    backend.start(events)
    try:
        spec = make_spec(job_id("limit"), "sleep 60", image=stage_image, timeout_seconds=6)
        backend.submit(spec)
        events.wait_for(backend, spec.job_id, JobState.RUNNING)
        counter = nomad_standin.app.state.requests
        counter.reset()
        calls, stopped_at = 0, None
        deadline = time.monotonic() + 60
        while stopped_at is None:
            # Between stage-in and the stage, no task runs: Nomad says pending meanwhile.
            assert backend.status(spec.job_id).state in (JobState.PENDING, JobState.RUNNING)
            calls += 1
            with nomad_standin.state.lock:
                if nomad_standin.state.job("default", spec.job_id)["Stop"]:
                    stopped_at = time.time()
            assert time.monotonic() < deadline, "the job was never stopped"
            time.sleep(0.1)
        reads = counter.counts().get(JOB_READ, 0)
        assert calls >= 20 and reads < calls / 3, (calls, counter.counts())

        final = events.wait_for(backend, spec.job_id, *ENDED)
        assert (final.state, final.reason) == (JobState.FAILED, "timed out after 6 s")
        allocs, _ = backend.client.jobs.allocations(spec.job_id)
        started = main_started_at(latest_allocation(allocs))
        assert started is not None
        assert 6 <= stopped_at - started.timestamp() < 6 + 2
    finally:
        backend.stop()


def test_a_change_whose_event_never_came_is_found_by_the_quiet_sweep(
    config, only_events, nomad_standin, tmp_path
):
    transport = GatedTransport()
    backend = NomadBackend(config, client=NomadClient(config, transport=transport))
    backend.start(only_events)
    try:
        wait, go = release(tmp_path)
        spec = make_spec(job_id("unheard"), wait)
        backend.submit(spec)
        only_events.wait_for(backend, spec.job_id, JobState.RUNNING)
        opened = transport.stream_opens
        transport.drop_topics = {"Job", "Allocation", "Evaluation"}
        nomad_standin.drop_event_streams()
        only_events.wait_until(
            lambda: transport.stream_opens > opened and backend._streaming(), "a new stream"
        )
        assert backend.status(spec.job_id).state is JobState.RUNNING
        backend.cache.quiet_seconds = 2.0
        sweeps = backend.sweeps
        go()
        deadline = time.monotonic() + 30
        while backend.status(spec.job_id).state is not JobState.SUCCEEDED:
            assert time.monotonic() < deadline, "the sweep never noticed the end"
            time.sleep(0.2)
        assert backend.sweeps > sweeps
    finally:
        backend.stop()


def test_the_sweep_reads_nomads_lists_in_pages_and_finds_a_change_on_the_last(
    config, only_events, nomad_standin, tmp_path, monkeypatch
):
    """A busy cluster holds 10,000 of our jobs and their allocations; they are read a page
    at a time (``per_page``, ``next_token``), put back together in Nomad's order, and a
    change on the last page is found like one on the first."""
    monkeypatch.setattr(client_module, "LIST_PAGE_SIZE", 1)
    transport = GatedTransport()
    backend = NomadBackend(config, client=NomadClient(config, transport=transport))
    backend.start(only_events)
    try:
        gates = [release(tmp_path) for _ in range(3)]
        specs = [make_spec(f"winslow-paged-{n}", wait) for n, (wait, _) in enumerate(gates)]
        for spec in specs:
            backend.submit(spec)
        for spec in specs:
            only_events.wait_for(backend, spec.job_id, JobState.RUNNING)
        counter = nomad_standin.app.state.requests
        counter.reset()
        jobs, _ = backend.client.jobs.list("winslow-paged-")
        allocs, _ = backend.client.allocations.list(task_states=False)
        assert [job["ID"] for job in jobs] == [spec.job_id for spec in specs]
        whole = httpx.get(f"{nomad_standin.address}/v1/allocations?task_states=false").json()
        assert [alloc["ID"] for alloc in allocs] == [alloc["ID"] for alloc in whole]
        lists = {k: v for k, v in counter.counts().items() if k.endswith(("/jobs", "/allocations"))}
        assert lists == {"GET /v1/jobs": 3, "GET /v1/allocations": len(whole) + 1}  # 1 a page

        opened = transport.stream_opens
        transport.drop_topics = {"Job", "Allocation", "Evaluation"}
        nomad_standin.drop_event_streams()
        only_events.wait_until(
            lambda: transport.stream_opens > opened and backend._streaming(), "a new stream"
        )
        for spec in specs:
            assert backend.status(spec.job_id).state is JobState.RUNNING
        backend.cache.quiet_seconds = 2.0
        gates[-1][1]()  # the job on the last page ends, and no event says so
        deadline = time.monotonic() + 30
        while backend.status(specs[-1].job_id).state is not JobState.SUCCEEDED:
            assert time.monotonic() < deadline, "the sweep never noticed the end"
            time.sleep(0.2)
        assert [backend.status(s.job_id).state for s in specs[:-1]] == [JobState.RUNNING] * 2
    finally:
        for _, go in gates:
            go()
        backend.stop()


class Follower(httpx.BaseTransport):
    """The network, except that reads with ``stale=true`` are answered by a follower that
    stops applying changes when ``frozen``: it repeats its last answer to each of them."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.frozen = False
        self.behind = 0
        """How many stale reads the frozen follower answered from its old state."""
        self._last: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("stale") != "true":
            return self._inner.handle_request(request)
        key = request.url.path
        if self.frozen and key in self._last:
            self.behind += 1
            status, headers, body = self._last[key]
            return httpx.Response(status, headers=headers, content=body)
        response = self._inner.handle_request(request)
        response.read()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        self._last[key] = (response.status_code, headers, response.content)
        return response

    def close(self) -> None:
        self._inner.close()


def test_an_answer_from_a_follower_behind_the_event_is_read_again_at_the_leader(
    config, only_events, tmp_path
):
    """After an event at index N, a stale read whose ``X-Nomad-Index`` is below N comes
    from a server that has not applied the event: the backend reads again without
    ``stale``, so the end of the run is seen at once, not whenever the follower catches up."""
    follower = Follower()
    backend = NomadBackend(config, client=NomadClient(config, transport=follower))
    backend.start(only_events)
    try:
        wait, go = release(tmp_path)
        spec = make_spec(job_id("follower"), wait)
        backend.submit(spec)
        only_events.wait_for(backend, spec.job_id, JobState.RUNNING)
        follower.frozen = True
        go()
        status = only_events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
        assert status.state is JobState.SUCCEEDED
        assert follower.behind > 0  # the follower did answer, and was not believed
    finally:
        backend.stop()


def test_requests_to_nomad_are_logged_at_debug_not_info(
    config, nomad_standin, caplog: pytest.LogCaptureFixture
):
    """httpx logs every request at INFO ("HTTP Request: GET ..."): one line per request,
    about 50 a second with 100 running stages. Nomad's go to DEBUG, once, by the client;
    other users of httpx in the process keep theirs."""
    backend = NomadBackend(config)
    with caplog.at_level(logging.DEBUG):
        assert backend.status("winslow-unknown-000") is None
        httpx.get(f"{nomad_standin.address}/v1/status/leader")
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    at_info = [line for line in lines if line[1] != "DEBUG"]
    assert [(name, level) for name, level, _ in at_info] == [("httpx", "INFO")], at_info
    assert "/v1/status/leader" in at_info[0][2]  # not ours: kept
    assert (
        "winslow.backends.nomad.client",
        "DEBUG",
        "GET /v1/job/winslow-unknown-000 -> 404 in",
    ) in [(name, level, message.rsplit(" ", 2)[0]) for name, level, message in lines]


def test_the_standin_takes_stale_as_nomad_does_and_counts_each_request(nomad_standin):
    """Nomad's agent parses ``?stale`` on every read (command/agent/http.go
    ``parseConsistency``): empty or a Go bool (``strconv.ParseBool``) lets any server
    answer; anything else is a 400 "Expect `true` or `false` for `stale` query string
    parameter, got ..."."""
    counter = nomad_standin.app.state.requests
    counter.reset()
    base = nomad_standin.address
    for query in ("stale", "stale=true", "stale=1", "stale=false"):
        answer = httpx.get(f"{base}/v1/jobs?{query}")
        assert answer.status_code == 200, (query, answer.text)
    refused = httpx.get(f"{base}/v1/job/winslow-x?stale=maybe")
    assert refused.status_code == 400
    assert refused.text == "Expect `true` or `false` for `stale` query string parameter, got maybe"
    assert counter.counts() == {"GET /v1/jobs": 4, JOB_READ: 1}
    assert counter.stale == 3
