"""How fast the console's overview is with 1,000 (or 10,000) projects and 10 runs each.

A real `winslow up` (SQLite, embedded SeaweedFS) serves a store filled beforehand with
``--projects`` projects of ten stages and ``--runs-per-project`` ended runs each, in a
mix of states (``--size 1k``: 1,000 projects and 10,000 runs; ``--size 10k``: 10,000
and 100,000). Over loopback, each of these is requested ``--requests`` times after a
warm-up, one at a time:

- ``GET /`` (the overview page, its first page, signed in with a console session),
- ``GET /?q=...`` (the page searched for one project, on the server),
- ``GET /api/v1/overview`` (the rows the page refreshes with),
- ``GET /api/v1/projects`` (the project list API: the named baseline),
- ``GET /api/v1/health`` on the same server (the time any request costs).

Prints p50, p95 and max per endpoint and each p95 as a multiple of the list API's, and
exits 1 unless the page's p95 is below the size's goal (50 ms at 1,000 projects, 100 ms
at 10,000) and the list API's below 100 ms.

    python bench/console.py [--size 1k|10k] [--projects N] [--runs-per-project N]
                            [--requests 200]
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
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.ports import pick_ports  # noqa: E402
from tests.fixtures.server import Server, _kill_leftovers  # noqa: E402
from winslow.settings import Settings  # noqa: E402
from winslow.store.repo import open_store  # noqa: E402
from winslow.store.tables import ProjectRow, RunRow  # noqa: E402

TARGET_P95_MS = 100.0
"""The list API's goal, and the page's at 10,000 projects."""
PAGE_TARGET_P95_MS = {"1k": 50.0, "10k": 100.0}
SIZES = {"1k": (1000, 10), "10k": (10_000, 10)}
"""Size → projects and runs per project."""
STAGES = [f"stage{i}" for i in range(10)]
PROJECT_STATES = ["succeeded", "failed", "paused", "awaiting_input", "idle"]


def fill_store(data_dir: Path, projects: int, runs_per_project: int) -> str:
    """Create the store with the projects and runs; return a token for the API.

    Rows go in as plain inserts a thousand at a time: 100,000 runs in seconds, not minutes.
    """
    store = open_store(Settings(data_dir=data_dir).resolved_database_url())
    store.migrate()
    pipeline = {
        "name": "bench",
        "stages": [{"name": s, "command": ["true"]} for s in STAGES],
        "variables": {},
    }
    at = datetime.now(UTC) - timedelta(days=3)
    project_rows: list[dict[str, object]] = []
    run_rows: list[dict[str, object]] = []
    for number in range(projects):
        state = PROJECT_STATES[number % len(PROJECT_STATES)]
        project_id = uuid.uuid4().hex[:12]
        project_rows.append(
            {
                "id": project_id,
                "name": f"ulm-{number:05d}",
                "pipeline_name": "bench",
                "pipeline": pipeline,
                "state": state,
                "state_reason": f"{state} for the benchmark",
                "waiting_for": {"stage": "stage3", "gate": "stage3"}
                if state == "awaiting_input"
                else {},
                "approved_gates": [],
                "labels": [f"site-{number % 7}", "bench"],
                "variables": {"INPUT_VIDEO": f"videos/{number}.mp4"},
                "version": 1,
                "created_at": at,
                "updated_at": at,
                "state_changed_at": at,
            }
        )
        for index in range(runs_per_project):
            failed = index == runs_per_project - 1 and state == "failed"
            run_rows.append(
                {
                    "project_id": project_id,
                    "stage": STAGES[index % len(STAGES)],
                    "attempt": 1,
                    "state": "failed" if failed else "succeeded",
                    "variables": {},
                    "job_id": None,
                    "created_at": at,
                    "started_at": at,
                    "ended_at": at + timedelta(minutes=5),
                    "exit_code": 0,
                }
            )
    with store.transaction() as session:
        for table, rows in ((ProjectRow, project_rows), (RunRow, run_rows)):
            for first in range(0, len(rows), 1000):
                session.execute(insert(table), rows[first : first + 1000])
    # An admin's: the rows above carry no grants, and since people and access a person's
    # token sees only the projects granted to them (it saw none, and the benchmark
    # measured empty pages).
    token: str = store.create_token("bench", admin=True)
    store.close()
    return token


def sign_in(client: httpx.Client, token: str) -> None:
    """Start a console session in ``client``'s cookies, as the sign-in page does."""
    client.post("/api/v1/session", json={"token": token}).raise_for_status()


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
    parser.add_argument("--size", choices=sorted(SIZES), default="1k")
    parser.add_argument("--projects", type=int, help="instead of the size's")
    parser.add_argument("--runs-per-project", type=int, help="instead of the size's")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    projects = args.projects or SIZES[args.size][0]
    runs_per_project = args.runs_per_project or SIZES[args.size][1]
    page_target = PAGE_TARGET_P95_MS[args.size]

    with tempfile.TemporaryDirectory(prefix="winslow-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        token = fill_store(data_dir, projects, runs_per_project)
        port, s3_port = pick_ports(2)
        server = Server(data_dir, port, s3_port)
        server.start()
        try:
            with (
                httpx.Client(base_url=server.addr, timeout=60) as browser,
                httpx.Client(
                    base_url=server.addr, headers={"Authorization": f"Bearer {token}"}, timeout=60
                ) as api,
            ):
                sign_in(browser, token)
                listed = api.get("/api/v1/projects").json()["count"]
                assert listed == projects, listed
                wanted = f"ulm-{projects - 1:05d}"
                found = browser.get("/", params={"q": wanted})
                assert f'data-name="{wanted}"' in found.text, found.text[:500]
                results = {
                    "baseline: list API /api/v1/projects": summary(
                        measure(api, "/api/v1/projects", args.requests)
                    ),
                    "overview page /": summary(measure(browser, "/", args.requests)),
                    "overview page searched /?q=": summary(
                        measure(browser, f"/?q={wanted}", args.requests)
                    ),
                    "/api/v1/overview": summary(measure(api, "/api/v1/overview", args.requests)),
                    "/api/v1/health": summary(measure(api, "/api/v1/health", args.requests)),
                }
        finally:
            server.stop(discard_storage=True)
            _kill_leftovers(data_dir)

    baseline = results["baseline: list API /api/v1/projects"]["p95_ms"]
    for numbers in results.values():
        numbers["p95_vs_list_api"] = round(numbers["p95_ms"] / baseline, 2)
    page_p95 = max(results[name]["p95_ms"] for name in results if name.startswith("overview page"))
    met = page_p95 < page_target and baseline < TARGET_P95_MS
    print(
        json.dumps(
            {
                "projects": projects,
                "runs": projects * runs_per_project,
                "requests_each": args.requests,
                "results": results,
                "goal": f"overview page p95 < {page_target:g} ms, list API p95 < "
                f"{TARGET_P95_MS:g} ms",
                "goal_met": met,
            },
            indent=2,
        )
    )
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
