"""Results and log-parser series of real stages: collected when a run ends, shown through
the API as JSON and CSV, live while a run runs, and side by side for the runs of a stage."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime

import pytest

from tests.fixtures.winslow import Harness
from winslow.engine.outputs import collect_outputs
from winslow.pipeline.model import Pipeline
from winslow.storage.keys import series_key
from winslow.storage.objects import ObjectStore

pytestmark = pytest.mark.slow

TRAINS = """
name: {name}
stages:
  - name: train
    command:
      - sh
      - -c
      - |
        echo 'epoch=1 loss=0.9 acc=0.5'
        sleep 0.3
        echo 'epoch=2 loss=0.7 acc=0.6' >&2
        sleep 0.3
        echo 'epoch=3 loss=0.5 acc=n/a'
        echo 'WINSLOW_RESULT: vehicles=42'
        echo 'WINSLOW_RESULT: camera=north'
        cd "$WINSLOW_WORKSPACE"
        printf '{{"mAP": 0.61, "camera": "south", "boxes": [1]}}' > results.json
        {then}
    log_parsers:
      - name: train
        pattern: 'epoch=(?P<epoch>\\d+) loss=(?P<loss>[0-9.]+) acc=(?P<acc>\\S+)'
      - name: loss
        pattern: 'loss=(?P<loss>[0-9.]+)'
  - name: report
    command: ["sh", "-c", "echo 'epoch=9 loss=0.1 acc=1'"]
"""

TRAIN_POINTS = [
    {"epoch": 1.0, "loss": 0.9, "acc": 0.5},
    {"epoch": 2.0, "loss": 0.7, "acc": 0.6},
    {"epoch": 3.0, "loss": 0.5},  # "n/a" is no number
]


def get(winslow: Harness, path: str, expect: int = 200) -> dict:
    response = winslow.api.get(f"/api/v1/projects/{path}")
    assert response.status_code == expect, response.text
    return response.json()


def trained(winslow: Harness, name: str) -> dict:
    """A project whose two stages ran to the end; returns its ``train`` run."""
    winslow.apply_pipeline(TRAINS.format(name=name, then="echo done"))
    winslow.create(name, name, start=True)
    winslow.engine.run_until_idle()
    project = winslow.show(name)
    assert project["state"] == "succeeded", project
    return next(run for run in project["runs"] if run["stage"] == "train")


def wait_for_object(store: ObjectStore, key: str, timeout: float = 30) -> None:
    """The runner archives a log just after it records the run's end."""
    deadline = time.monotonic() + timeout
    while not store.exists(key):
        assert time.monotonic() < deadline, f"{key} never appeared"
        time.sleep(0.1)


def without_times(series: list[dict]) -> list[dict]:
    return [s | {"points": [p["values"] for p in s["points"]]} for s in series]


def test_collect_outputs_reads_results_and_stores_series_of_a_real_run(
    winslow: Harness, object_store: ObjectStore
) -> None:
    run_id = trained(winslow, "collect")["id"]
    project = winslow.context.store.get_project("collect")
    run = winslow.context.store.get_run(project.id, run_id)
    wait_for_object(object_store, run.log_key)
    object_store.delete(series_key(project.id, run.id))  # what the engine may have stored
    stage = Pipeline.model_validate(project.pipeline).stage("train")

    results = collect_outputs(object_store, run, stage)

    # results.json wins over the printed camera; its nested boxes are no result.
    assert results == {"vehicles": 42, "camera": "south", "mAP": 0.61}
    stored = json.loads(object_store.get_bytes(series_key(project.id, run.id)))
    assert [s["name"] for s in stored["series"]] == ["train", "loss"]
    assert [p["values"] for p in stored["series"][0]["points"]] == TRAIN_POINTS


