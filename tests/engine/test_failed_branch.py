"""A failed branch does not hide: the project says so at once while its other branches go
on, and a stage no node could ever hold fails instead of waiting for ever.

Real stages (host processes of the local backend, or jobs of the Nomad stand-in), real
SeaweedFS and real SQLite; the engine runs until idle, never "for a while".
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fixtures.winslow import Harness

pytestmark = pytest.mark.slow

BRANCHES = """
name: branches
variables:
  GO_ON: {required: true}
stages:
  - name: prepare
    command: ["true"]
  - name: report
    needs: [prepare]
    command: ["sh", "-c", "echo 'no template' >&2; exit 2"]
  - name: infer
    needs: [prepare]
    command: ["sh", "-c", "while [ ! -f ${GO_ON} ]; do sleep 0.1; done; echo inferred"]
  - name: publish
    needs: [infer]
    command: ["true"]
  - name: summary
    needs: [report]
    command: ["true"]
"""


def _reconcile_until(winslow: Harness, project: str, state: str) -> dict:
    """Reconcile round by round until ``project`` is in ``state``; return it."""
    deadline = time.monotonic() + 60
    while (shown := winslow.show(project))["state"] != state:
        assert time.monotonic() < deadline, f"{project} never became {state}: {shown}"
        winslow.engine.reconcile_once()
        time.sleep(0.1)
    return shown


def test_failed_branch_shows_at_once_while_the_other_branch_finishes(
    winslow: Harness, tmp_path: Path
) -> None:
    go_on = tmp_path / "go-on"
    winslow.apply_pipeline(BRANCHES)
    winslow.create("two", "branches", variables={"GO_ON": str(go_on)}, start=True)

    failing = _reconcile_until(winslow, "two", "failing")
    runs = {run["stage"]: run for run in failing["runs"]}
    assert runs["report"]["state"] == "failed" and runs["report"]["exit_code"] == 2
    assert runs["infer"]["state"] in ("pending", "running")  # the other branch goes on
    assert failing["state_reason"].startswith(f"stage 'report' (run {runs['report']['id']}) failed")
    assert "the project ends failed once stage 'infer' has ended" in (failing["state_reason"])

    go_on.touch()
    winslow.engine.run_until_idle()
    done = winslow.show("two")
    assert done["state"] == "failed"
    assert done["state_reason"].startswith(f"stage 'report' (run {runs['report']['id']}) failed")
    states = {run["stage"]: run["state"] for run in done["runs"]}
    # The independent branch ran to its end; what needs the failed stage never started.
    assert states == {
        "prepare": "succeeded",
        "report": "failed",
        "infer": "succeeded",
        "publish": "succeeded",
    }
    history = winslow.api.get("/api/v1/projects/two/history").json()["data"]
    moves = [e["message"] for e in history if "failing" in e["message"]]
    assert moves, [e["message"] for e in history]


def test_resume_of_a_failing_project_runs_the_failed_stage_again(
    winslow: Harness, tmp_path: Path
) -> None:
    go_on = tmp_path / "go-on"
    winslow.apply_pipeline(BRANCHES)
    winslow.create("again", "branches", variables={"GO_ON": str(go_on)}, start=True)
    _reconcile_until(winslow, "again", "failing")
    resumed = winslow.command("again", "resume")
    assert resumed["state"] == "running"
    # The failed stage fails again; the project is failing again, with a new reason.
    failing = _reconcile_until(winslow, "again", "failing")
    reports = [run for run in failing["runs"] if run["stage"] == "report"]
    assert len(reports) == 2 and reports[0]["superseded"]
    assert f"(run {reports[1]['id']}) failed" in failing["state_reason"]
    go_on.touch()
    winslow.engine.run_until_idle()
    assert winslow.show("again")["state"] == "failed"


def test_stage_needing_a_gpu_this_machine_lacks_fails_at_once(winslow: Harness) -> None:
    winslow.apply_pipeline("""
name: greedy
stages:
  - name: prepare
    command: ["true"]
  - name: report
    needs: [prepare]
    command: ["true"]
  - name: infer
    needs: [prepare]
    command: ["true"]
    requirements: {gpu: {count: 1, model: "H100-that-is-not-here"}}
""")
    winslow.create("greedy", "greedy", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("greedy")
    assert project["state"] == "failed"
    infer = next(run for run in project["runs"] if run["stage"] == "infer")
    assert infer["state"] == "failed"
    assert infer["reason"].startswith(
        "no node could ever run it: needs 1 GPU matching 'H100-that-is-not-here'; node local has 0"
    )
    assert (
        f"stage 'infer' (run {infer['id']}) failed: no node could ever run it"
        in (project["state_reason"])
    )
    report = next(run for run in project["runs"] if run["stage"] == "report")
    assert report["state"] == "succeeded"


def test_stage_asking_for_more_cpus_than_free_still_waits(winslow: Harness) -> None:
    cpus = winslow.context.backend.nodes()[0].cpus
    winslow.apply_pipeline(f"""
name: crowded
stages:
  - name: a
    needs: []
    command: ["sh", "-c", "sleep 1"]
    requirements: {{cpus: {cpus:g}}}
  - name: b
    needs: []
    command: ["true"]
    requirements: {{cpus: {cpus:g}}}
""")
    winslow.create("crowded", "crowded", start=True)
    winslow.engine.run_until_idle()
    # The machine could hold each alone: the second waited for the first, nothing failed.
    project = winslow.show("crowded")
    assert project["state"] == "succeeded", project


def test_never_placeable_stage_on_nomad_fails_after_the_placement_timeout(
    winslow_on_nomad: Harness,
) -> None:
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
    # Within the placement timeout (10 min by default) a node may still join: it waits.
    assert run["state"] == "pending"
    assert "devices" in (run["reason"] or ""), run

    winslow.engine.placement_timeout = 1
    time.sleep(1.1)
    winslow.engine.run_until_idle(timeout=60)
    project = winslow.show("greedy")
    (run,) = project["runs"]
    assert run["state"] == "failed"
    assert run["reason"].startswith("no node could ever run it: needs 2 GPUs matching 'A100'")
    assert "(waited 1 s; Nomad: no node can place it:" in run["reason"]
    assert project["state"] == "failed"
    job = winslow.context.backend.status(run["job_id"])
    assert job is None or job.state.value == "cancelled"  # Nomad will not place it later


def test_nomad_run_waiting_for_a_gpu_runs_when_a_node_with_one_joins(
    winslow_on_nomad: Harness, nomad_standin
) -> None:
    winslow = winslow_on_nomad
    winslow.apply_pipeline("""
name: patient
stages:
  - name: detect
    command: ["true"]
    requirements: {gpu: {count: 1, model: "V100"}}
""")
    winslow.create("patient", "patient", start=True)
    winslow.engine.run_until_idle(timeout=60)
    assert winslow.show("patient")["runs"][0]["state"] == "pending"
    nomad_standin.add_node("gpu-1", cpu_mhz=4000, gpus=[("Tesla V100", 16384)])
    # Past the timeout by now, but a node that could hold it is known: it is not failed.
    winslow.engine.placement_timeout = 1
    time.sleep(1.1)
    winslow.engine.run_until_idle(timeout=60)
    project = winslow.show("patient")
    assert project["runs"][0]["state"] == "succeeded", project
    assert project["runs"][0]["node"] == "gpu-1"
    assert project["state"] == "succeeded"
