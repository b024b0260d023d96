"""``status``: Nomad's allocations, evaluations and nodes translated into our words.

Every input is hand-written in the shapes of the documented samples
(``shared/nomad-api/samples``): allocation stubs with ``TaskStates`` and their events,
blocked evaluations with ``FailedTGAllocs``, nodes with ``NodeResources.Devices``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.nomad_api import SAMPLES
from winslow.backends.base import JobState
from winslow.backends.nomad.status import (
    blocked_reason,
    job_status,
    latest_allocation,
    unreachable_since,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
JOB = "winslow-p1-41"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rfc3339(seconds: float) -> str:
    # Go writes nanoseconds; the parser must cope with nine digits.
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def nanos(seconds: float) -> int:
    return int(at(seconds).timestamp() * 1e9)


def event(kind: str, seconds: float, **fields) -> dict:
    base = {
        "Type": kind,
        "Time": nanos(seconds),
        "FailsTask": False,
        "RestartReason": "",
        "SetupError": "",
        "DriverError": "",
        "ExitCode": 0,
        "Signal": 0,
        "Message": "",
        "DisplayMessage": "",
        "Details": {},
    }
    base.update(fields)
    return base


def terminated(seconds: float, exit_code: int = 0, signal: int = 0, oom: bool = False) -> dict:
    details = {"exit_code": str(exit_code), "signal": str(signal), "oom_killed": str(oom).lower()}
    return event(
        "Terminated",
        seconds,
        ExitCode=exit_code,
        Signal=signal,
        Details=details,
        DisplayMessage=f"Exit Code: {exit_code}",
    )


def task(state: str, *events: dict, failed: bool = False, start=None, end=None) -> dict:
    return {
        "State": state,
        "Failed": failed,
        "Restarts": 0,
        "StartedAt": rfc3339(start) if start is not None else "0001-01-01T00:00:00Z",
        "FinishedAt": rfc3339(end) if end is not None else "0001-01-01T00:00:00Z",
        "LastRestart": "0001-01-01T00:00:00Z",
        "Events": [event("Received", 0), *events],
    }


def ran(start: float, end: float, exit_code: int = 0, **kw) -> dict:
    """A task that started and ended with ``exit_code``."""
    return task(
        "dead",
        event("Started", start),
        terminated(end, exit_code, kw.get("signal", 0), kw.get("oom", False)),
        failed=exit_code != 0 or bool(kw.get("signal")) or kw.get("oom", False),
        start=start,
        end=end,
    )


def alloc(client_status: str, tasks: dict, **fields) -> dict:
    base = {
        "ID": "a8198d79-cfdb-6593-a999-1e9adabcba2e",
        "EvalID": "5456bd7a-9fc0-c0dd-6131-cbee77f57577",
        "Name": f"{JOB}.stage[0]",
        "NodeID": "fb2170a8-257d-3c64-b14d-bc06cc94e34c",
        "NodeName": "gpu-3",
        "JobID": JOB,
        "TaskGroup": "stage",
        "DesiredStatus": "run",
        "DesiredDescription": "",
        "ClientStatus": client_status,
        "ClientDescription": "",
        "TaskStates": tasks,
        "CreateIndex": 54,
        "ModifyIndex": 57,
        "CreateTime": nanos(0),
        "ModifyTime": nanos(100),
    }
    base.update(fields)
    return base


def nomad_job(stop: bool = False, **meta) -> dict:
    return {
        "ID": JOB,
        "Type": "batch",
        "Status": "dead" if stop else "running",
        "Stop": stop,
        "Meta": {"winslow_managed": "true", **meta},
    }


def blocked_eval(metrics: dict | None, create_index: int = 60, **fields) -> dict:
    base = {
        "ID": "2deb5f06-a100-f01a-3316-5e501a4965e7",
        "JobID": JOB,
        "Status": "blocked",
        "StatusDescription": "created to place remaining allocations",
        "TriggeredBy": "queued-allocs",
        "FailedTGAllocs": metrics,
        "CreateIndex": create_index,
        "ModifyIndex": create_index,
        "CreateTime": nanos(1),
    }
    base.update(fields)
    return base


def gpu_metric() -> dict:
    return {
        "NodesEvaluated": 4,
        "NodesFiltered": 1,
        "NodesAvailable": {"dc1": 4},
        "ConstraintFiltered": {"${device.model} regexp A100": 1},
        "NodesExhausted": 3,
        "DimensionExhausted": {"devices: nvidia/gpu": 3},
    }


def status_of(allocs=(), evals=(), job=None):
    return job_status(JOB, list(allocs), list(evals), NOW, job=job or nomad_job())


# Before an allocation exists ------------------------------------------------------------


def test_job_without_allocation_or_blocked_evaluation_is_pending_without_a_reason():
    status = status_of()
    assert (status.state, status.reason, status.node) == (JobState.PENDING, None, None)


def test_blocked_evaluation_explains_why_nothing_can_place_the_run():
    status = status_of(evals=[blocked_eval({"stage": gpu_metric()})])
    assert status.state is JobState.PENDING
    assert status.reason == (
        "no node can place it: 3 nodes exhausted on devices: nvidia/gpu; "
        "1 filtered by constraint ${device.model} regexp A100"
    )


def test_documented_blocked_evaluation_says_no_node_is_ready():
    sample = json.loads((SAMPLES / "evaluation_read_response.json").read_text())
    assert blocked_reason([sample]) == "no node can place it: no node is ready in dc1"


def test_failure_recorded_on_the_evaluation_that_created_the_blocked_one_is_used():
    creator = {
        "ID": "0f98f7ea",
        "JobID": JOB,
        "Status": "complete",
        "BlockedEval": "2deb5f06-a100-f01a-3316-5e501a4965e7",
        "FailedTGAllocs": {"stage": {"NodesEvaluated": 2, "DimensionExhausted": {"memory": 2}}},
        "CreateIndex": 59,
    }
    status = status_of(evals=[creator, blocked_eval(None)])
    assert status.reason == "no node can place it: 2 nodes exhausted on memory"


def test_finished_blocked_evaluation_no_longer_holds_the_run_back():
    done = blocked_eval({"stage": gpu_metric()}, Status="complete")
    assert status_of(evals=[done]).reason is None


# Pending and running --------------------------------------------------------------------


def test_allocation_waiting_on_its_node_is_pending_there():
    status = status_of([alloc("pending", {"stage-in": task("pending"), "main": task("pending")})])
    assert (status.state, status.node, status.started_at) == (JobState.PENDING, "gpu-3", None)


def test_running_allocation_started_when_stage_in_started():
    tasks = {
        "stage-in": ran(2, 8),
        "main": task("running", event("Started", 9), start=9),
        "stage-out": task("pending"),
    }
    status = status_of([alloc("running", tasks)])
    assert status.state is JobState.RUNNING
    assert status.node == "gpu-3"
    assert status.started_at == at(2)  # Go's nanoseconds cut to microseconds
    assert status.ended_at is None


def test_disconnected_node_keeps_the_run_running_and_says_so():
    status = status_of([alloc("unknown", {"main": task("running", start=1)})])
    assert status.state is JobState.RUNNING
    assert status.reason == "node gpu-3 stopped answering; Nomad waits for it to reconnect"


# Ended ----------------------------------------------------------------------------------


def test_success_needs_main_exit_0_and_stage_out_done():
    tasks = {"stage-in": ran(1, 2), "main": ran(3, 50), "stage-out": ran(51, 55)}
    status = status_of([alloc("complete", tasks)])
    assert (status.state, status.exit_code, status.reason) == (JobState.SUCCEEDED, 0, None)
    assert status.started_at == at(1)
    assert status.ended_at == at(55)
    assert status.node == "gpu-3"


def test_main_exit_3_fails_with_its_code():
    tasks = {"stage-in": ran(1, 2), "main": ran(3, 5, exit_code=3), "stage-out": ran(6, 7)}
    status = status_of([alloc("failed", tasks)])
    assert (status.state, status.exit_code) == (JobState.FAILED, 3)
    assert status.reason == "exited with code 3"


def test_main_killed_by_a_signal_says_which():
    tasks = {"main": ran(3, 5, exit_code=0, signal=9), "stage-out": ran(6, 7)}
    status = status_of([alloc("failed", tasks)])
    assert (status.state, status.exit_code) == (JobState.FAILED, None)
    assert status.reason == "killed by signal 9 (SIGKILL)"


def test_main_killed_for_memory_says_out_of_memory():
    tasks = {"main": ran(3, 5, exit_code=137, oom=True), "stage-out": ran(6, 7)}
    status = status_of([alloc("failed", tasks)])
    assert (status.state, status.exit_code) == (JobState.FAILED, 137)
    assert status.reason == "out of memory (OOM killed)"


def pull_failure(image: str, why: str, seconds: float = 4) -> dict:
    """A docker task whose image cannot be pulled, as Nomad reports it: the driver's error
    ``Failed to pull `<image>`: <docker's error>`` (hashicorp/nomad drivers/docker/
    coordinator.go ``recoverablePullError``) in a ``Driver Failure`` event's
    ``DriverError`` (client/allocrunner/taskrunner/task_runner.go ``runDriver``,
    ``SetDriverError``), then ``Not Restarting`` under a policy of 0 attempts."""
    message = f"Failed to pull `{image}`: {why}"
    return task(
        "dead",
        event("Driver", seconds - 1, DriverMessage="Downloading image"),
        event(
            "Driver Failure",
            seconds,
            DriverError=message,
            DisplayMessage=message,
            Details={"driver_error": message},
        ),
        event(
            "Not Restarting", seconds, DisplayMessage="Policy allows no restarts", FailsTask=True
        ),
        failed=True,
    )


def test_image_that_cannot_be_pulled_names_the_image_and_dockers_reason():
    main = pull_failure("ghcr.io/acme/detect:9", "manifest unknown")
    status = status_of([alloc("failed", {"stage-in": ran(1, 2), "main": main})])
    assert status.state is JobState.FAILED
    assert status.reason == (
        "cannot pull the image ghcr.io/acme/detect:9 on node gpu-3: manifest unknown; "
        "check the stage's image and that the node can reach its registry"
    )
    assert status.exit_code is None


def test_tools_image_that_cannot_be_pulled_fails_stage_in_naming_the_setting():
    why = (
        'Error response from daemon: Get "https://registry.invalid/v2/": dial tcp: '
        "lookup registry.invalid on 127.0.0.53:53: no such host"
    )
    stage_in = pull_failure("registry.invalid/winslow-tools:0.1.0", why, seconds=2)
    tasks = {"stage-in": stage_in, "main": task("dead", event("Sibling Task Failed", 2))}
    status = status_of([alloc("failed", tasks)])
    assert status.state is JobState.FAILED
    assert status.reason == (
        "stage-in failed: cannot pull the image registry.invalid/winslow-tools:0.1.0 on node "
        f"gpu-3: {why}; set WINSLOW_NOMAD_IMAGE to an image the nodes can pull"
    )


def test_other_driver_failures_keep_nomads_words():
    main = task(
        "dead",
        event("Driver Failure", 4, DriverError="failed to create container: no space left"),
        failed=True,
    )
    status = status_of([alloc("failed", {"stage-in": ran(1, 2), "main": main})])
    assert status.reason == "driver failure: failed to create container: no space left"


def test_failed_stage_in_fails_the_run_before_main_starts():
    tasks = {
        "stage-in": ran(1, 2, exit_code=1),
        "main": task("dead", event("Sibling Task Failed", 2)),
        "stage-out": ran(3, 4),
    }
    status = status_of([alloc("failed", tasks)])
    assert (status.state, status.reason) == (JobState.FAILED, "stage-in failed: exited with code 1")


def test_stage_in_that_storage_failed_loses_the_run():
    tasks = {
        "stage-in": ran(1, 2, exit_code=75),
        "main": task("dead", event("Sibling Task Failed", 2)),
        "stage-out": ran(3, 4),
    }
    status = status_of([alloc("failed", tasks)])
    assert status.state is JobState.LOST
    assert status.reason == (
        "stage-in failed on node gpu-3 (object storage or the node, not the stage; "
        "the run's log says why)"
    )


def test_stage_in_setup_failure_quotes_nomad():
    stage_in = task(
        "dead",
        event("Setup Failure", 1, SetupError="failed to render secrets/s3.env: missing key"),
        failed=True,
    )
    status = status_of([alloc("failed", {"stage-in": stage_in, "main": task("dead")})])
    assert status.reason == (
        "stage-in failed: setup failure: failed to render secrets/s3.env: missing key"
    )


def test_stage_out_failure_loses_a_run_whose_stage_succeeded():
    tasks = {"main": ran(3, 5), "stage-out": ran(6, 7, exit_code=2)}
    status = status_of([alloc("failed", tasks)])
    assert (status.state, status.exit_code) == (JobState.LOST, 0)
    assert status.reason == "stage-out failed: exited with code 2"


def test_stage_out_failure_is_added_to_a_failed_stage():
    tasks = {"main": ran(3, 5, exit_code=3), "stage-out": ran(6, 7, exit_code=2)}
    status = status_of([alloc("failed", tasks)])
    assert status.reason == "exited with code 3; stage-out failed: exited with code 2"
    assert status.exit_code == 3


def test_failed_stage_is_not_over_while_stage_out_still_runs():
    # Nomad marks the allocation failed the moment main fails (getClientStatus).
    tasks = {"main": ran(3, 5, exit_code=3), "stage-out": task("running", start=6)}
    status = status_of([alloc("failed", tasks)])
    assert (status.state, status.reason) == (JobState.RUNNING, "stage-out still running")
    assert status.ended_at is None


def test_stage_out_that_may_still_start_keeps_the_run_going_for_a_while():
    tasks = {"main": ran(3, 5, exit_code=3), "stage-out": task("pending")}
    just_now = alloc("failed", tasks, ModifyTime=int(NOW.timestamp() * 1e9) - 5 * 10**9)
    assert status_of([just_now]).state is JobState.RUNNING
    long_ago = alloc("failed", tasks)  # changed hours before NOW: it will never start
    assert (status_of([long_ago]).state, status_of([long_ago]).exit_code) == (JobState.FAILED, 3)


def test_stage_past_its_time_limit_timed_out():
    tasks = {"main": ran(10, 75, exit_code=143), "stage-out": ran(76, 77)}
    status = status_of([alloc("failed", tasks)], job=nomad_job(winslow_timeout_seconds="60"))
    assert (status.state, status.reason, status.exit_code) == (
        JobState.FAILED,
        "timed out after 60 s",
        143,
    )


def test_allocation_failed_without_main_saying_why_quotes_the_allocation():
    status = status_of([alloc("failed", {}, ClientDescription="Failed tasks")])
    assert status.reason == "Nomad reports the allocation failed: Failed tasks"


# Lost -----------------------------------------------------------------------------------


def test_lost_allocation_names_its_node():
    lost = alloc(
        "lost",
        {"main": task("running", event("Started", 3), start=3)},
        DesiredStatus="stop",
        DesiredDescription="alloc is lost since its node is down",
        ModifyTime=nanos(300),
    )
    status = status_of([lost])
    assert status.state is JobState.LOST
    assert status.reason == "node gpu-3 was lost (alloc is lost since its node is down)"
    assert (status.started_at, status.ended_at) == (at(3), at(300))


def test_replacement_allocation_supersedes_the_lost_one():
    lost = alloc("lost", {"main": task("running", start=3)}, CreateIndex=54)
    replacement = alloc(
        "running",
        {"main": task("running", start=400)},
        ID="cd13d9b9-4f97-7184-c88b-7b451981616b",
        NodeName="gpu-4",
        CreateIndex=80,
    )
    assert latest_allocation([replacement, lost])["NodeName"] == "gpu-4"
    status = status_of([lost, replacement])
    assert (status.state, status.node) == (JobState.RUNNING, "gpu-4")


def test_lost_run_that_nomad_is_placing_again_is_pending():
    lost = alloc("lost", {"main": task("running", start=3)}, ModifyIndex=70)
    status = status_of([lost], evals=[blocked_eval({"stage": gpu_metric()}, create_index=71)])
    assert (status.state, status.reason) == (JobState.PENDING, "node gpu-3 was lost")


# Cancelled ------------------------------------------------------------------------------


def killed_main(start: float, end: float) -> dict:
    return task(
        "dead",
        event("Started", start),
        event("Killing", end - 1, KillReason=""),
        terminated(end, 0, signal=15),
        event("Killed", end),
        start=start,
        end=end,
    )


def test_stopped_job_whose_stage_was_killed_is_cancelled():
    tasks = {"stage-in": ran(1, 2), "main": killed_main(3, 20), "stage-out": ran(21, 22)}
    stopped = alloc("complete", tasks, DesiredStatus="stop")
    status = status_of([stopped], job=nomad_job(stop=True))
    assert (status.state, status.reason) == (JobState.CANCELLED, "cancelled")
    assert status.ended_at == at(22)


def test_stopped_job_that_never_got_an_allocation_is_cancelled_before_it_started():
    deregister = {
        "ID": "e9",
        "JobID": JOB,
        "Status": "complete",
        "TriggeredBy": "job-deregister",
        "CreateIndex": 90,
        "CreateTime": nanos(30),
    }
    status = status_of(
        evals=[blocked_eval({"stage": gpu_metric()}), deregister], job=nomad_job(True)
    )
    assert (status.state, status.reason) == (JobState.CANCELLED, "cancelled before it started")
    assert status.ended_at == at(30)


def test_run_that_finished_before_the_stop_keeps_its_success():
    tasks = {"main": ran(3, 5), "stage-out": ran(6, 7)}
    status = status_of([alloc("complete", tasks)], job=nomad_job(stop=True))
    assert status.state is JobState.SUCCEEDED


def test_stop_during_stage_out_is_cancelled_during_stage_out():
    stage_out = killed_main(6, 9)
    tasks = {"main": ran(3, 5), "stage-out": stage_out}
    status = status_of([alloc("complete", tasks, DesiredStatus="stop")], job=nomad_job(True))
    assert (status.state, status.reason) == (JobState.CANCELLED, "cancelled during stage-out")


def test_allocation_nomad_stopped_on_its_own_is_lost_not_cancelled():
    tasks = {"main": killed_main(3, 20)}
    preempted = alloc(
        "complete", tasks, DesiredStatus="evict", DesiredDescription="Preempted by alloc ID 77"
    )
    status = status_of([preempted])
    assert status.state is JobState.LOST
    assert status.reason == "stopped by Nomad on node gpu-3: Preempted by alloc ID 77"


# A container stage's log follower ------------------------------------------------------


def follower_killed_with_main(start: float, end: float, exit_code: int = 0) -> dict:
    """``stage-follow`` as Nomad leaves it once the main task is dead: the allocation
    runner emits ``Main Tasks Dead`` and kills the sidecar (alloc_runner.go
    handleTaskStateUpdates, killTasks: ``Killing``); the restart tracker, told it was killed
    (restarts.go ``SetKilled``), makes it ``Killed``, never failed, whatever it exited
    with (task_runner.go shouldRestart, ``TaskKilled``)."""
    return task(
        "dead",
        event("Started", start),
        event("Main Tasks Dead", end - 1),
        event("Killing", end - 1, KillReason=""),
        terminated(end, exit_code),
        event("Killed", end),
        start=start,
        end=end,
    )


def test_log_follower_killed_when_the_stage_ends_leaves_a_success_a_success():
    tasks = {
        "stage-in": ran(1, 2),
        "main": ran(3, 50),
        "stage-follow": follower_killed_with_main(4, 51),
        "stage-out": ran(52, 55),
    }
    status = status_of([alloc("complete", tasks)])
    assert (status.state, status.exit_code, status.reason) == (JobState.SUCCEEDED, 0, None)
    assert (status.started_at, status.ended_at) == (at(1), at(55))


def test_log_follower_killed_after_its_drain_ran_out_of_time_fails_nothing():
    # SIGKILL after the kill timeout: 137, still not failed (killed by Nomad).
    tasks = {
        "main": ran(3, 50),
        "stage-follow": follower_killed_with_main(4, 56, exit_code=137),
        "stage-out": ran(57, 58),
    }
    assert status_of([alloc("complete", tasks)]).state is JobState.SUCCEEDED


def test_log_follower_that_stopped_early_on_its_own_fails_nothing():
    """stage-follow exits 0 when it cannot go on (stage-out adds the rest): a batch
    task that exits 0 is dead, not failed, and not restarted."""
    tasks = {"main": ran(3, 50), "stage-follow": ran(4, 10), "stage-out": ran(51, 52)}
    assert status_of([alloc("complete", tasks)]).state is JobState.SUCCEEDED


def test_log_follower_killed_with_a_failed_stage_leaves_it_failed():
    tasks = {
        "main": ran(3, 50, exit_code=3),
        "stage-follow": follower_killed_with_main(4, 51),
        "stage-out": ran(52, 55),
    }
    status = status_of([alloc("failed", tasks)])
    assert (status.state, status.exit_code, status.reason) == (
        JobState.FAILED,
        3,
        "exited with code 3",
    )


def test_failed_stage_waits_for_its_log_follower_and_stage_out():
    tasks = {
        "main": ran(3, 50, exit_code=3),
        "stage-follow": task("running", event("Started", 4), start=4),
        "stage-out": task("pending"),
    }
    just_now = alloc("failed", tasks, ModifyTime=int(NOW.timestamp() * 1e9) - 1 * 10**9)
    status = status_of([just_now])
    assert (status.state, status.reason) == (
        JobState.RUNNING,
        "stage-follow, stage-out still running",
    )


def test_log_follower_that_failed_and_took_the_stage_with_it_says_so():
    """A sidecar that fails makes Nomad kill its siblings (alloc_runner.go
    handleTaskStateUpdates: ``TaskSiblingFailed`` with the failed task's name), which
    stage-follow avoids by exiting 0; were it killed for its memory, the run fails
    naming it rather than as a stage killed by SIGTERM."""
    main = task(
        "dead",
        event("Started", 3),
        event("Sibling Task Failed", 20, FailedSibling="stage-follow"),
        event("Killing", 20, KillReason=""),
        terminated(21, 0, signal=15),
        event("Killed", 21),
        start=3,
        end=21,
    )
    tasks = {
        "main": main,
        "stage-follow": ran(4, 20, exit_code=137, oom=True),
        "stage-out": ran(22, 23),
    }
    status = status_of([alloc("failed", tasks)])
    assert (status.state, status.exit_code) == (JobState.FAILED, None)
    assert status.reason == (
        "stage-follow failed: out of memory (OOM killed); Nomad stopped the stage with it"
    )


# Completeness ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_status", "expected"),
    [
        ("pending", JobState.PENDING),
        ("running", JobState.RUNNING),
        ("complete", JobState.SUCCEEDED),
        ("failed", JobState.FAILED),
        ("lost", JobState.LOST),
        ("unknown", JobState.RUNNING),
    ],
    ids=lambda v: v if isinstance(v, str) else v.value,
)
def test_every_allocation_client_status_maps(client_status, expected):
    main = ran(3, 5, exit_code=0 if client_status != "failed" else 1)
    assert status_of([alloc(client_status, {"main": main})]).state is expected


def test_documented_allocation_sample_reads_as_running():
    sample = json.loads((SAMPLES / "allocation_read_response.json").read_text())
    status = job_status("example", [sample], [], NOW)
    assert status.state is JobState.RUNNING
    assert status.started_at == datetime(2017, 7, 25, 23, 36, 26, 106431, tzinfo=UTC)
    assert status.node == "fb2170a8"  # the sample predates NodeName: the ID's start


# A node that stops answering ------------------------------------------------------------

GRACE = 120.0


def unknown_alloc(since: float, **fields) -> dict:
    """An allocation Nomad marked ``unknown`` at ``since``, as GET /v1/allocation/:id has it."""
    record = {"Field": "ClientStatus", "Value": "unknown", "Time": rfc3339(since)}
    return alloc(
        "unknown",
        {"main": task("running", start=1)},
        ClientDescription="alloc is unknown since its node is disconnected",
        AllocStates=[{"Field": "ClientStatus", "Value": "running", "Time": rfc3339(1)}, record],
        **fields,
    )


def down_node(seconds: float, status: str = "down") -> dict:
    updated = int(at(seconds).timestamp())  # Nomad's StatusUpdatedAt: Unix seconds
    return {"ID": "fb2170a8", "Name": "gpu-3", "Status": status, "StatusUpdatedAt": updated}


def away(allocation: dict, now: datetime, job: dict | None = None, node: dict | None = None):
    return job_status(
        JOB,
        [allocation],
        [],
        now,
        job=job or nomad_job(),
        unreachable=unreachable_since(allocation, node),
        lost_after=GRACE,
    )


def test_unknown_allocation_counts_from_when_nomad_marked_it_unknown():
    """Nomad records each ClientStatus change in ``AllocStates``; the last ``unknown`` one
    is when the node stopped answering (nomad/structs/structs.go Allocation.LastUnknown)."""
    assert unreachable_since(unknown_alloc(100), down_node(90)) == at(100)


def test_allocation_on_a_down_node_counts_from_the_nodes_status_change():
    running = alloc("running", {"main": task("running", start=1)})
    assert unreachable_since(running, down_node(90)) == at(90)
    assert unreachable_since(running, down_node(90, "disconnected")) == at(90)
    assert unreachable_since(running, down_node(90, "ready")) is None
    assert unreachable_since(alloc("complete", {"main": ran(1, 5)}), down_node(90)) is None


def test_run_whose_node_stopped_answering_runs_on_within_the_grace_and_says_so():
    status = away(unknown_alloc(100), at(150))
    assert (status.state, status.node) == (JobState.RUNNING, "gpu-3")
    assert status.reason == (
        "node gpu-3 stopped answering 50 s ago; the run counts as lost unless it answers "
        "within 2 min 00 s"
    )


def test_run_whose_node_stayed_away_past_the_grace_is_lost():
    status = away(unknown_alloc(100), at(100 + GRACE + 1))
    assert (status.state, status.node, status.exit_code) == (JobState.LOST, "gpu-3", None)
    assert status.ended_at == at(100 + GRACE)
    assert status.reason == (
        "node gpu-3 stopped answering at 09:01:40 UTC and did not answer within 2 min 00 s"
    )
    # Winslow then stops the job; the stopped job still reads as lost, not cancelled.
    stopped = unknown_alloc(100, DesiredStatus="stop")
    after_stop = away(stopped, at(400), job=nomad_job(stop=True))
    assert (after_stop.state, after_stop.ended_at) == (JobState.LOST, at(100 + GRACE))


def test_run_cancelled_while_its_node_is_away_is_cancelled():
    status = away(unknown_alloc(100, DesiredStatus="stop"), at(150), job=nomad_job(stop=True))
    assert status.state is JobState.CANCELLED
    assert status.reason == "cancelled while node gpu-3 was not answering"
