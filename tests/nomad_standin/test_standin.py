"""The Nomad stand-in against HashiCorp's documented shapes and Nomad's behaviour.

Every test gets its own stand-in (``nomad_standin``: one ready node, "standin-1") and
talks to it over HTTP as a Nomad client would. Shape tests compare answers with the
documented samples in ``tests/nomad_api`` (``shapes.assert_shape``): the same keys (plus
only those the samples' README lists as sent by newer agents, or that the job-register
schema knows for a job's inner objects) and the same JSON type per key, ``null``
matching any type as Go encodes nil. Waits for state use blocking queries; the few short
sleeps only give something the chance to (wrongly) happen.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.nomad_api.shapes import ALLOC_STATS_EXTRAS, assert_shape, sample, table_extras
from tests.nomad_standin import NomadStandin, docker_driver
from tests.nomad_standin.envfile import EnvParseError, parse_env_file
from tests.nomad_standin.templates import render_template, replace_env

JOB_SCHEMA = (
    Path(__file__).resolve().parents[2] / "winslow" / "jobspecs" / "job-register.schema.json"
)
WAIT_SECONDS = 15.0

# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def nomad(nomad_standin: NomadStandin) -> Iterator[httpx.Client]:
    """An HTTP client for the stand-in; its read timeout outlasts any blocking wait used."""
    with httpx.Client(base_url=nomad_standin.address, timeout=httpx.Timeout(20.0)) as client:
        yield client


def sh(script: str) -> JsonDict:
    return {"command": "/bin/sh", "args": ["-c", script]}


JsonDict = dict[str, Any]


def task(name: str, script: str, **fields: Any) -> JsonDict:
    return {
        "Name": name,
        "Driver": "raw_exec",
        "Config": sh(script),
        "KillTimeout": 1_000_000_000,
        **fields,
    }


def batch_job(job_id: str, *tasks: JsonDict, reschedule: int = 0, **group: Any) -> JsonDict:
    return {
        "ID": job_id,
        "Type": "batch",
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "stage",
                "Count": 1,
                "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                "ReschedulePolicy": {"Attempts": reschedule, "Unlimited": False},
                "Tasks": list(tasks),
                **group,
            }
        ],
    }


def register(client: httpx.Client, job: JsonDict, **body: Any) -> JsonDict:
    response = client.post("/v1/jobs", json={"Job": job, **body})
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_allocs(
    client: httpx.Client, job_id: str, done: Callable[[list[JsonDict]], bool]
) -> list[JsonDict]:
    """Follow ``/v1/job/:id/allocations`` with blocking queries until ``done`` holds."""
    deadline = time.monotonic() + WAIT_SECONDS
    index = 0
    allocs: list[JsonDict] = []
    while time.monotonic() < deadline:
        response = client.get(
            f"/v1/job/{job_id}/allocations", params={"index": index, "wait": "2s"}
        )
        allocs = response.json()
        if allocs and done(allocs):
            return allocs
        index = int(response.headers["X-Nomad-Index"])
    raise AssertionError(f"allocations of {job_id} never got there: {json.dumps(allocs)[:2000]}")


def wait_eval(client: httpx.Client, eval_id: str) -> JsonDict:
    """Follow ``/v1/evaluation/:id`` with blocking queries until the scheduler has run it."""
    deadline = time.monotonic() + WAIT_SECONDS
    index = 0
    while time.monotonic() < deadline:
        response = client.get(f"/v1/evaluation/{eval_id}", params={"index": index, "wait": "2s"})
        evaluation = dict(response.json())
        if evaluation["Status"] != "pending":
            return evaluation
        index = int(response.headers["X-Nomad-Index"])
    raise AssertionError(f"evaluation {eval_id} stayed pending")


def finished(allocs: list[JsonDict]) -> bool:
    return all(a["ClientStatus"] in ("complete", "failed", "lost") for a in allocs)


def all_dead(allocs: list[JsonDict]) -> bool:
    """Every task ended; Nomad marks an alloc failed before its poststop tasks are done."""
    return all(
        a["TaskStates"] and all(s["State"] == "dead" for s in a["TaskStates"].values())
        for a in allocs
    )


def running(allocs: list[JsonDict]) -> bool:
    return any((a["TaskStates"] or {}).get("main", {}).get("State") == "running" for a in allocs)


def read_alloc(client: httpx.Client, alloc_id: str) -> JsonDict:
    response = client.get(f"/v1/allocation/{alloc_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def decode_frames(raw: bytes) -> list[JsonDict]:
    """Split back-to-back JSON objects (no separator), as Nomad's log stream sends them."""
    decoder = json.JSONDecoder()
    text, pos, frames = raw.decode(), 0, []
    while pos < len(text):
        frame, pos = decoder.raw_decode(text, pos)
        frames.append(frame)
    return frames


# --- shape comparison ---------------------------------------------------------------------

# Keys newer agents send besides the samples' (shared/nomad-api/samples/README.md).
JOB_EXTRAS = {
    "Affinities",
    "ConsulNamespace",
    "DispatchIdempotencyToken",
    "Dispatched",
    "Migrate",
    "Multiregion",
    "NomadTokenID",
    "Reschedule",
    "Spreads",
    "Stable",
    "Stop",
    "SubmitTime",
    "UI",
    "VaultNamespace",
    "Version",
    "VersionTag",
}
ALLOC_EXTRAS = {
    "AllocatedResources",
    "DeploymentID",
    "DeploymentStatus",
    "DesiredTransition",
    "FollowupEvalID",
    "Namespace",
    "NetworkStatus",
    "NodeName",
    "PreemptedAllocations",
    "PreemptedByAllocation",
    "Services",
}
TASK_EVENT_EXTRAS = {"Details", "DiskSize", "DisplayMessage", "GenericSource"}
# Keys of the allocation sample that a placed, finished allocation always has filled.
ALLOC_ALWAYS = (
    "ID",
    "EvalID",
    "Name",
    "NodeID",
    "JobID",
    "TaskGroup",
    "Resources",
    "SharedResources",
    "TaskResources",
    "Metrics",
    "DesiredStatus",
    "ClientStatus",
    "ClientDescription",
    "TaskStates",
    "CreateIndex",
    "ModifyIndex",
    "AllocModifyIndex",
    "CreateTime",
    "ModifyTime",
)
NODE_EXTRAS = {
    "CSIControllerPlugins",
    "CSINodePlugins",
    "CgroupParent",
    "GCVolumesOnNodeGC",
    "NodeMaxAllocs",
    "Reserved",
    "Resources",
    # In structs.Node (which the server encodes) but not in api.Node.
    "LastAllocUpdateIndex",
    "LastMissedHeartbeatIndex",
}
EVAL_EXTRAS = {
    "AnnotatePlan",
    "BlockedEval",
    "ClassEligibility",
    "DeploymentID",
    "EscapedComputedClass",
    "JobModifyIndex",
    "MissingNonNodeResources",
    "NextEval",
    "NodeID",
    "NodeModifyIndex",
    "PlanAnnotations",
    "QueuedAllocations",
    "QuotaLimitReached",
    "Wait",
    "WaitUntil",
}
# The job's inner objects: extras are what the job-register schema (api structs) knows.
JOB_DEFS = {
    "TaskGroups[]": "TaskGroup",
    "Tasks[]": "Task",
    "Resources": "Resources",
    "Templates[]": "Template",
    "Constraints[]": "Constraint",
    "Affinities[]": "Affinity",
    "RestartPolicy": "RestartPolicy",
    "ReschedulePolicy": "ReschedulePolicy",
    "EphemeralDisk": "EphemeralDisk",
    "LogConfig": "LogConfig",
    "Lifecycle": "TaskLifecycle",
    "Update": "UpdateStrategy",
    "Networks[]": "NetworkResource",
    "Devices[]": "RequestedDevice",
}


def schema_keys(definition: str) -> set[str]:
    schema = json.loads(JOB_SCHEMA.read_text())
    return set(schema["$defs"][definition]["properties"])


def job_extras(root: str) -> Callable[[str], set[str]]:
    def extras(path: str) -> set[str]:
        if path == root:
            return JOB_EXTRAS
        definition = JOB_DEFS.get(path.rsplit(".", 1)[-1])
        return schema_keys(definition) if definition else set()

    return extras


# --- shapes -------------------------------------------------------------------------------


def test_job_allocation_and_register_answers_match_documented_shapes(nomad):
    job = batch_job("shapes", task("main", "echo hello"))
    job["Meta"] = {"project": "ulm-0603"}
    registered = register(nomad, job)
    assert_shape(sample("job_register_response.json"), registered, table_extras({}))

    allocs = wait_allocs(nomad, "shapes", finished)
    job_read = nomad.get("/v1/job/shapes")
    assert int(job_read.headers["X-Nomad-Index"]) >= registered["JobModifyIndex"]
    assert_shape(sample("job_read_response.json"), job_read.json(), job_extras("$"))

    alloc = read_alloc(nomad, allocs[0]["ID"])
    alloc_sample = sample("allocation_read_response.json")
    job_sample = sample("job_read_response.json")
    eval_metric = sample("evaluation_read_response.json")["FailedTGAllocs"]["cache"]
    extras = table_extras(
        {
            "$": ALLOC_EXTRAS,
            "$.TaskStates.*": {"Paused"},  # structs.TaskState since 1.8
            "$.TaskStates.*.Events[]": TASK_EVENT_EXTRAS,
            # The allocation's Metrics is the same AllocMetric an evaluation reports.
            "$.Metrics": set(eval_metric) | {"NodePool"},
        }
    )
    # Current agents leave an allocation's empty fields out (``_struct`` omitempty, see
    # test_allocations_and_evaluations_leave_out_their_empty_fields): compare the keys
    # the answer has, and require those a placed allocation always fills.
    present = {key: value for key, value in alloc_sample.items() if key in alloc}
    assert_shape({**present, "Job": None}, {**alloc, "Job": None}, extras)
    assert set(ALLOC_ALWAYS) <= set(alloc), sorted(set(ALLOC_ALWAYS) - set(alloc))
    # The embedded job is a job like any other: compare it with the job read sample.
    assert_shape(job_sample, alloc["Job"], job_extras("$"))
    assert alloc["TaskStates"]["main"]["State"] == "dead"
    assert alloc["Job"]["Meta"] == {"project": "ulm-0603"}


def test_node_answer_matches_documented_shape_with_gpus(nomad_standin, nomad):
    node_id = nomad_standin.add_node("gpu-1", gpus=[("Tesla T4", 15360), ("Tesla T4", 15360)])
    node = nomad.get(f"/v1/node/{node_id}").json()
    extras = table_extras(
        {
            "$": NODE_EXTRAS,
            # structs.NodeResources and LegacyNodeCpuResources since 1.7 (NUMA).
            "$.NodeResources": {"MinDynamicPort", "MaxDynamicPort", "Processors"},
            "$.NodeResources.Cpu": {"TotalCpuCores", "ReservableCpuCores"},
            "$.ReservedResources.Cpu": {"ReservedCpuCores"},
            # NetworkResource fields show when set (see below); DNS per the event sample.
            "$.NodeResources.Networks[]": {"Mode", "DNS", "ReservedPorts", "DynamicPorts"},
            "$.NodeResources.NodeNetworks[]": {"Speed"},
        }
    )
    documented = sample("node_read_response.json")
    # structs.NetworkResource is tagged `_struct` omitempty since 1.8.2 (#23540): agents
    # leave its empty fields out, which the older sample still shows.
    documented["NodeResources"]["Networks"] = [
        {key: value for key, value in network.items() if value not in (None, "", 0)}
        for network in documented["NodeResources"]["Networks"]
    ]
    assert_shape(documented, node, extras)
    [gpus] = node["NodeResources"]["Devices"]
    assert (gpus["Vendor"], gpus["Type"], gpus["Name"]) == ("nvidia", "gpu", "Tesla T4")
    assert gpus["Attributes"]["memory"] == {"Int": 15360, "Unit": "MiB"}
    assert [i["Healthy"] for i in gpus["Instances"]] == [True, True]
    assert node["Status"] == "ready" and node["SchedulingEligibility"] == "eligible"
    assert node["Drivers"]["raw_exec"]["Detected"] and not node["Drivers"]["docker"]["Detected"]

    stubs = nomad.get("/v1/nodes", params={"resources": "true"}).json()
    assert {s["Name"] for s in stubs} == {"standin-1", "gpu-1"}
    assert all("NodeResources" in s for s in stubs)
    assert "NodeResources" not in nomad.get("/v1/nodes").json()[0]


