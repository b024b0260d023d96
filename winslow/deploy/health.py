"""One verdict per deployed job, from what Nomad says about it.

Nomad already judges a service job's health: each version gets a deployment whose
allocations its clients mark healthy (every task running and every check passing for
``min_healthy_time``) or unhealthy, and the deployment ends ``successful`` or ``failed``
(nomad/structs ``Deployment``, client/allochealth). So a job with a deployment for its
current version is exactly as healthy as that deployment says. A job without one (an
``update`` block with ``max_parallel = 0``) is healthy when its current allocations run
and their checks pass. The reason given for a job that is not healthy is the most telling
thing Nomad reports: a check's output, the last task event that explains a failure or a
restart, or why no node could take the allocation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["HealthState", "JobHealth", "alloc_reason", "job_health"]

JsonDict = Mapping[str, Any]

TELLING_EVENTS = (
    "Alloc Unhealthy",
    "Not Restarting",
    "Driver Failure",
    "Failed Validation",
    "Task hook failed",
    "Template",
    "Setup Failure",
    "Restarting",
    "Terminated",
)
"""Task event types that say why a task is not (yet) healthy, most telling first."""


class HealthState(str, Enum):
    HEALTHY = "healthy"
    PROGRESSING = "progressing"
    FAILED = "failed"
    MISSING = "missing"
    STOPPED = "stopped"


@dataclass(frozen=True)
class JobHealth:
    """A job's verdict: ``healthy`` of ``desired`` allocations, and why not all are."""

    job: str
    state: HealthState
    healthy: int
    desired: int
    status: str
    """Nomad's own word for where the job is (deployment or job status)."""
    reason: str = ""
    allocation: str = ""
    """The allocation ``reason`` is about, if any."""

    def line(self) -> str:
        """One progress line: ``winslow-postgres: 0/1 healthy (deployment running)``."""
        text = f"{self.job}: {self.healthy}/{self.desired} healthy ({self.status})"
        if self.reason and self.state is not HealthState.HEALTHY:
            where = f"allocation {self.allocation[:8]}: " if self.allocation else ""
            text += f"; {where}{self.reason}"
        return text


def alloc_reason(alloc: JsonDict, checks: Mapping[str, JsonDict] | None = None) -> str:
    """Why ``alloc`` is not healthy, in Nomad's words; "" when nothing says so."""
    failing = [c for c in (checks or {}).values() if c.get("Status") != "success"]
    states: Mapping[str, JsonDict] = alloc.get("TaskStates") or {}
    best: tuple[int, str] | None = None
    for task, state in sorted(states.items()):
        for event in state.get("Events") or []:
            kind = event.get("Type", "")
            if kind not in TELLING_EVENTS:
                continue
            text = (
                event.get("DisplayMessage")
                or event.get("Message")
                or event.get("DriverError")
                or event.get("RestartReason")
                or kind
            )
            rank = TELLING_EVENTS.index(kind)
            if best is None or rank <= best[0]:
                best = (rank, f"task {task}: {kind}: {text}")
    check_reason = ""
    if failing:
        check = failing[0]
        check_reason = (
            f"check {check.get('Check', '')} of service {check.get('Service', '')} is "
            f"{check.get('Status', 'pending')}: {check.get('Output', '')}".rstrip(": ")
        )
    if best is not None and best[0] <= TELLING_EVENTS.index("Template"):
        # "Alloc Unhealthy" says that, not why; a failing check says why.
        return f"{best[1]}; {check_reason}" if check_reason else best[1]
    if check_reason or best is not None:
        return check_reason or (best[1] if best else "")
    # "Tasks are running" is no reason; "Failed tasks" or a lost node is.
    failed = alloc.get("ClientStatus") in ("failed", "lost")
    return str(alloc.get("ClientDescription") or "") if failed else ""


def _placement_reason(failures: Mapping[str, JsonDict]) -> str:
    for group, metric in sorted(failures.items()):
        filtered = {
            **(metric.get("ConstraintFiltered") or {}),
            **(metric.get("DimensionExhausted") or {}),
            **(metric.get("ClassFiltered") or {}),
        }
        words = ", ".join(f"{k} ({v} nodes)" for k, v in sorted(filtered.items()))
        evaluated = metric.get("NodesEvaluated", 0)
        return f"group {group}: no node can take it ({evaluated} evaluated; {words or 'no nodes'})"
    return ""


