"""The same projects, commands and API with stages running as Nomad jobs (the stand-in
in tests/, which really runs raw_exec tasks, or a real agent with WINSLOW_TEST_NOMAD_ADDR
through tests/backends/test_contract.py)."""

from __future__ import annotations

import pytest

from tests.fixtures.winslow import Harness
from tests.fixtures.workspaces import read_workspace

pytestmark = pytest.mark.slow

PIPELINE = """
name: nomadic
variables:
  GREETING: {default: 'say "hi" ${literally}'}
stages:
  - name: prepare
    command: ["sh", "-c", "printf '%s\\n' \\"$GREETING\\" > greeting.txt; echo prepared"]
  - name: review
    gate: true
    command: ["sh", "-c", "cat greeting.txt"]
  - name: finish
    command: ["sh", "-c", "cat greeting.txt > final.txt; echo done >> final.txt"]
"""


def test_pipeline_through_gate_on_nomad(winslow_on_nomad: Harness) -> None:
    winslow = winslow_on_nomad
    winslow.apply_pipeline(PIPELINE)
    winslow.create("on-nomad", "nomadic", start=True)
    winslow.engine.run_until_idle(timeout=120)
    waiting = winslow.show("on-nomad")
    assert waiting["state"] == "awaiting_input", waiting
    assert [(r["stage"], r["state"], r["node"]) for r in waiting["runs"]] == [
        ("prepare", "succeeded", "standin-1")
    ]

    winslow.command("on-nomad", "resume")
    winslow.engine.run_until_idle(timeout=120)
    done = winslow.show("on-nomad")
    assert done["state"] == "succeeded", done
    finish = done["runs"][-1]
    final = read_workspace(winslow.context.objects, finish["workspace"])["final.txt"]
    assert final == b'say "hi" ${literally}\ndone\n'
    assert "prepared" in winslow.log("on-nomad", done["runs"][0]["id"])


def test_failing_stage_on_nomad_shows_exit_code(winslow_on_nomad: Harness) -> None:
    winslow = winslow_on_nomad
    winslow.apply_pipeline("""
name: broken
stages:
  - name: detect
    command: ["sh", "-c", "echo about to fail; exit 3"]
""")
    winslow.create("broken", "broken", start=True)
    winslow.engine.run_until_idle(timeout=120)
    project = winslow.show("broken")
    assert project["state"] == "failed"
    (run,) = project["runs"]
    assert (run["state"], run["exit_code"]) == ("failed", 3)
    assert "exited with code 3" in project["state_reason"]


def test_unplaceable_stage_waits_with_nomads_reason(winslow_on_nomad: Harness) -> None:
    winslow = winslow_on_nomad
    winslow.apply_pipeline("""
name: greedy
stages:
  - name: detect
    command: ["true"]
    requirements: {gpu: {count: 2, model: "A100"}}
""")
    winslow.create("greedy", "greedy", start=True)
    winslow.engine.run_until_idle(timeout=60)
    (run,) = winslow.show("greedy")["runs"]
    assert run["state"] == "pending"
    assert "devices" in (run["reason"] or ""), run


def test_kill_on_nomad_stops_and_purges_the_job(winslow_on_nomad: Harness) -> None:
    import time

    winslow = winslow_on_nomad
    winslow.apply_pipeline("""
name: sleepy
stages:
  - name: detect
    command: ["sh", "-c", "echo started; sleep 60"]
""")
    winslow.create("sleepy", "sleepy", start=True)
    run_id = winslow.wait_until_running("sleepy")["id"]
    # The live log, read from the allocation, shows the stage's first line before the kill.
    deadline = time.monotonic() + 60
    while "started" not in winslow.log("sleepy", run_id):
        assert time.monotonic() < deadline, "the stage's output never showed in its live log"
        time.sleep(0.2)
    winslow.command("sleepy", "kill")
    winslow.engine.run_until_idle(timeout=60)
    project = winslow.show("sleepy")
    assert project["state"] == "paused"
    (run,) = project["runs"]
    assert run["state"] == "cancelled"
    assert winslow.context.backend.status(run["job_id"]) is None  # purged from Nomad
    assert "started" in winslow.log("sleepy", run["id"])  # the archived log stays


