"""Triggering a project from outside with a project token: what works, what is refused.

A script holds a token of one project with the ``trigger`` capability and sends it in
``X-Winslow-Trigger-Token``; nothing else triggers. The constant-time comparison is a
matter of design (``Store.project_token`` uses ``hmac.compare_digest`` on every candidate),
checked in review, not by timing here.
"""

from __future__ import annotations

import hashlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from tests.fixtures.postgres import ON_BOTH_DATABASES
from tests.fixtures.winslow import Harness
from winslow.store.tables import Base

HEADER = "X-Winslow-Trigger-Token"


TINY = """
name: tiny
stages:
  - name: only
    command: ["sh", "-c", "echo only"]
"""

GATED = """
name: gated
stages:
  - name: prepare
    command: ["sh", "-c", "echo prepared > prepared.txt"]
  - name: review
    gate: true
    command: ["sh", "-c", "cat prepared.txt"]
  - name: finish
    command: ["sh", "-c", "echo done"]
"""

REFUSED = (
    "The trigger token is not valid for project '{ref}': it is wrong, revoked, or another "
    "project's (or there is no such project). "
    "`winslow project token list {ref}` shows the project's tokens."
)


def make_token(winslow: Harness, project: str, name: str = "nightly", **body) -> str:
    response = winslow.api.post(f"/api/v1/projects/{project}/tokens", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def trigger(winslow: Harness, project: str, token: str | None, body=None, **headers):
    """POST the trigger as a script would: the project token only, no bearer token."""
    sent = {"Authorization": ""}
    if token is not None:
        sent[HEADER] = token
    sent.update(headers)
    return winslow.api.post(f"/api/v1/projects/{project}/trigger", json=body, headers=sent)


def history(winslow: Harness, project: str) -> list[dict]:
    return winslow.api.get(f"/api/v1/projects/{project}/history").json()["data"]


@ON_BOTH_DATABASES
def test_token_is_shown_once_and_only_its_hash_is_stored(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    project = winslow.create("ulm-0603", "tiny")
    response = winslow.api.post("/api/v1/projects/ulm-0603/tokens", json={"name": "nightly"})
    assert response.status_code == 201, response.text
    created = response.json()
    token = created["token"]
    assert token.startswith("wsl_t_") and len(token) > 40
    assert (created["name"], created["capabilities"], created["project"]) == (
        "nightly",
        ["trigger"],
        project["id"],
    )

    with winslow.context.store.engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(text("SELECT * FROM project_tokens"))]
        events = [tuple(row) for row in connection.execute(text("SELECT * FROM events"))]
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0])
    assert token not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert all(token not in " ".join(str(value) for value in event) for event in events)

    listed = winslow.api.get("/api/v1/projects/ulm-0603/tokens").json()["data"]
    assert [(t["name"], t["capabilities"], t["revoked"]) for t in listed] == [
        ("nightly", ["trigger"], False)
    ]
    assert token not in str(listed)
    assert [(e["actor"], e["message"]) for e in history(winslow, "ulm-0603")][-1] == (
        "tester",
        "created token 'nightly' (trigger)",
    )


