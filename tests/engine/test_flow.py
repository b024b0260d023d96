"""Projects driven through the API with real stages, real SeaweedFS and real SQLite.

Each test runs the engine until idle, then checks what a person would see: states,
runs, reasons, log lines, workspace files, history.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures.postgres import ON_BOTH_DATABASES
from tests.fixtures.winslow import Harness
from tests.fixtures.workspaces import read_workspace

pytestmark = pytest.mark.slow


GATED = """
name: gated
variables:
  GREETING: {default: hello}
stages:
  - name: prepare
    command: ["sh", "-c", "echo ${GREETING} > greeting.txt; echo prepared; echo warn >&2"]
  - name: review
    gate: true
    command: ["sh", "-c", "cat greeting.txt"]
  - name: finish
    command: ["sh", "-c", "cat greeting.txt > final.txt; echo done >> final.txt"]
"""

SLOW = """
name: slow
stages:
  - name: first
    command: ["sh", "-c", "sleep ${PAUSE_SECONDS}; echo first > first.txt"]
  - name: second
    command: ["sh", "-c", "echo second > second.txt"]
variables:
  PAUSE_SECONDS: {default: "1"}
"""


def run_states(project: dict) -> list[tuple[str, str]]:
    return [(r["stage"], r["state"]) for r in project["runs"]]


@ON_BOTH_DATABASES
def test_pipeline_end_to_end_through_gate(winslow: Harness) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("ulm-0603", "gated", labels=["demo"], start=True)
    winslow.engine.run_until_idle()

    waiting = winslow.show("ulm-0603")
    assert waiting["state"] == "awaiting_input"
    assert waiting["waiting_for"] == {"stage": "review", "gate": "review"}
    assert run_states(waiting) == [("prepare", "succeeded")]

    winslow.command("ulm-0603", "resume")
    winslow.engine.run_until_idle()
    done = winslow.show("ulm-0603")
    assert done["state"] == "succeeded"
    assert run_states(done) == [
        ("prepare", "succeeded"),
        ("review", "succeeded"),
        ("finish", "succeeded"),
    ]

    finish = done["runs"][-1]
    files = winslow.api.get(
        "/api/v1/projects/ulm-0603/workspace", params={"run": finish["id"]}
    ).json()["data"]
    assert {f["name"] for f in files} == {"greeting.txt", "final.txt"}
    url = winslow.api.get(
        "/api/v1/projects/ulm-0603/workspace/download",
        params={"run": finish["id"], "path": "final.txt"},
    ).json()["url"]
    import httpx

    assert httpx.get(url).text == "hello\ndone\n"

    prepare_log = winslow.log("ulm-0603", done["runs"][0]["id"])
    assert " stdout | prepared" in prepare_log
    assert " stderr | warn" in prepare_log
    assert done["runs"][0]["variables"]["GREETING"] == "hello"

    history = [
        e["kind"] for e in winslow.api.get("/api/v1/projects/ulm-0603/history").json()["data"]
    ]
    assert history[0] == "create" and "start" in history and "resume" in history


def test_variables_apply_to_later_stages_and_each_run_records_its_values(winslow: Harness) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("vars", "gated", start=True)
    winslow.engine.run_until_idle()
    response = winslow.api.patch(
        "/api/v1/projects/vars/variables", json={"set": {"GREETING": "servus"}}
    )
    assert response.status_code == 200
    winslow.command("vars", "resume", {"from_stage": "prepare"})
    winslow.engine.run_until_idle()
    project = winslow.show("vars")
    first, second = [r for r in project["runs"] if r["stage"] == "prepare"]
    assert first["variables"]["GREETING"] == "hello"
    assert second["variables"]["GREETING"] == "servus"
    assert first["superseded"] and not second["superseded"]


def test_missing_required_variable_waits_and_names_it(winslow: Harness) -> None:
    winslow.apply_pipeline("""
name: needs-video
variables:
  INPUT_VIDEO: {required: true, description: pool path of the video}
stages:
  - name: detect
    command: ["sh", "-c", "echo ${INPUT_VIDEO}"]
