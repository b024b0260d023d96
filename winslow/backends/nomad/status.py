"""Translate what Nomad says about a job and its allocations into Winslow's words.

Pure: it takes the JSON Nomad sent (``types``) and the time, and returns ``JobStatus`` or
``UsageSample`` (nodes are ``nodes``' job); no I/O, no clock. This is the one place where
Nomad's ``ClientStatus``, task states and task events become our ``JobState`` and a
reason a person can act on, and its resource figures our ``UsageSample``.

A stage run is one Nomad batch job with one task group, ``stage``, of three tasks: the
prestart ``stage-in``, the ``main`` task that runs the stage's command, and the poststop
``stage-out`` that publishes the workspace and archives the log; a container stage has a
fourth, the poststart sidecar ``stage-follow`` that copies its output into the log. That
one never decides the outcome: Nomad kills it once ``main`` is dead, which fails nothing,
and it exits 0 on its own; only if it failed anyway would Nomad stop ``main`` with it, and
the run fails saying so. The job's latest
allocation (highest ``CreateIndex``: a replacement Nomad placed after a lost node
supersedes the lost one) decides the state:

- none yet: PENDING, with Nomad's explanation when its evaluation is blocked, or
  CANCELLED when the job was stopped first;
- ``pending``/``running``: PENDING/RUNNING on the allocation's node; ``unknown`` (the
  node stopped answering, Nomad waits for it): RUNNING, saying so;
- a live allocation whose node has not answered since a time ``unreachable_since`` reads
  from Nomad: PENDING/RUNNING while the grace ``lost_after`` lasts, then LOST (the backend
  stops the job); CANCELLED when the job was stopped within the grace;
- ``complete``/``failed``: RUNNING while ``stage-out`` still runs (Nomad calls an
  allocation failed as soon as one task failed); then SUCCEEDED only when ``main``
  exited 0 and ``stage-out`` did too, otherwise FAILED with what failed first
  (stage-in, main and its exit code, signal or OOM kill, the time limit, stage-out), or
  CANCELLED when the job was stopped (how ``cancel`` looks in Nomad); storage or the node
  failing is never the stage's failure: a stage-in that exited
  ``defaults.INFRASTRUCTURE_EXIT_CODE``, or a stage-out that failed after ``main``
  succeeded, makes the run LOST;
- ``lost``: LOST, naming the node (PENDING while Nomad places a replacement).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import cast

from winslow import defaults
from winslow.backends.base import JobState, JobStatus, UsageSample
from winslow.backends.nomad.jobspec import MAIN_TASK, STAGE_IN_TASK, STAGE_OUT_TASK
from winslow.backends.nomad.types import (
    NomadAllocationMetric,
    NomadAllocationStub,
    NomadAllocResourceUsage,
    NomadDeviceGroupStats,
    NomadEvaluation,
    NomadJob,
    NomadMemoryStats,
    NomadNode,
    NomadStatValue,
    NomadTaskEvent,
    NomadTaskState,
)
from winslow.backends.nomad.values import (
    from_unix_nanos,
    from_unix_seconds,
    int_or_none,
    mib_per_unit,
    parse_rfc3339,
    short_id,
)
from winslow.units import format_duration

TIMEOUT_META_KEY = "winslow_timeout_seconds"
"""Job meta key holding the stage's time limit in seconds (the jobspec sets it)."""

POSTSTOP_START_SECONDS = 60.0
"""How long after an allocation's last change a task that has not started yet may still
start (the poststop stage-out of a failed allocation), seconds."""

GPU_UTILIZATION_STAT = "GPU utilization"
"""The nvidia device plugin's statistic of a GPU's busy time, percent."""

GPU_MEMORY_STAT = "Memory state"
"""The nvidia device plugin's statistic of a GPU's memory, used (numerator) of total, MiB."""

