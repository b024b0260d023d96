"""How much memory the server holds as history grows: idle, and after serving the console.

Two real `winslow up` (SQLite, embedded SeaweedFS), one after the other:

- baseline: an empty data folder (one API token, nothing else),
- history: ``--projects`` projects of ten stages with ``--runs-per-project`` ended runs
  each (``bench/console.py``'s data: 1,000 projects and 10,000 runs by default),
- ran: ``--ran-projects`` projects of ``--ran-stages`` stages of ``true`` really run by
  the local backend beforehand, so the data folder holds their job folders, logs and
  stored outputs too (60 by 4 by default: 240 job folders; 0 leaves this one out).

Each is measured idle (``--settle`` seconds after it answers), then after ``--rounds``
rounds of what the console and the CLI ask most: the overview page, its search, the
overview API and the project list API, and measured again after settling. RSS is the
server process's own (not SeaweedFS's, not a runner's). Prints each figure, its ratio to
the baseline's idle RSS, and whether the goal holds: at most 150 MB with the history,
idle and after serving. Exits 1 if not.

    python bench/memory.py [--projects 1000] [--runs-per-project 10] [--rounds 300]
                           [--ran-projects 60] [--ran-stages 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from console import fill_store, sign_in  # noqa: E402

from tests.fixtures.ports import pick_ports  # noqa: E402
from tests.fixtures.server import Server, _kill_leftovers  # noqa: E402
from winslow.settings import Settings  # noqa: E402
from winslow.store.repo import open_store  # noqa: E402

GOAL_MB = 150.0
ISSUE_BASELINE_MB = 122.0
"""The empty server's idle RSS where the goal was set (issue 17)."""
MB = 1024 * 1024


def rss_mb(process: psutil.Process) -> float:
    return round(process.memory_info().rss / MB, 1)


def serve_console(address: str, token: str, rounds: int, projects: int) -> None:
    """``rounds`` times: the overview page, a search in it, its API and the list API."""
    with (
        httpx.Client(base_url=address, timeout=60) as browser,
        httpx.Client(
            base_url=address, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as api,
    ):
        sign_in(browser, token)
        for number in range(rounds):
            browser.get("/").raise_for_status()
            browser.get(
                "/", params={"q": f"ulm-{number % max(projects, 1):05d}"}
            ).raise_for_status()
            api.get("/api/v1/overview").raise_for_status()
            api.get("/api/v1/projects").raise_for_status()


def measure(
    data_dir: Path, token: str, rounds: int, projects: int, settle: float
) -> dict[str, float]:
    port, s3_port = pick_ports(2)
    server = Server(data_dir, port, s3_port)
    server.start()
    try:
        assert server.process is not None
        process = psutil.Process(server.process.pid)
        time.sleep(settle)
        idle = rss_mb(process)
        started = time.perf_counter()
        serve_console(server.addr, token, rounds, projects)
        serving = time.perf_counter() - started
        time.sleep(settle)
        return {
            "idle_mb": idle,
            "after_serving_mb": rss_mb(process),
            "serving_s": round(serving, 1),
        }
    finally:
        server.stop(discard_storage=True)
        _kill_leftovers(data_dir)


def run_projects(data_dir: Path, token: str, projects: int, stages: int) -> None:
    """Run ``projects`` projects of ``stages`` stages of ``true`` to their end on a server
    of ``data_dir``, then stop it: what is left is a data folder with history."""
    pipeline = "name: ran\nstages:\n" + "".join(
        f'  - name: s{i}\n    command: ["true"]\n' for i in range(stages)
    )
    port, s3_port = pick_ports(2)
    server = Server(data_dir, port, s3_port)
    server.start()
    try:
        with httpx.Client(
            base_url=server.addr + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as api:
            api.put("/pipelines/ran", json={"text": pipeline}).raise_for_status()
            for number in range(projects):
                body = {"name": f"ran-{number:04d}", "pipeline": "ran", "start": True}
                api.post("/projects", json=body).raise_for_status()
            deadline = time.monotonic() + 60 + projects * stages
            while time.monotonic() < deadline:
                listed = api.get("/projects", params={"limit": 1000}).json()["data"]
                if all(p["state"] in ("succeeded", "failed") for p in listed):
                    break
                time.sleep(1)
            else:
                raise SystemExit("the projects did not end in time")
    finally:
        server.stop(discard_storage=True)
        _kill_leftovers(data_dir)


def empty_store(data_dir: Path) -> str:
    store = open_store(Settings(data_dir=data_dir).resolved_database_url())
    token: str = store.create_token("bench")
    store.close()
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--runs-per-project", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before each reading")
    parser.add_argument("--ran-projects", type=int, default=60)
    parser.add_argument("--ran-stages", type=int, default=4)
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="winslow-bench-") as tmp:
        names = ["baseline: empty data folder", "history"]
        if args.ran_projects:
            names.append("ran")
        for name in names:
            data_dir = Path(tmp) / name.split(":")[0] / "data"
            data_dir.mkdir(parents=True)
            if name == "history":
                token = fill_store(data_dir, args.projects, args.runs_per_project)
            else:
                token = empty_store(data_dir)
            if name == "ran":
                run_projects(data_dir, token, args.ran_projects, args.ran_stages)
                jobs = sum(1 for p in data_dir.glob("*/jobs/*") if p.is_dir())
            results[name] = measure(data_dir, token, args.rounds, args.projects, args.settle)
            if name == "ran":
                results[name]["job_folders"] = jobs

    baseline = results["baseline: empty data folder"]["idle_mb"]
    for numbers in results.values():
        numbers["idle_vs_baseline"] = round(numbers["idle_mb"] / baseline, 2)
        numbers["after_serving_vs_baseline"] = round(numbers["after_serving_mb"] / baseline, 2)
        numbers["growth_over_baseline_mb"] = round(numbers["after_serving_mb"] - baseline, 1)
    with_history = [v for k, v in results.items() if not k.startswith("baseline")]
    peak = max(max(v["idle_mb"], v["after_serving_mb"]) for v in with_history)
    growth = max(v["growth_over_baseline_mb"] for v in with_history)
    met = peak <= GOAL_MB
    print(
        json.dumps(
            {
                "projects": args.projects,
                "runs": args.projects * args.runs_per_project,
                "rounds": args.rounds,
                "results": results,
                "goal": f"server RSS <= {GOAL_MB:g} MB with the history, idle and after serving",
                "goal_met": met,
                # The goal was set where an empty server idled at ISSUE_BASELINE_MB; a
                # machine whose empty server needs more is judged by the growth too.
                "growth_goal": f"history adds <= {GOAL_MB - ISSUE_BASELINE_MB:g} MB "
                "to the empty server's idle RSS",
                "growth_goal_met": growth <= GOAL_MB - ISSUE_BASELINE_MB,
            },
            indent=2,
        )
    )
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