def test_node_that_stops_answering_loses_the_run_after_the_grace_and_the_retry_runs_elsewhere(
    winslow_on_nomad: Harness, nomad_standin
) -> None:
    """Nomad keeps the allocation of a node that stops heartbeating ``unknown`` for as
    long as the node is away (``disconnect.replace = false``; scheduler/reconcile.go
    computeGroup, appendUnknownDisconnectingUpdates): Winslow counts the run lost after
    ``WINSLOW_NOMAD_LOST_AFTER``, stops its job, and the retry runs on a ready node. The
    node here is cut off, not dead: its stage runs on until the node returns and hears
    that its allocation was stopped (client/allocrunner/alloc_runner.go handleAllocUpdate)."""
    import dataclasses
    import time

    winslow = winslow_on_nomad
    backend = winslow.context.backend
    backend.config = dataclasses.replace(backend.config, lost_after_seconds=3)
    nomad_standin.add_node("standin-2")
    winslow.apply_pipeline("""
name: long
stages:
  - name: detect
    command:
      - sh
      - -c
      - echo run $WINSLOW_RUN > who.txt; if [ $WINSLOW_RUN = 1 ]; then sleep 60; fi
    retry: {on_lost: 1}
""")
    winslow.create("long", "long", start=True)
    first = winslow.wait_until_running("long")
    assert first["node"] == "standin-1"

    nomad_standin.kill_node("standin-1", keep_running=True)
    winslow.engine.reconcile_once()
    assert winslow.show("long")["runs"][0]["state"] == "running"  # within the grace
    winslow.engine.run_until_idle(timeout=60)
    project = winslow.show("long")
    assert project["state"] == "succeeded", project
    lost, retry = project["runs"]
    assert (lost["state"], lost["attempt"], lost["node"]) == ("lost", 1, "standin-1")
    assert lost["reason"].startswith("node standin-1 stopped answering at "), lost["reason"]
    assert lost["reason"].endswith(" and did not answer within 3 s")
    assert (retry["state"], retry["attempt"], retry["node"]) == ("succeeded", 2, "standin-2")
    old_job, _ = backend.client.jobs.read(lost["job_id"])
    assert old_job["Stop"] is True

    # The node comes back: its allocation is told to stop, and the stage does not end there.
    nomad_standin.reconnect_node("standin-1")
    deadline = time.monotonic() + 60
    while True:
        [alloc] = backend.client.jobs.allocations(lost["job_id"])[0]
        states = alloc.get("TaskStates") or {}
        if states and all(s["State"] == "dead" for s in states.values()):
            break
        assert time.monotonic() < deadline, alloc
        time.sleep(0.2)
    assert "Killed" in [e["Type"] for e in states["main"]["Events"]]
    winslow.engine.run_until_idle(timeout=60)
    again = winslow.show("long")
    assert [(r["state"], r["node"]) for r in again["runs"]] == [
        ("lost", "standin-1"),
        ("succeeded", "standin-2"),
    ]
    assert again["state"] == "succeeded"
    workspace = read_workspace(winslow.context.objects, retry["workspace"])
    assert workspace["who.txt"] == f"run {retry['id']}\n".encode()


def test_running_job_purged_behind_winslows_back_is_lost_not_rerun(
    winslow_on_nomad: Harness,
) -> None:

    winslow = winslow_on_nomad
    winslow.apply_pipeline("""
name: purged
stages:
  - name: detect
    command: ["sh", "-c", "sleep 60"]
    retry: {on_lost: 0}
""")
    winslow.create("purged", "purged", start=True)
    run = winslow.wait_until_running("purged")
    winslow.context.backend.client.jobs.deregister(run["job_id"], purge=True)
    winslow.engine.run_until_idle(timeout=60)
    project = winslow.show("purged")
    assert project["state"] == "failed"
    assert [(r["state"], r["reason"]) for r in project["runs"]] == [
        ("lost", f"the backend no longer knows job {run['job_id']}")
    ]


def test_results_and_a_skipped_route_on_nomad(winslow_on_nomad: Harness) -> None:
    winslow = winslow_on_nomad
    winslow.apply_pipeline("""
name: routed
stages:
  - name: detect
    log_parsers: [{name: frames, pattern: 'frame (?P<frame>\\d+)'}]
    command: ["sh", "-c", "echo frame 1; echo frame 2; echo 'WINSLOW_RESULT: vehicles=0'"]
  - name: track
    when: results.detect.vehicles > 0
    command: ["sh", "-c", "echo tracking"]
""")
    winslow.create("routed", "routed", start=True)
    winslow.engine.run_until_idle(timeout=120)
    project = winslow.show("routed")
    assert project["state"] == "succeeded", project
    detect, track = project["runs"]
    assert detect["results"] == {"vehicles": 0}
    assert (track["state"], track["reason"]) == (
        "skipped",
        "condition `results.detect.vehicles > 0` is false (results.detect.vehicles = 0)",
    )
    series = winslow.api.get(f"/api/v1/projects/routed/runs/{detect['id']}/series").json()
    assert [p["values"] for p in series["series"][0]["points"]] == [{"frame": 1}, {"frame": 2}]


