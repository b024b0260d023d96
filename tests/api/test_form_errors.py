"""Errors a form can put onto its fields (``fields``: where in the request, what is wrong),
and messages that name a project by its name, never by the id in its storage keys."""

from __future__ import annotations

import pytest

from tests.fixtures.winslow import Harness
from winslow.storage.keys import manifest_key, name_projects, workspace_prefix

pytestmark = pytest.mark.slow

MAKE = """
name: make
stages:
  - name: out
    command: ["sh", "-c", "echo hi > result.txt"]
  - name: check
    gate: true
    command: ["true"]
"""


@pytest.fixture
def flow(winslow: Harness) -> dict:
    winslow.apply_pipeline(MAKE)
    winslow.create("flow", "make", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("flow")
    assert project["state"] == "awaiting_input"
    return project


def test_a_malformed_field_is_named_under_fields(winslow: Harness, flow) -> None:
    body = {"from_stage": "out", "overrides": {"resources": {"memory": 0, "cpus": 2}}}
    answer = winslow.api.post("/api/v1/projects/flow/resume", json=body)
    assert answer.status_code == 422
    refusal = answer.json()
    assert refusal["code"] == "invalid_request"
    assert refusal["fields"] == {"overrides.resources.memory": "Input should be greater than 0"}
    assert "overrides.resources.memory" in refusal["detail"]  # the words stay for the CLI


def test_winslows_own_refusal_names_its_field(winslow: Harness, flow) -> None:
    answer = winslow.api.patch(
        "/api/v1/projects/flow/variables", json={"set": {"WINSLOW_STAGE": "x", "LR": "1"}}
    )
    assert answer.status_code == 422
    refusal = answer.json()
    assert refusal["code"] == "invalid_input"
    assert refusal["fields"] == {"variables.WINSLOW_STAGE": refusal["detail"]}
    assert winslow.show("flow")["variables"] == {}  # nothing was set


def test_the_run_log_names_the_project_by_its_name(winslow: Harness, flow) -> None:
    log = winslow.log("flow", flow["runs"][0]["id"])
    assert "stage-out: published version 1 of workspace of run 1 of project 'flow'" in log
    assert flow["id"] not in log


def test_a_storage_error_names_the_project_by_its_name(winslow: Harness, flow) -> None:
    run = flow["runs"][0]
    key = manifest_key(workspace_prefix(flow["id"], run["id"]), 1)
    winslow.context.objects.put_bytes(key, b"{not json")
    answer = winslow.api.get("/api/v1/projects/flow/workspace", params={"run": run["id"]})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith("The workspace version 1 of run 1 of project 'flow' is damaged")
    assert flow["id"] not in detail


def test_only_known_ids_are_renamed() -> None:
    words = "run 4 of project '990e8f025390'; run 2 of project 'abcdefabcdef'; project 'ulm'"
    names = {"990e8f025390": "flow"}
    assert name_projects(words, names.get) == (
        "run 4 of project 'flow'; run 2 of project 'abcdefabcdef'; project 'ulm'"
    )


def test_the_run_log_names_the_project_by_its_name_on_nomad(winslow_on_nomad: Harness) -> None:
    """On Nomad, stage-in and stage-out are tasks of their own; they know the project's
    name from the job's meta (``NOMAD_META_winslow_project``), which Nomad hands every task."""
    winslow = winslow_on_nomad
    winslow.apply_pipeline(MAKE)
    winslow.create("flow", "make", start=True)
    winslow.engine.run_until_idle(timeout=120)
    project = winslow.show("flow")
    assert project["state"] == "awaiting_input", project
    log = winslow.log("flow", project["runs"][0]["id"])
    assert "stage-out: published version 1 of workspace of run 1 of project 'flow'" in log
    assert f"project '{project['id']}'" not in log  # (the storage key it names keeps the id)
