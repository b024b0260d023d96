"""What idle live streams cost the server, pushed against polled, and how fast a change
reaches them all.

Two real `winslow up` (SQLite, embedded SeaweedFS) run one after the other, the same in
all but how their Server-Sent Event streams learn of changes:

- baseline ``polling``: ``WINSLOW_SSE_PUSH=false``, every stream asks the store four
  times a second (Winslow before pushed updates);
- ``pushed``: changes are published to the streams once, when they are committed.

Each gets ``--projects`` projects, then ``--streams`` open streams: half watch one
project (``/api/v1/projects/p0/events``), half the overview (``/api/v1/events``). With
all of them open and nothing happening for ``--seconds``, the server process's CPU
(user + system, from /proc) and the SQL statements it sent (``winslow_db_queries_total``
of /metrics) are measured per second, next to the same before any stream opened (the
engine's own safety-net rounds; up to 20 s). Then ``--changes`` times a variable of ``p0`` is
set, and the time until each stream has the change is taken; p95 and max over all.

Prints both modes and pushed/polling ratios, and exits 1 unless the pushed p95 is under
200 ms and pushed costs less CPU and fewer queries than polling. The streams' client
runs in this process (asyncio, one thread) on the same machine: its CPU is not counted.

    python bench/sse.py [--streams 200] [--seconds 60] [--projects 50] [--changes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.ports import pick_ports  # noqa: E402
from tests.fixtures.server import Server, _kill_leftovers  # noqa: E402

TARGET_P95_MS = 200.0
PIPELINE = "name: bench\nstages:\n  - name: only\n    command: ['true']\n"


@dataclass
class ModeServer(Server):
    push: bool = True

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env.update(WINSLOW_SSE_PUSH=str(self.push).lower(), WINSLOW_METRICS_PUBLIC="true")
        env.pop("WINSLOW_POLL_SECONDS", None)  # The engine's own default, not the tests' 1 s.
        return env


@dataclass
class Result:
    mode: str
    cpu_per_second: float
    queries_per_second: float
    quiet_cpu: float = 0.0
    """CPU s/s of the same server with no stream open (the engine's own rounds)."""
    quiet_queries: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def p95(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0


class Listener:
    """One open stream; remembers when it last saw the value it waits for."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.ready = asyncio.Event()
        self.wanted: str | None = None
        self.arrived: asyncio.Event = asyncio.Event()
        self.at = 0.0

    async def run(self, client: httpx.AsyncClient) -> None:
        async with client.stream("GET", self.path) as response:
            response.raise_for_status()
            kind = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: ") and kind in ("project", "history"):
                    self.ready.set()
                    if self.wanted is not None and self.wanted in line:
                        data = json.loads(line[len("data: ") :])
                        if self._matches(kind, data):
                            self.at = time.perf_counter()
                            self.wanted = None
                            self.arrived.set()

    def _matches(self, kind: str, data: dict[str, object]) -> bool:
        if kind == "history":
            return self.wanted in json.dumps(data.get("data"))
        return data.get("name") == "p0"


def server_cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def db_queries(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("winslow_db_queries_total "):
            return float(line.split()[1])
    raise SystemExit("/metrics has no winslow_db_queries_total")


async def idle_cost(
    server: ModeServer, client: httpx.Client, seconds: float
) -> tuple[float, float]:
    """CPU and queries per second of ``server`` with no stream open."""
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    await asyncio.sleep(2)
    cpu, queries, started = server_cpu(process), db_queries(client), time.perf_counter()
    await asyncio.sleep(seconds)
    took = time.perf_counter() - started
    return (server_cpu(process) - cpu) / took, (db_queries(client) - queries) / took


def prepare(client: httpx.Client, projects: int) -> None:
    client.put("/api/v1/pipelines/bench", json={"text": PIPELINE}).raise_for_status()
    for number in range(projects):
        body = {"name": f"p{number}", "pipeline": "bench"}
        client.post("/api/v1/projects", json=body).raise_for_status()


async def measure(server: ModeServer, args: argparse.Namespace) -> Result:
    token = (server.data_dir / "admin-token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    sync = httpx.Client(base_url=server.addr, headers=headers, timeout=30)
    prepare(sync, args.projects)
    paths = [
        "/api/v1/projects/p0/events" if n % 2 == 0 else "/api/v1/events"
        for n in range(args.streams)
    ]
    quiet = await idle_cost(server, sync, min(args.seconds, 20.0))
    listeners = [Listener(path) for path in paths]
    limits = httpx.Limits(max_connections=args.streams + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(
        base_url=server.addr, headers=headers, limits=limits, timeout=timeout
    ) as client:
        tasks = [asyncio.create_task(listener.run(client)) for listener in listeners]
        await asyncio.wait_for(asyncio.gather(*(lis.ready.wait() for lis in listeners)), 120)
        await asyncio.sleep(2)  # The streams' first reads are over.
        assert server.process is not None
        process = psutil.Process(server.process.pid)
        cpu, queries, started = server_cpu(process), db_queries(sync), time.perf_counter()
        await asyncio.sleep(args.seconds)
        took = time.perf_counter() - started
        cpu, queries = server_cpu(process) - cpu, db_queries(sync) - queries
        mode = "pushed" if server.push else "polling"
        result = Result(mode, cpu / took, queries / took, *quiet)
        for change in range(args.changes):
            marker = f"change-{change}-{time.time_ns()}"
            for listener in listeners:
                listener.arrived.clear()
                listener.wanted = marker
            sent = time.perf_counter()
            await asyncio.to_thread(
                sync.patch, "/api/v1/projects/p0/variables", json={"set": {"MARK": marker}}
            )
            await asyncio.wait_for(asyncio.gather(*(lis.arrived.wait() for lis in listeners)), 60)
            result.latencies_ms += [(lis.at - sent) * 1000 for lis in listeners]
            await asyncio.sleep(1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    sync.close()
    return result


def run_mode(push: bool, args: argparse.Namespace) -> Result:
    with tempfile.TemporaryDirectory(prefix="winslow-bench-sse-") as folder:
        port, s3_port = pick_ports(2)
        server = ModeServer(Path(folder) / "data", port, s3_port, push=push)
        server.start()
        try:
            return asyncio.run(measure(server, args))
        finally:
            server.stop(discard_storage=True)
            _kill_leftovers(server.data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0, help="idle window")
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--changes", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{args.streams} streams (half on one project, half on the overview), "
        f"{args.projects} projects, {args.seconds:g} s idle, {args.changes} changes"
    )
    results = [run_mode(False, args), run_mode(True, args)]
    print(f"{'mode':<9} {'CPU s/s':>8} {'queries/s':>10} {'no streams: CPU':>16} "
          f"{'queries/s':>10} {'change p50 ms':>14} {'p95 ms':>8} {'max ms':>8}")  # fmt: skip
    for r in results:
        p50 = statistics.median(r.latencies_ms) if r.latencies_ms else 0.0
        print(
            f"{r.mode:<9} {r.cpu_per_second:>8.3f} {r.queries_per_second:>10.1f} "
            f"{r.quiet_cpu:>16.3f} {r.quiet_queries:>10.1f} "
            f"{p50:>14.1f} {r.p95:>8.1f} {max(r.latencies_ms, default=0.0):>8.1f}"
        )
    polling, pushed = results
    cpu_ratio = pushed.cpu_per_second / max(polling.cpu_per_second, 1e-9)
    query_ratio = pushed.queries_per_second / max(polling.queries_per_second, 1e-9)
    print(f"pushed/polling: CPU {cpu_ratio:.3f}x, queries {query_ratio:.4f}x")
    print(f"pushed change p95 {pushed.p95:.1f} ms (goal < {TARGET_P95_MS:.0f} ms)")
    ok = pushed.p95 < TARGET_P95_MS and cpu_ratio < 1 and query_ratio < 1
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