def job_health(
    job_id: str,
    job: JsonDict | None,
    allocs: Sequence[JsonDict],
    deployment: JsonDict | None,
    checks: Mapping[str, Mapping[str, JsonDict]],
    placement_failures: Mapping[str, JsonDict] | None = None,
) -> JobHealth:
    """The verdict on ``job`` from its allocations, its newest deployment, the check
    results per allocation ID and a blocked evaluation's ``FailedTGAllocs``."""
    if job is None:
        return JobHealth(job_id, HealthState.MISSING, 0, 0, "not registered")
    desired = sum(int(g.get("Count", 1)) for g in job.get("TaskGroups") or [])
    if job.get("Stop"):
        return JobHealth(job_id, HealthState.STOPPED, 0, desired, "stopped")
    version = job.get("Version", 0)
    current = [a for a in allocs if a.get("JobVersion", version) == version]
    live = [a for a in current if a.get("DesiredStatus") == "run"]
    ours = deployment if deployment and deployment.get("JobVersion") == version else None
    if ours is not None:
        return _from_deployment(job_id, ours, live or current, checks, desired, placement_failures)
    healthy = [
        a
        for a in live
        if a.get("ClientStatus") == "running"
        and all(c.get("Status") == "success" for c in (checks.get(a["ID"]) or {}).values())
    ]
    if len(healthy) >= desired:
        return JobHealth(job_id, HealthState.HEALTHY, len(healthy), desired, str(job.get("Status")))
    reason, alloc_id = _first_reason(live or current, checks, placement_failures)
    return JobHealth(
        job_id,
        HealthState.PROGRESSING,
        len(healthy),
        desired,
        str(job.get("Status")),
        reason,
        alloc_id,
    )


def _from_deployment(
    job_id: str,
    deployment: JsonDict,
    allocs: Sequence[JsonDict],
    checks: Mapping[str, Mapping[str, JsonDict]],
    desired: int,
    placement_failures: Mapping[str, JsonDict] | None,
) -> JobHealth:
    groups = (deployment.get("TaskGroups") or {}).values()
    healthy = sum(int(g.get("HealthyAllocs", 0)) for g in groups)
    desired = sum(int(g.get("DesiredTotal", 0)) for g in groups) or desired
    status = str(deployment.get("Status", ""))
    words = f"deployment {status}"
    running = [
        a for a in allocs if a.get("DesiredStatus") == "run" and a.get("ClientStatus") == "running"
    ]
    if status == "successful" and len(running) >= desired:
        return JobHealth(job_id, HealthState.HEALTHY, healthy, desired, words)
    if status == "successful":
        # Healthy once, but allocations have ended since; Nomad replaces them on its own.
        reason, alloc_id = _first_reason(allocs, checks, placement_failures)
        return JobHealth(
            job_id, HealthState.PROGRESSING, len(running), desired, words, reason, alloc_id
        )
    unhealthy = [a for a in allocs if (a.get("DeploymentStatus") or {}).get("Healthy") is False]
    reason, alloc_id = _first_reason(unhealthy or allocs, checks, placement_failures)
    if status in ("failed", "cancelled"):
        description = str(deployment.get("StatusDescription", ""))
        reason = f"{description}: {reason}" if reason else description
        return JobHealth(job_id, HealthState.FAILED, healthy, desired, words, reason, alloc_id)
    return JobHealth(job_id, HealthState.PROGRESSING, healthy, desired, words, reason, alloc_id)


def _first_reason(
    allocs: Sequence[JsonDict],
    checks: Mapping[str, Mapping[str, JsonDict]],
    placement_failures: Mapping[str, JsonDict] | None,
) -> tuple[str, str]:
    for alloc in sorted(allocs, key=lambda a: a.get("CreateIndex", 0), reverse=True):
        reason = alloc_reason(alloc, checks.get(alloc["ID"]))
        if reason:
            return reason, str(alloc["ID"])
    if placement_failures:
        return _placement_reason(placement_failures), ""
    return "", str(allocs[0]["ID"]) if allocs else ""