def test_allocation_stats_measure_the_running_task_in_the_documented_shape(nomad_standin, nomad):
    nomad_standin.add_node("gpu-1", gpus=[("Tesla T4", 15360)])
    busy = f"exec {sys.executable} -c 'b = b\"x\" * (100 << 20); any(iter(int, 1))'"
    gpu = {"Name": "nvidia/gpu", "Count": 1}
    register(nomad, batch_job("stats", task("main", busy, Resources={"Devices": [gpu]})))
    [stub] = wait_allocs(nomad, "stats", running)
    alloc = read_alloc(nomad, stub["ID"])
    [device] = alloc["AllocatedResources"]["Tasks"]["main"]["Devices"]
    [gpu_id] = device["DeviceIDs"]
    nomad_standin.set_gpu_usage(gpu_id, 87, 3000)

    def busy_task_measured(stats: JsonDict) -> bool:
        usage = ((stats.get("Tasks") or {}).get("main") or {}).get("ResourceUsage") or {}
        # On a machine shared with other work the busy process may get little CPU a while.
        return bool(usage) and (
            usage["MemoryStats"]["RSS"] >= 100 << 20 and usage["CpuStats"]["Percent"] > 30
        )

    deadline = time.monotonic() + WAIT_SECONDS
    while not busy_task_measured(
        stats := nomad.get(f"/v1/client/allocation/{stub['ID']}/stats").json()
    ):
        assert time.monotonic() < deadline, f"the busy task was never measured: {stats}"
        time.sleep(0.2)  # the client measures once a second, as Nomad's does
    assert_shape(
        sample("client_allocation_stats_response.json"), stats, table_extras(ALLOC_STATS_EXTRAS)
    )
    usage = stats["Tasks"]["main"]["ResourceUsage"]
    assert usage["MemoryStats"]["Measured"] == ["RSS", "Swap"]
    assert usage["CpuStats"]["Measured"] == ["System Mode", "User Mode", "Percent"]
    assert stats["ResourceUsage"]["MemoryStats"]["RSS"] == usage["MemoryStats"]["RSS"]
    [group] = usage["DeviceStats"]
    assert (group["Vendor"], group["Type"], group["Name"]) == ("nvidia", "gpu", "Tesla T4")
    attributes = group["InstanceStats"][gpu_id]["Stats"]["Attributes"]
    assert attributes["GPU utilization"]["IntNumeratorVal"] == 87
    assert (attributes["Memory state"]["IntNumeratorVal"], attributes["Memory state"]["Unit"]) == (
        3000,
        "MiB",
    )
    assert group["InstanceStats"][gpu_id]["Summary"] == attributes["Memory state"]

    unknown = nomad.get("/v1/client/allocation/00000000-0000-0000-0000-000000000000/stats")
    assert (unknown.status_code, unknown.text) == (
        404,
        'Unknown allocation "00000000-0000-0000-0000-000000000000"',
    )


# --- running tasks ------------------------------------------------------------------------


def test_lifecycle_runs_prestart_then_main_then_poststop_and_reports_exit_codes(nomad):
    stamp = 'echo "$NOMAD_TASK_NAME $(date +%s%N)" >> "$NOMAD_ALLOC_DIR/order"'
    job = batch_job(
        "lifecycle",
        task("init", stamp, Lifecycle={"Hook": "prestart", "Sidecar": False}),
        task("main", f"sleep 0.2; {stamp}; echo out; echo err >&2; exit 3"),
        task(
            "cleanup",
            f'{stamp}; cat "$NOMAD_ALLOC_DIR/order"',
            Lifecycle={"Hook": "poststop", "Sidecar": False},
        ),
    )
    register(nomad, job)
    [stub] = wait_allocs(nomad, "lifecycle", all_dead)
    alloc = read_alloc(nomad, stub["ID"])

    assert alloc["ClientStatus"] == "failed"
    states = alloc["TaskStates"]
    assert {name: (s["State"], s["Failed"]) for name, s in states.items()} == {
        "init": ("dead", False),
        "main": ("dead", True),
        "cleanup": ("dead", False),
    }
    terminated = [e for e in states["main"]["Events"] if e["Type"] == "Terminated"]
    assert [(e["ExitCode"], e["Details"]["exit_code"]) for e in terminated] == [(3, "3")]
    assert [e["Type"] for e in states["main"]["Events"]] == [
        "Received",
        "Task Setup",
        "Started",
        "Terminated",
        "Not Restarting",
    ]
    log = nomad.get(
        f"/v1/client/fs/logs/{stub['ID']}",
        params={"task": "cleanup", "type": "stdout", "plain": "true"},
    ).text
    order = [line.split() for line in log.splitlines()]
    assert [name for name, _ in order] == ["init", "main", "cleanup"]
    assert [int(ts) for _, ts in order] == sorted(int(ts) for _, ts in order)
    assert nomad.get("/v1/job/lifecycle").json()["Status"] == "dead"


def sidecar_job(job_id: str, main_script: str, sidecar_script: str) -> JsonDict:
    """main, a poststart sidecar that stamps its start and its kill signal, and a poststop
    task that prints the order everything happened in."""
    stamp = 'echo "$NOMAD_TASK_NAME $1" >> "$NOMAD_ALLOC_DIR/order"'
    return batch_job(
        job_id,
        task("main", main_script, KillSignal="SIGTERM"),
        task(
            "follow",
            f"s() {{ {stamp}; }}; trap 's killed; exit 0' USR1; s started; {sidecar_script}",
            Lifecycle={"Hook": "poststart", "Sidecar": True},
            KillSignal="SIGUSR1",
        ),
        task(
            "after",
            'cat "$NOMAD_ALLOC_DIR/order"',
            Lifecycle={"Hook": "poststop", "Sidecar": False},
        ),
    )


def event_time(state: JsonDict, kind: str) -> int:
    return next(e["Time"] for e in state["Events"] if e["Type"] == kind)


def test_poststart_sidecar_starts_after_main_and_is_killed_with_its_signal_when_main_ends(nomad):
    """A poststart task may start only once every main task has left ``pending``
    (client/allocrunner/tasklifecycle/coordinator.go: ``isMainDone`` opens the poststart
    gates). Once only sidecars are alive, the allocation runner emits ``Main Tasks Dead``
    to them and kills them (alloc_runner.go handleTaskStateUpdates, ``TaskMainDead``;
    killTasks emits ``Killing`` and the task's kill signal goes out, task_runner.go
    handleKill), and a killed task ends ``Killed``, not failed, whatever it exits with
    (restarts.go GetState: ``SetKilled`` wins; task_runner.go shouldRestart). Poststop
    tasks start once every other task is dead (coordinator.go ``isAllocDone``)."""
    job = sidecar_job("sidecar", "sleep 0.5; echo done", "while true; do sleep 0.05; done")
    register(nomad, job)
    [stub] = wait_allocs(nomad, "sidecar", all_dead)
    alloc = read_alloc(nomad, stub["ID"])
    states = alloc["TaskStates"]
    assert alloc["ClientStatus"] == "complete"
    assert {name: (s["State"], s["Failed"]) for name, s in states.items()} == {
        "main": ("dead", False),
        "follow": ("dead", False),
        "after": ("dead", False),
    }
    follow = states["follow"]
    assert [e["Type"] for e in follow["Events"]] == [
        "Received",
        "Task Setup",
        "Started",
        "Main Tasks Dead",
        "Killing",
        "Terminated",
        "Killed",
    ]
    assert event_time(follow, "Started") >= event_time(states["main"], "Started")
    assert event_time(follow, "Killing") >= event_time(states["main"], "Terminated")
    log = nomad.get(
        f"/v1/client/fs/logs/{stub['ID']}",
        params={"task": "after", "type": "stdout", "plain": "true"},
    ).text
    assert log.splitlines() == ["follow started", "follow killed"]  # USR1 reached it


def test_failing_sidecar_takes_the_main_task_with_it(nomad):
    """A dead task that failed makes the allocation runner kill every live task with
    ``Sibling Task Failed`` naming it (alloc_runner.go handleTaskStateUpdates,
    ``TaskSiblingFailed``), sidecar or not."""
    register(nomad, sidecar_job("bad-sidecar", "sleep 30", "exit 7"))
    [stub] = wait_allocs(nomad, "bad-sidecar", all_dead)
    states = read_alloc(nomad, stub["ID"])["TaskStates"]
    assert (states["follow"]["State"], states["follow"]["Failed"]) == ("dead", True)
    main_events = states["main"]["Events"]
    [sibling] = [e for e in main_events if e["Type"] == "Sibling Task Failed"]
    assert sibling["FailedSibling"] == "follow"
    assert [e["Type"] for e in main_events][-3:] == ["Killing", "Terminated", "Killed"]
    assert (states["main"]["Failed"], states["after"]["State"]) == (False, "dead")


def test_stopped_job_kills_its_sidecars_after_its_main_tasks(nomad):
    """A stop kills the leader, then the other tasks, and the sidecars last
    (alloc_runner.go killTasks: "Kill the sidecar tasks last")."""
    main = 'trap \'sleep 0.3; echo "main killed" >> "$NOMAD_ALLOC_DIR/order"; exit 0\' TERM; '
    main += "while true; do sleep 0.05; done"
    register(nomad, sidecar_job("stop-sidecar", main, "while true; do sleep 0.05; done"))
    wait_allocs(nomad, "stop-sidecar", running)
    deadline = time.monotonic() + WAIT_SECONDS
    [stub] = nomad.get("/v1/job/stop-sidecar/allocations").json()
    while (stub["TaskStates"] or {}).get("follow", {}).get("State") != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
        [stub] = nomad.get("/v1/job/stop-sidecar/allocations").json()
    assert nomad.delete("/v1/job/stop-sidecar").status_code == 200
    [stub] = wait_allocs(nomad, "stop-sidecar", all_dead)
    log = nomad.get(
        f"/v1/client/fs/logs/{stub['ID']}",
        params={"task": "after", "type": "stdout", "plain": "true"},
    ).text
    assert log.splitlines() == ["follow started", "main killed", "follow killed"]


def test_log_frames_decode_to_the_task_output(nomad_standin, nomad):
    register(
        nomad, batch_job("logs", task("main", "printf 'line one\\nline two\\n'; echo oops >&2"))
    )
    [stub] = wait_allocs(nomad, "logs", finished)
    url = f"/v1/client/fs/logs/{stub['ID']}"

    frames = decode_frames(nomad.get(url, params={"task": "main", "type": "stdout"}).content)
    assert b"".join(base64.b64decode(f["Data"]) for f in frames) == b"line one\nline two\n"
    assert frames[-1]["Offset"] == len(b"line one\nline two\n")
    assert all(f["File"] == "alloc/logs/main.stdout.0" for f in frames)
    documented = sample("client_fs_logs_frames.json")
    assert_shape(documented[0], frames[0], table_extras({}))

    tail = nomad.get(
        url,
        params={"task": "main", "type": "stdout", "origin": "end", "offset": 9, "plain": "true"},
    )
    assert tail.text == "line two\n"
    err = nomad.get(url, params={"task": "main", "type": "stderr", "plain": "true"})
    assert err.text == "oops\n"

    # Following a finished task keeps the stream open with {} heartbeats, as Nomad does.
    nomad_standin.log_heartbeat_interval = 0.1
    received = b""
    with nomad.stream("GET", url, params={"task": "main", "type": "stdout", "follow": "true"}) as r:
        for chunk in r.iter_bytes():
            received += chunk
            if received.endswith(b"{}{}"):
                break
    follow = decode_frames(received)
    assert follow[-2:] == [{}, {}]
    assert base64.b64decode(follow[0]["Data"]) == b"line one\nline two\n"

    missing = nomad.get(url, params={"task": "nope", "type": "stdout"})
    assert (missing.status_code, missing.text) == (400, 'unknown task name "nope"')


def test_follow_ends_after_the_task_when_the_standin_is_told_to(nomad_standin, nomad):
    nomad_standin.close_finished_log_streams = True
    register(nomad, batch_job("follow", task("main", "echo first; sleep 0.5; echo second")))
    [stub] = wait_allocs(nomad, "follow", running)
    response = nomad.get(
        f"/v1/client/fs/logs/{stub['ID']}",
        params={"task": "main", "type": "stdout", "follow": "true"},
    )
    data = b"".join(
        base64.b64decode(f["Data"]) for f in decode_frames(response.content) if "Data" in f
    )
    assert data == b"first\nsecond\n"


# --- blocking queries and the event stream ------------------------------------------------


def test_blocking_query_returns_on_change_and_after_wait_without_one(nomad):
    first = nomad.get("/v1/jobs")
    index = int(first.headers["X-Nomad-Index"])

    started = time.monotonic()
    idle = nomad.get("/v1/jobs", params={"index": index, "wait": "300ms"})
    waited = time.monotonic() - started
    assert 0.3 <= waited < 1.5
    assert idle.json() == [] and int(idle.headers["X-Nomad-Index"]) == index

    result: dict[str, Any] = {}

    def blocked_read() -> None:
        began = time.monotonic()
        response = nomad.get("/v1/jobs", params={"index": index, "wait": "10s"})
        result.update(response=response, seconds=time.monotonic() - began)

    reader = threading.Thread(target=blocked_read)
    reader.start()
    time.sleep(0.2)  # let the read block before the write it must wake up for
    registered = register(nomad, batch_job("blocking", task("main", "true")))
    reader.join(5)
    assert result["seconds"] < 2
    assert int(result["response"].headers["X-Nomad-Index"]) >= registered["JobModifyIndex"] > index
    assert [stub["ID"] for stub in result["response"].json()] == ["blocking"]