# Task event types (hashicorp/nomad api/tasks.go) that end a task without it running.
_EVENT_FAILURES: dict[str, str] = {
    "Driver Failure": "driver failure",
    "Setup Failure": "setup failure",
    "Failed Validation": "invalid task",
    "Failed Artifact Download": "artifact download failed",
    "Task hook failed": "task hook failed",
    "Disk Resources Exceeded": "disk limit exceeded",
}
_KILL_EVENTS = frozenset({"Killing", "Killed"})
_LIVE = frozenset({"pending", "running", "unknown"})
"""Client statuses of an allocation whose tasks may still run on its node."""
_AWAY_NODE_STATUSES = frozenset({"down", "disconnected"})
# The docker driver's error for an image it cannot pull, in every Nomad since 1.7
# (drivers/docker/coordinator.go ``recoverablePullError``); it reaches the Driver Failure
# event's DriverError unchanged (client/allocrunner/taskrunner/task_runner.go).
_PULL_FAILURE = re.compile(r"Failed to pull `(?P<image>[^`]+)`: (?P<why>.*)", re.DOTALL)
_CANNOT_PULL = "cannot pull the image "
_TOOLS_PULL_HINT = "set WINSLOW_NOMAD_IMAGE to an image the nodes can pull"
_STAGE_PULL_HINT = "check the stage's image and that the node can reach its registry"


def job_status(
    job_id: str,
    allocs: Iterable[NomadAllocationStub],
    evals: Iterable[NomadEvaluation],
    now: datetime,
    *,
    job: NomadJob | None = None,
    unreachable: datetime | None = None,
    lost_after: float | None = None,
) -> JobStatus:
    """Return our view of the Nomad job ``job_id`` from its allocations and evaluations.

    ``job`` (as read from Nomad) tells whether the job was stopped, which is how a
    cancel looks in Nomad; ``now`` stands in for a time Nomad did not record.
    ``unreachable`` is when the latest allocation's node stopped answering
    (``unreachable_since``); with ``lost_after`` (seconds) the run is LOST once that long
    has passed. Without them an ``unknown`` allocation runs on for as long as Nomad waits.
    """
    stopped = bool(job and job.get("Stop"))
    evals = list(evals)
    alloc = latest_allocation(allocs)
    if alloc is None:
        if stopped:
            when = _stop_time(evals) or now
            return JobStatus(
                job_id, JobState.CANCELLED, ended_at=when, reason="cancelled before it started"
            )
        return JobStatus(job_id, JobState.PENDING, reason=blocked_reason(evals))

    node = alloc.get("NodeName") or short_id(alloc.get("NodeID")) or None
    states = alloc.get("TaskStates") or {}
    started_at = _started_at(states)
    client_status = alloc.get("ClientStatus", "pending")

    if client_status in _LIVE and unreachable is not None and lost_after is not None:
        return _away(job_id, alloc, evals, now, stopped, unreachable, lost_after, node, started_at)
    if client_status == "pending":
        return JobStatus(job_id, JobState.PENDING, node=node, started_at=started_at)
    if client_status == "running":
        return JobStatus(job_id, JobState.RUNNING, node=node, started_at=started_at)
    if client_status == "unknown":
        return JobStatus(
            job_id,
            JobState.RUNNING,
            node=node,
            started_at=started_at,
            reason=f"node {node} stopped answering; Nomad waits for it to reconnect",
        )

    if client_status in ("complete", "failed"):
        # Nomad calls an allocation failed the moment one task failed, while the poststop
        # stage-out may still be publishing the workspace and archiving the log.
        busy = _unfinished(states, from_unix_nanos(alloc.get("ModifyTime")), now)
        if busy:
            return JobStatus(
                job_id,
                JobState.RUNNING,
                node=node,
                started_at=started_at,
                reason=f"{', '.join(busy)} still running",
            )

    ended_at = _ended_at(states) or from_unix_nanos(alloc.get("ModifyTime")) or now
    if client_status == "lost":
        reason = f"node {node} was lost"
        description = alloc.get("ClientDescription") or alloc.get("DesiredDescription")
        if description:
            reason += f" ({description})"
        blocked = None if stopped else blocked_reason(evals, after=alloc.get("ModifyIndex", 0))
        if blocked is not None:
            # Nomad is placing a replacement (the job allows it): the run waits, not ends.
            return JobStatus(
                job_id, JobState.PENDING, node=node, started_at=started_at, reason=reason
            )
        return JobStatus(job_id, JobState.LOST, node, started_at, ended_at, reason=reason)

    return _ended(job_id, alloc, states, stopped, timeout_of(job), node, started_at, ended_at)