""")
    winslow.create("novideo", "needs-video", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("novideo")
    assert project["state"] == "awaiting_input"
    assert project["waiting_for"]["variables"] == ["INPUT_VIDEO"]
    assert project["runs"] == []

    winslow.api.patch(
        "/api/v1/projects/novideo/variables", json={"set": {"INPUT_VIDEO": "videos/a.mp4"}}
    )
    winslow.command("novideo", "resume")
    winslow.engine.run_until_idle()
    project = winslow.show("novideo")
    assert project["state"] == "succeeded"
    assert "videos/a.mp4" in winslow.log("novideo", project["runs"][0]["id"])


def test_pause_after_current_stage_then_resume(winslow: Harness) -> None:
    winslow.apply_pipeline(SLOW)
    winslow.create("pausing", "slow", start=True)
    winslow.engine.reconcile_once()
    assert winslow.command("pausing", "pause")["state"] == "pausing"
    winslow.engine.run_until_idle()

    paused = winslow.show("pausing")
    assert paused["state"] == "paused"
    assert run_states(paused) == [("first", "succeeded")]  # it finished; second never began

    winslow.command("pausing", "resume")
    winslow.engine.run_until_idle()
    assert run_states(winslow.show("pausing")) == [("first", "succeeded"), ("second", "succeeded")]


@ON_BOTH_DATABASES
def test_resume_from_earlier_stage_adds_runs_and_keeps_old_ones(winslow: Harness) -> None:
    winslow.apply_pipeline(SLOW)
    winslow.create("redo", "slow", variables={"PAUSE_SECONDS": "0"}, start=True)
    winslow.engine.run_until_idle()
    before = winslow.show("redo")
    assert before["state"] == "succeeded"

    winslow.command("redo", "resume", {"from_stage": "first"})
    winslow.engine.run_until_idle()
    after = winslow.show("redo")
    assert after["state"] == "succeeded"
    assert [(r["stage"], r["state"], r["superseded"]) for r in after["runs"]] == [
        ("first", "succeeded", True),
        ("second", "succeeded", True),
        ("first", "succeeded", False),
        ("second", "succeeded", False),
    ]
    assert after["runs"][0] == before["runs"][0] | {"superseded": True}


@ON_BOTH_DATABASES
def test_kill_stops_the_stage_and_pauses(winslow: Harness) -> None:
    winslow.apply_pipeline(SLOW)
    winslow.create("killme", "slow", variables={"PAUSE_SECONDS": "60"}, start=True)
    winslow.wait_until_running("killme")
    started = time.monotonic()
    winslow.command("killme", "kill")
    winslow.engine.run_until_idle(timeout=30)
    assert time.monotonic() - started < 20
    project = winslow.show("killme")
    assert project["state"] == "paused"
    assert run_states(project) == [("first", "cancelled")]
    assert "killed" in project["state_reason"]

    winslow.command("killme", "kill", expect=409)


@ON_BOTH_DATABASES
def test_failing_stage_shows_exit_code_and_last_log_lines(winslow: Harness) -> None:
    winslow.apply_pipeline("""
name: broken
stages:
  - name: detect
    command: ["sh", "-c", "echo loading model; echo 'CUDA out of memory' >&2; exit 3"]
  - name: track
    command: ["true"]
""")
    winslow.create("fails", "broken", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("fails")
    assert project["state"] == "failed"
    assert "exited with code 3" in project["state_reason"]
    (run,) = project["runs"]
    assert run["state"] == "failed" and run["exit_code"] == 3
    assert any(line.endswith("stderr | CUDA out of memory") for line in run["log_tail"])
    assert any(line.endswith("stdout | loading model") for line in run["log_tail"])


def test_stage_asking_for_more_gpus_than_exist_fails_at_once_with_reason(
    winslow: Harness,
) -> None:
    winslow.apply_pipeline("""
name: greedy
stages:
  - name: detect
    command: ["true"]
    requirements: {gpu: {count: 64}}
