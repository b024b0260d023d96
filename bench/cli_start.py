"""What a `winslow` command costs before it does its work, against the floor it stands on.

Every command is a fresh process: a person at a prompt, a script calling `winslow` in a
loop, and the test suite (hundreds of calls) pay its start each time. This measures the
CPU (user + system) of a few commands against a server that does not answer, so what is
left is the start: interpreter, imports, typer building the command, the HTTP client.

The baselines, measured in the same run: a bare interpreter (`python -c pass`) and one
that imports what any such CLI needs (httpx, typer, rich's tables): the floor a CLI
built on these libraries cannot go below. Printed: the median CPU of each over the runs
and each command's ratio to the floor.

    python bench/cli_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
FLOOR = "import httpx, typer, rich.table"
COMMANDS = {
    "winslow --version": [str(BIN / "winslow"), "--version"],
    "winslow project list": [str(BIN / "winslow"), "project", "list"],
    "winslow resources list": [str(BIN / "winslow"), "resources", "list"],
    "winslow pipeline validate": [
        str(BIN / "winslow"),
        "pipeline",
        "validate",
        str(Path(__file__).resolve().parents[1] / "examples" / "traffic" / "pipeline.yaml"),
    ],
}
"""Each command a person types often; `pipeline validate` parses YAML with pydantic."""


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {
        **os.environ,
        "WINSLOW_ADDR": "http://127.0.0.1:9",  # nothing answers there: the start is measured
        "WINSLOW_CLI_RETRY_SECONDS": "0",
    }
    programs = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        f"python -c '{FLOOR}' (the floor)": [sys.executable, "-c", FLOOR],
        **COMMANDS,
    }
    for argv in programs.values():  # once each first: bytecode caches, page cache
        cpu_seconds(argv, env)
    medians = {
        name: statistics.median(cpu_seconds(argv, env) for _ in range(args.runs))
        for name, argv in programs.items()
    }
    floor = medians[f"python -c '{FLOOR}' (the floor)"]
    print(
        json.dumps(
            {
                "runs": args.runs,
                "median_cpu_s": {name: round(value, 3) for name, value in medians.items()},
                "over_the_floor": {name: round(medians[name] / floor, 2) for name in COMMANDS},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