def unreachable_since(alloc: NomadAllocationStub, node: NomadNode | None) -> datetime | None:
    """When ``alloc``'s node stopped answering, as Nomad recorded it; None while it answers.

    ``alloc`` is best read in full (``GET /v1/allocation/:id``): an ``unknown`` one counts
    from the last time Nomad set it ``unknown`` (its ``AllocStates``, as
    nomad/structs/structs.go ``Allocation.LastUnknown`` reads them), else from when its
    node left ``ready`` (``StatusUpdatedAt``), else from its last change. A ``pending`` or
    ``running`` one counts only while its ``node`` is ``down`` or ``disconnected``, or
    gone (None), from when that status began. Ended allocations never count.
    """
    client_status = alloc.get("ClientStatus", "pending")
    if client_status not in _LIVE:
        return None
    node_status = (node or {}).get("Status", "")
    node_since = from_unix_seconds(cast(Mapping[str, object], node or {}).get("StatusUpdatedAt"))
    if client_status == "unknown":
        states = cast(Mapping[str, object], alloc).get("AllocStates")
        marked = [
            t
            for entry in (states if isinstance(states, list) else [])
            if isinstance(entry, dict)
            and entry.get("Field") == "ClientStatus"
            and entry.get("Value") == "unknown"
            and (t := parse_rfc3339(entry.get("Time"))) is not None
        ]
        if marked:
            return max(marked)
        if node_status != "ready" and node_since is not None:
            return node_since
        return from_unix_nanos(alloc.get("ModifyTime"))
    if node is None:
        return from_unix_nanos(alloc.get("ModifyTime"))
    if node_status in _AWAY_NODE_STATUSES:
        return node_since or from_unix_nanos(alloc.get("ModifyTime"))
    return None


def _away(
    job_id: str,
    alloc: NomadAllocationStub,
    evals: list[NomadEvaluation],
    now: datetime,
    stopped: bool,
    since: datetime,
    lost_after: float,
    node: str | None,
    started_at: datetime | None,
) -> JobStatus:
    """The status of a live allocation whose node has not answered since ``since``.

    Nomad itself never gives such an allocation up (see ``backend.py``): past the grace
    ``lost_after`` the run is LOST, whatever happened to the job since (the backend stops
    it then); a job stopped within the grace was cancelled.
    """
    grace = format_duration(lost_after)
    if (now - since).total_seconds() >= lost_after:
        reason = (
            f"node {node} stopped answering at {since:%H:%M:%S} UTC and did not answer "
            f"within {grace}"
        )
        ended = since + timedelta(seconds=lost_after)
        return JobStatus(job_id, JobState.LOST, node, started_at, ended, reason=reason)
    if stopped:
        when = _stop_time(evals) or now
        reason = f"cancelled while node {node} was not answering"
        return JobStatus(job_id, JobState.CANCELLED, node, started_at, when, reason=reason)
    state = JobState.PENDING if alloc.get("ClientStatus") == "pending" else JobState.RUNNING
    waited = format_duration((now - since).total_seconds())
    reason = (
        f"node {node} stopped answering {waited} ago; the run counts as lost unless it "
        f"answers within {grace}"
    )
    return JobStatus(job_id, state, node=node, started_at=started_at, reason=reason)


