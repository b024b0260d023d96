"""Nomad's forced garbage collection (``PUT /v1/system/gc``, ``nomad system gc``).

What ``CoreScheduler.forceGC`` (``nomad/core_sched.go``) does to jobs, evaluations and
allocations, with every threshold at zero:

- ``jobGC``: a dead job whose evaluations are all terminal, and whose allocations are
  all terminal, is purged with them (a ``JobBatchDeregister``: one Job event, typed
  ``JobBatchDeregistered``, per job; deleting evaluations and allocations publishes
  none);
- ``evalGC``: a terminal evaluation whose job is gone (purged), or dead, goes with its
  terminal allocations; one with a live allocation stays.

Nodes, deployments and the rest that ``forceGC`` also collects are left alone: nothing
the stand-in's users read depends on them.
"""

from __future__ import annotations

from typing import Any

from .scheduler import TERMINAL_EVAL_STATUSES, put_job
from .state import State, alloc_terminal

JsonDict = dict[str, Any]


def collect_garbage(state: State) -> dict[str, int]:
    """Collect what Nomad's forced GC would; return how many jobs, evals, allocs went."""
    gone = {"jobs": 0, "evals": 0, "allocs": 0}
    with state.lock:
        dead = [job for job in state.jobs.values() if _collectable(state, job)]
        if dead:
            with state.txn("JobBatchDeregistered"):
                for job in dead:
                    _drop_job_children(state, job["Namespace"], job["ID"], gone)
                    put_job(state, job, deleted=True)
                    gone["jobs"] += 1
        orphans = [
            ev
            for ev in list(state.evals.values())
            if ev["Status"] in TERMINAL_EVAL_STATUSES
            and _job_gone_or_dead(state, ev["Namespace"], ev["JobID"])
        ]
        if orphans:
            with state.txn("EvalDelete"):
                for ev in orphans:
                    allocs = [
                        a
                        for a in state.job_allocs(ev["Namespace"], ev["JobID"])
                        if a.get("EvalID") == ev["ID"]
                    ]
                    if not all(alloc_terminal(a) for a in allocs):
                        continue
                    for alloc in allocs:
                        state.drop_alloc(alloc)
                        gone["allocs"] += 1
                    state.drop_eval(ev)
                    gone["evals"] += 1
    return gone


def _collectable(state: State, job: JsonDict) -> bool:
    namespace, job_id = job["Namespace"], job["ID"]
    return (
        job["Status"] == "dead"
        and all(e["Status"] in TERMINAL_EVAL_STATUSES for e in state.job_evals(namespace, job_id))
        and all(alloc_terminal(a) for a in state.job_allocs(namespace, job_id))
    )


def _job_gone_or_dead(state: State, namespace: str, job_id: str) -> bool:
    job = state.job(namespace, job_id)
    return job is None or job["Status"] == "dead"


def _drop_job_children(state: State, namespace: str, job_id: str, gone: dict[str, int]) -> None:
    for alloc in state.job_allocs(namespace, job_id):
        state.drop_alloc(alloc)
        gone["allocs"] += 1
    for ev in state.job_evals(namespace, job_id):
        state.drop_eval(ev)
        gone["evals"] += 1
