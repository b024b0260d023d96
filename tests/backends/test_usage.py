"""What a running stage uses: the parsers with samples, then real stages on each backend.

The parsers get the text the kernel, ``nvidia-smi``, ``docker stats`` and Nomad write.
Real stages keep cores busy and hold memory: on this machine through the local backend
(host processes; containers where docker answers; GPUs where ``nvidia-smi`` does), and
as raw_exec tasks of the Nomad stand-in through the engine, whose sampler stores what it
measured. ``tests/backends/test_contract.py`` holds the assertions every backend shares.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator

import pytest

from tests.backends.events import Events
from tests.backends.test_contract import BUSY_MB, BUSY_STAGE, nomad_config
from tests.fixtures.winslow import Harness
from tests.nomad_api.shapes import sample
from winslow.backends.base import JobState, RunSpec, UsageSample
from winslow.backends.local import LocalBackend
from winslow.backends.local.usage import (
    CpuLook,
    ProcStat,
    cpu_percent,
    parse_docker_size,
    parse_docker_stats,
    parse_gpu_usage,
    parse_proc_stat,
    session_reading,
)
from winslow.backends.nomad.backend import NomadBackend
from winslow.backends.nomad.status import usage_of
from winslow.core.resources import GpuRequest, ResourceRequest
from winslow.engine.usage import UsageSampler
from winslow.store.usage import run_samples

WAIT_SECONDS = 30.0

# --- /proc --------------------------------------------------------------------------------

STAT = (
    "4321 (python3) R 4300 4321 4321 0 -1 4194304 2000 0 0 0 150 30 5 2 20 0 1 0 500 "
    "100000000 25000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
)


def test_proc_stat_gives_session_cpu_ticks_and_resident_pages():
    assert parse_proc_stat(STAT) == ProcStat(
        pid=4321, ppid=4300, session=4321, state="R", cpu_ticks=150 + 30 + 5 + 2, rss_pages=25000
    )


def test_proc_stat_of_a_command_named_with_spaces_and_parentheses():
    odd = STAT.replace("(python3)", "(my (odd) prog)")
    stat = parse_proc_stat(odd)
    assert stat is not None and (stat.pid, stat.session, stat.rss_pages) == (4321, 4321, 25000)


@pytest.mark.parametrize("text", ["", "4321 (cut short) R 1", "no parenthesis at all"])
def test_proc_stat_that_is_no_stat_gives_nothing(text):
    assert parse_proc_stat(text) is None


def test_proc_stat_of_this_process_names_its_own_session():
    with open("/proc/self/stat") as f:
        stat = parse_proc_stat(f.read())
    assert stat is not None
    assert (stat.pid, stat.ppid, stat.session) == (os.getpid(), os.getppid(), os.getsid(0))


def test_session_reading_adds_up_only_the_sessions_processes():
    stats = [
        ProcStat(10, 1, 10, "S", cpu_ticks=100, rss_pages=10),
        ProcStat(11, 10, 10, "R", cpu_ticks=250, rss_pages=30),
        ProcStat(12, 1, 99, "R", cpu_ticks=9999, rss_pages=9999),
    ]
    reading = session_reading(stats, 10, ticks_per_second=100, page_bytes=4096)
    assert reading is not None
    assert (reading.cpu_seconds, reading.rss_bytes, reading.processes) == (3.5, 40 * 4096, 2)
    assert session_reading(stats, 77, 100, 4096) is None


def test_cpu_percent_is_of_one_core_and_never_negative():
    start = CpuLook(leader=10, cpu_seconds=2.0, at=100.0)
    assert cpu_percent(start, CpuLook(10, 3.0, 100.5)) == 200.0  # two cores busy
    assert cpu_percent(start, CpuLook(10, 2.25, 101.0)) == 25.0
    # A process that left the session unreaped took its CPU time with it.
    assert cpu_percent(start, CpuLook(10, 1.0, 101.0)) == 0.0
    assert cpu_percent(start, CpuLook(10, 3.0, 100.0)) == 0.0


# --- nvidia-smi and docker stats ----------------------------------------------------------

TWO_GPUS = "0, 87, 30512\n1, 13, 1024\n"


def test_gpu_usage_is_the_mean_utilisation_and_summed_memory_of_the_runs_gpus():
    assert parse_gpu_usage(TWO_GPUS, (0, 1)) == (50.0, 31536.0)
    assert parse_gpu_usage(TWO_GPUS, (1,)) == (13.0, 1024.0)


def test_gpu_usage_leaves_out_what_a_gpu_cannot_report():
    text = "0, [N/A], 2048\n1, 40, [Not Supported]\n2, 90, 512\n"
    assert parse_gpu_usage(text, (0, 1)) == (40.0, 2048.0)
    assert parse_gpu_usage(text, (0,)) == (None, 2048.0)


@pytest.mark.parametrize(
    "text, indices",
    [(TWO_GPUS, (5,)), ("", (0,)), ("No devices were found\n", (0,)), (TWO_GPUS, ())],
    ids=["other gpus", "empty", "no devices", "no gpus asked"],
)
def test_gpu_usage_without_the_runs_gpus_is_unknown(text, indices):
    assert parse_gpu_usage(text, indices) == (None, None)


DOCKER_LINE = json.dumps(
    {
        "BlockIO": "0B / 0B",
        "CPUPerc": "199.53%",
        "Container": "winslow-job-1",
        "ID": "5f2c1e0a9b7d",
        "MemPerc": "11.73%",
        "MemUsage": "120.1MiB / 1GiB",
        "Name": "winslow-job-1",
        "NetIO": "1.2kB / 0B",
        "PIDs": "3",
    }
)


def test_docker_stats_give_cpu_of_one_core_and_used_memory():
    cpu, memory_mb = parse_docker_stats(DOCKER_LINE + "\n") or (None, None)
    assert cpu == 199.53
    assert memory_mb == pytest.approx(120.1)


@pytest.mark.parametrize("cpu, memory", [("--", "-- / --"), ("1.5%", "lots / 1GiB")])
def test_docker_stats_without_figures_give_nothing(cpu, memory):
    line = json.dumps({"CPUPerc": cpu, "MemUsage": memory})
    assert parse_docker_stats(line) is None
    assert parse_docker_stats("") is None


@pytest.mark.parametrize(
    "text, size",
    [("0B", 0), ("512kB", 512_000), ("1.5GiB", 1.5 * 1024**3), ("3MB", 3_000_000), ("7", 7)],
)
def test_docker_sizes_in_decimal_and_binary_units(text, size):
    assert parse_docker_size(text) == size


def test_docker_size_in_an_unknown_unit_is_unknown():
    assert parse_docker_size("3 parsecs") is None


# --- Nomad's allocation statistics --------------------------------------------------------


def test_documented_allocation_stats_give_the_tasks_usage():
    documented = sample("client_allocation_stats_response.json")
    assert usage_of(documented, "redis") == UsageSample(
        cpu_percent=0.14, memory_mb=round(1486848 / 2**20, 2)
    )
    assert usage_of(documented) is None  # it has no "main" task


def test_memory_from_cgroup_totals_where_no_rss_was_measured():
    usage = {
        "CpuStats": {"Percent": 250.0, "Measured": ["Throttled Periods", "Percent"]},
        "MemoryStats": {
            "Cache": 100 * 2**20,
            "Usage": 612 * 2**20,
            "RSS": 0,
            "Measured": ["Cache", "Swap", "Usage"],
        },
    }
    stats = {"Tasks": {"main": {"ResourceUsage": usage}}}
    assert usage_of(stats) == UsageSample(cpu_percent=250.0, memory_mb=512.0)


def _nvidia(busy: dict | None, used: int, total: int = 15360) -> dict:
    memory = {"Desc": "UsedMemory / TotalMemory", "Unit": "MiB", "IntNumeratorVal": used}
    memory["IntDenominatorVal"] = total
    return {
        "Summary": memory,
        "Stats": {"Attributes": {"GPU utilization": busy, "Memory state": memory}, "Nested": {}},
        "Timestamp": "2026-11-25T08:12:03.123Z",
    }


def test_gpus_from_the_nvidia_plugins_device_statistics():
    devices = [
        {
            "Vendor": "nvidia",
            "Type": "gpu",
            "Name": "Tesla T4",
            "InstanceStats": {
                "GPU-a": _nvidia({"Unit": "%", "IntNumeratorVal": 80}, 1000),
                "GPU-b": _nvidia({"Unit": "%", "IntNumeratorVal": 40}, 3000),
                "GPU-c": _nvidia({"Unit": "%", "StringVal": "N/A"}, 0),
            },
        },
        {"Vendor": "acme", "Type": "fpga", "Name": "x", "InstanceStats": {"F-1": _nvidia(None, 7)}},
    ]
    usage = {
        "CpuStats": {"Percent": 99.5},
        "MemoryStats": {"RSS": 2**30, "Measured": ["RSS", "Swap"]},
        "DeviceStats": devices,
    }
    sample_ = usage_of({"Tasks": {"main": {"ResourceUsage": usage}}})
    assert sample_ == UsageSample(
        cpu_percent=99.5, memory_mb=1024.0, gpu_percent=60.0, gpu_memory_mb=4000.0
    )


# --- real stages on this machine ----------------------------------------------------------


def _spec(job_id: str, script: str, **fields) -> RunSpec:
    fields.setdefault("resources", ResourceRequest(cpus=2, memory_mb=512))
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
        **fields,
    )


@pytest.fixture
def events() -> Events:
    return Events(within=WAIT_SECONDS)


@pytest.fixture
def backend(tmp_path, object_store, events) -> Iterator[LocalBackend]:
    b = LocalBackend(
        tmp_path / "data", object_store.cfg, container_engine=None, kill_grace_seconds=1.0
    )
    b.start(events)
    try:
        yield b
    finally:
        b.stop()
        for status in b.list_jobs():
            if status.state in (JobState.PENDING, JobState.RUNNING):
                b.cancel(status.job_id)
                events.wait_for(b, status.job_id, JobState.CANCELLED, JobState.FAILED)


def _measured(backend, events: Events, job_id: str, enough) -> UsageSample:
    """The job's usage once ``enough`` holds for it (the stage takes a moment to start)."""
    seen: list[UsageSample | None] = [None]

    def check() -> bool:
        seen[0] = backend.usage(job_id)
        return seen[0] is not None and enough(seen[0])

    events.wait_until(check, f"the usage of {job_id} to show its stage")
    assert seen[0] is not None
    return seen[0]


