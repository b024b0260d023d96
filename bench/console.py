"""How fast the console's overview is with 1,000 projects and 10,000 runs in the store.

A real `winslow up` (SQLite, embedded SeaweedFS) serves a store filled beforehand with
``--projects`` projects of ten stages and ``--runs-per-project`` ended runs each, in a
mix of states. Over loopback, each of these is requested ``--requests`` times after a
warm-up, one at a time:

- ``GET /`` (the overview page, signed in with the session cookie),
- ``GET /api/v1/overview`` (the rows the page refreshes with),
- ``GET /api/v1/projects`` (the project list API),
- baseline: ``GET /api/v1/health`` on the same server (the time any request costs).

Prints p50, p95 and max per endpoint and each p95 as a multiple of the baseline's, and
exits 1 unless the page's and the list API's p95 are below 100 ms.

    python bench/console.py [--projects 1000] [--runs-per-project 10] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.server import Server, _kill_leftovers  # noqa: E402
from winslow.settings import Settings  # noqa: E402
from winslow.storage.seaweed import free_ports  # noqa: E402
from winslow.store.repo import open_store  # noqa: E402
from winslow.store.tables import ProjectRow, RunRow  # noqa: E402

TARGET_P95_MS = 100.0
STAGES = [f"stage{i}" for i in range(10)]
PROJECT_STATES = ["succeeded", "failed", "paused", "awaiting_input", "idle"]


def fill_store(data_dir: Path, projects: int, runs_per_project: int) -> str:
    """Create the store with the projects and runs; return a token for the API."""
    store = open_store(Settings(data_dir=data_dir).resolved_database_url())
    store.migrate()
    pipeline = {
        "name": "bench",
        "stages": [{"name": s, "command": ["true"]} for s in STAGES],
        "variables": {},
    }
    at = datetime.now(UTC) - timedelta(days=3)
    with store.transaction() as session:
        for number in range(projects):
            state = PROJECT_STATES[number % len(PROJECT_STATES)]
            project_id = uuid.uuid4().hex[:12]
            session.add(
                ProjectRow(
                    id=project_id,
                    name=f"ulm-{number:04d}",
                    pipeline_name="bench",
                    pipeline=pipeline,
                    state=state,
                    state_reason=f"{state} for the benchmark",
                    waiting_for={"stage": "stage3", "gate": "stage3"}
                    if state == "awaiting_input"
                    else {},
                    approved_gates=[],
                    labels=[f"site-{number % 7}", "bench"],
                    variables={"INPUT_VIDEO": f"videos/{number}.mp4"},
                    version=1,
                    created_at=at,
                    updated_at=at,
                    state_changed_at=at,
                )
            )
            for index in range(runs_per_project):
                session.add(
                    RunRow(
                        project_id=project_id,
                        stage=STAGES[index % len(STAGES)],
                        attempt=1,
                        state="failed"
                        if index == runs_per_project - 1 and state == "failed"
                        else "succeeded",
                        variables={},
                        job_id=None,
                        created_at=at,
                        started_at=at,
                        ended_at=at + timedelta(minutes=5),
                        exit_code=0,
                    )
                )
    token: str = store.create_token("bench")
    store.close()
    return token


def measure(client: httpx.Client, path: str, count: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        client.get(path).raise_for_status()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--runs-per-project", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="winslow-bench-") as tmp:
        base = Path(tmp)
        data_dir = base / "data"
        data_dir.mkdir()
        token = fill_store(data_dir, args.projects, args.runs_per_project)
        port, s3_port = free_ports(2)
        server = Server(data_dir, port, s3_port)
        server.start()
        try:
            with httpx.Client(
                base_url=server.addr,
                headers={"Authorization": f"Bearer {token}"},
                cookies={"winslow_session": token},
                timeout=30,
            ) as api:
                listed = api.get("/api/v1/projects").json()["count"]
                assert listed == args.projects, listed
                page = api.get("/", headers={"Authorization": ""})
                assert page.status_code == 200, page.text[:500]
                results = {
                    "baseline /api/v1/health": summary(
                        measure(api, "/api/v1/health", args.requests)
                    ),
                    "overview page /": summary(measure(api, "/", args.requests)),
                    "/api/v1/overview": summary(measure(api, "/api/v1/overview", args.requests)),
                    "/api/v1/projects": summary(measure(api, "/api/v1/projects", args.requests)),
                }
        finally:
            server.stop()
            _kill_leftovers(data_dir)

    baseline = results["baseline /api/v1/health"]["p95_ms"]
    for numbers in results.values():
        numbers["p95_vs_baseline"] = round(numbers["p95_ms"] / baseline, 1)
    met = all(
        results[name]["p95_ms"] < TARGET_P95_MS for name in ("overview page /", "/api/v1/projects")
    )
    print(
        json.dumps(
            {
                "projects": args.projects,
                "runs": args.projects * args.runs_per_project,
                "requests_each": args.requests,
                "results": results,
                "target_p95_ms_below": TARGET_P95_MS,
                "target_met": met,
            },
            indent=2,
        )
    )
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
