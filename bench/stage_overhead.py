"""How much time Winslow adds per stage, where it goes, and what the warm runner saves.

A pipeline of N stages that each run `true` goes through a real `winslow up` (engine,
local backend, SeaweedFS) three times in one run:

1. with the warm runner (the default): the per-stage overhead and its breakdown by phase;
2. with a cold runner (``WINSLOW_WARM_RUNNER=0``, a fresh Python process per stage): the
   named baseline the warm runner is measured against;
3. with the warm runner and P projects started side by side;
4. with the warm runner and as many projects as the machine has cores, side by side.

A stage's overhead is the time from the previous stage's end (or the start command) to
its own end, less what the same command takes in a shell script (measured here too).
The phases come from the job folders and the project history:

- decision: previous stage recorded → this run created (the engine's choice);
- submit: run created → runner launched (job folder written);
- runner start: launched → the runner recorded itself (``runner.json``);
- stage-in: → the runner starts the stage's process (its log line);
- exec: → the runner saw it exit (its log line);
- stage-out: → the runner recorded the end (``status.json``);
- record: → the engine recorded the run's end (its history event).

Goals (issue 17): median overhead ≤ 0.1 s per stage; at least 3 times less than the cold
runner; with P projects side by side the median grows by no more than 50 %. Each stage
requires 0.1 CPU so that all projects fit on the machine at once: the side-by-side run
measures Winslow's own cost under load, not a queue for CPUs. It also prints the CPU the
whole machine spent per stage and the floor that sets: with P stages due at once on C
cores, none can end sooner than P x (CPU per stage) / C after the previous one; and how
that CPU divides between the server process, its SeaweedFS, and the runners with the
stages they ran. Divided by the single project's median, that floor is the least growth
the cores allow: a stage's critical path is itself almost all CPU, so where P exceeds C
the growth cannot fall below about P / C however the CPU per stage shrinks (it shrinks
the single project's median with it). Run 4 shows the growth where each project has a
core.

    python bench/stage_overhead.py [--stages 20] [--projects 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.ports import pick_ports  # noqa: E402
from tests.fixtures.server import Server, _kill_leftovers  # noqa: E402

TARGET_MEDIAN_SECONDS = 0.1
TARGET_COLD_RATIO = 3.0
TARGET_SIDE_BY_SIDE_GROWTH = 1.5
CORES = psutil.cpu_count() or 1
PHASES = ("decision", "submit", "runner start", "stage-in", "exec", "stage-out", "record")


def shell_baseline(stages: int) -> float:
    script = "\n".join(["true"] * stages)
    started = time.perf_counter()
    subprocess.run(["sh", "-c", script], check=True)
    return time.perf_counter() - started


def stamp(value: str | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, float | int):
        return float(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def logged_at(log: Path, words: str) -> float | None:
    """When the runner wrote its line holding ``words``, from that line's stamp."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if words in line:
            return stamp(line.split(" ", 1)[0])
    return None


def run_timeline(run: dict[str, Any], job_dir: Path, recorded_at: float | None) -> dict[str, Any]:
    launch = (job_dir / "launch.lock").read_text().split() if job_dir.exists() else []
    return {
        "created": stamp(run["created_at"]),
        "launched": float(launch[1]) if len(launch) > 1 else None,
        "runner": stamp(read_json(job_dir / "runner.json").get("started_at")),
        # The log's stamps, not psutil's create time: that is counted from a boot time
        # the kernel gives in whole seconds.
        "stage": logged_at(job_dir / "log.txt", "winslow | starting: "),
        "exited": logged_at(job_dir / "log.txt", "winslow | exited with code"),
        "status": stamp(read_json(job_dir / "status.json").get("ended_at")),
        "recorded": recorded_at,
        "ended": stamp(run["ended_at"]),
    }


def phases(previous_recorded: float, t: dict[str, Any]) -> dict[str, float]:
    order = [previous_recorded, t["created"], t["launched"], t["runner"], t["stage"]]
    order += [t["exited"], t["status"], t["recorded"]]
    if any(v is None for v in order):
        return {}
    return {name: order[i + 1] - order[i] for i, name in enumerate(PHASES)}