@pytest.mark.slow
def test_a_stage_of_many_short_commands_counts_their_cpu(backend, events):
    # Each `true` lives a millisecond: it is counted only once its parent has reaped it.
    spec = _spec("usage-forks", "while :; do /bin/true; done")
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.RUNNING)
    _measured(backend, events, spec.job_id, lambda u: True)
    time.sleep(1.0)  # a rate over a full second, not the first quarter
    usage = backend.usage(spec.job_id)
    assert usage is not None and usage.cpu_percent > 30, usage
    assert usage.memory_mb < 100  # a shell and a `true` at a time


@pytest.mark.slow
@pytest.mark.containers
def test_a_container_stage_is_measured_by_docker(backend, events, stage_image):
    spec = _spec("usage-boxed", "while :; do :; done", image=stage_image)
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.RUNNING)
    usage = _measured(backend, events, spec.job_id, lambda u: u.cpu_percent > 0)
    # A busy loop: far above an idle container's ~0 %, though on 2 cores shared with the
    # rest of the suite it may get less than half of one (as the host stage above).
    assert usage.cpu_percent > 30, usage
    assert 0 < usage.memory_mb < 512
    assert (usage.gpu_percent, usage.gpu_memory_mb) == (None, None)


@pytest.mark.slow
@pytest.mark.gpu
def test_a_stage_given_a_gpu_reports_that_gpus_figures(backend, events):
    if shutil.which("nvidia-smi") is None:
        pytest.skip("nvidia-smi is not on PATH; this machine has no NVIDIA driver")
    gpus = backend.nodes()[0].gpus
    if not gpus:
        pytest.skip("nvidia-smi answers but lists no GPU")
    spec = _spec("usage-gpu", "sleep 60", gpu_indices=(gpus[0].index,))
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.RUNNING)
    usage = _measured(backend, events, spec.job_id, lambda u: True)
    assert usage.gpu_percent is not None and 0 <= usage.gpu_percent <= 100, usage
    assert usage.gpu_memory_mb is not None and usage.gpu_memory_mb >= 0, usage


