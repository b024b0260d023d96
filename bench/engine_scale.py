"""What the engine costs per stage as the number of projects grows, and how fast commands stay.

A real `winslow up` (in a process of its own, SeaweedFS for its storage) runs P projects
of S stages of `true`, all created and started through the API at once, with the local
backend and with the Nomad stand-in (tests/nomad_standin, in a process of its own, its
tasks run by a shell stand-in of Winslow's node tools, as in bench/nomad_load.py). The
baseline is the same run with fewer projects (`--baseline-projects`, 100 by default),
measured in the same invocation; the goal is that the server's CPU per stage grows at
most 1.5 times from the baseline to the big size (1,000 projects by default).

Printed for each backend and size: stage starts per second; the server's CPU per stage
(engine, API and all, read from /proc); the server's resident memory before the first
project, when a tenth of the stages have ended (every project then runs) and after the
last stage, and the growth per 1,000 stages between the last two (what follows runs,
apart from what running projects hold); the reconcile rounds (count, mean, p95 from the
server's Prometheus histogram); the p95 of the API commands issued during the run (the
creations themselves and a relabel plus a read of a project every quarter second; goal
<= 200 ms). With the local backend stages ask for one CPU each, so only as many run at
once as the machine has cores: the figure is the engine's cost per stage, not a
throughput goal.

    python bench/engine_scale.py [--projects 1000] [--stages 10] [--baseline-projects 100]
                                 [--backends local,nomad]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.nomad_load import SHIM, Standin  # noqa: E402
from tests.fixtures.ports import pick_ports  # noqa: E402
from tests.fixtures.server import Server, _kill_leftovers  # noqa: E402
from winslow.settings import Settings  # noqa: E402

GOAL_GROWTH = 1.5
"""The server's CPU per stage may grow at most this much from the baseline size."""
GOAL_COMMAND_P95_MS = 200.0
PROBE_SECONDS = 0.25
"""Time between two probe commands (a relabel and a read) during the run."""
NODE_CORES = 256
RECONCILE = "winslow_reconcile_duration_seconds"


def pipeline_text(stages: int) -> str:
    lines = ["name: scale", "stages:"]
    for i in range(stages):
        lines += [
            f"  - name: s{i:02d}",
            '    command: ["true"]',
            "    workspace: fresh",
            "    requirements: {cpus: 1, memory: 32M}",
        ]
    return "\n".join(lines) + "\n"


class BenchServer(Server):
    """`winslow up` with the engine's default poll and, for Nomad, the stand-in's address."""

    extra: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env.pop("WINSLOW_POLL_SECONDS", None)
        env.update(self.extra)
        return env


