"""What reading Nomad's lists of a busy cluster costs the server's memory: whole or in pages.

A Nomad stand-in (tests/nomad_standin, in this process) holds `--jobs` ended stage jobs of
ours with an allocation each, copies of one stage job that Winslow's Nomad backend
rendered and the stand-in ran: what a cluster keeps after a day of short stages (Nomad
collects a dead batch job only after `job_gc_threshold`, 4 hours by default). A Nomad
backend in a fresh process then does `--rounds` times what a running server does with
them: the quiet sweep of each minute (our jobs, then the namespace's allocations) and
the listing of our jobs at each resync of the event stream. That process reports its
resident memory before, at its peak (`VmHWM`: `ru_maxrss` would carry the peak of the
process that started it) and after, and the CPU it spent per round (the stand-in's own
time, a Python list scanned per page where Nomad walks an index, is left out).

Measured twice in one run: with each list read whole (`per_page` 0, how Winslow read
them before; the baseline) and in pages of `LIST_PAGE_SIZE`. Goal: the growth in pages
(peak over start) at most a quarter of the baseline's; exits 1 when it is not.

    python bench/nomad_lists.py [--jobs 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_RATIO = 3.0
"""The baseline's growth over the paged one's, at least."""


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """The most this process has had resident since it started (``VmHWM``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the backend, in a process of its own -------------------------------------------------


def child(address: str, page_size: int, rounds: int) -> dict[str, Any]:
    """Sweep and list like a server, ``rounds`` times; the memory it took."""
    from winslow.backends.nomad import client as client_module
    from winslow.backends.nomad.backend import NomadBackend
    from winslow.backends.nomad.config import NomadConfig

    client_module.LIST_PAGE_SIZE = page_size
    backend = NomadBackend(NomadConfig(address=address))
    backend.cache.quiet_seconds = 0.0
    backend.client.jobs.read("winslow-none")  # the connection and TLS-less client set up
    gc.collect()
    start = rss_mb()
    listed = 0
    started = cpu_seconds()
    for _ in range(rounds):
        backend._sweep()
        managed = [
            stub["ID"]
            for page, _ in backend.client.jobs.pages("winslow-", stale=True)
            for stub in page
            if backend.is_managed(stub)
        ]
        listed = len(managed)
        del managed
    cpu = cpu_seconds() - started
    gc.collect()
    peak = peak_rss_mb()
    return {
        "page_size": page_size,
        "jobs_listed": listed,
        "sweeps": backend.sweeps,
        "rss_start_mb": round(start, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_end_mb": round(rss_mb(), 1),
        "growth_mb": round(peak - start, 1),
        "cpu_seconds_per_round": round(cpu / rounds, 3),
    }


# --- the stand-in, with a day's ended jobs ------------------------------------------------


def seed(standin: Any, jobs: int, base: Path) -> None:
    """Run one stage job through the backend, then copy it and its allocation ``jobs``
    times into the stand-in's state, as ended jobs of other projects."""
    from bench.nomad_load import SHIM
    from winslow.backends.base import JobState, ResourceRequest, RunSpec
    from winslow.backends.nomad.backend import NomadBackend
    from winslow.backends.nomad.config import NomadConfig

    shim = base / "winslow-shim"
    shim.write_text(SHIM)
    shim.chmod(0o755)
    config = NomadConfig(
        address=standin.address,
        allow_host_commands=True,
        tools_driver="raw_exec",
        winslow_command=str(shim),
        s3_endpoint="http://127.0.0.1:9",
        ephemeral_disk_mb=10,
    )
    backend = NomadBackend(config)
    job_id = "winslow-template-1"
    backend.submit(
        RunSpec(
            job_id=job_id,
            project_id="p" * 32,
            project_name="ulm-0603",
            pipeline="traffic",
            stage="detect",
            run_id=1,
            attempt=1,
            command=("true",),
            env={"WINSLOW_PROJECT": "ulm-0603", "WINSLOW_STAGE": "detect", "WINSLOW_RUN": "1"},
            resources=ResourceRequest(cpus=1, memory_mb=256),
            workspace_prefix=f"workspaces/{job_id}/",
            log_key=f"logs/{job_id}.log",
        )
    )
    deadline = time.monotonic() + 60
    while (status := backend.status(job_id)) is None or status.state is not JobState.SUCCEEDED:
        if time.monotonic() > deadline:
            raise SystemExit(f"the template job did not succeed: {status}")
        time.sleep(0.2)
    state = standin.state
    with state.lock:
        job = state.jobs[("default", job_id)]
        [alloc] = state.job_allocs("default", job_id)
        for n in range(jobs):
            new_id = f"winslow-{uuid.uuid4().hex}-{n}"
            new_job = copy.deepcopy(job)
            new_job.update(ID=new_id, Name=new_id)
            new_job["Meta"] = dict(job["Meta"], **{"winslow.run": str(n)})
            state.jobs[("default", new_id)] = new_job
            new_alloc = copy.copy(alloc)  # its Job and TaskStates shared: read only here
            new_alloc.update(ID=str(uuid.uuid4()), JobID=new_id, Name=f"{new_id}.stage[0]")
            state.put_alloc(new_alloc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--child", nargs=2, metavar=("ADDRESS", "PAGE_SIZE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.rounds)))
        return 0

    from tests.nomad_standin import NomadStandin
    from winslow.backends.nomad.client import LIST_PAGE_SIZE

    with tempfile.TemporaryDirectory(prefix="nomad-lists-") as tmp, NomadStandin() as standin:
        standin.add_node("n1", drivers=("raw_exec",))
        standin.put_variable("nomad/jobs", {"access_key": "bench", "secret_key": "bench"})
        seed(standin, args.jobs, Path(tmp))
        rows = []
        for page_size in (0, LIST_PAGE_SIZE):
            command = [sys.executable, __file__, "--rounds", str(args.rounds)]
            command += ["--child", standin.address, str(page_size)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout))
    baseline, paged = rows
    ratio = baseline["growth_mb"] / max(paged["growth_mb"], 0.1)
    met = ratio >= GOAL_RATIO
    result = {
        "jobs": args.jobs,
        "rounds": args.rounds,
        "whole_lists_baseline": baseline,
        "in_pages": paged,
        "growth_ratio": round(ratio, 1),
        "goal": f"the baseline grows at least {GOAL_RATIO:g} times what the paged one grows",
        "met": met,
    }
    print(json.dumps(result, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