""")
    winslow.create("greedy", "greedy", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("greedy")
    # The local backend knows its whole machine: waiting would be for ever.
    assert project["state"] == "failed"
    (run,) = project["runs"]
    assert run["state"] == "failed"
    gpus = len(winslow.context.backend.nodes()[0].gpus)
    assert run["reason"].startswith(
        f"no node could ever run it: needs 64 GPUs; node local has {gpus}"
    )


@ON_BOTH_DATABASES
def test_concurrent_resumes_one_wins_the_rest_conflict(winslow: Harness) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("race", "gated", start=True)
    winslow.engine.run_until_idle()
    assert winslow.show("race")["state"] == "awaiting_input"

    barrier = threading.Barrier(8)

    def resume() -> int:
        barrier.wait()
        return winslow.api.post("/api/v1/projects/race/resume").status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(lambda _: resume(), range(8)))
    assert codes == [200] + [409] * 7
    winslow.engine.run_until_idle()
    project = winslow.show("race")
    assert project["state"] == "succeeded"
    assert [r["stage"] for r in project["runs"]] == ["prepare", "review", "finish"]


@ON_BOTH_DATABASES
def test_pause_and_resume_racing_leave_a_consistent_state(winslow: Harness) -> None:
    winslow.apply_pipeline(SLOW)
    winslow.create("pr", "slow", variables={"PAUSE_SECONDS": "2"}, start=True)
    winslow.engine.reconcile_once()
    barrier = threading.Barrier(2)

    def send(verb: str) -> int:
        barrier.wait()
        return winslow.api.post(f"/api/v1/projects/pr/{verb}").status_code

    with ThreadPoolExecutor(2) as pool:
        pause, resume = pool.map(send, ["pause", "resume"])
    state = winslow.show("pr")["state"]
    # Serialised: either pause came first (then resume cancelled it) or resume was refused.
    assert (pause, resume, state) in {(200, 200, "running"), (200, 409, "pausing")}
    winslow.engine.run_until_idle()
    assert winslow.show("pr")["state"] in {"succeeded", "paused"}


def test_projects_share_the_node_within_its_cpus(winslow: Harness) -> None:
    cpus = winslow.context.backend.nodes()[0].cpus
    winslow.apply_pipeline(f"""
name: hog
stages:
  - name: crunch
    command: ["sh", "-c", "date +%s.%N > start; sleep 0.5; date +%s.%N > end"]
    requirements: {{cpus: {cpus:g}}}
""")
    winslow.create("hog-a", "hog", start=True)
    winslow.create("hog-b", "hog", start=True)
    winslow.engine.reconcile_once()
    states = sorted(winslow.show(n)["runs"][0]["reason"] or "" for n in ("hog-a", "hog-b"))
    assert any(s.startswith("waiting for") for s in states)
    winslow.engine.run_until_idle()
    a, b = (winslow.show(n)["runs"][0] for n in ("hog-a", "hog-b"))
    assert a["state"] == b["state"] == "succeeded"
    first, second = sorted([a, b], key=lambda r: r["started_at"])
    assert second["started_at"] >= first["ended_at"]


def test_delete_refused_while_running_unless_kill(winslow: Harness) -> None:
    winslow.apply_pipeline(SLOW)
    winslow.create("gone", "slow", variables={"PAUSE_SECONDS": "60"}, start=True)
    winslow.engine.reconcile_once()
    refused = winslow.api.delete("/api/v1/projects/gone")
    assert refused.status_code == 409
    assert "delete with --kill" in refused.json()["detail"]
    assert winslow.api.delete("/api/v1/projects/gone", params={"kill": "true"}).status_code == 204
    assert winslow.api.get("/api/v1/projects/gone").status_code == 404


def test_change_pipeline_remaining_stages_follow_new_definition(winslow: Harness) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("switch", "gated", start=True)
    winslow.engine.run_until_idle()
    extended = (
        GATED
        + """  - name: archive
    command: ["sh", "-c", "test -f final.txt && echo archived"]
"""
    )
    winslow.apply_pipeline(extended)
    response = winslow.api.patch("/api/v1/projects/switch", json={"pipeline": "gated"})
    assert response.status_code == 200
    assert response.json()["stages"] == ["prepare", "review", "finish", "archive"]
    winslow.command("switch", "resume")
    winslow.engine.run_until_idle()
    project = winslow.show("switch")
    assert project["state"] == "succeeded"
    assert [r["stage"] for r in project["runs"]] == ["prepare", "review", "finish", "archive"]


def test_stage_sees_winslow_names_in_its_command_and_env(winslow: Harness) -> None:
    winslow.apply_pipeline("""
name: names
stages:
  - name: show
    command: ["sh", "-c", "echo ws=${WINSLOW_WORKSPACE} pwd=$(pwd) run=${WINSLOW_RUN} p=$PROJ"]
    env: {PROJ: "${WINSLOW_PROJECT}/${WINSLOW_STAGE}", LITERAL: "$${NOT_A_VARIABLE}"}
""")
    winslow.create("names", "names", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("names")
    assert project["state"] == "succeeded"
    run = project["runs"][0]
    line = next(x for x in winslow.log("names", run["id"]).splitlines() if "stdout | ws=" in x)
    ws = line.split("ws=")[1].split()[0]
    assert line.endswith(f"ws={ws} pwd={ws} run={run['id']} p=names/show")


def test_failed_stage_is_retried_by_its_policy_and_attempts_are_kept(
    winslow: Harness, tmp_path
) -> None:
    marker = tmp_path / "tries"
    winslow.apply_pipeline(f"""