def test_run_that_ended_unwatched_and_was_collected_by_nomad_is_recorded_not_run_again(
    winslow_on_nomad: Harness, nomad_standin
) -> None:
    """Nomad garbage-collects a dead batch job after 4 h (``JobGCThreshold``); a run the
    engine submitted and then never saw start or end is then unknown to Nomad. The end
    record its stage-out left beside the log proves it ran and says how it ended, so it
    is recorded as ended rather than submitted again."""
    import time

    winslow = winslow_on_nomad
    winslow.apply_pipeline("""
name: unwatched
stages:
  - name: detect
    command: ["sh", "-c", "echo ran once"]
""")
    winslow.create("unwatched", "unwatched", start=True)
    winslow.engine.reconcile_once()  # submits the run; then the engine stops watching
    (run,) = winslow.show("unwatched")["runs"]
    backend = winslow.context.backend
    deadline = time.monotonic() + 60
    while (status := backend.status(run["job_id"])) is None or status.state.value != "succeeded":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    backend.client.jobs.deregister(run["job_id"], purge=True)  # what Nomad's GC does to it
    assert backend.status(run["job_id"]) is None

    winslow.engine.run_until_idle(timeout=60)
    project = winslow.show("unwatched")
    assert project["state"] == "succeeded", project
    (ended,) = project["runs"]
    assert (ended["state"], ended["exit_code"]) == ("succeeded", 0)
    assert ended["reason"] == "ended while Winslow was not watching; its job is gone from Nomad"
    assert ended["ended_at"] is not None
    registered = [
        e
        for e in nomad_standin.state.evals.values()
        if e["JobID"] == run["job_id"] and e["TriggeredBy"] == "job-register"
    ]
    assert len(registered) == 1  # submitted once, never again
    assert nomad_standin.state.job(backend.config.namespace, run["job_id"]) is None
    assert "ran once" in winslow.log("unwatched", ended["id"])


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, ("lost", None, "")),
        (dict(stage_started=True, exit_code=None), ("lost", None, "")),
        (
            dict(stage_started=False, exit_code=None),
            ("failed", None, "the stage never started (see its log); "),
        ),
        (dict(stage_started=True, exit_code=3), ("failed", 3, "exited with code 3; ")),
        (
            dict(stage_started=True, exit_code=124, exit_message="timed out after 5 s"),
            ("failed", 124, "timed out after 5 s; "),
        ),
        (
            dict(stage_started=True, exit_code=0, problems=("could not publish it",)),
            ("lost", 0, "stage-out failed: could not publish it; "),
        ),
        (dict(stage_started=True, exit_code=0), ("succeeded", 0, "")),
    ],
    ids=["log-only", "container", "never-started", "exit-3", "timeout", "stage-out", "success"],
)
def test_end_of_a_forgotten_run_comes_from_its_end_record(record, expected) -> None:
    """Without a record (a job of an older Winslow) or an exit status (a container stage:
    no other task of the allocation sees it) how the stage ended is unknown: lost."""
    from datetime import UTC, datetime

    from winslow.engine.reconcile import ArchivedEnd, forgotten_end
    from winslow.node.stagetools import EndRecord

    written = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    end = None
    if record is not None:
        fields = {"exit_message": None, "problems": (), **record}
        end = EndRecord(written_at=written, **fields)
    archived = ArchivedEnd(datetime(2026, 11, 25, 9, 1, tzinfo=UTC), b"a\nlast line\n", end)
    update = forgotten_end(archived, "Nomad")
    state, exit_code, prefix = expected
    base = "ended while Winslow was not watching; its job is gone from Nomad"
    assert (update.state.value, update.exit_code) == (state, exit_code)
    assert update.reason == prefix + base
    assert update.ended_at == (written if end is not None else archived.archived_at)
    assert update.log_tail == ("a", "last line")


LONG = """
name: long-nomadic
stages:
  - name: wait
    command: ["sh", "-c", "echo started; sleep 60"]
"""


def test_live_log_without_read_fs_says_why_instead_of_staying_empty(
    winslow_on_nomad: Harness, nomad_standin
) -> None:
    """Reading a live log takes ``read-fs`` (client/fs_endpoint.go ReadAt checks
    NamespaceCapabilityReadFS); a token without it must not make the log look empty: the
    log route answers 502 naming the capability, and the live stream sends ``refused``
    and ends instead of waiting for lines that can never come."""
    winslow = winslow_on_nomad
    winslow.apply_pipeline(LONG)
    winslow.create("no-read-fs", "long-nomadic", start=True)
    run = winslow.wait_until_running("no-read-fs")["id"]
    nomad_standin.denied_capabilities.add("read-fs")

    path = f"/api/v1/projects/no-read-fs/runs/{run}/logs"
    response = winslow.api.get(path)
    assert response.status_code == 502, response.text
    assert "read-fs" in response.json()["detail"]

    with winslow.api.stream("GET", path + "/stream") as stream:
        body = "".join(stream.iter_text())
    assert "event: refused" in body and "read-fs" in body
    assert "event: end" not in body
