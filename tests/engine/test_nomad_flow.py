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


def test_lost_node_makes_the_run_lost_and_the_retry_runs_elsewhere(
    winslow_on_nomad: Harness, nomad_standin
) -> None:
    import time

    winslow = winslow_on_nomad
    winslow.apply_pipeline("""
name: long
stages:
  - name: detect
    command: ["sh", "-c", "if [ $WINSLOW_RUN = 1 ]; then sleep 60; fi; echo finished"]
    retry: {on_lost: 1}
""")
    winslow.create("long", "long", start=True)
    winslow.wait_until_running("long")

    nomad_standin.kill_node("standin-1")
    winslow.engine.run_until_idle(timeout=60)
    lost, retry = winslow.show("long")["runs"]
    assert (lost["state"], lost["attempt"]) == ("lost", 1)
    assert "standin-1" in lost["reason"]
    assert (retry["state"], retry["attempt"]) == ("pending", 2)  # no node is left

    nomad_standin.add_node("standin-2")
    deadline = time.monotonic() + 60
    while winslow.show("long")["state"] != "succeeded":
        assert time.monotonic() < deadline, winslow.show("long")
        winslow.engine.run_until_idle(timeout=60)
        time.sleep(0.2)
    assert winslow.show("long")["runs"][1]["node"] == "standin-2"


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