def project_figures(server: Server, name: str, started: float, own: float) -> dict[str, Any]:
    """Overheads and phases of one finished project, read before its server stops."""
    project = server.json("project", "show", name)
    history = server.json("project", "history", name)
    ended_events: dict[int, float] = {}
    for event in history["data"]:
        data = event.get("data") or {}
        if event["kind"] == "run" and data.get("state") in ("succeeded", "failed"):
            ended_events[int(data["run"])] = stamp(event["at"]) or 0.0
    jobs = server.data_dir / "local" / "jobs"
    overheads, breakdown = [], []
    previous_end, previous_recorded = started, started
    for run in sorted(project["runs"], key=lambda r: r["id"]):
        timeline = run_timeline(run, jobs / run["job_id"], ended_events.get(run["id"]))
        end = timeline["ended"]
        overheads.append(end - previous_end - own)
        breakdown.append(phases(previous_recorded, timeline))
        previous_end = end
        previous_recorded = timeline["recorded"] or end
    return {"state": project["state"], "overheads": overheads, "phases": breakdown}


def write_pipeline(base: Path, stages: int) -> Path:
    body = "\n".join(
        f'  - name: s{i:02d}\n    command: ["true"]\n    workspace: fresh\n'
        f"    requirements: {{cpus: 0.1}}"
        for i in range(stages)
    )
    path = base / "bench.yaml"
    path.write_text(f"name: bench\nstages:\n{body}\n")
    return path


def scenario(base: Path, stages: int, projects: int, warm: bool, own: float) -> dict[str, Any]:
    """Run ``projects`` projects of the pipeline side by side on a fresh server."""
    port, s3_port = pick_ports(2)
    folder = base / f"{'warm' if warm else 'cold'}-{projects}"
    folder.mkdir()
    server = Server(folder / "data", port, s3_port)
    server.extra_env["WINSLOW_WARM_RUNNER"] = "1" if warm else "0"
    server.start()
    try:
        server.cli("pipeline", "apply", str(write_pipeline(folder, stages)))
        names = [f"bench-{i}" for i in range(projects)]
        for name in names:
            server.cli("project", "create", name, "--pipeline", "bench")
        time.sleep(1.0)  # let the warm runner finish its imports, as on a running server
        started = time.time()
        # Started and watched through the API from this process: a CLI process per call
        # costs more CPU than a stage and would be measured as Winslow's.
        assert server.process is not None
        parts_before = cpu_by_part(server.process.pid)
        busy_before = machine_busy_seconds()
        for name in names:
            server.api(f"/projects/{name}/start", "POST")
        for name in names:
            server.wait_for(name, {"succeeded", "failed"}, timeout=900, every=1.0)
        busy = machine_busy_seconds() - busy_before
        parts_after = cpu_by_part(server.process.pid)
        figures = [project_figures(server, name, started, own) for name in names]
    finally:
        server.stop()
        _kill_leftovers(server.data_dir)
    failed = [f["state"] for f in figures if f["state"] != "succeeded"]
    if failed:
        raise SystemExit(f"a benchmark project ended {failed[0]}; see {server.log_path}")
    # The first stage of each project also waits for the start command and its siblings'
    # starts; it is left out so every figure is a stage following a stage.
    overheads = [o for f in figures for o in f["overheads"][1:]]
    rows = [p for f in figures for p in f["phases"][1:] if p]
    cpu_per_stage = busy / (projects * stages)
    return {
        "median_s": statistics.median(overheads),
        "mean_s": statistics.mean(overheads),
        "phases_median_s": {name: median(r[name] for r in rows) for name in PHASES},
        "machine_cpu_per_stage_s": cpu_per_stage,
        # With every project's stage due at once, each waits for all of theirs to get
        # the machine's cores: no stage can take less than this, however it is scheduled.
        "cpu_floor_s": cpu_per_stage * projects / CORES,
        "cpu_per_stage_by_part_s": {
            part: (parts_after[part] - parts_before[part]) / (projects * stages)
            for part in parts_after
        },
    }