def test_collect_outputs_without_log_or_own_results_returns_what_it_has(
    winslow: Harness, object_store: ObjectStore
) -> None:
    from dataclasses import replace

    run_id = trained(winslow, "gone")["id"]
    project = winslow.context.store.get_project("gone")
    run = winslow.context.store.get_run(project.id, run_id)
    stage = Pipeline.model_validate(project.pipeline).stage("train")
    lost = replace(run, id=run.id + 1000, log_key="logs/gone/nothing.log", workspace_prefix="")
    assert collect_outputs(object_store, lost, stage) == {}
    assert not object_store.exists(series_key(project.id, lost.id))  # nothing half-read stored
    # The next stage carried train's results.json over unchanged: it reported nothing.
    report = next(r for r in winslow.context.store.runs(project.id) if r.stage == "report")
    wait_for_object(object_store, report.log_key)
    report_stage = Pipeline.model_validate(project.pipeline).stage("report")
    started_from = [run.workspace_prefix]
    assert collect_outputs(object_store, report, report_stage, started_from=started_from) == {}


# Lines of stdout and stderr are stamped as the runner reads them; the sleeps keep the
# epochs in the order printed.


def test_series_of_an_ended_run_as_json_and_csv(winslow: Harness) -> None:
    run = trained(winslow, "ended")
    body = get(winslow, f"ended/runs/{run['id']}/series")
    assert body | {"series": None} == {
        "run": run["id"],
        "stage": "train",
        "combination": {},
        "state": "succeeded",
        "live": False,
        "series": None,
    }
    assert without_times(body["series"]) == [
        {"name": "train", "fields": ["epoch", "loss", "acc"], "truncated": False,
         "points": TRAIN_POINTS},
        {"name": "loss", "fields": ["loss"], "truncated": False,
         "points": [{"loss": 0.9}, {"loss": 0.7}, {"loss": 0.5}]},
    ]  # fmt: skip
    times = [datetime.fromisoformat(p["at"]) for p in body["series"][0]["points"]]
    assert times == sorted(times)
    assert times[0] >= datetime.fromisoformat(run["started_at"])

    response = winslow.api.get(f"/api/v1/projects/ended/runs/{run['id']}/series.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="ended-train-run{run["id"]}-series.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["run", "stage", "series", "at", "field", "value"]
    assert [r[2:3] + r[4:] for r in rows[1:]] == [
        ["train", "epoch", "1"], ["train", "loss", "0.9"], ["train", "acc", "0.5"],
        ["train", "epoch", "2"], ["train", "loss", "0.7"], ["train", "acc", "0.6"],
        ["train", "epoch", "3"], ["train", "loss", "0.5"],
        ["loss", "loss", "0.9"], ["loss", "loss", "0.7"], ["loss", "loss", "0.5"],
    ]  # fmt: skip
    assert {r[0] for r in rows[1:]} == {str(run["id"])} and {r[1] for r in rows[1:]} == {"train"}
    assert datetime.fromisoformat(rows[1][3]) == times[0]


def test_results_a_stage_reports_show_on_its_run(winslow: Harness) -> None:
    """Needs the engine to call ``collect_outputs`` once the run's log is archived (or with
    the backend's copy as ``log_chunks``), passing ``started_from``, and ``results`` on
    the API's runs."""
    run = trained(winslow, "results")
    assert run["results"] == {"vehicles": 42, "camera": "south", "mAP": 0.61}
    report = next(r for r in winslow.show("results")["runs"] if r["stage"] == "report")
    assert report["results"] == {}  # train's results.json, carried over, is not report's


def test_a_stage_without_parsers_has_no_series(winslow: Harness) -> None:
    trained(winslow, "noparse")
    report = next(r for r in winslow.show("noparse")["runs"] if r["stage"] == "report")
    assert get(winslow, f"noparse/runs/{report['id']}/series")["series"] == []
    response = winslow.api.get(f"/api/v1/projects/noparse/runs/{report['id']}/series.csv")
    assert response.text == "run,stage,series,at,field,value\n"
    get(winslow, "noparse/runs/999/series", expect=404)


def test_series_of_a_running_run_come_from_its_live_log(winslow: Harness) -> None:
    winslow.apply_pipeline(TRAINS.format(name="live", then="sleep 60"))
    winslow.create("live", "live", start=True)
    run = winslow.wait_until_running("live")
    deadline = time.monotonic() + 30
    while len((seen := get(winslow, f"live/runs/{run['id']}/series"))["series"][0]["points"]) < 3:
        assert time.monotonic() < deadline, f"the stage's epochs never showed: {seen}"
        time.sleep(0.2)
    assert seen["live"] is True and seen["state"] == "running"
    assert without_times(seen["series"])[0]["points"] == TRAIN_POINTS
    winslow.command("live", "kill")
    winslow.engine.run_until_idle()
    ended = get(winslow, f"live/runs/{run['id']}/series")
    assert ended["live"] is False and ended["state"] == "cancelled"
    assert without_times(ended["series"])[0]["points"] == TRAIN_POINTS  # kept after the end


def test_runs_of_one_stage_side_by_side(winslow: Harness) -> None:
    first = trained(winslow, "compare")
    winslow.command("compare", "resume", {"from_stage": "train"})
    winslow.engine.run_until_idle()
    runs = winslow.show("compare")["runs"]
    second = [r for r in runs if r["stage"] == "train"][-1]
    report = [r for r in runs if r["stage"] == "report"][-1]
    assert second["id"] != first["id"]

    latest = get(winslow, "compare/stages/train/series")
    assert latest["stage"] == "train"
    assert [r["run"] for r in latest["runs"]] == [first["id"], second["id"]], [
        (r["id"], r["stage"], r["attempt"], r["state"], r["reason"]) for r in runs
    ]
    for one in latest["runs"]:
        assert one["stage"] == "train" and one["state"] == "succeeded"
        assert without_times(one["series"])[0]["points"] == TRAIN_POINTS

    picked = get(winslow, f"compare/stages/train/series?runs={second['id']},{first['id']}")
    assert [r["run"] for r in picked["runs"]] == [second["id"], first["id"]]
    alone = get(winslow, f"compare/stages/train/series?runs={first['id']},{first['id']}")
    assert [r["run"] for r in alone["runs"]] == [first["id"]]  # named twice, shown once

    wrong = get(winslow, f"compare/stages/train/series?runs={report['id']}", expect=404)
    assert wrong["detail"] == (
        f"Run {report['id']} of project 'compare' is a run of stage 'report', not 'train'; "
        "leave it out, or compare the runs of 'report'."
    )
    assert "has no run 999" in get(winslow, "compare/stages/train/series?runs=999", 404)["detail"]
    assert "no stage 'nope'" in get(winslow, "compare/stages/nope/series", 404)["detail"]
    assert get(winslow, "compare/stages/train/series?runs=1,x", 422)["detail"]
    reports = get(winslow, "compare/stages/report/series")["runs"]
    assert len(reports) == 2 and all(r["series"] == [] for r in reports)  # it has no parsers


def test_runs_of_a_stage_gone_from_the_pipeline_keep_their_series(winslow: Harness) -> None:
    run = trained(winslow, "moved")
    before = get(winslow, f"moved/runs/{run['id']}/series")["series"]
    winslow.apply_pipeline(
        'name: moved\nstages:\n  - name: report\n    command: ["sh", "-c", "echo hi"]\n'
    )
    response = winslow.api.patch("/api/v1/projects/moved", json={"pipeline": "moved"})
    assert response.status_code == 200, response.text

    assert get(winslow, f"moved/runs/{run['id']}/series")["series"] == before
    gone = get(winslow, "moved/stages/train/series")  # its runs are still there to compare
    assert [r["run"] for r in gone["runs"]] == [run["id"]]
    assert gone["runs"][0]["series"] == before


def test_deleting_a_project_deletes_its_stored_series(
    winslow: Harness, object_store: ObjectStore
) -> None:
    run = trained(winslow, "bye")
    get(winslow, f"bye/runs/{run['id']}/series")  # stored by now, by the engine or this read
    key = series_key(winslow.context.store.get_project("bye").id, run["id"])
    assert object_store.exists(key)
    assert winslow.api.delete("/api/v1/projects/bye").status_code == 204
    winslow.engine.run_until_idle()
    assert not object_store.exists(key)