def read_event_frames(
    client: httpx.Client, params: JsonDict, until: Callable[[list[JsonDict]], bool]
) -> list[JsonDict]:
    frames: list[JsonDict] = []
    with client.stream("GET", "/v1/event/stream", params=params) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            frames.append(json.loads(line))
            if until(frames):
                break
    return frames


def test_event_stream_delivers_allocation_updates_and_resumes_from_an_index(nomad):
    register(nomad, batch_job("events", task("main", "echo hi")))

    def complete(frames: list[JsonDict]) -> bool:
        return any(
            e["Type"] == "AllocationUpdated"
            and e["Payload"]["Allocation"]["ClientStatus"] == "complete"
            for f in frames
            for e in f.get("Events", [])
        )

    frames = read_event_frames(nomad, {"topic": "Allocation:events", "index": 0}, complete)
    assert frames[0] == {}  # each stream opens with a heartbeat
    events = [e for f in frames for e in f.get("Events", [])]
    assert {e["Topic"] for e in events} == {"Allocation"}
    assert all("events" in e["FilterKeys"] for e in events)
    assert "Job" not in events[-1]["Payload"]["Allocation"]  # nil in events, so left out
    event_frame = next(f for f in frames if f.get("Events"))
    documented = sample("event_stream_frame.json")
    extras = table_extras({})
    assert_shape({**documented, "Events": None}, {**event_frame, "Events": None}, extras)
    assert_shape(
        {**documented["Events"][0], "Payload": None},
        {**event_frame["Events"][0], "Payload": None},
        extras,
    )

    # Resuming at a frame's index replays that frame first (Nomad starts at the index).
    data_frames = [f for f in frames if f.get("Events")]
    middle = data_frames[len(data_frames) // 2]
    again = read_event_frames(
        nomad, {"topic": "Allocation:events", "index": middle["Index"]}, lambda got: len(got) >= 2
    )
    assert again[1]["Index"] == middle["Index"]

    # Job events for the job, selected by topic and key.
    job_frames = read_event_frames(
        nomad, {"topic": "Job:events", "index": 1}, lambda got: len(got) >= 2
    )
    assert job_frames[1]["Events"][0]["Type"] == "JobRegistered"
    assert job_frames[1]["Events"][0]["Payload"]["Job"]["ID"] == "events"


def test_event_stream_starts_at_the_oldest_frame_when_the_index_left_the_buffer(
    nomad_standin, nomad
):
    nomad_standin.set_event_buffer(3)
    for i in range(3):
        register(nomad, batch_job(f"buffer-{i}", task("main", "true")))
    for i in range(3):
        wait_allocs(nomad, f"buffer-{i}", finished)
    oldest = read_event_frames(nomad, {"index": 0}, lambda got: len(got) >= 2)[1]
    assert oldest["Index"] > 2  # index 2 (the node registering) has left the buffer
    frames = read_event_frames(nomad, {"index": 2}, lambda got: len(got) >= 2)
    # No error and no marker: the stream silently starts at what the buffer still has.
    assert frames[1] == oldest

    nomad_standin.heartbeat_interval = 0.1
    ended = threading.Event()

    def follow() -> None:
        read_event_frames(nomad, {"topic": "Job"}, lambda got: False)
        ended.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    time.sleep(0.3)  # a few heartbeats pass: the stream stays open on its own
    assert not ended.is_set()
    nomad_standin.drop_event_streams()
    assert ended.wait(3), "drop_event_streams() should end open streams"


# --- registration and deregistration ------------------------------------------------------


def test_enforce_index_zero_twice_refuses_the_second_register(nomad):
    job = batch_job("once", task("main", "true"))
    first = register(nomad, job, EnforceIndex=True, JobModifyIndex=0)
    second = nomad.post("/v1/jobs", json={"Job": job, "EnforceIndex": True, "JobModifyIndex": 0})
    assert (second.status_code, second.text) == (
        500,
        "Enforcing job modify index 0: job already exists",
    )
    assert second.headers["content-type"].startswith("text/plain")
    assert nomad.get("/v1/job/once").json()["JobModifyIndex"] == first["JobModifyIndex"]
    evals = nomad.get("/v1/job/once/evaluations").json()
    assert [e["ID"] for e in evals] == [first["EvalID"]]  # the refused register made none


def test_register_validates_like_nomad(nomad):
    no_job = nomad.post("/v1/jobs", json={})
    assert (no_job.status_code, no_job.text) == (400, "Job must be specified")
    no_id = nomad.post("/v1/jobs", json={"Job": {"TaskGroups": []}})
    assert (no_id.status_code, no_id.text) == (400, "Job ID hasn't been provided")
    no_driver = nomad.post(
        "/v1/jobs",
        json={"Job": {"ID": "bad", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t"}]}]}},
    )
    assert no_driver.status_code == 500
    assert no_driver.text.startswith("1 error occurred:\n\t* Task group g validation failed:")
    assert "Missing task driver" in no_driver.text
    assert nomad.get("/v1/job/bad").status_code == 404


def test_system_gc_collects_dead_jobs_with_their_evaluations_and_allocations(nomad):
    """``nomad system gc``: a dead job goes with its evaluations and allocations, a purged
    job's allocations go, a running job stays whole (``CoreScheduler.forceGC``)."""
    done = register(nomad, batch_job("done", task("main", "true")))
    register(nomad, batch_job("purged", task("main", "true")))
    register(nomad, batch_job("busy", task("main", "sleep 60")))
    wait_allocs(nomad, "done", finished)
    [purged] = wait_allocs(nomad, "purged", finished)
    [busy] = wait_allocs(nomad, "busy", running)
    assert nomad.delete("/v1/job/purged", params={"purge": "true"}).status_code == 200
    deadline = time.monotonic() + WAIT_SECONDS
    while nomad.get("/v1/job/done").json()["Status"] != "dead":
        assert time.monotonic() < deadline, "the ended job never read dead"
        time.sleep(0.05)
    before = nomad.get("/v1/allocations")
    assert purged["ID"] in {a["ID"] for a in before.json()}

    answer = nomad.put("/v1/system/gc")

    assert (answer.status_code, answer.text) == (200, "")
    after = nomad.get("/v1/allocations", params={"index": before.headers["X-Nomad-Index"]})
    assert int(after.headers["X-Nomad-Index"]) > int(before.headers["X-Nomad-Index"])
    assert [a["ID"] for a in after.json()] == [busy["ID"]]
    gone = nomad.get("/v1/job/done")
    assert (gone.status_code, gone.text) == (404, "job not found")
    assert nomad.get(f"/v1/evaluation/{done['EvalID']}").status_code == 404
    assert nomad.get("/v1/job/busy").json()["Status"] == "running"
    assert nomad.get(f"/v1/allocation/{purged['ID']}").status_code == 404


def test_deregister_with_purge_kills_the_running_task(nomad_standin, nomad):
    register(nomad, batch_job("purge", task("main", "echo started; sleep 60")))
    [stub] = wait_allocs(nomad, "purge", running)
    assert nomad_standin.task_pids()

    response = nomad.delete("/v1/job/purge", params={"purge": "true"})
    assert response.status_code == 200 and response.json()["EvalID"]
    gone = nomad.get("/v1/job/purge")
    assert (gone.status_code, gone.text) == (404, "job not found")
    [stub] = wait_allocs(nomad, "purge", finished)
    alloc = read_alloc(nomad, stub["ID"])
    assert (alloc["DesiredStatus"], alloc["ClientStatus"]) == ("stop", "complete")
    assert alloc["DesiredDescription"] == "alloc not needed due to job update"
    main = alloc["TaskStates"]["main"]
    assert (main["State"], main["Failed"]) == ("dead", False)
    assert [e["Type"] for e in main["Events"]][-3:] == ["Killing", "Terminated", "Killed"]
    assert nomad_standin.task_pids() == []
    again = nomad.delete("/v1/job/purge", params={"purge": "true"})
    assert again.status_code == 200 and again.json()["EvalID"] == ""


# --- scheduling ---------------------------------------------------------------------------


def gpu_job(job_id: str) -> JsonDict:
    gpus = {
        "Name": "nvidia/gpu",
        "Count": 2,
        "Constraints": [
            {"LTarget": "${device.attr.memory}", "Operand": ">=", "RTarget": "10 GiB"},
            {"LTarget": "${device.model}", "Operand": "regexp", "RTarget": "T4"},
        ],
    }
    return batch_job(
        job_id,
        task(
            "main",
            'echo "gpus=$NVIDIA_VISIBLE_DEVICES"; sleep 30',
            Resources={"CPU": 1000, "MemoryMB": 1024, "Devices": [gpus]},
        ),
    )


def test_gpu_job_blocks_until_a_node_with_gpus_joins(nomad_standin, nomad):
    """Nomad 1.10.5: the DeviceChecker filters a node without a matching device group
    before ranking and counts it under FilterConstraintDevices, "missing devices"
    (scheduler/feasible.go). A group placed nowhere completes its evaluation with
    FailedTGAllocs and a blocked one, TriggeredBy "queued-allocs", PreviousEval the
    first (nomad/structs/structs.go Evaluation.CreateBlockedEval), described "created to
    place remaining allocations" (scheduler/generic_sched.go createBlockedEval). A ready
    node registering unblocks it (nomad/fsm.go applyUpsertNode → blockedEvals.Unblock).
    When the node's devices are all taken, the node is exhausted, not filtered: the
    BinPackIterator records "devices: " plus AssignDevice's "no devices match request"
    (scheduler/rank.go, scheduler/device.go). The task sees its device IDs in
    NVIDIA_VISIBLE_DEVICES, set by the NVIDIA device plugin's Reserve
    (devices/gpu/nvidia/device.go up to Nomad 1.1, NVIDIA/nomad-device-nvidia since)."""
    registered = register(nomad, gpu_job("needs-gpus"))
    evaluation = wait_eval(nomad, registered["EvalID"])
    assert evaluation["Status"] == "complete"
    blocked = nomad.get(
        f"/v1/evaluation/{evaluation['BlockedEval']}", params={"related": "true"}
    ).json()
    extras = table_extras({"$": EVAL_EXTRAS, "$.FailedTGAllocs.*": {"NodePool"}})
    assert_shape(sample("evaluation_read_response.json"), blocked, extras)
    assert (blocked["Status"], blocked["TriggeredBy"]) == ("blocked", "queued-allocs")
    assert blocked["StatusDescription"] == "created to place remaining allocations"
    metric = blocked["FailedTGAllocs"]["stage"]
    # Nomad filters a node without matching devices before binpacking: "missing devices".
    assert metric["ConstraintFiltered"] == {"missing devices": 1}
    assert (metric["NodesEvaluated"], metric["NodesFiltered"]) == (1, 1)
    assert metric["NodesAvailable"] == {"dc1": 1}
    assert [r["ID"] for r in blocked["RelatedEvals"]] == [registered["EvalID"]]
    assert nomad.get("/v1/job/needs-gpus").json()["Status"] == "pending"
    assert nomad.get("/v1/job/needs-gpus/allocations").json() == []

    gpu_node = nomad_standin.add_node("gpu-1", gpus=[("Tesla T4", 15360)] * 2)
    [stub] = wait_allocs(nomad, "needs-gpus", running)
    assert stub["NodeID"] == gpu_node and stub["NodeName"] == "gpu-1"
    alloc = read_alloc(nomad, stub["ID"])
    [devices] = alloc["AllocatedResources"]["Tasks"]["main"]["Devices"]
    assert (devices["Name"], len(devices["DeviceIDs"])) == ("Tesla T4", 2)
    assert nomad.get(f"/v1/evaluation/{evaluation['BlockedEval']}").json()["Status"] == "complete"

    # Both GPUs are taken now: a second job finds the node exhausted, not filtered.
    second = register(nomad, gpu_job("second"))
    ev = wait_eval(nomad, second["EvalID"])
    exhausted = ev["FailedTGAllocs"]["stage"]
    assert exhausted["DimensionExhausted"] == {"devices: no devices match request": 1}
    assert exhausted["NodesExhausted"] == 1
    assert exhausted["ConstraintFiltered"] == {"missing devices": 1}  # standin-1 has none
    log = nomad.get(
        f"/v1/client/fs/logs/{stub['ID']}",
        params={"task": "main", "type": "stdout", "plain": "true"},
    ).text
    assert log == f"gpus={','.join(devices['DeviceIDs'])}\n"


def test_constraints_and_affinities_choose_the_node(nomad_standin, nomad):
    """Nomad 1.10.5: affinities rank feasible nodes (scheduler/rank.go
    NodeAffinityIterator, score "node-affinity"), so the node whose ``${meta.rack}``
    matches wins; job constraints filter before ranking (scheduler/stack.go
    jobConstraint, scheduler/feasible.go ConstraintChecker resolving
    ``${attr.*}`` and ``${node.unique.name}`` in resolveTarget). A node a constraint
    rules out is counted in ConstraintFiltered under the constraint's String(),
    "LTarget Operand RTarget" (nomad/structs/structs.go Constraint.String)."""
    nomad_standin.add_node("standin-2", meta={"rack": "r2"})
    job = batch_job("placed", task("main", "echo ${node.unique.name}"))
    job["Affinities"] = [{"LTarget": "${meta.rack}", "Operand": "=", "RTarget": "r2", "Weight": 50}]
    register(nomad, job)
    [stub] = wait_allocs(nomad, "placed", finished)
    assert stub["NodeName"] == "standin-2"

    pinned = batch_job("pinned", task("main", "true"))
    pinned["Constraints"] = [
        {"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "linux"},
        {"LTarget": "${node.unique.name}", "Operand": "=", "RTarget": "standin-1"},
    ]
    register(nomad, pinned)
    [stub] = wait_allocs(nomad, "pinned", finished)
    assert stub["NodeName"] == "standin-1"

    nowhere = batch_job("nowhere", task("main", "true"))
    nowhere["Constraints"] = [
        {"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "windows"}
    ]
    registered = register(nomad, nowhere)
    metric = wait_eval(nomad, registered["EvalID"])["FailedTGAllocs"]["stage"]
    assert metric["ConstraintFiltered"] == {"${attr.kernel.name} = windows": 2}


def test_kill_node_loses_its_allocations_and_replaces_them_whatever_the_reschedule_policy(
    nomad_standin, nomad
):
    """Nomad 1.10.5: a node that misses its heartbeats is marked ``down``
    (nomad/heartbeat.go invalidateHeartbeat) and each job with allocations there gets a
    node-update evaluation (nomad/node_endpoint.go createNodeEvals). Without
    ``disconnect.replace = false`` its allocations are lost (scheduler/reconcile_util.go
    filterByTainted: the node's TerminalStatus), stopped as allocLost, "alloc is lost
    since its node is down" (scheduler/generic_sched.go), and replaced under the same
    name up to the group's Count whatever the reschedule policy says, batch jobs too
    (scheduler/reconcile.go computePlacements, "Add replacements for lost"). A lost
    replacement is no reschedule: it names its PreviousAllocation but gets no
    RescheduleTracker (generic_sched.go computePlacements updates it only when
    IsRescheduling), and the state store points the lost allocation's NextAllocation at
    it (nomad/state/state_store.go upsertAllocsImpl). Placement prefers the fuller node
    (scheduler/rank.go BinPackIterator, structs/funcs.go ScoreFitBinPack)."""
    register(nomad, batch_job("no-retries", task("main", "sleep 60")))
    [first] = wait_allocs(nomad, "no-retries", running)
    other = nomad_standin.add_node("standin-2")
    register(nomad, batch_job("one-retry", task("main", "sleep 60"), reschedule=1))
    [second] = wait_allocs(nomad, "one-retry", running)
    assert first["NodeName"] == second["NodeName"] == "standin-1"  # the fuller node

    nomad_standin.kill_node("standin-1")

    for job_id, gone in (("no-retries", first), ("one-retry", second)):
        allocs = wait_allocs(
            nomad,
            job_id,
            lambda allocs, gone=gone: (
                len(allocs) == 2 and running([a for a in allocs if a["ID"] != gone["ID"]])
            ),
        )
        [replacement] = [a for a in allocs if a["ID"] != gone["ID"]]
        lost = read_alloc(nomad, gone["ID"])
        assert (lost["DesiredStatus"], lost["ClientStatus"]) == ("stop", "lost"), job_id
        assert lost["DesiredDescription"] == "alloc is lost since its node is down"
        assert lost["NextAllocation"] == replacement["ID"]
        assert (replacement["NodeID"], replacement["Name"]) == (other, gone["Name"])
        assert replacement["RescheduleTracker"] is None, job_id
        # AllocListStub has no PreviousAllocation; the allocation itself does.
        assert read_alloc(nomad, replacement["ID"])["PreviousAllocation"] == gone["ID"]
    assert nomad.get(f"/v1/node/{first['NodeID']}").json()["Status"] == "down"
    assert len(nomad_standin.task_pids()) == 2  # only the replacements run


def test_node_pools_keep_jobs_apart_and_a_pool_without_nodes_blocks(nomad_standin, nomad):
    """Nomad 1.10.5: the scheduler considers only the ready nodes of the job's node pool
    (scheduler/util.go readyNodesInDCsAndPool, NodesByNodePool; a job without one is in
    "default", nomad/job_endpoint_hook_node_pool_ce.go jobNodePoolMutatingHook), whatever
    an affinity prefers. With no ready node in the pool nothing is evaluated: the blocked
    evaluation's metric has NodesEvaluated 0, NodesInPool 0, NodesAvailable empty and the
    job's NodePool (generic_sched.go computePlacements), which ``nomad job status`` shows
    as "No nodes were eligible for evaluation" (command/monitor.go formatAllocMetrics); a
    node joining the pool places it. A node registering in a new pool creates it (nomad/fsm.go
    applyUpsertNode, state_store.go fetchOrCreateNodePoolTxn); a job in a pool that does
    not exist is refused (nomad/job_endpoint_hook_node_pool.go)."""
    gpu_node = nomad_standin.add_node("gpu-1", node_pool="gpu")
    in_gpu = batch_job("in-gpu", task("main", "sleep 30"))
    in_gpu["NodePool"] = "gpu"
    register(nomad, in_gpu)
    [stub] = wait_allocs(nomad, "in-gpu", running)
    assert stub["NodeID"] == gpu_node
    metric = read_alloc(nomad, stub["ID"])["Metrics"]
    assert (metric["NodePool"], metric["NodesInPool"], metric["NodesEvaluated"]) == ("gpu", 1, 1)

    # gpu-1 is the fuller node and the one the affinity asks for: the pool still wins.
    anywhere = batch_job("anywhere", task("main", "true"))
    anywhere["Affinities"] = [
        {"LTarget": "${node.unique.name}", "Operand": "=", "RTarget": "gpu-1", "Weight": 100}
    ]
    register(nomad, anywhere)
    [stub] = wait_allocs(nomad, "anywhere", finished)
    assert stub["NodeName"] == "standin-1"
    assert nomad.get("/v1/job/anywhere").json()["NodePool"] == "default"
    metric = read_alloc(nomad, stub["ID"])["Metrics"]
    assert (metric["NodePool"], metric["NodesEvaluated"]) == ("default", 1)

    nomad_standin.add_node_pool("empty")
    waiting = batch_job("waiting", task("main", "true"))
    waiting["NodePool"] = "empty"
    registered = register(nomad, waiting)
    evaluation = wait_eval(nomad, registered["EvalID"])
    assert evaluation["BlockedEval"]
    failed = evaluation["FailedTGAllocs"]["stage"]
    assert (failed["NodePool"], failed["NodesInPool"], failed["NodesEvaluated"]) == ("empty", 0, 0)
    assert (failed["NodesAvailable"], failed["ConstraintFiltered"]) == ({}, None)
    blocked = nomad.get(f"/v1/evaluation/{evaluation['BlockedEval']}").json()
    assert blocked["Status"] == "blocked"
    assert blocked["FailedTGAllocs"]["stage"]["NodePool"] == "empty"
    assert nomad.get("/v1/job/waiting/allocations").json() == []
    assert nomad.get("/v1/job/waiting").json()["Status"] == "pending"

    nomad_standin.add_node("empty-1", node_pool="empty")
    [stub] = wait_allocs(nomad, "waiting", finished)
    assert stub["NodeName"] == "empty-1"

    nowhere = batch_job("nowhere", task("main", "true"))
    nowhere["NodePool"] = "nowhere"
    refused = nomad.post("/v1/jobs", json={"Job": nowhere})
    assert (refused.status_code, refused.text) == (
        500,
        '1 error occurred:\n\t* job "nowhere" is in nonexistent node pool "nowhere"\n\n',
    )
    assert nomad.get("/v1/job/nowhere").status_code == 404


# --- environment and templates ------------------------------------------------------------


def test_task_environment_interpolates_env_but_not_template_variables(nomad_standin, nomad):
    nomad_standin.put_variable("nomad/jobs/templated", {"secret": 's3 cr"et', "user": "ada"})
    env_template = (
        "A=${X}\n"
        "B={{ y }}\n"
        "C='single \"quoted\" ${X}'\n"
        'D="line1\\nline2\\ttab \\"q\\""\n'
        'E=[[ with nomadVar "nomad/jobs/templated" ]][[ .secret | toJSON ]][[ end ]]\n'
        'F=[[ env "NOMAD_JOB_ID" ]] # comment\n'
    )
    show = 'for v in A B C D E F G; do eval "printf \'%s=[%s]\\n\' $v \\"\\$$v\\""; done'
    job = batch_job(
        "templated",
        task(
            "main",
            show,
            Env={"X": "from-env", "G": "${NOMAD_JOB_ID}/${node.unique.name}/${unknown.thing}"},
            Meta={"stage": "detect"},
            Templates=[
                {
                    "EmbeddedTmpl": env_template,
                    "DestPath": "secrets/stage.env",
                    "Envvars": True,
                    "LeftDelim": "[[",
                    "RightDelim": "]]",
                }
            ],
        ),
    )
    register(nomad, job)
    [stub] = wait_allocs(nomad, "templated", finished)
    assert stub["ClientStatus"] == "complete", read_alloc(nomad, stub["ID"])["TaskStates"]
    out = nomad.get(
        f"/v1/client/fs/logs/{stub['ID']}",
        params={"task": "main", "type": "stdout", "plain": "true"},
    ).text
    assert out == (
        "A=[${X}]\n"
        "B=[{{ y }}]\n"
        'C=[single "quoted" ${X}]\n'
        'D=[line1\nline2\ttab "q"]\n'
        'E=[s3 cr"et]\n'
        "F=[templated]\n"
        "G=[templated/standin-1/${unknown.thing}]\n"
    )
    rendered = nomad_standin.client.alloc_dir(stub["ID"]) / "main" / "secrets" / "stage.env"
    assert rendered.read_text().startswith("A=${X}\nB={{ y }}\n")


def test_template_waits_for_a_missing_variable(nomad_standin, nomad):
    job = batch_job(
        "waits",
        task(
            "main",
            "cat local/conf",
            Templates=[
                {
                    "EmbeddedTmpl": '{{ with nomadVar "nomad/jobs/waits" }}{{ .k }}{{ end }}',
                    "DestPath": "local/conf",
                }
            ],
        ),
    )
    register(nomad, job)
    [stub] = wait_allocs(nomad, "waits", lambda allocs: allocs[0]["TaskStates"] is not None)
    time.sleep(0.3)  # nothing may happen while the variable is missing
    assert read_alloc(nomad, stub["ID"])["TaskStates"]["main"]["State"] == "pending"
    nomad_standin.put_variable("nomad/jobs/waits", {"k": "now"})
    [stub] = wait_allocs(nomad, "waits", finished)
    out = nomad.get(
        f"/v1/client/fs/logs/{stub['ID']}",
        params={"task": "main", "type": "stdout", "plain": "true"},
    ).text
    assert out == "now"
    var = nomad.get("/v1/var/nomad/jobs/waits").json()
    assert var["Items"] == {"k": "now"} and var["Path"] == "nomad/jobs/waits"
    assert nomad.get("/v1/var/nomad/jobs/other").status_code == 404


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("KEY=value", {"KEY": "value"}),
        ("export KEY = spaced out  ", {"KEY": "spaced out"}),
        ("KEY=unquoted \\n stays # comment", {"KEY": "unquoted \\n stays"}),
        ("KEY='single \\n ${X} \"q\"'", {"KEY": 'single \\n ${X} "q"'}),
        (
            'KEY="tab\\there \\"q\\" \\\\ \\/ \\u00e9 \\ud83d\\udd25"',
            {"KEY": 'tab\there "q" \\ / é 🔥'},
        ),
        ("KEY=a\"b c\"'d'", {"KEY": "ab cd"}),
        ("# only a comment\n\nK.E/Y_1=x\nK.E/Y_1=y", {"K.E/Y_1": "y"}),
        ("KEY=", {"KEY": ""}),
        ("KEY=crlf\r\n", {"KEY": "crlf"}),
    ],
    ids=[
        "plain",
        "export-and-trim",
        "unquoted-literal",
        "single-literal",
        "json-escapes",
        "concatenated",
        "comments-and-repeats",
        "empty",
        "crlf",
    ],
)
def test_env_file_parses_like_go_envparse(line, expected):
    assert parse_env_file(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("NOVALUE", "error on line 1: missing ="),
        ('KEY="open', 'error on line 1: unmatched "'),
        ("KEY='open", "error on line 1: unmatched '"),
        ('KEY="bad \\x"', 'error on line 1: invalid escape sequence: "x"'),
        ("KEY=a\tb", "error on line 1: 0x09 is an invalid value character"),
        ("1KEY=x", "error on line 1: key must start with [A-Za-z_] but found '1'"),
        ("\nKE-Y=x", "error on line 2: key characters must be [A-Za-z0-9/_.] but found '-'"),
    ],
)
def test_env_file_refuses_what_go_envparse_refuses(line, message):
    with pytest.raises(EnvParseError) as err:
        parse_env_file(line)
    assert str(err.value) == message


def test_interpolation_and_custom_delimiters_leave_unknowns_alone():
    assert replace_env("${a}-${b.c}-${missing}-$plain", {"b.c": "node"}, {"a": "env"}) == (
        "env-node-${missing}-$plain"
    )
    literal = "X=${X}\nY=\"{{ y }}\"\nZ='a\nb'\n"
    assert (
        render_template(literal, env={}, variables=lambda p, n: None, left="[[", right="]]")
        == literal
    )
    trimmed = render_template('a {{- " b " -}} c', env={}, variables=lambda p, n: None)
    assert trimmed == "a b c"


def test_a_subset_of_a_services_instances_is_the_same_for_one_key_and_spread_over_keys():
    """consul-template's `nomadService COUNT KEY NAME` (Nomad's template docs, "Native
    service discovery": `range nomadService 1 (env "NOMAD_ALLOC_ID") "db"`) picks COUNT
    instances by rendezvous hashing on KEY, as winslow-server.json does for its S3."""
    instances = [{"ID": f"s3-{n}", "Address": "10.0.0.1", "Port": 9000 + n} for n in range(4)]

    def rendered(alloc_id: str) -> str:
        return render_template(
            '{{ $a := env "NOMAD_ALLOC_ID" }}'
            '{{ range nomadService 1 $a "winslow-s3" }}{{ .Address }}:{{ .Port }}{{ end }}',
            env={"NOMAD_ALLOC_ID": alloc_id},
            variables=lambda p, n: None,
            services=lambda name, namespace: instances if name == "winslow-s3" else [],
        )

    every = {f"10.0.0.1:{9000 + n}" for n in range(4)}
    assert rendered("alloc-a") in every and rendered("alloc-a") == rendered("alloc-a")
    assert len({rendered(f"alloc-{n}") for n in range(40)}) > 1


def test_the_allocations_of_one_evaluation_count_once_against_their_node(nomad, nomad_standin):
    """Nomad's plan for one evaluation adds each placement to the node's proposed
    allocations once (scheduler/context.go ProposedAllocs: the state's plus the plan's
    new ones): two 1,500 MHz allocations fit a 4,000 MHz node."""
    small = nomad_standin.add_node("small-1", cpu_mhz=4000, node_pool="small")
    job = batch_job(
        "two-halves",
        task("main", "sleep 30", Resources={"CPU": 1500, "MemoryMB": 64}),
        Count=2,
    )
    job["NodePool"] = "small"
    registered = register(nomad, job)

    evaluation = wait_eval(nomad, registered["EvalID"])
    assert not evaluation.get("BlockedEval"), evaluation.get("FailedTGAllocs")
    stubs = wait_allocs(nomad, "two-halves", running)
    assert [s["NodeID"] for s in stubs] == [small, small]


# --- ACL ----------------------------------------------------------------------------------


def test_acl_token_is_required_when_the_standin_has_one():
    with NomadStandin(token="s3cret") as standin:
        url = standin.address + "/v1/jobs"
        anonymous = httpx.get(url)
        assert (anonymous.status_code, anonymous.text) == (403, "Permission denied")
        wrong = httpx.get(url, headers={"X-Nomad-Token": "guess"})
        assert (wrong.status_code, wrong.text) == (403, "ACL token not found")
        assert httpx.get(url, headers={"X-Nomad-Token": "s3cret"}).json() == []
        assert httpx.get(standin.address + "/v1/status/leader").status_code == 200


# --- a node that stops answering: disconnect.replace = false ------------------------------


def kept_job(job_id: str, script: str) -> JsonDict:
    """A batch job whose group must not be replaced on a lost node, as Winslow's stage jobs."""
    return batch_job(job_id, task("main", script), Disconnect={"Replace": False})


def events_until(
    client: httpx.Client, topics: list[str], done: Callable[[list[JsonDict]], bool]
) -> list[JsonDict]:
    """Every buffered event of ``topics`` from the start, read until ``done`` holds."""
    params = {"topic": topics, "index": 0}

    def enough(frames: list[JsonDict]) -> bool:
        return done([e for f in frames for e in f.get("Events", [])])

    return [e for f in read_event_frames(client, params, enough) for e in f.get("Events", [])]


def test_down_node_leaves_allocations_that_must_not_be_replaced_unknown(nomad_standin, nomad):
    """Nomad 1.10.5 for a group with ``disconnect.replace = false`` and no ``lost_after``:
    the heartbeat timer marks the node ``down`` ("Node heartbeat missed",
    nomad/heartbeat.go invalidateHeartbeat; a NodeStreamEvent on the Node topic,
    nomad/state/events.go MsgTypeEvents NodeUpdateStatusRequestType); the node-update
    evaluation then puts the running allocation in the disconnecting set
    (scheduler/reconcile_util.go filterByTainted: a down node is TerminalStatus and the
    alloc PreventReplaceOnDisconnect) and appendUnknownDisconnectingUpdates
    (scheduler/reconcile.go) sets ClientStatus ``unknown``, ClientDescription allocUnknown
    and appends an AllocState, in a plan (PlanResult on the Allocation topic). No
    replacement is placed and DesiredStatus stays ``run``: reconcile.go computeGroup only
    places for lost allocations, and an unknown one on a down node stays untainted."""
    register(nomad, kept_job("kept", "sleep 60"))
    [stub] = wait_allocs(nomad, "kept", running)
    nomad_standin.add_node("standin-2")  # somewhere a replacement could go, were one made

    nomad_standin.kill_node("standin-1")
    wait_allocs(nomad, "kept", lambda allocs: allocs[0]["ClientStatus"] == "unknown")
    node = nomad.get(f"/v1/node/{stub['NodeID']}").json()
    assert node["Status"] == "down"
    assert node["Events"][-1]["Message"] == "Node heartbeat missed"
    [update] = [
        e for e in nomad.get("/v1/job/kept/evaluations").json() if e["TriggeredBy"] == "node-update"
    ]
    assert wait_eval(nomad, update["ID"])["Status"] == "complete"
    time.sleep(0.3)  # a wrong replacement would be placed by now

    [alloc] = nomad.get("/v1/job/kept/allocations").json()
    full = read_alloc(nomad, alloc["ID"])
    assert (full["ClientStatus"], full["DesiredStatus"]) == ("unknown", "run")
    assert full["ClientDescription"] == "alloc is unknown since its node is disconnected"
    assert full["AllocStates"][-1]["Field"] == "ClientStatus"
    assert full["AllocStates"][-1]["Value"] == "unknown"
    assert nomad.get("/v1/job/kept").json()["Status"] == "running"  # not terminal yet

    def node_down(event: JsonDict) -> bool:
        return event["Topic"] == "Node" and event["Payload"]["Node"]["Status"] == "down"

    def alloc_unknown(event: JsonDict) -> bool:
        payload = event["Payload"].get("Allocation") or {}
        return event["Topic"] == "Allocation" and payload.get("ClientStatus") == "unknown"

    events = events_until(
        nomad,
        ["Node:*", "Allocation:kept"],
        lambda got: any(map(node_down, got)) and any(map(alloc_unknown, got)),
    )
    [down] = [e for e in events if node_down(e)]
    assert (down["Type"], down["Key"]) == ("NodeStreamEvent", stub["NodeID"])
    [unknown] = [e for e in events if alloc_unknown(e)]
    assert unknown["Type"] == "PlanResult" and unknown["Index"] > down["Index"]


def test_drained_node_records_its_strategy_and_takes_no_new_allocations(nomad_standin, nomad):
    """``nomad node drain -enable -deadline 1h`` (Nomad 1.10.5 nomad/node_endpoint.go
    UpdateDrain, state_store.go updateNodeDrainImpl): the node gets a DrainStrategy with
    the DrainSpec inlined, StartedAt and ForceDeadline = StartedAt + Deadline, becomes
    ``ineligible``, records "Node drain strategy set" (subsystem Drain) and LastDrain
    ``draining``; the encoder adds ``Drain: true`` (jsonhandles nodeExt); a ``NodeDrain``
    event goes out on the Node topic. The scheduler places only on eligible nodes
    (scheduler/util.go readyNodesInDCsAndPool), so a new job is blocked until
    another node joins."""
    nomad_standin.drain_node("standin-1", deadline_seconds=3600)
    [stub] = nomad.get("/v1/nodes").json()
    node = nomad.get(f"/v1/node/{stub['ID']}").json()
    strategy = node["DrainStrategy"]
    assert (node["Drain"], stub["Drain"], node["SchedulingEligibility"]) == (
        True,
        True,
        "ineligible",
    )
    assert (strategy["Deadline"], strategy["IgnoreSystemJobs"]) == (3_600_000_000_000, False)
    started = datetime.fromisoformat(strategy["StartedAt"][:26] + "+00:00")
    forced = datetime.fromisoformat(strategy["ForceDeadline"][:26] + "+00:00")
    assert round((forced - started).total_seconds()) == 3600
    assert (node["Events"][-1]["Message"], node["Events"][-1]["Subsystem"]) == (
        "Node drain strategy set",
        "Drain",
    )
    assert node["LastDrain"]["Status"] == "draining"
    events = events_until(nomad, ["Node:*"], lambda got: any(e["Type"] == "NodeDrain" for e in got))
    assert [e["Key"] for e in events if e["Type"] == "NodeDrain"] == [stub["ID"]]

    registered = register(nomad, batch_job("after-drain", task("main", "true")))
    assert wait_eval(nomad, registered["EvalID"])["BlockedEval"]
    assert nomad.get("/v1/job/after-drain/allocations").json() == []
    nomad_standin.add_node("standin-2")
    [placed] = wait_allocs(nomad, "after-drain", lambda allocs: len(allocs) == 1)
    assert placed["NodeName"] == "standin-2"


def test_partitioned_node_that_comes_back_reconnects_its_allocations_as_nomad_does(
    nomad_standin, nomad, tmp_path
):
    """A node cut off from the servers keeps running its tasks and tells nothing; when it
    heartbeats again the server marks it ``ready`` ("Node reregistered by heartbeat",
    nomad/node_endpoint.go UpdateStatus) and the client reports what its allocations did
    meanwhile (Node.UpdateAlloc, an AllocationUpdated event). Without ``lost_after`` the
    reconciler applies no reconnect logic (structs.go SupportsDisconnectedClients needs
    it), so an allocation whose job still wants it simply runs on or ends as it ended.
    An allocation the server stopped meanwhile (its job was stopped) is killed by the
    client once it hears of it (client/allocrunner/alloc_runner.go handleAllocUpdate:
    stopping → killTasks), and the poststop task still runs."""
    marker = tmp_path / "go"
    register(nomad, kept_job("resumes", f'while [ ! -e "{marker}" ]; do sleep 0.05; done'))
    stopped = kept_job("stopped", "sleep 60")
    stopped["TaskGroups"][0]["Tasks"].append(
        task("after", "echo cleaned up", Lifecycle={"Hook": "poststop", "Sidecar": False})
    )
    register(nomad, stopped)
    wait_allocs(nomad, "resumes", running)
    wait_allocs(nomad, "stopped", running)

    nomad_standin.kill_node("standin-1", keep_running=True)
    for job in ("resumes", "stopped"):
        wait_allocs(nomad, job, lambda allocs: allocs[0]["ClientStatus"] == "unknown")
    assert nomad.delete("/v1/job/stopped").status_code == 200
    wait_allocs(nomad, "stopped", lambda allocs: allocs[0]["DesiredStatus"] == "stop")
    marker.touch()  # the cut-off node's stage ends; nobody hears of it yet
    deadline = time.monotonic() + WAIT_SECONDS
    while len(nomad_standin.task_pids()) > 1:  # the stopped job's task still runs there
        assert time.monotonic() < deadline, nomad_standin.task_pids()
        time.sleep(0.05)
    time.sleep(0.3)  # what the node did could reach the server by now, were it connected
    [resumed] = nomad.get("/v1/job/resumes/allocations").json()
    assert resumed["ClientStatus"] == "unknown"
    assert len(nomad_standin.task_pids()) == 1

    nomad_standin.reconnect_node("standin-1")
    node = nomad.get(f"/v1/node/{resumed['NodeID']}").json()
    assert node["Status"] == "ready"
    assert node["Events"][-1]["Message"] == "Node reregistered by heartbeat"

    [resumed] = wait_allocs(nomad, "resumes", finished)
    assert (resumed["ClientStatus"], resumed["DesiredStatus"]) == ("complete", "run")
    [killed] = wait_allocs(nomad, "stopped", lambda allocs: all_dead(allocs) and finished(allocs))
    assert (killed["ClientStatus"], killed["DesiredStatus"]) == ("complete", "stop")
    main_events = [e["Type"] for e in killed["TaskStates"]["main"]["Events"]]
    assert "Killed" in main_events
    after = killed["TaskStates"]["after"]
    assert (after["State"], after["Failed"]) == ("dead", False)
    assert nomad_standin.task_pids() == []

    def complete(event: JsonDict) -> bool:
        return event["Payload"]["Allocation"]["ClientStatus"] == "complete"

    events = events_until(nomad, ["Allocation:resumes"], lambda got: any(map(complete, got)))
    assert next(e for e in events if complete(e))["Type"] == "AllocationUpdated"


# --- typed device constraints, cores, image pulls, TLS ---------------------------------


def model_job(job_id: str, pattern: str) -> JsonDict:
    gpus = {
        "Name": "nvidia/gpu",
        "Count": 1,
        "Constraints": [{"LTarget": "${device.model}", "Operand": "regexp", "RTarget": pattern}],
    }
    return batch_job(
        job_id, task("main", "true", Resources={"CPU": 500, "MemoryMB": 256, "Devices": [gpus]})
    )


def test_device_constraint_targets_are_typed_like_nomad(nomad_standin, nomad):
    """hashicorp/nomad scheduler/feasible.go: ``nodeDeviceMatches`` resolves a literal
    target with ``ParseAttribute`` (plugins/shared/structs/attribute.go), which makes
    "4090" an integer and "24GB" an integer with a unit, and ``checkAttributeConstraint``
    matches ``regexp`` only between two strings; so such a pattern never matches any GPU
    and the job stays blocked on "missing devices". ``(?:)4090`` parses as a string."""
    nomad_standin.add_node("gpu-1", gpus=[("NVIDIA GeForce RTX 4090", 24564)])
    for job_id, pattern in (("as-number", "4090"), ("with-unit", "24GB")):
        registered = register(nomad, model_job(job_id, pattern))
        metric = wait_eval(nomad, registered["EvalID"])["FailedTGAllocs"]["stage"]
        assert metric["ConstraintFiltered"] == {"missing devices": 2}, pattern

    register(nomad, model_job("as-string", "(?:)4090"))
    [stub] = wait_allocs(nomad, "as-string", finished)
    assert (stub["NodeName"], stub["ClientStatus"]) == ("gpu-1", "complete")

    memory = model_job("by-memory", "RTX")
    memory["TaskGroups"][0]["Tasks"][0]["Resources"]["Devices"][0]["Constraints"] += [
        # 24564 MiB against 20 GiB: both bytes, compared in the base unit.
        {"LTarget": "${device.attr.memory}", "Operand": ">=", "RTarget": "20 GiB"},
    ]
    register(nomad, memory)
    [stub] = wait_allocs(nomad, "by-memory", finished)
    assert stub["NodeName"] == "gpu-1"


def cores_job(job_id: str, cores: int) -> JsonDict:
    return batch_job(job_id, task("main", "sleep 30", Resources={"Cores": cores, "MemoryMB": 256}))


def test_cores_are_reserved_whole_and_for_one_task_only(nomad_standin, nomad):
    """scheduler/rank.go BinPackIterator: a task's ``Cores`` come from the node's usable
    cores less those other allocations reserved, or the node is exhausted on "cores";
    the task's CPU shares are what those cores are worth (numa_ce.go ``Select``), and
    api/resources.go ``Canonicalize`` leaves ``CPU`` 0 beside ``Cores``."""
    register(nomad, cores_job("ten", 10))
    [ten] = wait_allocs(nomad, "ten", running)
    first = read_alloc(nomad, ten["ID"])
    cpu = first["AllocatedResources"]["Tasks"]["main"]["Cpu"]
    assert (len(cpu["ReservedCores"]), cpu["CpuShares"]) == (10, 10_000)
    assert first["Job"]["TaskGroups"][0]["Tasks"][0]["Resources"]["CPU"] == 0

    registered = register(nomad, cores_job("eight", 8))
    metric = wait_eval(nomad, registered["EvalID"])["FailedTGAllocs"]["stage"]
    assert metric["DimensionExhausted"] == {"cores": 1}

    register(nomad, cores_job("six", 6))
    [six] = wait_allocs(nomad, "six", running)
    second = read_alloc(nomad, six["ID"])["AllocatedResources"]["Tasks"]["main"]["Cpu"]
    assert len(second["ReservedCores"]) == 6
    assert not set(second["ReservedCores"]) & set(cpu["ReservedCores"])


def test_an_image_no_node_can_pull_fails_the_task_as_nomad_reports_it(nomad_standin, nomad):
    """drivers/docker/coordinator.go ``recoverablePullError`` wraps the daemon's error as
    "Failed to pull `<image>`: <error>"; task_runner.go ``runDriver`` emits it as a
    ``Driver Failure`` event (``SetDriverError``: DriverError and Details.driver_error,
    not FailsTask), whose display message is that error (structs.go
    ``PopulateEventDisplayMessage``); with no restart attempts the restart tracker ends
    the task on "Not Restarting" (restarts.go GetState), the same events the docker
    driver path produces when a real daemon cannot pull."""
    nomad_standin.add_node("docker-1", drivers=("docker",))
    image = "registry.invalid/winslow-tools:0.1.0"
    nomad_standin.refuse_image(image)
    job = batch_job("unpullable", {"Name": "main", "Driver": "docker", "Config": {"image": image}})
    register(nomad, job)
    [stub] = wait_allocs(nomad, "unpullable", finished)
    main = read_alloc(nomad, stub["ID"])["TaskStates"]["main"]
    kinds = [e["Type"] for e in main["Events"]]
    assert kinds == ["Received", "Task Setup", "Driver", "Driver Failure", "Not Restarting"]
    failure, final = main["Events"][-2:]
    expected = (
        "Failed to pull `registry.invalid/winslow-tools:0.1.0`: Error response from daemon: "
        'Get "https://registry.invalid/v2/": dial tcp: lookup registry.invalid on '
        "127.0.0.53:53: no such host"
    )
    assert not failure["FailsTask"]
    assert failure["DriverError"] == failure["DisplayMessage"] == expected
    assert failure["Details"]["driver_error"] == expected
    assert (final["FailsTask"], final["DisplayMessage"]) == (True, "Policy allows no restarts")
    assert (main["State"], main["Failed"], stub["ClientStatus"]) == ("dead", True, "failed")


def test_tls_standin_serves_https_and_requires_a_client_certificate(tmp_path):
    """An agent with ``tls { http = true, verify_https_client = true }`` completes no
    request without a client certificate its CA signed."""
    from tests.fixtures.nomad import SERVER_NAME, make_tls
    from tests.nomad_standin import StandinTls

    files = make_tls(tmp_path / "tls")
    tls = StandinTls(files.server_cert, files.server_key, client_ca=files.ca)
    with NomadStandin(tls=tls) as standin:
        assert standin.address.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(files.ca))
        context.load_cert_chain(str(files.client_cert), str(files.client_key))
        ext = {"sni_hostname": SERVER_NAME}
        with httpx.Client(verify=context) as client:
            leader = client.get(standin.address + "/v1/status/leader", extensions=ext)
        assert leader.json() == "127.0.0.1:4647"
        anonymous = ssl.create_default_context(cafile=str(files.ca))
        with httpx.Client(verify=anonymous) as client, pytest.raises(httpx.TransportError):
            client.get(standin.address + "/v1/status/leader", extensions=ext)


# --- fidelity: fs readat, list fields, 404 query meta, empty fields, key sets ----------


def test_readat_checks_its_parameters_and_the_path_as_nomad_does(nomad_standin, nomad):
    """command/agent/fs_endpoint.go FileReadAtRequest: no ``path`` is a 400 "must provide
    a file name"; ``offset`` is required and parsed with strconv.ParseInt, its error a
    plain 500 "error parsing offset: ..." (so is a bad ``limit``). client/fs_endpoint.go
    stream: an unknown allocation 404; ``AllocDir.Stat`` errors are 400s: "Path escapes
    the alloc directory" (helper/escapingfs PathEscapesAllocViaRelative), the os.Stat
    error with the full path, ``file "..." is a directory``; ``AllocDir.ReadAt`` refuses a
    task's secrets with a 500 "Reading secret file prohibited: <path>"."""
    register(nomad, batch_job("files", task("main", 'printf 0123456789 > "$NOMAD_ALLOC_DIR/f"')))
    [stub] = wait_allocs(nomad, "files", finished)
    url = f"/v1/client/fs/readat/{stub['ID']}"

    def read(**params: Any) -> tuple[int, str]:
        response = nomad.get(url, params=params)
        return response.status_code, response.text

    assert read(path="alloc/f", offset=2, limit=3) == (200, "234")
    assert read(path="/alloc/f", offset=7) == (200, "789")
    assert read(offset=0) == (400, "must provide a file name")
    assert read(path="alloc/f") == (
        500,
        'error parsing offset: strconv.ParseInt: parsing "": invalid syntax',
    )
    assert read(path="alloc/f", offset="1.5") == (
        500,
        'error parsing offset: strconv.ParseInt: parsing "1.5": invalid syntax',
    )
    assert read(path="alloc/f", offset=0, limit="x") == (
        500,
        'error parsing limit: strconv.ParseInt: parsing "x": invalid syntax',
    )
    missing = nomad_standin.client.alloc_dir(stub["ID"]) / "alloc" / "nope"
    assert read(path="alloc/nope", offset=0) == (
        400,
        f"stat {missing}: no such file or directory",
    )
    assert read(path="../other/alloc/f", offset=0) == (400, "Path escapes the alloc directory")
    assert read(path="alloc/logs", offset=0) == (400, 'file "alloc/logs" is a directory')
    secret = nomad_standin.client.alloc_dir(stub["ID"]) / "main" / "secrets" / "token"
    secret.write_text("s3cret")
    assert read(path="main/secrets/token", offset=0) == (
        500,
        "Reading secret file prohibited: main/secrets/token",
    )
    unknown = nomad.get("/v1/client/fs/readat/0000", params={"path": "alloc/f", "offset": 0})
    assert (unknown.status_code, unknown.text) == (404, 'Unknown allocation "0000"')


def test_allocation_list_selects_task_states_and_resources_as_asked(nomad):
    """command/agent/alloc_endpoint.go AllocsRequest parses ``resources`` and
    ``task_states`` (parseBool: a bad value is a 500 "Failed to parse value of ...");
    structs.go ``Allocation.Stub`` then sets ``TaskStates`` nil unless task_states is
    true (the default keeps them, NewAllocStubFields) and adds ``AllocatedResources``
    (``json:",omitempty"``) only with resources=true. ``AllocListStub`` has no
    ``PreviousAllocation``."""
    register(nomad, batch_job("listed", task("main", "true")))
    wait_allocs(nomad, "listed", finished)

    [full] = nomad.get("/v1/allocations").json()
    assert full["TaskStates"]["main"]["State"] == "dead"
    assert "AllocatedResources" not in full and "PreviousAllocation" not in full
    [lean] = nomad.get("/v1/allocations", params={"task_states": "false"}).json()
    assert "TaskStates" in lean and lean["TaskStates"] is None
    assert {k: v for k, v in lean.items() if k != "TaskStates"} == {
        k: v for k, v in full.items() if k != "TaskStates"
    }
    [rich] = nomad.get("/v1/allocations", params={"resources": "true"}).json()
    assert rich["AllocatedResources"]["Tasks"]["main"]["Cpu"]["CpuShares"] == 100
    bad = nomad.get("/v1/allocations", params={"task_states": "nope"})
    assert (bad.status_code, bad.text) == (
        500,
        'Failed to parse value of "task_states" (nope) as a bool: '
        'strconv.ParseBool: parsing "nope": invalid syntax',
    )


def pages(client: httpx.Client, path: str, **params: Any) -> list[tuple[list[JsonDict], str]]:
    """Every page of a list read with ``next_token``, each with the token it handed on."""
    found, token = [], ""
    while True:
        response = client.get(path, params={**params, **({"next_token": token} if token else {})})
        assert response.status_code == 200, response.text
        token = response.headers.get("X-Nomad-NextToken", "")
        found.append((response.json(), token))
        if not token:
            return found


def test_lists_page_as_nomads_paginator_does(nomad):
    """nomad/state/paginator: ``Page`` returns ``per_page`` items from the first whose
    token is not below ``next_token`` (command/agent/http.go ``parsePagination``; not a
    number is a 400) and hands on the token of the first item left out
    (``X-Nomad-NextToken``, ``setNextToken``). Job.List tokenizes with
    ``NamespaceIDTokenizer`` (``<namespace>.<ID>``); Alloc.List walks the namespace in
    create-index order with ``CreateIndexAndIDTokenizer`` (``<index>.<ID>``, the index
    compared as a number), and by ID with ``IDTokenizer`` when given a prefix."""
    for name in ("page-a", "page-b", "page-c", "page-d", "page-e"):
        register(nomad, batch_job(name, task("main", "true")))
    for name in ("page-a", "page-b", "page-c", "page-d", "page-e"):
        wait_allocs(nomad, name, finished)

    whole = nomad.get("/v1/jobs", params={"prefix": "page-"}).json()
    assert "X-Nomad-NextToken" not in nomad.get("/v1/jobs").headers
    paged = pages(nomad, "/v1/jobs", prefix="page-", per_page=2)
    assert [[job["ID"] for job in page] for page, _ in paged] == [
        ["page-a", "page-b"],
        ["page-c", "page-d"],
        ["page-e"],
    ]
    assert [token for _, token in paged] == ["default.page-c", "default.page-e", ""]
    assert [job for page, _ in paged for job in page] == whole

    allocs = nomad.get("/v1/allocations", params={"task_states": "false"}).json()
    assert [(a["CreateIndex"], a["ID"]) for a in allocs] == sorted(
        (a["CreateIndex"], a["ID"]) for a in allocs
    )
    paged = pages(nomad, "/v1/allocations", task_states="false", per_page=3)
    assert [len(page) for page, _ in paged] == [3, 2]
    assert paged[0][1] == f"{allocs[3]['CreateIndex']}.{allocs[3]['ID']}"
    assert [a for page, _ in paged for a in page] == allocs
    by_id = sorted(allocs, key=lambda a: a["ID"])
    first = by_id[0]["ID"][:1]
    with_prefix = [a for a in by_id if a["ID"].startswith(first)]
    paged = pages(nomad, "/v1/allocations", prefix=first, task_states="false", per_page=1)
    assert [a for page, _ in paged for a in page] == with_prefix
    assert [token for _, token in paged][:-1] == [a["ID"] for a in with_prefix[1:]]

    bad = nomad.get("/v1/jobs", params={"per_page": "ten"})
    assert (bad.status_code, bad.text) == (
        400,
        "Expect a number for `per_page` query string parameter",
    )


def test_reads_that_find_nothing_still_carry_the_query_meta(nomad_standin, nomad):
    """command/agent/{job,alloc,eval,node,variable}_endpoint.go call ``setMeta`` with the
    RPC's QueryMeta before answering ``CodedError(404, ...)``; for a missing object the
    RPC reports the table's index (e.g. nomad/alloc_endpoint.go GetAlloc:
    ``state.Index("allocs")``), so the 404 has ``X-Nomad-Index``, ``X-Nomad-KnownLeader``
    and ``X-Nomad-LastContact`` like any read."""
    register(nomad, batch_job("present", task("main", "true")))
    wait_allocs(nomad, "present", finished)
    tables = {
        "/v1/job/absent": ("job not found", "jobs"),
        "/v1/job/absent/summary": ("job not found", "jobs"),
        "/v1/allocation/absent": ("alloc not found", "allocs"),
        "/v1/evaluation/absent": ("eval not found", "evals"),
        "/v1/node/absent": ("node not found", "nodes"),
        "/v1/var/absent": ("variable not found", "variables"),
    }
    for path, (message, table) in tables.items():
        response = nomad.get(path)
        assert (response.status_code, response.text) == (404, message), path
        index = max(nomad_standin.state.current_index(table), 1)
        assert response.headers["X-Nomad-Index"] == str(index), path
        assert response.headers["X-Nomad-KnownLeader"] == "true", path
        assert response.headers["X-Nomad-LastContact"] == "0", path


def test_allocations_and_evaluations_leave_out_their_empty_fields(nomad):
    """nomad/structs/structs.go tags ``Allocation`` and ``Evaluation`` with
    ``_struct bool `codec:",omitempty"```, and the agent encodes answers and events with
    go-msgpack's JSON handle, which then leaves out every empty field
    (go-msgpack/v2 codec/encode.go kStruct, helper.go isEmptyValue): ``RelatedEvals`` is
    absent unless ``?related=true`` lists some (the documented evaluation sample shows no
    ``NextEval``, ``NodeID`` or ``WaitUntil`` either), an allocation has no
    ``PreviousAllocation: ""``, and the allocation in an event has no ``Job`` (nil in
    events). The list stubs (``AllocListStub``, ``EvaluationStub``) have no such tag."""
    registered = register(nomad, batch_job("sparse", task("main", "true")))
    [stub] = wait_allocs(nomad, "sparse", finished)
    alloc = read_alloc(nomad, stub["ID"])
    for key in ("PreviousAllocation", "DeploymentID", "FollowupEvalID", "DesiredDescription"):
        assert key not in alloc, key
    assert alloc["Job"]["ID"] == "sparse" and alloc["TaskStates"]["main"]["State"] == "dead"
    assert all(value not in (None, "", 0, False, [], {}) for value in alloc.values())
    assert stub["PreemptedByAllocation"] == "" and stub["FollowupEvalID"] == ""

    evaluation = wait_eval(nomad, registered["EvalID"])
    for key in ("RelatedEvals", "NextEval", "BlockedEval", "NodeID", "WaitUntil", "Wait"):
        assert key not in evaluation, key
    assert evaluation["Status"] == "complete" and evaluation["JobID"] == "sparse"
    listed = nomad.get("/v1/job/sparse/evaluations").json()
    assert "RelatedEvals" not in listed[0] and "NextEval" not in listed[0]

    events = [
        e
        for f in read_event_frames(
            nomad,
            {"topic": ["Allocation:sparse", "Evaluation:sparse"], "index": 0},
            lambda got: sum(len(f.get("Events", [])) for f in got) >= 3,
        )
        for e in f.get("Events", [])
    ]
    for event in events:
        payload = event["Payload"][event["Topic"]]
        assert "Job" not in payload and "RelatedEvals" not in payload
        assert all(value not in (None, "", 0, False, [], {}) for value in payload.values())


# Key sets of the structs a v1.10.5 server encodes (hashicorp/nomad nomad/structs/
# structs.go at v1.10.5: exported fields without `json:"-"`; Node with the ``Drain`` its
# JSON extension adds, structs/extensions.go nodeExt).
NOMAD_1_10_KEYS = {
    "Job": {
        "Affinities", "AllAtOnce", "Constraints", "ConsulNamespace", "CreateIndex",
        "Datacenters", "DispatchIdempotencyToken", "Dispatched", "ID", "JobModifyIndex",
        "Meta", "ModifyIndex", "Multiregion", "Name", "Namespace", "NodePool",
        "NomadTokenID", "ParameterizedJob", "ParentID", "Payload", "Periodic", "Priority",
        "Region", "Spreads", "Stable", "Status", "StatusDescription", "Stop", "SubmitTime",
        "TaskGroups", "Type", "UI", "Update", "VaultNamespace", "Version", "VersionTag",
    },
    "Task": {
        "Actions", "Affinities", "Artifacts", "CSIPluginConfig", "Config", "Constraints",
        "Consul", "DispatchPayload", "Driver", "Env", "Identities", "Identity",
        "KillSignal", "KillTimeout", "Kind", "Leader", "Lifecycle", "LogConfig", "Meta",
        "Name", "Resources", "RestartPolicy", "ScalingPolicies", "Schedule", "Services",
        "ShutdownDelay", "Templates", "User", "Vault", "VolumeMounts",
    },
    "WorkloadIdentity": {
        "Audience", "ChangeMode", "ChangeSignal", "Env", "File", "Filepath", "Name",
        "ServiceName", "TTL",
    },
    "TaskState": {
        "Events", "Failed", "FinishedAt", "LastRestart", "Paused", "Restarts", "StartedAt",
        "State",
    },
    "TaskEvent": {
        "Details", "DiskLimit", "DisplayMessage", "DownloadError", "DriverError",
        "DriverMessage", "ExitCode", "FailedSibling", "FailsTask", "GenericSource",
        "KillError", "KillReason", "KillTimeout", "Message", "RestartReason", "SetupError",
        "Signal", "StartDelay", "TaskSignal", "TaskSignalReason", "Time", "Type",
        "ValidationError", "VaultError",
    },
    "Allocation": {
        "AllocModifyIndex", "AllocStates", "AllocatedResources", "ClientDescription",
        "ClientStatus", "CreateIndex", "CreateTime", "DeploymentID", "DeploymentStatus",
        "DesiredDescription", "DesiredStatus", "DesiredTransition", "EvalID",
        "FollowupEvalID", "ID", "Job", "JobID", "Metrics", "ModifyIndex", "ModifyTime",
        "Name", "Namespace", "NetworkStatus", "NextAllocation", "NodeID", "NodeName",
        "PreemptedAllocations", "PreemptedByAllocation", "PreviousAllocation",
        "RescheduleTracker", "Resources", "SharedResources", "SigningKeyID", "TaskGroup",
        "TaskResources", "TaskStates",
    },
    "AllocListStub": {
        "ClientDescription", "ClientStatus", "CreateIndex", "CreateTime",
        "DeploymentStatus", "DesiredDescription", "DesiredStatus", "DesiredTransition",
        "EvalID", "FollowupEvalID", "ID", "JobID", "JobType", "JobVersion", "ModifyIndex",
        "ModifyTime", "Name", "Namespace", "NextAllocation", "NodeID", "NodeName",
        "PreemptedAllocations", "PreemptedByAllocation", "RescheduleTracker", "TaskGroup",
        "TaskStates",
    },
    "AllocMetric": {
        "AllocationTime", "ClassExhausted", "ClassFiltered", "CoalescedFailures",
        "ConstraintFiltered", "DimensionExhausted", "NodePool", "NodesAvailable",
        "NodesEvaluated", "NodesExhausted", "NodesFiltered", "NodesInPool",
        "QuotaExhausted", "ResourcesExhausted", "ScoreMetaData", "Scores",
    },
    "Evaluation": {
        "AnnotatePlan", "BlockedEval", "ClassEligibility", "CreateIndex", "CreateTime",
        "DeploymentID", "EscapedComputedClass", "FailedTGAllocs", "ID", "JobID",
        "JobModifyIndex", "ModifyIndex", "ModifyTime", "Namespace", "NextEval",
        "NodeID", "NodeModifyIndex", "PreviousEval", "Priority", "QueuedAllocations",
        "QuotaLimitReached", "RelatedEvals", "SnapshotIndex", "Status",
        "StatusDescription", "TriggeredBy", "Type", "Wait", "WaitUntil",
    },
    "Node": {
        "Attributes", "CSIControllerPlugins", "CSINodePlugins", "CgroupParent",
        "ComputedClass", "CreateIndex", "Datacenter", "Drain", "DrainStrategy", "Drivers",
        "Events", "GCVolumesOnNodeGC", "HTTPAddr", "HostNetworks", "HostVolumes", "ID",
        "LastAllocUpdateIndex", "LastDrain", "LastMissedHeartbeatIndex", "Links", "Meta",
        "ModifyIndex", "Name", "NodeClass", "NodeMaxAllocs", "NodePool", "NodeResources",
        "Reserved", "ReservedResources", "Resources", "SchedulingEligibility", "SecretID",
        "Status", "StatusDescription", "StatusUpdatedAt", "TLSEnabled",
    },
    "NodeResources": {
        "Cpu", "Devices", "Disk", "MaxDynamicPort", "Memory", "MinDynamicPort",
        "Networks", "NodeNetworks", "Processors",
    },
    "LegacyNodeCpuResources": {"CpuShares", "ReservableCpuCores", "TotalCpuCores"},
    "NodeListStub": {
        "Address", "CreateIndex", "Datacenter", "Drain", "Drivers", "HostVolumes", "ID",
        "LastDrain", "ModifyIndex", "Name", "NodeClass", "NodePool",
        "SchedulingEligibility", "Status", "StatusDescription", "Version",
    },
}  # fmt: skip


def test_answers_have_the_keys_of_the_structs_nomad_1_10_encodes(nomad_standin, nomad):
    """Each answer's keys are those of the server's struct (NOMAD_1_10_KEYS): among
    them the job's ``NodePool``, the task's ``Identity`` (Task.Canonicalize always sets
    the default identity: name "default", audience "nomadproject.io", workload_id.go
    DefaultWorkloadIdentity) and ``Identities``, the task state's ``Paused``, the
    metric's ``NodePool`` (scheduler/generic_sched.go sets the job's), the node's
    ``Processors``, legacy ``Resources``/``Reserved`` and heartbeat indexes; and not the
    ``api`` package's job-level ``Reschedule``/``Migrate`` or ``TaskEvent.DiskSize``. The
    allocation and evaluation keys are a subset: their empty fields are left out."""
    wid = {"Name": "vault_default", "Audience": ["vault.io"], "TTL": 3_600_000_000_000}
    job = batch_job("keyed", task("main", "true", Identities=[wid]))
    job["Meta"] = {"m": "1"}
    registered = register(nomad, job)
    [stub] = wait_allocs(nomad, "keyed", finished)
    read = nomad.get("/v1/job/keyed").json()
    assert set(read) == NOMAD_1_10_KEYS["Job"]
    main = read["TaskGroups"][0]["Tasks"][0]
    assert set(main) == NOMAD_1_10_KEYS["Task"]
    assert main["Identity"]["Name"] == "default"
    assert main["Identity"]["Audience"] == ["nomadproject.io"]
    [vault] = main["Identities"]
    assert set(main["Identity"]) == set(vault) == NOMAD_1_10_KEYS["WorkloadIdentity"]
    assert (vault["Name"], vault["Audience"], vault["TTL"]) == (
        "vault_default",
        ["vault.io"],
        3_600_000_000_000,
    )

    assert set(stub) == NOMAD_1_10_KEYS["AllocListStub"]
    alloc = read_alloc(nomad, stub["ID"])
    assert set(alloc) <= NOMAD_1_10_KEYS["Allocation"]
    assert set(alloc["Metrics"]) == NOMAD_1_10_KEYS["AllocMetric"]
    assert alloc["Metrics"]["NodePool"] == "default"
    state = alloc["TaskStates"]["main"]
    assert set(state) == NOMAD_1_10_KEYS["TaskState"] and state["Paused"] == ""
    assert all(set(e) == NOMAD_1_10_KEYS["TaskEvent"] for e in state["Events"])
    assert set(wait_eval(nomad, registered["EvalID"])) <= NOMAD_1_10_KEYS["Evaluation"]

    [node_stub] = nomad.get("/v1/nodes").json()
    assert set(node_stub) == NOMAD_1_10_KEYS["NodeListStub"]
    node = nomad.get(f"/v1/node/{node_stub['ID']}").json()
    assert set(node) == NOMAD_1_10_KEYS["Node"]
    assert set(node["NodeResources"]) == NOMAD_1_10_KEYS["NodeResources"]
    assert set(node["NodeResources"]["Cpu"]) == NOMAD_1_10_KEYS["LegacyNodeCpuResources"]
    cores = node["NodeResources"]["Processors"]["Topology"]["Cores"]
    assert len(cores) == int(node["Attributes"]["cpu.numcores"]) == 16
    assert node["Resources"]["CPU"] == 0 and node["Reserved"]["MemoryMB"] == 0
    assert node["Attributes"]["nomad.version"] == "1.10.5"
    [job_stub] = nomad.get("/v1/jobs").json()
    assert "Meta" not in job_stub  # `json:",omitempty"` and only with ?meta=true
    assert nomad.get("/v1/jobs", params={"meta": "true"}).json()[0]["Meta"] == {"m": "1"}


# --- the docker driver --------------------------------------------------------------------


def docker_job(job_id: str, config: JsonDict, **fields: Any) -> JsonDict:
    main = {"Name": "main", "Driver": "docker", "Config": config, "KillTimeout": 1_000_000_000}
    return batch_job(job_id, {**main, **fields})


@pytest.fixture
def docker_node(nomad_standin: NomadStandin) -> str:
    """A node whose client offers the docker driver (its daemon as ``DOCKER_HOST`` says)."""
    return nomad_standin.add_node("docker-1", drivers=("docker",))


def task_events(nomad: httpx.Client, job_id: str) -> tuple[JsonDict, list[JsonDict]]:
    [stub] = wait_allocs(nomad, job_id, all_dead)
    main = read_alloc(nomad, stub["ID"])["TaskStates"]["main"]
    return main, main["Events"]


def test_docker_task_fails_with_nomads_driver_error_when_the_daemon_does_not_answer(
    nomad, docker_node, monkeypatch, tmp_path
):
    """drivers/docker/driver.go StartTask asks the daemon for its info first and fails
    with "failed to fetch docker daemon info: <client error>"; the docker client's
    error for an unreachable daemon is "Cannot connect to the Docker daemon at <host>.
    Is the docker daemon running?", the host coming from DOCKER_HOST (client.FromEnv).
    task_runner.go runDriver emits it as a ``Driver Failure`` (SetDriverError: not
    FailsTask; PopulateEventDisplayMessage shows the driver error), then the restart
    tracker (restarts.go GetState, no attempts) a ``Not Restarting`` event "Policy allows
    no restarts" that fails the task."""
    host = f"unix://{tmp_path}/no-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    register(nomad, docker_job("no-daemon", {"image": "winslow-test/busybox:1"}))
    main, events = task_events(nomad, "no-daemon")
    failure, final = events[-2:]
    message = (
        f"failed to fetch docker daemon info: Cannot connect to the Docker daemon at {host}. "
        "Is the docker daemon running?"
    )
    assert (failure["Type"], failure["FailsTask"]) == ("Driver Failure", False)
    assert failure["DriverError"] == failure["DisplayMessage"] == message
    assert failure["Details"] == {"driver_error": message}
    assert (final["Type"], final["FailsTask"]) == ("Not Restarting", True)
    assert final["DisplayMessage"] == "Policy allows no restarts"
    assert "Started" not in [e["Type"] for e in events]
    assert (main["State"], main["Failed"]) == ("dead", True)


def test_docker_config_is_checked_against_the_drivers_schema(nomad, docker_node):
    """The task runner decodes the config with the driver's HCL spec before starting it
    (task_runner.go runDriver, helper/pluginutils/hclutils ParseHclInterface; keys from
    drivers/docker/config.go taskConfigSpec): a missing ``image`` and an unknown key are
    hcl diagnostics ("Missing required argument", "Extraneous JSON object property"
    renamed "Invalid label", with hcl's "Did you mean" suggestion) in a multierror after
    "failed to parse config: ", emitted as ``Failed Validation``; the error is not
    recoverable, so the task is not restarted."""
    register(nomad, docker_job("schema", {"imgae": "winslow-test/busybox:1"}))
    main, events = task_events(nomad, "schema")
    invalid, final = events[-2:]
    expected = (
        "3 errors occurred:\n"
        "\t* failed to parse config: \n"
        '\t* Missing required argument: The argument "image" is required, but no '
        "definition was found.\n"
        '\t* Invalid label: No argument or block type is named "imgae". '
        'Did you mean "image"?\n\n'
    )
    assert (invalid["Type"], invalid["ValidationError"]) == ("Failed Validation", expected)
    assert invalid["DisplayMessage"] == expected and not invalid["FailsTask"]
    assert (final["Type"], final["RestartReason"]) == (
        "Not Restarting",
        "Policy allows no restarts",
    )
    assert main["Failed"]


@pytest.mark.containers
def test_docker_image_that_cannot_be_pulled_fails_the_task(nomad, docker_node, stage_image):
    """driver.go createImage inspects a local image unless its tag is ``latest``, else
    pulls it: a ``Driver`` event "Downloading image" with the image annotation
    (alloc_runner.go GetTaskEventHandler: TaskDriverMessage), then coordinator.go
    pullImageImpl's error "Failed to pull `<image>`: <daemon's error>"
    (recoverablePullError) as the ``Driver Failure``; with no restart attempts the task
    ends on "Not Restarting". Nothing can be pulled here, whatever the daemon says why."""
    image = "winslow-test/never-built:1"
    register(nomad, docker_job("unpulled", {"image": image}))
    main, events = task_events(nomad, "unpulled")
    kinds = [e["Type"] for e in events]
    assert kinds == ["Received", "Task Setup", "Driver", "Driver Failure", "Not Restarting"]
    downloading, failure = events[2], events[3]
    assert (downloading["DriverMessage"], downloading["DisplayMessage"]) == (
        "Downloading image",
        "Downloading image",
    )
    assert downloading["Details"] == {"image": image}
    assert failure["DriverError"].startswith(f"Failed to pull `{image}`: ")
    assert failure["DisplayMessage"] == failure["DriverError"] and not failure["FailsTask"]
    assert main["Failed"]


@pytest.mark.containers
def test_docker_task_runs_in_its_image_with_nomads_mounts_and_environment(
    nomad_standin, nomad, docker_node, stage_image
):
    """driver.go containerBinds mounts the allocation folder at /alloc and the task's
    local/ and secrets/ at /local and /secrets (the taskenv paths the task's NOMAD_*_DIR
    variables name); createContainerConfig sets ``work_dir``, the command and args
    (interpolated as HCL does, task_runner.go runDriver) and only the task's environment
    (task.EnvList) on top of the image's. The container's output reaches the task's
    log files (docklog), and handle.go run reports its exit code with signal 0 and the
    message "Docker container exited with non-zero exit code: N"."""
    script = (
        'echo "dirs=$NOMAD_ALLOC_DIR,$NOMAD_TASK_DIR,$NOMAD_SECRETS_DIR pwd=$(pwd)"; '
        'echo "greeting=$GREETING job=$1 path=$PATH"; cat /local/note; '
        "echo from-container > /alloc/data/out; echo oops >&2; exit 3"
    )
    job = docker_job(
        "boxed",
        {
            "image": stage_image,
            "work_dir": "/alloc",
            "command": "sh",
            "args": ["-c", script, "arg0", "${NOMAD_JOB_ID}"],
        },
        Env={"GREETING": "hello from ${node.unique.name}"},
        Templates=[{"EmbeddedTmpl": "templated\n", "DestPath": "local/note"}],
    )
    register(nomad, job)
    main, events = task_events(nomad, "boxed")
    [stub] = nomad.get("/v1/job/boxed/allocations").json()
    logs = f"/v1/client/fs/logs/{stub['ID']}"
    out = nomad.get(logs, params={"task": "main", "type": "stdout", "plain": "true"}).text
    assert out == (
        "dirs=/alloc,/local,/secrets pwd=/alloc\n"
        "greeting=hello from docker-1 job=boxed path=/bin\n"
        "templated\n"
    )
    err = nomad.get(logs, params={"task": "main", "type": "stderr", "plain": "true"}).text
    assert err == "oops\n"
    data = nomad_standin.client.alloc_dir(stub["ID"]) / "alloc" / "data" / "out"
    assert data.read_text() == "from-container\n"
    [terminated] = [e for e in events if e["Type"] == "Terminated"]
    message = "Docker container exited with non-zero exit code: 3"
    assert (terminated["ExitCode"], terminated["Signal"], terminated["Message"]) == (3, 0, message)
    assert terminated["DisplayMessage"] == f'Exit Code: 3, Exit Message: "{message}"'
    assert terminated["Details"]["exit_message"] == message
    assert [e["Type"] for e in events][-3:] == ["Started", "Terminated", "Not Restarting"]
    assert main["Failed"] and stub["ClientStatus"] == "failed"
    assert docker_driver.wait_until_gone(f"main-{stub['ID']}")


@pytest.mark.containers
def test_docker_task_is_stopped_with_docker_kill_and_its_container_removed(
    nomad_standin, nomad, docker_node, stage_image
):
    """Stopping the job kills the task with its kill signal through the daemon
    (handle.go Kill: ``Signal`` with kill_signal, then ContainerStop after kill_timeout);
    the container reports the exit code the signal gave (143 for SIGTERM, signal 0) and
    is removed. The task ends ``Killed``, not failed."""
    script = 'trap "echo stopping; exit 143" TERM; echo started; while :; do sleep 0.1; done'
    config = {"image": stage_image, "command": "sh", "args": ["-c", script]}
    register(nomad, docker_job("stoppable", config, KillSignal="SIGTERM"))
    [stub] = wait_allocs(nomad, "stoppable", running)
    assert nomad_standin.task_pids()
    assert nomad.delete("/v1/job/stoppable").status_code == 200
    main, events = task_events(nomad, "stoppable")
    assert [e["Type"] for e in events][-3:] == ["Killing", "Terminated", "Killed"]
    terminated = events[-2]
    assert (terminated["ExitCode"], terminated["Signal"]) == (143, 0)
    assert (main["State"], main["Failed"]) == ("dead", False)
    out = nomad.get(
        f"/v1/client/fs/logs/{stub['ID']}",
        params={"task": "main", "type": "stdout", "plain": "true"},
    ).text
    assert out == "started\nstopping\n"  # nothing the container wrote is lost
    assert docker_driver.wait_until_gone(f"main-{stub['ID']}")
    assert nomad_standin.task_pids() == []


@pytest.mark.containers
def test_docker_settings_nomad_refuses_by_default_fail_the_task(nomad_standin, nomad, stage_image):
    """The plugin's defaults (drivers/docker/config.go: ``volumes.enabled = false``,
    ``allow_privileged = false``, ``nvidia_runtime = "nvidia"``) make
    createContainerConfig refuse a host path volume ("volumes are not enabled; cannot
    mount host paths: %+q", containerBinds), privileged mode ("Docker privileged mode is
    disabled on this Nomad agent") and GPUs when the daemon has no nvidia runtime
    ("requested docker runtime \\"nvidia\\" was not found"); StartTask wraps each in
    "Failed to create container configuration for image %q (%q): %v"."""
    nomad_standin.add_node("gpu-docker", drivers=("docker",), gpus=[("Tesla T4", 15360)])
    runtimes = subprocess.run(
        ["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True
    ).stdout
    cases = {
        "volumes": ({"volumes": ["/etc:/host-etc"]}, {}),
        "privileged": ({"privileged": True}, {}),
    }
    if '"nvidia"' not in runtimes:  # with the runtime, the fake GPU IDs would reach it
        gpu = {"Name": "nvidia/gpu", "Count": 1}
        cases["gpu"] = ({}, {"Resources": {"Devices": [gpu]}})
    for job_id, (extra, fields) in cases.items():
        config = {"image": stage_image, "command": "true", **extra}
        register(nomad, docker_job(job_id, config, **fields))
    image_id = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", stage_image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    prefix = f'Failed to create container configuration for image "{stage_image}" ("{image_id}"): '
    reasons = {
        "volumes": 'volumes are not enabled; cannot mount host paths: "/etc:/host-etc"',
        "privileged": "Docker privileged mode is disabled on this Nomad agent",
        "gpu": 'requested docker runtime "nvidia" was not found',
    }
    for job_id in cases:
        reason = reasons[job_id]
        main, events = task_events(nomad, job_id)
        failure = events[-2]
        assert (failure["Type"], failure["DriverError"]) == ("Driver Failure", prefix + reason)
        assert main["Failed"], job_id
