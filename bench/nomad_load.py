"""How many requests a second Winslow sends Nomad for its running stages, today and before.

A Nomad stand-in (tests/nomad_standin, in a process of its own, with nodes enough for
every run) runs stage runs of `sleep` submitted through a real Winslow: engine, usage
sampler and Nomad backend wired by `server.build_context`, a SeaweedFS for its storage.
The stand-in counts every request it answers. Once all runs run their command and their
start's events are in, the requests of a window of `--seconds` are counted; then more
runs start, up to each of `--counts` in turn.

The same is done twice in one go: with the backend as Winslow had it before
(`NomadBackend(cached=False)`: every status read from Nomad on every event and engine
tick, usage sampled every 5 s per run, no stale reads), the baseline, and as it is now
(status from the event stream, the quiet sweep, usage per run every 15 s at most and 5 a
second in all). Printed: requests per second and per run for each count and both, the
ratio, the requests per run-minute by endpoint at the largest count, and whether the goal
is met: at least 10 times fewer at the largest count, and a total that stays flat (at
most twice as many at the largest count as at the smallest, where the runs grow 4x);
exits 1 when it is not.

The stages' `winslow` on the node is a shell stand-in that skips stage-in and stage-out
and runs the command: what a task does moves no request to Nomad, and 200 Python
processes would not fit a small machine.

    python bench/nomad_load.py [--runs 200] [--seconds 120] [--counts 50,100,200]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import seaweed_store  # noqa: E402
from winslow.storage.objects import ObjectStore  # noqa: E402

GOAL_RATIO = 10.0
"""At least this many times fewer requests than the baseline at the largest count."""
FLAT_GROWTH = 2.0
"""Requests a second may grow at most this much from the smallest count to the largest."""
RUN_CPUS = 1
NODE_CORES = 256
SHIM = """#!/bin/sh
# Winslow's node-side tools for the load benchmark: no stage-in, no stage-out; the stage.
case "$1" in
  stage-exec)
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
    shift
    exec "$@" ;;
  *) exit 0 ;;
esac
"""


# --- the stand-in, in a process of its own ------------------------------------------------


def standin_process(conn: Connection, nodes: int, credentials: dict[str, str]) -> None:
    """Run a stand-in with ``nodes`` large nodes; answer ``conn``'s commands until "stop"."""
    sys.path.insert(0, str(ROOT))
    from tests.nomad_standin import NomadStandin

    standin = NomadStandin(heartbeat_interval=10.0)
    # Measuring every task's processes each second is most of the stand-in's work with
    # hundreds of tasks; the figures' freshness changes no request.
    standin.client.stats_interval = 10.0
    standin.start()
    try:
        for i in range(nodes):
            standin.add_node(
                f"load-{i}",
                cpu_mhz=NODE_CORES * 1000,
                memory_mb=NODE_CORES * 4096,
                disk_mb=NODE_CORES * 1024,
                drivers=("raw_exec",),
            )
        standin.put_variable("nomad/jobs", credentials)
        conn.send(standin.address)
        counter = standin.app.state.requests
        while True:
            command = conn.recv()
            if command == "counts":
                conn.send((counter.counts(), counter.stale))
            elif command == "reset":
                counter.reset()
                conn.send(None)
            elif command == "commands":
                conn.send(_commands_running(standin))
            elif command == "stop":
                break
    finally:
        standin.stop()
        conn.send(None)


def _commands_running(standin: Any) -> int:
    """Allocations whose stage runs with stage-in done: no task changes until they end."""
    with standin.state.lock:
        states = [alloc.get("TaskStates") or {} for alloc in standin.state.allocs.values()]
    return sum(
        (s.get("main") or {}).get("State") == "running"
        and (s.get("stage-in") or {}).get("State") == "dead"
        for s in states
    )


