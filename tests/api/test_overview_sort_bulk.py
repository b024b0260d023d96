"""The overview sorted on the server by any column, its "waiting for a person" count
following the filters, where each project's stages run, and the bulk pause, resume and
kill that answers for each project."""

from __future__ import annotations

import pytest

from tests.fixtures.winslow import Harness
from winslow.api.routes import console
from winslow.core import commands
from winslow.core.states import ProjectState
from winslow.engine.transitions import apply_command, move_project

TWO_STAGES = """name: two
stages:
  - name: a
    command: ["true"]
  - name: b
    gate: true
    command: ["true"]
"""


def names(body: dict) -> list[str]:
    return [row["name"] for row in body["data"]]


def test_sorting_by_each_column_is_done_on_the_server_across_pages(
    winslow: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    winslow.apply_pipeline(TWO_STAGES)
    for name in ("done", "half", "none"):
        winslow.create(name, "two")
    winslow.command("done", "start")
    winslow.command("half", "start")
    winslow.engine.run_until_idle()
    assert winslow.show("half")["state"] == "awaiting_input"  # a done, b at its gate
    winslow.command("done", "resume")
    winslow.engine.run_until_idle()
    assert winslow.show("done")["state"] == "succeeded"

    def sorted_by(sort: str, order: str = "asc", **more: object) -> list[str]:
        params = {"sort": sort, "order": order, **more}
        response = winslow.api.get("/api/v1/overview", params=params)
        assert response.status_code == 200, response.text
        return names(response.json())

    assert sorted_by("progress") == ["none", "half", "done"]
    assert sorted_by("progress", "desc") == ["done", "half", "none"]
    assert sorted_by("name", "desc") == ["none", "half", "done"]
    # A person's turn first, the finished last.
    assert sorted_by("state") == ["half", "none", "done"]
    # The last change first: "done" changed state last, "none" never did.
    assert sorted_by("in_state") == ["done", "half", "none"]
    assert sorted_by("updated", "desc")[0] == "done"
    # Sorting is of all projects, not of one page: the page after the first holds the rest.
    assert sorted_by("progress", "desc", limit=1, skip=1) == ["half"]
    assert sorted_by("progress", "desc", limit=2, skip=2) == ["none"]

    # Past a few hundred matching projects, one pass over every project's done stages
    # (kept a few seconds) orders them the same.
    monkeypatch.setattr(console, "PROGRESS_BY_ID_UP_TO", 1)
    assert sorted_by("progress", "desc") == ["done", "half", "none"]

    refused = winslow.api.get("/api/v1/overview", params={"sort": "colour"})
    assert refused.status_code == 422 and "sort" in refused.json()["detail"]


def test_the_waiting_count_follows_the_filters_and_counts_only_waiting(
    winslow: Harness,
) -> None:
    store = winslow.context.store
    pipeline = {"name": "p", "stages": [{"name": "a", "command": ["true"]}]}
    for name, labels in (("quiet", ("night",)), ("broken", ("day",)), ("going", ("day",))):
        store.create_project(
            name=name, pipeline_name="p", pipeline=pipeline, labels=labels, variables={}, actor="t"
        )
    for name in ("broken", "going"):
        apply_command(store, name, lambda project, _p, _r: commands.start(project), "t")
    with store.project_transaction("broken") as tx:
        move_project(tx, ProjectState.FAILED, reason="boom", actor="t")

    everything = winslow.api.get("/api/v1/overview").json()
    assert everything["needs_person"] == 1  # failed waits; running and idle do not
    idle = winslow.api.get("/api/v1/overview", params={"state": "idle"}).json()
    assert (names(idle), idle["needs_person"]) == (["quiet"], 0)
    night = winslow.api.get("/api/v1/overview", params={"label": "night"}).json()
    assert (names(night), night["needs_person"]) == (["quiet"], 0)
    day = winslow.api.get("/api/v1/overview", params={"label": "day"}).json()
    assert day["needs_person"] == 1
    assert {r["name"]: r["needs_person"] for r in day["data"]} == {"broken": True, "going": False}
    # Sorting alone filters nothing: the count stays that of every project.
    assert winslow.api.get("/api/v1/overview", params={"sort": "name"}).json()["needs_person"] == 1


def test_each_row_says_where_its_running_stages_run(winslow: Harness) -> None:
    winslow.apply_pipeline('name: long\nstages:\n  - name: work\n    command: ["sleep", "30"]\n')
    winslow.create("busy", "long", start=True)
    winslow.create("still", "long")
    run = winslow.wait_until_running("busy")
    try:
        rows = {r["name"]: r for r in winslow.api.get("/api/v1/overview").json()["data"]}
        assert rows["busy"]["placements"] == [
            {
                "run": run["id"],
                "stage": "work",
                "node": run["node"],
                "gpus": run["gpu_indices"],
                "gpu_count": len(run["gpu_indices"]),
            }
        ]
        assert run["node"]  # the local backend names its node
        assert rows["still"]["placements"] == []
    finally:
        winslow.command("busy", "kill")
        winslow.engine.run_until_idle()


def test_bulk_pause_steers_each_project_and_reports_each_refusal(winslow: Harness) -> None:
    winslow.apply_pipeline(TWO_STAGES)
    for name in ("one", "two", "idle"):
        winslow.create(name, "two")
    winslow.command("one", "start")
    winslow.command("two", "start")

    response = winslow.api.post(
        "/api/v1/projects/bulk",
        json={"action": "pause", "projects": ["one", "idle", "ghost", "two", "one"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["action"], body["succeeded"], body["refused"]) == ("pause", 2, 2)
    results = {r["project"]: r for r in body["data"]}
    assert [r["project"] for r in body["data"]] == ["one", "idle", "ghost", "two"]
    assert results["one"] == {
        "project": "one",
        "ok": True,
        "status": 200,
        "state": "pausing",
        "detail": None,
        "code": None,
    }
    assert results["two"]["ok"] and results["two"]["state"] == "pausing"
    assert results["idle"]["status"] == 409 and results["idle"]["code"] == "conflict"
    assert results["idle"]["detail"] == (
        "Project 'idle' is idle; only a running project can pause."
    )
    assert results["ghost"]["status"] == 404 and "ghost" in results["ghost"]["detail"]
    # What was refused is unchanged; what succeeded shows in the project itself.
    assert winslow.show("idle")["state"] == "idle"
    assert winslow.show("one")["state"] == "pausing"

    winslow.engine.run_until_idle()
    assert winslow.show("one")["state"] == "paused"
    resumed = winslow.api.post(
        "/api/v1/projects/bulk", json={"action": "resume", "projects": ["one", "ghost"]}
    ).json()
    assert [(r["project"], r["status"]) for r in resumed["data"]] == [("one", 200), ("ghost", 404)]
    killed = winslow.api.post(
        "/api/v1/projects/bulk", json={"action": "kill", "projects": ["idle"]}
    ).json()
    assert killed["data"][0]["status"] == 409
    assert killed["data"][0]["detail"] == "Project 'idle' runs no stage now; nothing to kill."


def test_a_bulk_request_is_checked_whole_before_anything_is_steered(winslow: Harness) -> None:
    for body in (
        {"action": "explode", "projects": ["a"]},
        {"action": "pause", "projects": []},
        {"action": "pause", "projects": ["a"] * 501},
        {"action": "pause"},
    ):
        response = winslow.api.post("/api/v1/projects/bulk", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"]


def test_in_state_sorting_uses_when_the_state_changed(winslow: Harness) -> None:
    store = winslow.context.store
    pipeline = {"name": "p", "stages": [{"name": "a", "command": ["true"]}]}
    for name in ("old", "new"):
        store.create_project(
            name=name, pipeline_name="p", pipeline=pipeline, labels=(), variables={}, actor="t"
        )
    apply_command(store, "new", lambda project, _p, _r: commands.start(project), "t")
    rows = winslow.api.get("/api/v1/overview", params={"sort": "in_state"}).json()["data"]
    assert [r["name"] for r in rows] == ["new", "old"]
    since = {r["name"]: r["state_since"] for r in rows}
    assert since["new"] > since["old"]  # by the moment, not by the name ("new" < "old")
    descending = winslow.api.get("/api/v1/overview", params={"sort": "in_state", "order": "desc"})
    assert [r["name"] for r in descending.json()["data"]] == ["old", "new"]