def _ended(
    job_id: str,
    alloc: NomadAllocationStub,
    states: Mapping[str, NomadTaskState],
    stopped: bool,
    timeout: int | None,
    node: str | None,
    started_at: datetime | None,
    ended_at: datetime,
) -> JobStatus:
    """The status of an allocation that is ``complete`` or ``failed``."""

    def status(state: JobState, reason: str | None, exit_code: int | None = None) -> JobStatus:
        return JobStatus(job_id, state, node, started_at, ended_at, exit_code, reason)

    stage_in = states.get(STAGE_IN_TASK)
    main = states.get(MAIN_TASK)
    stage_out = states.get(STAGE_OUT_TASK)
    main_end = _outcome(main) if main is not None else None
    main_ok = (
        main is not None and main_end is not None and main_end[0] is None and not _was_killed(main)
    )
    stage_out_end = _outcome(stage_out) if stage_out is not None else None
    stage_out_failure = stage_out_end[0] if stage_out_end is not None else None

    ran_for = _ran_for(main) if main is not None else None
    if not main_ok and timeout is not None and ran_for is not None and ran_for >= timeout:
        # stage-exec, or the backend for a container, stopped it at the deadline.
        reason = f"timed out after {timeout} s"
        if stage_out_failure is not None:
            reason += f"; stage-out failed: {stage_out_failure}"
        return status(JobState.FAILED, reason, main_end[1] if main_end is not None else None)

    stopping = stopped or alloc.get("DesiredStatus", "run") != "run"
    killed = any(_was_killed(s) for s in (stage_in, main, stage_out) if s is not None)
    if stopping and killed:
        if not stopped:
            # Nomad stopped the allocation itself (preemption, a drain) and placed none
            # in its stead: the run ended without us asking.
            why = alloc.get("DesiredDescription") or "Nomad stopped its allocation"
            return status(JobState.LOST, f"stopped by Nomad on node {node}: {why}")
        if main_ok:
            return status(JobState.CANCELLED, "cancelled during stage-out", 0)
        return status(JobState.CANCELLED, "cancelled")

    if stage_in is not None and (stage_in.get("Failed") or _failed_end(stage_in)):
        return status(*_stage_in_failure(stage_in, node))

    stage_out_why = _pull_hint(stage_out_failure or _describe(stage_out), node, _TOOLS_PULL_HINT)
    if main_ok:
        if stage_out_failure is None and not (stage_out or {}).get("Failed"):
            return status(JobState.SUCCEEDED, None, 0)
        # The stage did its part; storage failed. A retry (on_lost) may publish it.
        return status(JobState.LOST, f"stage-out failed: {stage_out_why}", 0)

    sibling = _failed_sibling(main, states)
    if sibling is not None and main is not None and _was_killed(main):
        # Nomad stops every task when one fails (alloc_runner.go handleTaskStateUpdates,
        # TaskSiblingFailed): the stage did not fail, it was stopped for that sibling.
        why = f"{sibling} failed: {_describe(states[sibling])}; Nomad stopped the stage with it"
        return status(JobState.FAILED, why)

    main_failure = main_end[0] if main_end is not None else None
    if main_end is not None and main_failure is not None:
        reason, exit_code = _pull_hint(main_failure, node, _STAGE_PULL_HINT), main_end[1]
        if stage_out is not None and (stage_out_failure or stage_out.get("Failed")):
            reason += f"; stage-out failed: {stage_out_why}"
        return status(JobState.FAILED, reason, exit_code)

    # Main never ran to an end of its own: say what Nomad says about the allocation.
    for name, state in states.items():
        if state.get("Failed"):
            return status(JobState.FAILED, f"{name}: {_describe(state)}")
    description = alloc.get("ClientDescription") or "no task reported why"
    return status(
        JobState.FAILED, f"Nomad reports the allocation {alloc.get('ClientStatus')}: {description}"
    )


def _stage_in_failure(stage_in: NomadTaskState, node: str | None) -> tuple[JobState, str]:
    """LOST when stage-in said storage or the node failed it after its retries
    (``defaults.INFRASTRUCTURE_EXIT_CODE``); FAILED for anything else it said."""
    end = _outcome(stage_in)
    if end is not None and end[1] == defaults.INFRASTRUCTURE_EXIT_CODE:
        return JobState.LOST, (
            f"stage-in failed on node {node} (object storage or the node, not the stage; "
            "the run's log says why)"
        )
    return (
        JobState.FAILED,
        f"stage-in failed: {_pull_hint(_describe(stage_in), node, _TOOLS_PULL_HINT)}",
    )


def timeout_of(job: NomadJob | None) -> int | None:
    """The run's time limit in seconds, as the jobspec recorded it in the job's meta."""
    meta = (job or {}).get("Meta") or {}
    return int_or_none(meta.get(TIMEOUT_META_KEY))


