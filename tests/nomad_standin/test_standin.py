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
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.nomad_api.shapes import ALLOC_STATS_EXTRAS, assert_shape, sample, table_extras
from tests.nomad_standin import NomadStandin
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
NODE_EXTRAS = {
    "CSIControllerPlugins",
    "CSINodePlugins",
    "CgroupParent",
    "GCVolumesOnNodeGC",
    "NodeMaxAllocs",
    "Reserved",
    "Resources",
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
            "$.TaskStates.*.Events[]": TASK_EVENT_EXTRAS,
            # The allocation's Metrics is the same AllocMetric an evaluation reports.
            "$.Metrics": set(eval_metric) | {"NodePool"},
        }
    )
    assert_shape({**alloc_sample, "Job": None}, {**alloc, "Job": None}, extras)
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
            "$.NodeResources": {"MinDynamicPort", "MaxDynamicPort"},
            # The newer event-stream sample shows agents also send these per network.
            "$.NodeResources.Networks[]": {"DNS"},
            "$.NodeResources.NodeNetworks[]": {"Speed"},
        }
    )
    assert_shape(sample("node_read_response.json"), node, extras)
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
    assert events[-1]["Payload"]["Allocation"]["Job"] is None  # Nomad strips it from events
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


def test_kill_node_loses_its_allocations_and_replaces_only_when_policy_allows(nomad_standin, nomad):
    register(nomad, batch_job("stays-lost", task("main", "sleep 60")))
    [lost_stub] = wait_allocs(nomad, "stays-lost", running)
    other = nomad_standin.add_node("standin-2")
    register(
        nomad,
        batch_job(
            "moves",
            task("main", "sleep 60"),
            reschedule=1,
            Constraints=[
                {"LTarget": "${node.unique.name}", "Operand": "regexp", "RTarget": "standin-[12]"}
            ],
        ),
    )
    [moving] = wait_allocs(nomad, "moves", running)
    victim = moving["NodeName"]
    assert victim == lost_stub["NodeName"] == "standin-1"  # binpack prefers the fuller node

    nomad_standin.kill_node(victim)
    [lost] = wait_allocs(nomad, "stays-lost", lambda allocs: allocs[0]["ClientStatus"] == "lost")
    alloc = read_alloc(nomad, lost["ID"])
    assert (alloc["DesiredStatus"], alloc["ClientStatus"]) == ("stop", "lost")
    assert alloc["DesiredDescription"] == "alloc is lost since its node is down"
    assert nomad.get(f"/v1/node/{alloc['NodeID']}").json()["Status"] == "down"

    allocs = wait_allocs(nomad, "moves", lambda allocs: len(allocs) == 2 and running(allocs[1:]))
    replacement = allocs[1]
    assert replacement["NodeID"] == other and replacement["PreviousAllocation"] == moving["ID"]
    [event] = replacement["RescheduleTracker"]["Events"]
    assert (event["PrevAllocID"], event["PrevNodeID"]) == (moving["ID"], moving["NodeID"])
    assert read_alloc(nomad, moving["ID"])["NextAllocation"] == replacement["ID"]
    assert len(nomad.get("/v1/job/stays-lost/allocations").json()) == 1  # no replacement
    assert len(nomad_standin.task_pids()) == 1  # only the replacement runs


def test_docker_tasks_fail_with_a_driver_failure(nomad_standin, nomad):
    nomad_standin.add_node("docker-1", drivers=("docker",))
    job = batch_job("docker", {"Name": "main", "Driver": "docker", "Config": {"image": "alpine"}})
    register(nomad, job)
    [stub] = wait_allocs(nomad, "docker", finished)
    main = read_alloc(nomad, stub["ID"])["TaskStates"]["main"]
    failure = main["Events"][-1]
    assert (failure["Type"], failure["FailsTask"]) == ("Driver Failure", True)
    assert (
        failure["DisplayMessage"] == "Failed to start task: driver docker not available in stand-in"
    )
    assert stub["ClientStatus"] == "failed" and stub["NodeName"] == "docker-1"


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
