"""Results, conditions, sweeps and redos with overrides, with real stages end to end.

Real local stages print ``WINSLOW_RESULT:`` lines and write files; the engine reads the
results when a run ends, decides ``when`` on them, and the API shows what a person sees.
"""

from __future__ import annotations

import pytest

from tests.fixtures.winslow import Harness
from tests.fixtures.workspaces import read_workspace

pytestmark = pytest.mark.slow

ROUTES = """
name: routes
variables:
  QUALITY: {default: high}
  VEHICLES: {required: true}
stages:
  - name: detect
    command: ["sh", "-c", "echo 'WINSLOW_RESULT: vehicles=${VEHICLES}'; echo frames > frames.txt"]
  - name: count
    needs: [detect]
    when: results.detect.vehicles > 0 and QUALITY == "high"
    command: ["sh", "-c", "echo counted > counts.txt"]
  - name: report
    needs: [count]
    command: ["sh", "-c", "cat counts.txt"]
  - name: archive
    needs: [detect]
    command: ["sh", "-c", "echo archived > archive.txt"]
"""


def by_stage(project: dict) -> dict[str, dict]:
    return {run["stage"]: run for run in project["runs"] if not run["superseded"]}


def test_a_false_condition_skips_the_stage_and_its_dependants_with_the_reason(
    winslow: Harness,
) -> None:
    winslow.apply_pipeline(ROUTES)
    winslow.create("empty-road", "routes", variables={"VEHICLES": "0"}, start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("empty-road")
    runs = by_stage(project)
    assert runs["detect"]["results"] == {"vehicles": 0}
    assert runs["count"]["state"] == "skipped"
    assert runs["count"]["reason"] == (
        'condition `results.detect.vehicles > 0 and QUALITY == "high"` is false '
        "(results.detect.vehicles = 0, QUALITY = 'high')"
    )
    assert runs["report"]["state"] == "skipped"
    assert runs["report"]["reason"] == "every stage it needs was skipped (count)"
    assert runs["archive"]["state"] == "succeeded"
    assert project["state"] == "succeeded"
    assert "skipped: count, report" in project["state_reason"]
    history = winslow.api.get("/api/v1/projects/empty-road/history").json()["data"]
    assert any("'count': skipped: condition" in event["message"] for event in history)

    winslow.create("busy-road", "routes", variables={"VEHICLES": "17"}, start=True)
    winslow.engine.run_until_idle()
    busy = by_stage(winslow.show("busy-road"))
    assert [busy[s]["state"] for s in ("count", "report")] == ["succeeded", "succeeded"]


SWEEP = """
name: sweep
stages:
  - name: prepare
    command: ["sh", "-c", "echo base > base.txt"]
  - name: train
    requirements: {cpus: 0.25}
    sweep:
      over:
        LR: [0.1, 0.01, 0.001]
        BATCH: {min: 8, max: 16, step: 8}
    command:
      - sh
      - -c
      - "sleep 1; echo $LR/$BATCH > run-$LR-$BATCH.txt; echo 'WINSLOW_RESULT: acc=0.'$BATCH"
  - name: pick
    when: results.train | map(attribute='acc') | max > 0.1
    command: ["sh", "-c", "ls run-*.txt | wc -l > picked.txt; cat base.txt >> picked.txt"]
"""


def test_a_3_by_2_sweep_makes_six_runs_and_the_next_stage_waits_for_all(
    winslow: Harness,
) -> None:
    winslow.apply_pipeline(SWEEP)
    winslow.create("lr-search", "sweep", start=True)
    winslow.engine.run_until_idle(timeout=120)
    project = winslow.show("lr-search")
    assert project["state"] == "succeeded", project["state_reason"]
    train = [run for run in project["runs"] if run["stage"] == "train"]
    assert sorted((r["combination"]["LR"], r["combination"]["BATCH"]) for r in train) == sorted(
        (lr, batch) for lr in ("0.1", "0.01", "0.001") for batch in ("8", "16")
    )
    for run in train:
        assert run["state"] == "succeeded"
        assert run["variables"]["LR"] == run["combination"]["LR"]
        assert run["results"] == {"acc": float("0." + run["combination"]["BATCH"])}
    # They ran in parallel, and the next stage started only after the last one ended.
    assert min(r["ended_at"] for r in train) > max(r["started_at"] for r in train)
    [pick] = [run for run in project["runs"] if run["stage"] == "pick"]
    assert pick["started_at"] >= max(r["ended_at"] for r in train)
    files = read_workspace(winslow.context.objects, pick["workspace"])
    assert files["picked.txt"] == b"6\nbase\n"  # every combination's workspace, layered


def test_a_shared_sweep_runs_in_one_workspace_one_combination_after_another(
    winslow: Harness,
) -> None:
    winslow.apply_pipeline("""
name: shared
stages:
  - name: sweep
    sweep:
      over: {STEP: {min: 1, max: 3}}
      workspace: shared
    command: ["sh", "-c", "echo ${STEP} >> steps.txt"]
  - name: after
    command: ["sh", "-c", "cat steps.txt"]
""")
    winslow.create("shared", "shared", start=True)
    winslow.engine.run_until_idle(timeout=120)
    project = winslow.show("shared")
    assert project["state"] == "succeeded", project["state_reason"]
    after = by_stage(project)["after"]
    assert read_workspace(winslow.context.objects, after["workspace"])["steps.txt"] == b"1\n2\n3\n"


def test_a_redo_with_overrides_changes_only_the_new_run(winslow: Harness) -> None:
    winslow.apply_pipeline("""
name: model
variables:
  MODEL: {default: yolo-s}
stages:
  - name: detect
    requirements: {cpus: 1, memory: 256M}
    command: ["sh", "-c", "echo model=${MODEL} > model.txt; echo using ${MODEL}"]
  - name: track
    command: ["sh", "-c", "cat model.txt"]
""")
    winslow.create("ulm", "model", start=True)
    winslow.engine.run_until_idle()
    first = winslow.show("ulm")
    original = by_stage(first)["detect"]

    winslow.command(
        "ulm",
        "resume",
        {
            "from_stage": "detect",
            "only": True,
            "overrides": {
                "variables": {"MODEL": "yolo-x"},
                "resources": {"cpus": 0.5, "memory": "300M"},
                "comment": "try the bigger model",
            },
        },
    )
    winslow.engine.run_until_idle()
    project = winslow.show("ulm")
    assert project["state"] == "paused"
    assert project["state_reason"] == "ran only stage 'detect' as asked; resume to go on"
    redo = project["runs"][-1]
    assert (redo["stage"], redo["state"]) == ("detect", "succeeded")
    assert redo["variables"]["MODEL"] == "yolo-x"
    assert (redo["cpus"], redo["memory_mb"]) == (0.5, 300)
    assert redo["overrides"]["comment"] == "try the bigger model"
    assert "stdout | using yolo-x" in winslow.log("ulm", redo["id"])
    # The earlier run is untouched: its values, resources, log and workspace.
    before = next(run for run in project["runs"] if run["id"] == original["id"])
    assert before | {"superseded": False} == original
    assert before["superseded"]
    assert "stdout | using yolo-s" in winslow.log("ulm", original["id"])
    old_files = read_workspace(winslow.context.objects, original["workspace"])
    assert old_files["model.txt"] == b"model=yolo-s\n"
    # The project keeps its own value; the override was for that run only.
    assert project["variables"].get("MODEL") is None and project["run_overrides"] == {}

    winslow.command("ulm", "resume")
    winslow.engine.run_until_idle()
    done = winslow.show("ulm")
    assert done["state"] == "succeeded"
    assert "stdout | model=yolo-x" in winslow.log("ulm", done["runs"][-1]["id"])

    # "Redo as that earlier run was": the first run's values come back.
    winslow.command("ulm", "resume", {"like_run": original["id"], "only": True})
    winslow.engine.run_until_idle()
    like = winslow.show("ulm")["runs"][-1]
    assert like["variables"]["MODEL"] == "yolo-s"
    assert (like["cpus"], like["memory_mb"]) == (original["cpus"], original["memory_mb"])
    assert like["overrides"]["like_run"] == original["id"]


def test_overrides_that_make_no_sense_are_refused_with_the_reason(winslow: Harness) -> None:
    winslow.apply_pipeline(ROUTES)
    winslow.create("bad", "routes", variables={"VEHICLES": "1"}, start=True)
    winslow.engine.run_until_idle()
    refused = winslow.api.post(
        "/api/v1/projects/bad/resume", json={"overrides": {"variables": {"X": "1"}}}
    )
    assert refused.status_code == 422
    assert "say which stage with from_stage" in refused.json()["detail"]
    bad_name = winslow.api.post(
        "/api/v1/projects/bad/resume",
        json={"from_stage": "count", "overrides": {"variables": {"1X": "1"}}},
    )
    assert bad_name.status_code == 422 and "not a valid variable name" in bad_name.text
    unknown_run = winslow.api.post("/api/v1/projects/bad/resume", json={"like_run": 999})
    assert unknown_run.status_code == 422 and "has no run 999" in unknown_run.text
    assert winslow.show("bad")["state"] == "succeeded"  # nothing changed