name: flaky
stages:
  - name: detect
    command: ["sh", "-c", "echo x >> {marker}; test $(wc -l < {marker}) -ge 2"]
    retry: {{on_failure: 2}}
""")
    winslow.create("flaky", "flaky", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("flaky")
    assert project["state"] == "succeeded"
    assert [(r["attempt"], r["state"], r["exit_code"]) for r in project["runs"]] == [
        (1, "failed", 1),
        (2, "succeeded", 0),
    ]


def test_lost_stage_is_retried_and_says_why(winslow: Harness, tmp_path) -> None:
    import json
    import os
    import signal

    winslow.apply_pipeline("""
name: fragile
stages:
  - name: detect
    command: ["sh", "-c", "if [ $WINSLOW_RUN = 1 ]; then sleep 60; fi; echo done"]
""")
    winslow.create("fragile", "fragile", start=True)
    winslow.engine.reconcile_once()
    job = winslow.show("fragile")["runs"][0]["job_id"]
    runner_file = winslow.data_dir / "local" / "jobs" / job / "runner.json"
    deadline = time.monotonic() + 20
    while not runner_file.exists():
        assert time.monotonic() < deadline, "runner never started"
        time.sleep(0.05)
    # The machinery under the stage vanishes, as when a node dies.
    os.kill(json.loads(runner_file.read_text())["pid"], signal.SIGKILL)
    winslow.engine.run_until_idle()
    project = winslow.show("fragile")
    assert project["state"] == "succeeded"
    lost, retried = project["runs"]
    assert (lost["state"], lost["attempt"]) == ("lost", 1)
    assert "vanished without recording an exit status" in lost["reason"]
    assert (retried["state"], retried["attempt"]) == ("succeeded", 2)


def test_independent_branches_overlap_and_the_join_waits_for_both(winslow: Harness) -> None:
    winslow.apply_pipeline("""
name: branches
stages:
  - name: detect
    command: ["sh", "-c", "echo frames > frames.txt"]
  - name: track
    needs: [detect]
    command: ["sh", "-c", "sleep 1; echo tracks > tracks.txt"]
  - name: count
    needs: [detect]
    command: ["sh", "-c", "sleep 1; echo counts > counts.txt"]
  - name: report
    needs: [track, count]
    command: ["sh", "-c", "cat frames.txt tracks.txt counts.txt > report.txt"]
""")
    winslow.create("branches", "branches", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("branches")
    assert project["state"] == "succeeded"
    runs = {r["stage"]: r for r in project["runs"]}
    track, count, report = runs["track"], runs["count"], runs["report"]
    assert track["started_at"] < count["ended_at"] and count["started_at"] < track["ended_at"]
    assert report["started_at"] >= max(track["ended_at"], count["ended_at"])
    report_file = read_workspace(winslow.context.objects, report["workspace"])["report.txt"]
    assert report_file == b"frames\ntracks\ncounts\n"


def test_confirmation_once_and_a_stages_own_required_variable(winslow: Harness) -> None:
    winslow.apply_pipeline("""
name: confirm-once
stages:
  - name: prepare
    command: ["sh", "-c", "echo prepared"]
  - name: review
    confirmation: once
    required_variables: [REVIEWER]
    command: ["sh", "-c", "echo reviewed by $REVIEWER"]
""")
    winslow.create("once", "confirm-once", start=True)
    winslow.engine.run_until_idle()
    waiting = winslow.show("once")
    assert waiting["state"] == "awaiting_input"
    assert waiting["waiting_for"] == {"stage": "review", "variables": ["REVIEWER"]}

    winslow.api.patch("/api/v1/projects/once/variables", json={"set": {"REVIEWER": "ana"}})
    winslow.command("once", "resume")
    winslow.engine.run_until_idle()
    asked = winslow.show("once")  # the first time it would start, a person says go
    assert (asked["state"], asked["waiting_for"]) == (
        "awaiting_input",
        {"stage": "review", "gate": "review"},
    )
    winslow.command("once", "resume")
    winslow.engine.run_until_idle()
    done = winslow.show("once")
    assert done["state"] == "succeeded"
    assert "stdout | reviewed by ana" in winslow.log("once", done["runs"][-1]["id"])

    # Redone from the start, it no longer asks.
    winslow.command("once", "resume", {"from_stage": "prepare"})
    winslow.engine.run_until_idle()
    again = winslow.show("once")
    assert again["state"] == "succeeded"
    assert run_states(again)[-2:] == [("prepare", "succeeded"), ("review", "succeeded")]
