"""A run's resource usage through the API: sampled from a real stage, kept after it ends."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.backends.test_contract import BUSY_MB, BUSY_STAGE
from tests.fixtures.winslow import Harness
from winslow.engine.usage import UsageSampler
from winslow.errors import BackendUnavailableError
from winslow.store.usage import MAX_SAMPLES_PER_RUN, UsagePoint, add_samples, run_samples

pytestmark = pytest.mark.slow

BUSY = f"""
name: busy
stages:
  - name: burn
    command: {json.dumps(["sh", "-c", BUSY_STAGE])}
"""

BUSY_PERCENT = 25
"""CPU a busy stage's sample shows at least; an idle one shows about 0."""

QUIET = 'name: quiet\nstages:\n  - name: hush\n    command: ["sh", "-c", "echo hello"]\n'


def usage(winslow: Harness, project: str, run_id: int, expect: int = 200) -> dict:
    response = winslow.api.get(f"/api/v1/projects/{project}/runs/{run_id}/usage")
    assert response.status_code == expect, response.text
    return response.json()


def test_usage_of_a_real_stage_is_kept_after_it_ends(winslow: Harness) -> None:
    winslow.apply_pipeline(BUSY)
    winslow.create("hot", "busy", start=True)
    run = winslow.wait_until_running("hot")
    deadline = time.monotonic() + 60
    # The runner stages in first, and the stage takes a moment to hold its memory; on a
    # machine shared with other work, two busy processes may get less than a core a while
    # (CI's four workers on 2 cores, at times at half speed, gave it under half of one).
    while not any(
        s["memory_mb"] >= BUSY_MB and s["cpu_percent"] > BUSY_PERCENT
        for s in usage(winslow, "hot", run["id"])["samples"]
    ):
        assert time.monotonic() < deadline, "no sample showed the busy stage"
        winslow.engine.usage.sample_once()
        time.sleep(0.3)
    assert winslow.engine.usage.sample_once() == 1  # one running run, one sample
    winslow.command("hot", "kill")
    winslow.engine.run_until_idle()
    assert winslow.show("hot")["runs"][0]["state"] == "cancelled"
    assert winslow.engine.usage.sample_once() == 0  # nothing runs any more

    seen = usage(winslow, "hot", run["id"])
    assert (seen["run"], seen["interval_seconds"]) == (run["id"], 5.0)
    samples = seen["samples"]
    assert len(samples) >= 2
    assert [s["at"] for s in samples] == sorted(s["at"] for s in samples)
    assert all(s["gpu_percent"] is None and s["gpu_memory_mb"] is None for s in samples)
    started = datetime.fromisoformat(winslow.show("hot")["runs"][0]["started_at"])
    assert datetime.fromisoformat(samples[0]["at"]) >= started
    peak = seen["peak"]
    assert peak["cpu_percent"] > BUSY_PERCENT
    assert BUSY_MB <= peak["memory_mb"] < 4 * BUSY_MB
    assert peak == {
        "cpu_percent": max(s["cpu_percent"] for s in samples),
        "memory_mb": max(s["memory_mb"] for s in samples),
        "gpu_percent": None,
        "gpu_memory_mb": None,
    }

    response = winslow.api.get(f"/api/v1/projects/hot/runs/{run['id']}/usage.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert f"hot-run-{run['id']}-usage.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["at", "cpu_percent", "memory_mb", "gpu_percent", "gpu_memory_mb"]
    assert [(r[0], float(r[1]), float(r[2]), r[3], r[4]) for r in rows[1:]] == [
        (s["at"], s["cpu_percent"], s["memory_mb"], "", "") for s in samples
    ]


def test_a_run_that_was_never_sampled_has_no_usage_and_unknown_runs_are_404(
    winslow: Harness,
) -> None:
    winslow.apply_pipeline(QUIET)
    winslow.create("quiet", "quiet", start=True)
    winslow.engine.run_until_idle()
    run = winslow.show("quiet")["runs"][0]
    assert usage(winslow, "quiet", run["id"]) == {
        "run": run["id"],
        "interval_seconds": 5.0,
        "samples": [],
        "peak": {
            "cpu_percent": None,
            "memory_mb": None,
            "gpu_percent": None,
            "gpu_memory_mb": None,
        },
    }
    csv_only_header = winslow.api.get(f"/api/v1/projects/quiet/runs/{run['id']}/usage.csv")
    assert csv_only_header.text == "at,cpu_percent,memory_mb,gpu_percent,gpu_memory_mb\n"
    assert usage(winslow, "quiet", 999, expect=404)["code"]
    assert winslow.api.get("/api/v1/projects/quiet/runs/999/usage.csv").status_code == 404
    assert usage(winslow, "nobody", run["id"], expect=404)["code"]


def test_a_very_long_run_keeps_its_samples_bounded_with_their_peaks(winslow: Harness) -> None:
    winslow.apply_pipeline(QUIET)
    winslow.create("long", "quiet", start=True)
    winslow.engine.run_until_idle()
    run_id = winslow.show("long")["runs"][0]["id"]
    store = winslow.context.store
    start = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    points = [
        UsagePoint(run_id, start + timedelta(seconds=5 * i), cpu_percent=100.0, memory_mb=500.0)
        for i in range(MAX_SAMPLES_PER_RUN)
    ]
    # Peaks where thinning drops a sample: the second of a pair, early in the run.
    points[1] = UsagePoint(run_id, points[1].at, cpu_percent=800.0, memory_mb=500.0)
    points[7] = UsagePoint(run_id, points[7].at, 100.0, 500.0, gpu_percent=99.0, gpu_memory_mb=9)
    assert add_samples(store, points) == MAX_SAMPLES_PER_RUN
    assert len(run_samples(store, run_id)) == MAX_SAMPLES_PER_RUN  # at the cap: untouched

    later = start + timedelta(seconds=5 * MAX_SAMPLES_PER_RUN)
    assert add_samples(store, [UsagePoint(run_id, later, 50.0, 700.0)]) == 1
    kept = run_samples(store, run_id)
    # The older half (5 000 samples) became 2 500; the newer half is as it was.
    assert len(kept) == MAX_SAMPLES_PER_RUN + 1 - MAX_SAMPLES_PER_RUN // 4
    assert kept[0].at == start and kept[-1].at == later
    assert [p.at for p in kept[:3]] == [start + timedelta(seconds=s) for s in (0, 10, 20)]
    assert kept[0].cpu_percent == 800.0  # merged with its neighbour, the peak survives
    assert (kept[3].gpu_percent, kept[3].gpu_memory_mb) == (99.0, 9)
    assert (kept[2].gpu_percent, kept[2].gpu_memory_mb) == (None, None)
    newer = kept[MAX_SAMPLES_PER_RUN // 4 :]
    assert [p.at for p in newer[:2]] == [start + timedelta(seconds=5 * 5000 + s) for s in (0, 5)]

    peak = usage(winslow, "long", run_id)["peak"]
    assert peak == {
        "cpu_percent": 800.0,
        "memory_mb": 700.0,
        "gpu_percent": 99.0,
        "gpu_memory_mb": 9,
    }


class FailingFor:
    """The real backend, except that ``usage`` of one job fails as an unreachable agent's."""

    def __init__(self, backend, job_id: str) -> None:
        self._backend = backend
        self._job_id = job_id

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def usage(self, job_id: str):
        if job_id == self._job_id:
            raise BackendUnavailableError(f"Nomad did not answer for {job_id}")
        return self._backend.usage(job_id)


def test_a_backend_failing_for_one_run_costs_only_that_runs_samples(
    winslow: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    winslow.apply_pipeline('name: idle\nstages:\n  - name: wait\n    command: ["sleep", "60"]\n')
    for name in ("sick", "well"):
        winslow.create(name, "idle", start=True)
    sick, well = (winslow.wait_until_running(name) for name in ("sick", "well"))
    store = winslow.context.store
    [sick_job] = [r.job_id for r in store.active_runs() if r.id == sick["id"]]
    sampler = UsageSampler(store, FailingFor(winslow.context.backend, sick_job), 0.1)
    with caplog.at_level(logging.DEBUG, logger="winslow.engine.usage"):
        sampler.start()
        try:
            deadline = time.monotonic() + 30
            while len(run_samples(store, well["id"])) < 3:
                assert time.monotonic() < deadline, "the healthy run was not sampled on"
                time.sleep(0.1)
        finally:
            sampler.stop()
    assert run_samples(store, sick["id"]) == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    # Said once, when it began; the repeats go to DEBUG.
    assert [r.getMessage() for r in warnings] == [
        f"run {sick['id']}: could not sample the usage of job {sick_job} "
        f"(Nomad did not answer for {sick_job}); trying again every 0.1 s"
    ]