# --- the engine's sampler over the local backend -------------------------------------------


class CountingUsage:
    """The real backend, noting each job whose usage the sampler asks for."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.asked: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def usage(self, job_id: str):
        self.asked.append(job_id)
        return self._backend.usage(job_id)


def test_the_sampler_asks_the_local_backend_for_every_running_run_each_round(
    winslow: Harness,
) -> None:
    backend = winslow.context.backend
    # A local sample is a look at this machine: no least interval, no bound per second.
    assert (backend.usage_interval_seconds, backend.usage_requests_per_second) == (None, None)
    winslow.apply_pipeline('name: idle\nstages:\n  - name: wait\n    command: ["sleep", "60"]\n')
    for name in ("one", "two"):
        winslow.create(name, "idle", start=True)
    ids = {winslow.wait_until_running(name)["id"] for name in ("one", "two")}
    winslow.engine.usage.stop()  # the rounds below are the only ones
    store = winslow.context.store
    jobs = sorted(run.job_id for run in store.active_runs() if run.id in ids)
    counting = CountingUsage(backend)
    sampler = UsageSampler(store, counting, interval_seconds=0.2)
    for _ in range(3):
        sampler.sample_once(due_only=True)  # as the thread's rounds, one interval apart
        time.sleep(0.2)
    assert sorted(counting.asked) == sorted(jobs * 3)  # each run, every round


# --- a real task of the Nomad stand-in, through the engine --------------------------------

NOMAD_PIPELINE = f"""
name: busy
stages:
  - name: burn
    command: {json.dumps(["sh", "-c", BUSY_STAGE])}