def main_started_at(alloc: NomadAllocationStub | None) -> datetime | None:
    """When the ``main`` task of ``alloc`` started; None before it did."""
    state = ((alloc or {}).get("TaskStates") or {}).get(MAIN_TASK)
    return _task_started(state) if state is not None else None


def latest_allocation(allocs: Iterable[NomadAllocationStub]) -> NomadAllocationStub | None:
    """The allocation that speaks for the job now: the one Nomad created last."""
    return max(
        allocs,
        key=lambda a: (a.get("CreateIndex", 0), a.get("CreateTime", 0)),
        default=None,
    )


def blocked_reason(evals: Iterable[NomadEvaluation], after: int = 0) -> str | None:
    """Nomad's explanation why the job cannot be placed, while an evaluation is blocked.

    Only evaluations created after raft index ``after`` count. Returns e.g. ``no node
    can place it: 3 nodes exhausted on devices: nvidia/gpu; 1 filtered by constraint
    ${attr.kernel.name} = linux``, or None when no evaluation is blocked.
    """
    evals = [e for e in evals if e.get("CreateIndex", 0) > after]
    blocked = [e for e in evals if e.get("Status") == "blocked"]
    if not blocked:
        return None
    latest = max(blocked, key=lambda e: e.get("CreateIndex", 0))
    metrics = latest.get("FailedTGAllocs")
    if not metrics:
        # Older agents record the failure on the evaluation that created the blocked one.
        creators = [e for e in evals if e.get("BlockedEval") == latest.get("ID")]
        metrics = next((e.get("FailedTGAllocs") for e in creators if e.get("FailedTGAllocs")), None)
    if not metrics:
        return "no node can place it yet; Nomad retries when the cluster changes"
    return "no node can place it: " + explain_placement(metrics)


def explain_placement(metrics: Mapping[str, NomadAllocationMetric]) -> str:
    """Why Nomad placed none of each task group, from its ``AllocationMetric``."""
    parts: list[str] = []
    for group, metric in sorted(metrics.items()):
        reasons = _metric_reasons(metric)
        text = "; ".join(reasons) if reasons else "no node fits"
        parts.append(f"{group}: {text}" if len(metrics) > 1 else text)
    return "; ".join(parts)


def _metric_reasons(metric: NomadAllocationMetric) -> list[str]:
    reasons: list[str] = []
    available = metric.get("NodesAvailable") or {}
    if metric.get("NodesEvaluated", 0) == 0 and not any(available.values()):
        where = ", ".join(sorted(available)) or "its datacenters"
        reasons.append(f"no node is ready in {where}")
    exhausted = metric.get("DimensionExhausted") or {}
    for dimension, count in _by_count(exhausted):
        reasons.append(f"{count} {_nodes(count)} exhausted on {dimension}")
    if not exhausted and metric.get("NodesExhausted", 0):
        count = metric.get("NodesExhausted", 0)
        reasons.append(f"{count} {_nodes(count)} exhausted")
    filtered = metric.get("ConstraintFiltered") or {}
    for constraint, count in _by_count(filtered):
        what = f"constraint {constraint}" if "${" in constraint else constraint
        reasons.append(f"{count} filtered by {what}")
    if not filtered:
        for node_class, count in _by_count(metric.get("ClassFiltered") or {}):
            reasons.append(f"{count} filtered in node class {node_class}")
    for quota in metric.get("QuotaExhausted") or []:
        reasons.append(f"quota exhausted: {quota}")
    return reasons


