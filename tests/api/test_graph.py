"""The graph routes: a pipeline's stages and needs, and a project's graph after real runs
(a route skipped by its condition, a sweep's combinations, the gate it waits at)."""

from __future__ import annotations

import pytest

from tests.fixtures.winslow import Harness

pytestmark = pytest.mark.slow

ROUTES = """
name: routes
stages:
  - name: detect
    command: ["sh", "-c", "echo 'WINSLOW_RESULT: vehicles=0'"]
  - name: count
    needs: [detect]
    when: results.detect.vehicles > 0
    command: ["true"]
  - name: tune
    needs: [detect]
    sweep: {over: {LR: ["0.1", "0.01"]}}
    command: ["sh", "-c", "echo tuned ${LR}"]
  - name: review
    needs: [count, tune]
    gate: true
    command: ["true"]
"""


def graph(winslow: Harness, path: str, expect: int = 200) -> dict:
    response = winslow.api.get(f"/api/v1/{path}/graph")
    assert response.status_code == expect, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_pipelines_graph_has_its_stages_and_needs(winslow: Harness) -> None:
    winslow.apply_pipeline(ROUTES)
    found = graph(winslow, "pipelines/routes")

    assert [n["name"] for n in found["nodes"]] == ["detect", "count", "tune", "review"]
    assert [(e["source"], e["target"], e["condition"]) for e in found["edges"]] == [
        ("detect", "count", "results.detect.vehicles > 0"),
        ("detect", "tune", None),
        ("count", "review", None),
        ("tune", "review", None),
    ]
    nodes = {n["name"]: n for n in found["nodes"]}
    assert nodes["review"]["confirmation"] == "always"
    assert nodes["tune"]["sweep"] == ["LR"] and nodes["tune"]["combinations"] == 2
    assert all(n["state"] is None for n in found["nodes"])

    missing = graph(winslow, "pipelines/nope", expect=404)
    assert missing["detail"].startswith("No pipeline 'nope'")


def test_a_projects_graph_after_real_runs(winslow: Harness) -> None:
    winslow.apply_pipeline(ROUTES)
    winslow.create("flow", "routes", start=True)
    winslow.engine.run_until_idle()
    assert winslow.show("flow")["state"] == "awaiting_input"

    found = graph(winslow, "projects/flow")
    nodes = {n["name"]: n for n in found["nodes"]}
    assert nodes["detect"]["state"] == "succeeded"
    assert nodes["count"]["state"] == "skipped"
    assert "results.detect.vehicles = 0" in nodes["count"]["reason"]
    assert nodes["tune"]["state"] == "succeeded"
    assert [m["combination"] for m in nodes["tune"]["runs"]] == ["LR=0.1", "LR=0.01"]
    assert nodes["tune"]["counts"] == {"succeeded": 2}
    assert nodes["review"]["waiting"] and nodes["review"]["state"] is None
    assert found["waiting_at"] == "review" and found["project_state"] == "awaiting_input"
    skipped = [(e["source"], e["target"]) for e in found["edges"] if e["skipped"]]
    assert skipped == [("detect", "count")]
    # By id as well as by name: the console asks by id, which a rename does not change.
    assert graph(winslow, f"projects/{winslow.show('flow')['id']}") == found