"""


@pytest.mark.slow
def test_the_sampler_keeps_what_a_nomad_task_uses(winslow_on_nomad: Harness) -> None:
    winslow = winslow_on_nomad
    winslow.apply_pipeline(NOMAD_PIPELINE)
    winslow.create("busy-on-nomad", "busy", start=True)
    run = winslow.wait_until_running("busy-on-nomad")
    deadline = time.monotonic() + WAIT_SECONDS
    store = winslow.context.store

    def busy(point) -> bool:
        return point.memory_mb >= BUSY_MB and point.cpu_percent > 50

    # The stand-in measures its tasks every second, as a Nomad client does; on a machine
    # shared with other work the two busy processes may get less than a core for a while.
    while not any(busy(p) for p in run_samples(store, run["id"])):
        assert time.monotonic() < deadline, "no sample showed the busy task"
        winslow.engine.usage.sample_once()
        time.sleep(0.5)
    [*_, last] = run_samples(store, run["id"])
    assert busy(last) and last.memory_mb < 4 * BUSY_MB, last
    assert (last.gpu_percent, last.gpu_memory_mb) == (None, None)

    winslow.command("busy-on-nomad", "kill")
    winslow.engine.run_until_idle(timeout=60)
    assert winslow.engine.usage.sample_once() == 0  # nothing runs; nothing is sampled
    assert run_samples(store, run["id"])[-1] == last  # kept with the run


@pytest.mark.slow
def test_a_nomad_task_given_a_gpu_reports_the_plugins_figures(nomad_standin, object_store):
    nomad_standin.add_node("gpu-1", gpus=[("Tesla T4", 15360), ("Tesla T4", 15360)])
    config = nomad_config(nomad_standin.address, None, object_store)
    s3 = object_store.cfg
    nomad_standin.put_variable(
        config.credentials_path, {"access_key": s3.access_key, "secret_key": s3.secret_key}
    )
    events = Events(within=WAIT_SECONDS)
    backend = NomadBackend(config)
    backend.start(events)
    try:
        spec = _spec(
            "winslow-usage-gpu",
            "sleep 60",
            resources=ResourceRequest(cpus=1, memory_mb=256, gpu=GpuRequest(count=2)),
        )
        backend.submit(spec)
        events.wait_for(backend, spec.job_id, JobState.RUNNING)
        allocs, _ = backend.client.jobs.allocations(spec.job_id)
        alloc, _ = backend.client.allocations.read(allocs[0]["ID"])
        [device] = (alloc or {})["AllocatedResources"]["Tasks"]["main"]["Devices"]
        first, second = device["DeviceIDs"]
        nomad_standin.set_gpu_usage(first, 90, 4000)
        nomad_standin.set_gpu_usage(second, 30, 1000)
        usage = _measured(backend, events, spec.job_id, lambda u: u.gpu_percent is not None)
        assert (usage.gpu_percent, usage.gpu_memory_mb) == (60.0, 5000.0)
        backend.cancel(spec.job_id)
        events.wait_for(backend, spec.job_id, JobState.CANCELLED)
    finally:
        backend.stop()