def usage_of(stats: NomadAllocResourceUsage, task: str = MAIN_TASK) -> UsageSample | None:
    """What ``task`` of an allocation uses, from ``/v1/client/allocation/:id/stats``; None
    when the node has no figures for it (it does not run, or has not been measured yet).

    CPU is Nomad's ``Percent`` (of one core). Memory is ``RSS`` where the driver measured
    it; drivers that measure only cgroup totals (docker on cgroup v2) report ``Usage``,
    from which the page ``Cache`` is taken off, as ``docker stats`` does. GPUs are the
    task's devices of type ``gpu``, as the nvidia device plugin reports them: the mean of
    their ``GPU utilization`` and the sum of their used ``Memory state``.
    """
    task_usage = (stats.get("Tasks") or {}).get(task)
    usage = (task_usage or {}).get("ResourceUsage")
    if not usage:
        return None
    cpu = usage.get("CpuStats") or {}
    gpu_percent, gpu_memory_mb = _gpu_usage(usage.get("DeviceStats") or [])
    return UsageSample(
        cpu_percent=round(float(cpu.get("Percent") or 0.0), 2),
        memory_mb=round(_memory_bytes(usage.get("MemoryStats") or {}) / (1024 * 1024), 2),
        gpu_percent=None if gpu_percent is None else round(gpu_percent, 2),
        gpu_memory_mb=gpu_memory_mb,
    )


def _memory_bytes(memory: NomadMemoryStats) -> int:
    measured = set(memory.get("Measured") or ())
    if "RSS" in measured or "Usage" not in measured:
        return int(memory.get("RSS") or 0)
    cache = int(memory.get("Cache") or 0) if "Cache" in measured else 0
    return max(int(memory.get("Usage") or 0) - cache, 0)


def _gpu_usage(groups: Iterable[NomadDeviceGroupStats]) -> tuple[float | None, float | None]:
    """Mean utilisation and summed used memory (MB) of the GPUs in ``groups``."""
    utilisation: list[float] = []
    memory: list[float] = []
    for group in groups:
        if group.get("Type") != "gpu":
            continue
        for instance in (group.get("InstanceStats") or {}).values():
            attributes = (instance.get("Stats") or {}).get("Attributes") or {}
            busy = _stat_number(attributes.get(GPU_UTILIZATION_STAT))
            if busy is not None:
                utilisation.append(busy)
            # The plugin's summary is its memory state; any other summary has no memory unit.
            state = attributes.get(GPU_MEMORY_STAT) or instance.get("Summary") or {}
            used = _stat_number(state)
            factor = mib_per_unit(state.get("Unit") or "")
            if used is not None and factor is not None:
                memory.append(used * factor)
    return (
        sum(utilisation) / len(utilisation) if utilisation else None,
        sum(memory) if memory else None,
    )


def _stat_number(value: NomadStatValue | None) -> float | None:
    """A statistic's numerator; None where the device said ``N/A`` or nothing."""
    if not value:
        return None
    for key in ("IntNumeratorVal", "FloatNumeratorVal"):
        number = cast(Mapping[str, object], value).get(key)
        if isinstance(number, int | float) and not isinstance(number, bool):
            return float(number)
    return None


# Task states --------------------------------------------------------------------------


def _unfinished(
    states: Mapping[str, NomadTaskState], modified: datetime | None, now: datetime
) -> list[str]:
    """Tasks of an ended allocation that still run, or may still start.

    Only the poststop ``stage-out`` starts after the others are dead; while it has not,
    it counts for ``POSTSTOP_START_SECONDS`` after the allocation last changed, and one
    that has not started by then never will.
    """
    recent = modified is None or (now - modified).total_seconds() < POSTSTOP_START_SECONDS
    return sorted(
        name
        for name, state in states.items()
        if state.get("State") == "running"
        or (name == STAGE_OUT_TASK and state.get("State") == "pending" and recent)
    )


def _outcome(state: NomadTaskState) -> tuple[str | None, int | None] | None:
    """How a task ended: (None, 0) for success, (reason, exit code) for a failure, or
    None while it has not ended."""
    for event in reversed(state.get("Events") or []):
        kind = event.get("Type", "")
        if kind == "Terminated":
            return _termination(event)
        if kind in _EVENT_FAILURES:
            message = _event_message(event)
            pull = _PULL_FAILURE.search(message) if kind == "Driver Failure" else None
            if pull is not None:
                return f"{_CANNOT_PULL}{pull['image']}: {pull['why'].strip()}", None
            return f"{_EVENT_FAILURES[kind]}: {message}", None
    if state.get("State") == "dead" and state.get("Failed"):
        return _describe(state), None
    return None