def cpu_by_part(server_pid: int) -> dict[str, float]:
    """CPU seconds so far of the server process, its SeaweedFS, and the runners (warm or
    cold) with the stages they ran: an ended process counts in its parent's reaped-children
    times, so stages that came and went between two looks are not lost."""
    parts = {"server": 0.0, "storage": 0.0, "runners and stages": 0.0}
    root = psutil.Process(server_pid)
    times = root.cpu_times()
    parts["server"] += times.user + times.system
    parts["runners and stages"] += times.children_user + times.children_system
    for child in root.children(recursive=True):
        try:
            times = child.cpu_times()
            part = "storage" if child.name() == "weed" else "runners and stages"
        except psutil.NoSuchProcess:
            continue
        parts[part] += times.user + times.system
        parts["runners and stages"] += times.children_user + times.children_system
    return parts


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far: server, runners, SeaweedFS, all."""
    times = psutil.cpu_times()
    return (
        times.user
        + times.nice
        + times.system
        + getattr(times, "irq", 0.0)
        + getattr(times, "softirq", 0.0)
    )


def median(values: Iterable[float]) -> float:
    return round(statistics.median(list(values)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stages", type=int, default=20)
    parser.add_argument("--projects", type=int, default=5)
    args = parser.parse_args()

    own = shell_baseline(args.stages) / args.stages
    with tempfile.TemporaryDirectory(prefix="winslow-bench-") as tmp:
        base = Path(tmp)
        warm = scenario(base, args.stages, 1, True, own)
        cold = scenario(base, args.stages, 1, False, own)
        side = scenario(base, args.stages, args.projects, True, own)
        per_core = scenario(base, args.stages, CORES, True, own) if CORES > 1 else None
    ratio = cold["median_s"] / warm["median_s"]
    growth = side["median_s"] / warm["median_s"]
    result = {
        "stages": args.stages,
        "baseline": "cold runner (a fresh Python process per stage), same machine, same run",
        "shell_seconds_per_stage": round(own, 5),
        "warm": {k: round(v, 4) if isinstance(v, float) else v for k, v in warm.items()},
        "cold": {k: round(v, 4) if isinstance(v, float) else v for k, v in cold.items()},
        f"side_by_side_{args.projects}_projects": {
            "median_s": round(side["median_s"], 4),
            "phases_median_s": side["phases_median_s"],
            "machine_cpu_per_stage_s": round(side["machine_cpu_per_stage_s"], 4),
            "cpu_per_stage_by_part_s": {
                part: round(value, 4) for part, value in side["cpu_per_stage_by_part_s"].items()
            },
            "cpu_floor_s": round(side["cpu_floor_s"], 4),
            "cores": CORES,
        },
        "cold_to_warm_ratio": round(ratio, 2),
        "side_by_side_growth": round(growth, 2),
        # How far the side-by-side median is above what the cores allow: 1.0 is the floor.
        "side_by_side_over_cpu_floor": round(side["median_s"] / side["cpu_floor_s"], 2),
        # The least growth those cores allow at the CPU per stage measured side by side.
        "side_by_side_growth_floor": round(side["cpu_floor_s"] / warm["median_s"], 2),
        "goals": {
            f"warm median <= {TARGET_MEDIAN_SECONDS} s": warm["median_s"] <= TARGET_MEDIAN_SECONDS,
            f"cold/warm >= {TARGET_COLD_RATIO}": ratio >= TARGET_COLD_RATIO,
            f"side by side growth <= {TARGET_SIDE_BY_SIDE_GROWTH}": (
                growth <= TARGET_SIDE_BY_SIDE_GROWTH
            ),
        },
    }
    if per_core is not None:
        result[f"side_by_side_{CORES}_projects_one_per_core"] = {
            "median_s": round(per_core["median_s"], 4),
            "growth": round(per_core["median_s"] / warm["median_s"], 2),
            "machine_cpu_per_stage_s": round(per_core["machine_cpu_per_stage_s"], 4),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