class Standin:
    """The stand-in process and its pipe."""

    def __init__(self, nodes: int, credentials: dict[str, str]) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=standin_process, args=(child, nodes, credentials), daemon=True
        )
        self._process.start()
        self.address: str = self._conn.recv()

    def ask(self, command: str) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self._process.join(timeout=60)


# --- one Winslow, one mode ------------------------------------------------------------------


def pipeline(name: str, runs: int) -> str:
    return (
        f"name: {name}\nstages:\n  - name: wait\n"
        f"    requirements: {{cpus: {RUN_CPUS}, memory: 32M}}\n"
        f"    sweep: {{over: {{N: {{min: 1, max: {runs}}}}}}}\n"
        '    command: ["sleep", "86400"]\n'
    )


def measure(
    cached: bool, counts: list[int], seconds: float, objects: ObjectStore, base: Path
) -> list[dict[str, Any]]:
    """Start runs up to each of ``counts`` and count Nomad's requests for ``seconds`` at
    each; one row per count."""
    from fastapi.testclient import TestClient

    from winslow import server
    from winslow.api.app import create_app
    from winslow.backends.nomad.backend import NomadBackend
    from winslow.backends.nomad.config import NomadConfig
    from winslow.settings import Settings

    s3 = objects.cfg
    base.mkdir(parents=True, exist_ok=True)
    # Nomad reserves every task of the group: the stage's core and 2 x 200 MHz of tools.
    nodes = -(-max(counts) * (RUN_CPUS + 1) // NODE_CORES)
    standin = Standin(nodes, {"access_key": s3.access_key, "secret_key": s3.secret_key})
    shim = base / "winslow-shim"
    shim.write_text(SHIM)
    shim.chmod(0o755)
    config = NomadConfig(
        address=standin.address,
        allow_host_commands=True,
        tools_driver="raw_exec",
        winslow_command=str(shim),
        s3_endpoint=s3.endpoint_url,
        s3_bucket=s3.bucket,
        s3_region=s3.region,
        ephemeral_disk_mb=10,
    )
    mode = "events" if cached else "baseline"
    settings = Settings(data_dir=base / "winslow", database_url=None)
    context = server.build_context(settings, objects, backend=NomadBackend(config, cached=cached))
    api = TestClient(create_app(context))
    api.headers["Authorization"] = f"Bearer {context.store.create_token('bench')}"
    rows: list[dict[str, Any]] = []
    try:
        context.engine.start()
        started = 0
        for count in counts:
            _start(api, f"load-{count}", count - started)
            started = count
            _wait_running(standin, count)
            standin.ask("reset")
            time.sleep(seconds)
            by_route, stale = standin.ask("counts")
            total = sum(by_route.values())
            rows.append(
                {
                    "mode": mode,
                    "runs": count,
                    "requests": total,
                    "per_second": total / seconds,
                    "per_run_per_second": total / seconds / count,
                    "stale": stale,
                    "by_route": by_route,
                }
            )
            print(
                f"  {mode:8} {count:4} runs: {total / seconds:8.2f} requests/s "
                f"({total / seconds / count:.4f} per run)",
                file=sys.stderr,
            )
    finally:
        context.engine.stop()
        api.close()
        context.store.close()
        standin.stop()
    return rows


def _start(api: Any, name: str, runs: int) -> None:
    answer = api.put(f"/api/v1/pipelines/{name}", json={"text": pipeline(name, runs)})
    assert answer.status_code == 200, answer.text
    answer = api.post("/api/v1/projects", json={"name": name, "pipeline": name, "start": True})
    assert answer.status_code == 201, answer.text


def _wait_running(standin: Standin, count: int) -> None:
    deadline = time.monotonic() + 60 + count * 2
    while (running := standin.ask("commands")) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {running} of {count} runs started; the stand-in is too slow")
        time.sleep(1.0)
    time.sleep(5.0)  # the events of the last starts come in, and the engine reads them


# --- the report -----------------------------------------------------------------------------

ROUTE_NAMES = {
    "GET /v1/job/{job_id:path}/allocations": "job allocation lists",
    "GET /v1/client/allocation/{alloc_id}/stats": "allocation stats",
    "GET /v1/job/{job_id:path}": "job reads",
    "GET /v1/job/{job_id:path}/evaluations": "evaluation lists",
    "GET /v1/jobs": "job lists",
    "GET /v1/allocations": "allocation lists",
}


def per_run_minute(row: dict[str, Any], seconds: float) -> str:
    minutes = row["runs"] * seconds / 60
    parts = sorted(row["by_route"].items(), key=lambda item: -item[1])
    return ", ".join(f"{n / minutes:.2f} {ROUTE_NAMES.get(route, route)}" for route, n in parts)


def report(baseline: list[dict[str, Any]], events: list[dict[str, Any]], seconds: float) -> bool:
    """Print the table and the JSON result; True when the goal is met."""
    print(f"Requests per second to Nomad (stand-in), {seconds:g} s windows")
    print(f"{'runs':>6} {'before':>10} {'per run':>9} {'now':>10} {'per run':>9} {'fewer':>8}")
    for old, new in zip(baseline, events, strict=True):
        ratio = old["per_second"] / max(new["per_second"], 1e-9)
        print(
            f"{old['runs']:>6} {old['per_second']:>10.2f} {old['per_run_per_second']:>9.4f} "
            f"{new['per_second']:>10.2f} {new['per_run_per_second']:>9.4f} {ratio:>7.1f}x"
        )
    last_old, last_new = baseline[-1], events[-1]
    print(f"per run-minute at {last_old['runs']} runs, before: {per_run_minute(last_old, seconds)}")
    print(f"per run-minute at {last_new['runs']} runs, now: {per_run_minute(last_new, seconds)}")
    ratio = last_old["per_second"] / max(last_new["per_second"], 1e-9)
    growth = last_new["per_second"] / max(events[0]["per_second"], 1e-9)
    runs_growth = last_new["runs"] / events[0]["runs"]
    met = ratio >= GOAL_RATIO and (len(events) == 1 or growth <= FLAT_GROWTH)
    result = {
        "runs": last_new["runs"],
        "seconds": seconds,
        "baseline": "NomadBackend(cached=False): every status and usage read from Nomad",
        "baseline_per_second": round(last_old["per_second"], 2),
        "per_second": round(last_new["per_second"], 2),
        "ratio": round(ratio, 1),
        "growth_from_smallest_count": round(growth, 2),
        "runs_growth": round(runs_growth, 2),
        "stale_share": round(last_new["stale"] / max(last_new["requests"], 1), 2),
        "goal": f">= {GOAL_RATIO:g}x fewer, growth <= {FLAT_GROWTH:g}x",
        "goal_met": met,
    }
    print(json.dumps(result, indent=2))
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="the largest number of runs")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each window")
    parser.add_argument(
        "--counts",
        default="",
        help="run counts to measure, e.g. 50,100,200 (default: 1/4, 1/2, all)",
    )
    args = parser.parse_args()
    if args.counts:
        counts = sorted({int(c) for c in args.counts.split(",") if c.strip()})
    else:
        counts = sorted({max(args.runs // 4, 1), max(args.runs // 2, 1), args.runs})
    if not counts or counts[0] < 1:
        raise SystemExit("error: --counts: give positive run counts, e.g. 50,100,200")
    with tempfile.TemporaryDirectory(prefix="winslow-nomad-load-") as tmp:
        base = Path(tmp)
        with seaweed_store(base / "s3") as objects:
            print("baseline: reading Nomad on every call, as before", file=sys.stderr)
            baseline = measure(False, counts, args.seconds, objects, base / "baseline")
            print("now: answers kept from the event stream", file=sys.stderr)
            events = measure(True, counts, args.seconds, objects, base / "events")
    if not report(baseline, events, args.seconds):
        sys.exit(1)


if __name__ == "__main__":
    main()