@ON_BOTH_DATABASES
def test_trigger_with_a_valid_token_resumes_and_lands_in_the_history(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("ulm-0603", "tiny")
    token = make_token(winslow, "ulm-0603")

    response = trigger(winslow, "ulm-0603", token, {"comment": "new footage uploaded"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "project": "ulm-0603",
        "state": "running",
        "state_reason": "resumed",
        "message": "resumed; comment: new footage uploaded",
    }
    assert winslow.show("ulm-0603")["state"] == "running"
    resume = [e for e in history(winslow, "ulm-0603") if e["kind"] == "resume"]
    assert [(e["actor"], e["message"]) for e in resume] == [
        ("trigger:nightly", "resumed; comment: new footage uploaded")
    ]
    assert resume[0]["data"]["comment"] == "new footage uploaded"
    assert resume[0]["data"]["trigger"] == "nightly"
    state = [e for e in history(winslow, "ulm-0603") if e["kind"] == "state"][-1]
    assert (state["actor"], state["data"]["to"]) == ("trigger:nightly", "running")


def test_trigger_without_the_header_is_refused(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("ulm-0603", "tiny")
    make_token(winslow, "ulm-0603")

    response = trigger(winslow, "ulm-0603", None)
    assert response.status_code == 401
    assert response.json() == {
        "detail": "This endpoint needs a project trigger token in X-Winslow-Trigger-Token; "
        "`winslow project token create` makes one.",
        "code": "unauthorized",
    }
    # The admin's bearer token is no trigger token, neither as bearer nor in the header.
    response = winslow.api.post("/api/v1/projects/ulm-0603/trigger", json={})
    assert response.status_code == 401
    assert "an API token or console session does not trigger" in response.json()["detail"]
    response = trigger(winslow, "ulm-0603", winslow.token)
    assert response.status_code == 401
    assert response.json()["detail"] == REFUSED.format(ref="ulm-0603")
    assert winslow.show("ulm-0603")["state"] == "idle"  # nothing was triggered
    assert not [e for e in history(winslow, "ulm-0603") if e["kind"] == "resume"]


def test_trigger_with_a_wrong_revoked_or_other_projects_token_is_refused(
    winslow: Harness,
) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("ulm-0603", "tiny")
    winslow.create("ulm-0604", "tiny")
    token = make_token(winslow, "ulm-0603")
    other = make_token(winslow, "ulm-0604")

    for wrong in ("wsl_t_made-up", token[:-1], token + "x", other, ""):
        response = trigger(winslow, "ulm-0603", wrong)
        assert response.status_code == 401, wrong
    assert trigger(winslow, "ulm-0603", other).json()["detail"] == REFUSED.format(ref="ulm-0603")
    # An unknown project gets the same answer, so a caller without a token learns no names.
    assert trigger(winslow, "nope", token).json() == {
        "detail": REFUSED.format(ref="nope"),
        "code": "unauthorized",
    }

    assert winslow.api.delete("/api/v1/projects/ulm-0603/tokens/nightly").status_code == 204
    response = trigger(winslow, "ulm-0603", token)
    assert response.status_code == 401
    assert response.json()["detail"] == REFUSED.format(ref="ulm-0603")
    assert winslow.show("ulm-0603")["state"] == "idle"
    assert winslow.show("ulm-0604")["state"] == "idle"  # its own token triggered nothing here
    listed = winslow.api.get("/api/v1/projects/ulm-0603/tokens").json()["data"]
    assert [(t["name"], t["revoked"]) for t in listed] == [("nightly", True)]
    assert listed[0]["revoked_at"] is not None


def test_project_token_is_no_bearer_token(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("ulm-0603", "tiny")
    token = make_token(winslow, "ulm-0603")
    for path in ("/api/v1/projects", "/api/v1/projects/ulm-0603"):
        response = winslow.api.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, path
    response = winslow.api.post(
        "/api/v1/projects/ulm-0603/resume", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    response = winslow.api.post(
        "/api/v1/projects/ulm-0603/tokens",
        json={"name": "more"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert winslow.show("ulm-0603")["state"] == "idle"


def test_token_without_the_trigger_capability_is_forbidden(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    project = winslow.create("ulm-0603", "tiny")
    # Only `trigger` exists, so the API cannot make such a token; the store can.
    token = winslow.context.store.create_project_token(project["id"], "reader", [], actor="t")
    response = trigger(winslow, "ulm-0603", token)
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Token 'reader' of project 'ulm-0603' may not trigger (it may: nothing); "
        "create one with --capability trigger.",
        "code": "forbidden",
    }
    assert winslow.show("ulm-0603")["state"] == "idle"


def test_creating_a_token_checks_capabilities_and_names(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("ulm-0603", "tiny")
    url = "/api/v1/projects/ulm-0603/tokens"

    response = winslow.api.post(url, json={"name": "n", "capabilities": ["trigger", "admin"]})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "Unknown capability 'admin'; a project token may have: trigger.",
        "code": "invalid_input",
    }
    response = winslow.api.post(url, json={"name": "n", "capabilities": []})
    assert response.status_code == 422
    assert response.json()["detail"] == "Give the token at least one capability; allowed: trigger."
    response = winslow.api.post(url, json={"name": "no spaces"})
    assert response.status_code == 422
    assert "cannot name a token" in response.json()["detail"]
    assert winslow.api.get(url).json()["data"] == []

    make_token(winslow, "ulm-0603")
    response = winslow.api.post(url, json={"name": "nightly"})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Project 'ulm-0603' has a token named 'nightly' already; choose another name "
        "(a revoked token keeps its name)."
    )
    response = winslow.api.post("/api/v1/projects/nope/tokens", json={"name": "nightly"})
    assert response.status_code == 404


def test_revoking_lands_in_the_history_once_and_unknown_names_are_404(
    winslow: Harness,
) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("ulm-0603", "tiny")
    make_token(winslow, "ulm-0603")
    assert winslow.api.delete("/api/v1/projects/ulm-0603/tokens/nightly").status_code == 204
    assert winslow.api.delete("/api/v1/projects/ulm-0603/tokens/nightly").status_code == 204
    revoked = [e for e in history(winslow, "ulm-0603") if e["message"].startswith("revoked")]
    assert [(e["actor"], e["message"]) for e in revoked] == [("tester", "revoked token 'nightly'")]

    response = winslow.api.delete("/api/v1/projects/ulm-0603/tokens/weekly")
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "Project 'ulm-0603' has no token 'weekly'; "
        "`winslow project token list ulm-0603` shows them."
    )


def test_refused_command_passes_through_as_409(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("ulm-0603", "tiny")
    token = make_token(winslow, "ulm-0603")
    assert trigger(winslow, "ulm-0603", token).status_code == 200
    response = trigger(winslow, "ulm-0603", token, {"from_stage": None})
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Project 'ulm-0603' is already running; nothing to resume.",
        "code": "conflict",
    }
    response = trigger(winslow, "ulm-0603", token, {"from_stage": "nope"})
    assert response.status_code == 409  # running, so refused before the stage is looked up
    assert len([e for e in history(winslow, "ulm-0603") if e["kind"] == "resume"]) == 1


def test_tokens_go_with_their_project_and_survive_a_rename(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    project = winslow.create("ulm-0603", "tiny")
    token = make_token(winslow, "ulm-0603")
    response = winslow.api.patch("/api/v1/projects/ulm-0603", json={"name": "ulm-0603-b"})
    assert response.status_code == 200
    assert trigger(winslow, project["id"], token).status_code == 200  # the id stays

    assert winslow.api.delete("/api/v1/projects/ulm-0603-b").status_code == 204
    assert winslow.context.store.list_project_tokens(project["id"]) == []
    with winslow.context.store.engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM project_tokens")).scalar()
    assert left == 0


@ON_BOTH_DATABASES
def test_project_tokens_table_matches_its_migration(winslow: Harness) -> None:
    with winslow.context.store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "project_tokens" in str(d)] == []


@pytest.mark.slow
def test_trigger_lets_a_gated_project_go_on_and_redoes_a_stage(winslow: Harness) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("ulm-0603", "gated", start=True)
    winslow.engine.run_until_idle()
    assert winslow.show("ulm-0603")["waiting_for"] == {"stage": "review", "gate": "review"}
    token = make_token(winslow, "ulm-0603")

    response = trigger(winslow, "ulm-0603", token, {"comment": "reviewed by the script"})
    assert response.status_code == 200, response.text
    assert response.json()["message"] == (
        "resumed; let gated stage 'review' start; comment: reviewed by the script"
    )
    winslow.engine.run_until_idle()
    done = winslow.show("ulm-0603")
    assert done["state"] == "succeeded"
    assert [(r["stage"], r["state"]) for r in done["runs"]] == [
        ("prepare", "succeeded"),
        ("review", "succeeded"),
        ("finish", "succeeded"),
    ]

    response = trigger(winslow, "ulm-0603", token, {"from_stage": "finish", "comment": "again"})
    assert response.status_code == 200, response.text
    winslow.engine.run_until_idle()
    again = winslow.show("ulm-0603")
    assert again["state"] == "succeeded"
    finishes = [r for r in again["runs"] if r["stage"] == "finish"]
    assert [(r["state"], r["superseded"]) for r in finishes] == [
        ("succeeded", True),
        ("succeeded", False),
    ]
    assert [r["id"] for r in again["runs"][:2]] == [r["id"] for r in done["runs"][:2]]
    triggered = [
        (e["actor"], e["message"]) for e in history(winslow, "ulm-0603") if e["kind"] == "resume"
    ]
    assert triggered == [
        (
            "trigger:nightly",
            "resumed; let gated stage 'review' start; comment: reviewed by the script",
        ),
        ("trigger:nightly", "resumed from stage 'finish'; comment: again"),
    ]