def _termination(event: NomadTaskEvent) -> tuple[str | None, int | None]:
    details = event.get("Details") or {}
    exit_code = int_or_none(details.get("exit_code"))
    if exit_code is None:
        exit_code = event.get("ExitCode", 0)
    signum = int_or_none(details.get("signal"))
    if signum is None:
        signum = event.get("Signal", 0)
    if details.get("oom_killed") == "true":
        return "out of memory (OOM killed)", exit_code
    if signum:
        return f"killed by signal {signum} ({_signal_name(signum)})", None
    if exit_code:
        return f"exited with code {exit_code}", exit_code
    return None, 0


def _pull_hint(reason: str, node: str | None, hint: str) -> str:
    """A failed pull's reason with the node it failed on and what to change: the tools'
    image is a setting (``hint``), the stage's is the pipeline's."""
    if not reason.startswith(_CANNOT_PULL):
        return reason
    image, _, why = reason.removeprefix(_CANNOT_PULL).partition(": ")
    where = f" on node {node}" if node else ""
    return f"{_CANNOT_PULL}{image}{where}: {why}; {hint}"


def _failed_sibling(
    main: NomadTaskState | None, states: Mapping[str, NomadTaskState]
) -> str | None:
    """The task whose failure made Nomad kill ``main`` (its ``Sibling Task Failed`` event);
    None when none did."""
    for event in (main or {}).get("Events") or []:
        name = event.get("FailedSibling") or ""
        if event.get("Type") == "Sibling Task Failed" and name in states and name != MAIN_TASK:
            return name
    return None


def _failed_end(state: NomadTaskState) -> bool:
    end = _outcome(state)
    return end is not None and end[0] is not None


def _was_killed(state: NomadTaskState) -> bool:
    return any(e.get("Type") in _KILL_EVENTS for e in state.get("Events") or [])


def _describe(state: NomadTaskState | None) -> str:
    """The most telling words about how a task failed."""
    if state is None:
        return "it did not run"
    end = _outcome(state)
    if end is not None and end[0] is not None:
        return end[0]
    for event in reversed(state.get("Events") or []):
        if event.get("FailsTask") or event.get("Type") == "Not Restarting":
            message = _event_message(event)
            if message:
                return message
    return "failed"


def _event_message(event: NomadTaskEvent) -> str:
    fields = cast(Mapping[str, object], event)
    for key in (
        "DriverError",
        "SetupError",
        "ValidationError",
        "DownloadError",
        "KillError",
        "DisplayMessage",
        "Message",
    ):
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    details = event.get("Details") or {}
    for key in ("driver_error", "setup_error", "validation_error", "message"):
        if details.get(key):
            return details[key]
    return event.get("Type", "unknown event")


# Times ---------------------------------------------------------------------------------


def _started_at(states: Mapping[str, NomadTaskState]) -> datetime | None:
    """When the allocation's first task started (stage-in counts: it is part of the run)."""
    times = [t for s in states.values() if (t := _task_started(s)) is not None]
    return min(times, default=None)


def _ran_for(state: NomadTaskState) -> float | None:
    """Seconds a task ran, once it has ended."""
    started = _task_started(state)
    finished = parse_rfc3339(state.get("FinishedAt"))
    if started is None or finished is None:
        return None
    return (finished - started).total_seconds()


def _ended_at(states: Mapping[str, NomadTaskState]) -> datetime | None:
    times = [t for s in states.values() if (t := parse_rfc3339(s.get("FinishedAt"))) is not None]
    return max(times, default=None)


def _task_started(state: NomadTaskState) -> datetime | None:
    started = parse_rfc3339(state.get("StartedAt"))
    if started is not None:
        return started
    for event in state.get("Events") or []:
        if event.get("Type") == "Started":
            return from_unix_nanos(event.get("Time"))
    return None


def _stop_time(evals: Iterable[NomadEvaluation]) -> datetime | None:
    times = [
        t
        for e in evals
        if e.get("TriggeredBy") == "job-deregister" and (t := from_unix_nanos(e.get("CreateTime")))
    ]
    return min(times, default=None)


# Small helpers -------------------------------------------------------------------------


def _nodes(count: int) -> str:
    return "node" if count == 1 else "nodes"


def _by_count(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "unknown signal"