@contextmanager
def backend_env(backend: str, base: Path, projects: int) -> Iterator[dict[str, str]]:
    """The settings of ``backend``; for Nomad a stand-in with room for every project's run."""
    if backend == "local":
        yield {}
        return
    shim = base / "winslow-shim"
    shim.write_text(SHIM)
    shim.chmod(0o755)
    standin = Standin(-(-projects * 2 // NODE_CORES), {"access_key": "-", "secret_key": "-"})
    try:
        yield {
            "WINSLOW_BACKEND": "nomad",
            "WINSLOW_NOMAD_ADDR": standin.address,
            "WINSLOW_NOMAD_NAMESPACE": "default",
            "WINSLOW_NOMAD_ALLOW_HOST_COMMANDS": "true",
            "WINSLOW_NOMAD_TOOLS_DRIVER": "raw_exec",
            "WINSLOW_NOMAD_WINSLOW_COMMAND": str(shim),
            "WINSLOW_NOMAD_CREDENTIALS": "nomad-variables",
        }
    finally:
        standin.stop()


@dataclass
class Latencies:
    """Seconds each API command took, from the bench's side."""

    seconds: list[float] = field(default_factory=list)
    failed: int = 0
    """Commands that got no answer (a reset connection): counted, and printed."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, call: Any, *args: Any, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            answer: httpx.Response = call(*args, **kwargs)
        except httpx.TransportError:
            with self.lock:
                self.failed += 1
            return None
        with self.lock:
            self.seconds.append(time.perf_counter() - started)
        return answer

    def p95_ms(self) -> float:
        with self.lock:
            values = sorted(self.seconds)
        return values[min(len(values) - 1, int(len(values) * 0.95))] * 1000 if values else 0.0


def reconcile_histogram(api: httpx.Client) -> dict[str, float]:
    """The reconcile round histogram's cumulative buckets, ``sum`` and ``count``."""
    found: dict[str, float] = {}
    for line in api.get("/metrics").text.splitlines():
        if not line.startswith(RECONCILE):
            continue
        name, value = line.rsplit(" ", 1)
        bucket = re.search(r'le="([^"]+)"', name)
        if bucket:
            found[bucket.group(1)] = float(value)
        elif name.endswith("_sum"):
            found["sum"] = float(value)
        elif name.endswith("_count"):
            found["count"] = float(value)
    return found


def rounds_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Count, mean and p95 (a bucket bound) of the rounds between two scrapes."""
    count = after.get("count", 0) - before.get("count", 0)
    total = after.get("sum", 0) - before.get("sum", 0)
    p95 = float("nan")
    bounds = sorted((float(k), k) for k in after if k not in ("sum", "count"))
    for bound, key in bounds:
        if count and after[key] - before.get(key, 0) >= 0.95 * count:
            p95 = bound
            break
    return {"count": count, "mean_ms": total / count * 1000 if count else 0.0, "p95_ms": p95 * 1000}


def probe(api: httpx.Client, name: str, latencies: Latencies, stop: threading.Event) -> None:
    """A person's commands while the engine is busy: relabel a project, read it back."""
    flip = False
    while not stop.wait(PROBE_SECONDS):
        flip = not flip
        body = {"labels_add": ["probe"]} if flip else {"labels_remove": ["probe"]}
        latencies.timed(api.patch, f"/api/v1/projects/{name}", json=body)
        latencies.timed(api.get, f"/api/v1/projects/{name}")


def succeeded_runs(api: httpx.Client) -> int:
    try:
        text = api.get("/metrics").text
    except httpx.TransportError:
        # A kept-alive connection the server closed just as this reused it (a reset):
        # the next look, a second later, asks on a fresh one.
        return 0
    for line in text.splitlines():
        if line.startswith('winslow_runs{state="succeeded"}'):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def measure(backend: str, projects: int, stages: int, base: Path) -> dict[str, Any]:
    """One `winslow up` through one whole run of ``projects`` x ``stages``; its figures."""
    base.mkdir(parents=True)
    port, s3_port = pick_ports(2)
    with backend_env(backend, base, projects) as extra:
        server = BenchServer(base / "data", port, s3_port)
        server.extra = extra
        server.start()
        try:
            return drive(server, projects, stages, base)
        finally:
            server.stop(discard_storage=True)
            _kill_leftovers(server.data_dir)


def drive(server: Server, projects: int, stages: int, base: Path) -> dict[str, Any]:
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    token = Settings(data_dir=server.data_dir).token_file.read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.addr, headers=headers, timeout=120) as api:
        answer = api.put("/api/v1/pipelines/scale", json={"text": pipeline_text(stages)})
        assert answer.status_code == 200, answer.text
        rss_start = process.memory_info().rss
        cpu_start = sum(process.cpu_times()[:2])
        rounds_start = reconcile_histogram(api)
        latencies = Latencies()
        started = time.monotonic()
        for i in range(projects):
            body = {"name": f"p{i:05d}", "pipeline": "scale", "start": True}
            made = latencies.timed(api.post, "/api/v1/projects", json=body)
            assert made is not None, "a project creation got no answer"
            assert made.status_code == 201, made.text
            if i == 0:
                stop = threading.Event()
                thread = threading.Thread(target=probe, args=(api, "p00000", latencies, stop))
                thread.start()
        created = time.monotonic() - started
        total = projects * stages
        deadline = time.monotonic() + 600 + total * 2
        rss_tenth: int | None = None
        while (done := succeeded_runs(api)) < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {total} stages succeeded in time")
            if rss_tenth is None and done >= total // 10:
                rss_tenth = process.memory_info().rss
            time.sleep(1.0)
        elapsed = time.monotonic() - started
        stop.set()
        thread.join()
        cpu = sum(process.cpu_times()[:2]) - cpu_start
        rounds = rounds_between(rounds_start, reconcile_histogram(api))
        rss_end = process.memory_info().rss
    return {
        "projects": projects,
        "stages": total,
        "stage_starts_per_s": total / elapsed,
        "cpu_per_stage_ms": cpu / total * 1000,
        "rss_start_mb": rss_start / 2**20,
        "rss_end_mb": rss_end / 2**20,
        "rss_tenth_mb": (rss_tenth or rss_end) / 2**20,
        # Growth once every project runs and the first tenth of the stages ended: what
        # follows runs, apart from what the projects hold while they run.
        "rss_per_1000_stages_after_tenth_mb": (rss_end - (rss_tenth or rss_end))
        / 2**20
        / max(total - total // 10, 1)
        * 1000,
        "rounds": rounds["count"],
        "round_mean_ms": rounds["mean_ms"],
        "round_p95_ms": rounds["p95_ms"],
        "command_p95_ms": latencies.p95_ms(),
        "command_median_ms": statistics.median(latencies.seconds) * 1000,
        "commands": len(latencies.seconds),
        "commands_unanswered": latencies.failed,
        "create_all_s": created,
    }


def show(backend: str, row: dict[str, Any]) -> None:
    print(
        f"{backend:6} {row['projects']:>6} {row['stages']:>7} {row['stage_starts_per_s']:>9.2f} "
        f"{row['cpu_per_stage_ms']:>9.1f} {row['rss_start_mb']:>7.0f} {row['rss_tenth_mb']:>7.0f} "
        f"{row['rss_end_mb']:>7.0f} "
        f"{row['rounds']:>7.0f} {row['round_mean_ms']:>8.1f} {row['round_p95_ms']:>8.0f} "
        f"{row['command_p95_ms']:>8.1f} {row['create_all_s']:>8.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000, help="projects of the big size")
    parser.add_argument("--baseline-projects", type=int, default=100)
    parser.add_argument("--stages", type=int, default=10, help="stages per project")
    parser.add_argument("--backends", default="local,nomad", help="local, nomad or both")
    parser.add_argument("--keep", type=Path, help="keep data folders and logs in this folder")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not set(backends) <= {"local", "nomad"} or not backends:
        raise SystemExit("error: --backends: local, nomad or local,nomad")
    print(f"{os.cpu_count()} cores; baseline: {args.baseline_projects} projects, same run")
    print(
        f"{'backend':6} {'projects':>6} {'stages':>7} {'starts/s':>9} {'cpu ms/st':>9} "
        f"{'rss0 MB':>7} {'rss@10%':>7} {'rss1 MB':>7} {'rounds':>7} {'rnd mean':>8} "
        f"{'rnd p95':>8} {'cmd p95':>8} {'create s':>8}"
    )
    results: dict[str, Any] = {}
    met = True
    with tempfile.TemporaryDirectory(prefix="winslow-engine-scale-") as tmp:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = str(args.keep)
        for backend in backends:
            rows = []
            for size in (args.baseline_projects, args.projects):
                row = measure(backend, size, args.stages, Path(tmp) / f"{backend}-{size}")
                show(backend, row)
                rows.append(row)
            growth = rows[1]["cpu_per_stage_ms"] / max(rows[0]["cpu_per_stage_ms"], 1e-9)
            worst_p95 = max(r["command_p95_ms"] for r in rows)
            ok = growth <= GOAL_GROWTH and worst_p95 <= GOAL_COMMAND_P95_MS
            met &= ok
            results[backend] = {
                "baseline": f"{args.baseline_projects} projects, same run",
                "cpu_per_stage_growth": round(growth, 2),
                "command_p95_ms": round(worst_p95, 1),
                "goal": f"growth <= {GOAL_GROWTH}, command p95 <= {GOAL_COMMAND_P95_MS:g} ms",
                "goal_met": ok,
                "rows": [{k: round(v, 2) for k, v in row.items()} for row in rows],
            }
    print(json.dumps(results, indent=2))
    if not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
