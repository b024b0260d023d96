"""How much time Winslow adds per stage, against a shell script running the same commands.

A pipeline of 20 stages that each run `true` goes through a real `winslow up` (engine,
local backend with detached runners, SeaweedFS); the same 20 commands run from a shell
script in the same run as the baseline. Per stage, Winslow's wall time is the time from
the previous stage's end (or the start command) to this stage's end, as recorded in its
runs; the overhead is that minus the stage's own run time from the baseline.

Prints the median and mean overhead per stage, the ratio of Winslow's total time to the
shell script's, and whether the target (median overhead below 0.2 s) is met.

    python bench/stage_overhead.py [--stages 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.server import Server, _kill_leftovers  # noqa: E402
from winslow.storage.seaweed import free_ports  # noqa: E402

TARGET_SECONDS = 0.2


def shell_baseline(stages: int) -> float:
    script = "\n".join(["true"] * stages)
    started = time.perf_counter()
    subprocess.run(["sh", "-c", script], check=True)
    return time.perf_counter() - started


def parse(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="winslow-bench-") as tmp:
        base = Path(tmp)
        port, s3_port = free_ports(2)
        server = Server(base / "data", port, s3_port)
        server.start()
        try:
            stages = "\n".join(
                f'  - name: s{i:02d}\n    command: ["true"]\n    workspace: fresh'
                for i in range(args.stages)
            )
            (base / "bench.yaml").write_text(f"name: bench\nstages:\n{stages}\n")
            server.cli("pipeline", "apply", str(base / "bench.yaml"))
            server.cli("project", "create", "bench", "--pipeline", "bench")
            started = time.time()
            server.cli("project", "start", "bench")
            project = server.wait_for("bench", {"succeeded", "failed"}, timeout=600)
            winslow_total = time.time() - started
        finally:
            server.stop()
            _kill_leftovers(server.data_dir)

    assert project["state"] == "succeeded", project
    shell_total = shell_baseline(args.stages)
    own = shell_total / args.stages
    runs = sorted(project["runs"], key=lambda r: r["id"])
    previous_end = started
    overheads = []
    for run in runs:
        end = parse(run["ended_at"])
        overheads.append(end - previous_end - own)
        previous_end = end
    result = {
        "stages": args.stages,
        "baseline": "shell script running the same commands",
        "shell_total_s": round(shell_total, 4),
        "winslow_total_s": round(winslow_total, 3),
        "ratio_winslow_to_shell": round(winslow_total / shell_total, 1),
        "median_overhead_per_stage_s": round(statistics.median(overheads), 3),
        "mean_overhead_per_stage_s": round(statistics.mean(overheads), 3),
        "max_overhead_per_stage_s": round(max(overheads), 3),
        "target_median_below_s": TARGET_SECONDS,
        "target_met": statistics.median(overheads) < TARGET_SECONDS,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
