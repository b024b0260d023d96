"""The console's overview a page at a time, searched and filtered on the server, so a
person with thousands of projects still finds one."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.fixtures.winslow import Harness
from winslow import defaults
from winslow.core import commands
from winslow.core.states import ProjectState
from winslow.engine.transitions import apply_command, move_project

PIPELINE = {"name": "p", "stages": [{"name": "a", "command": ["true"]}]}


def fill(winslow: Harness, count: int) -> None:
    for number in range(count):
        winslow.context.store.create_project(
            name=f"ulm-{number:04d}",
            pipeline_name="p",
            pipeline=PIPELINE,
            labels=("even",) if number % 2 == 0 else ("odd",),
            variables={},
            actor="t",
        )


def signed_in(winslow: Harness) -> TestClient:
    client = TestClient(winslow.api.app)
    assert client.post("/api/v1/session", json={"token": winslow.token}).status_code == 200
    return client


def test_the_overview_api_gives_a_page_and_counts_them_all(winslow: Harness) -> None:
    fill(winslow, defaults.PAGE_SIZE + 20)
    store = winslow.context.store
    apply_command(store, "ulm-0110", lambda project, _p, _r: commands.start(project), "t")
    with store.project_transaction("ulm-0110") as tx:
        move_project(tx, ProjectState.FAILED, reason="boom", actor="t")

    body = winslow.api.get("/api/v1/overview").json()
    assert (len(body["data"]), body["count"]) == (defaults.PAGE_SIZE, defaults.PAGE_SIZE + 20)
    assert body["needs_person"] == 1
    assert body["data"][0]["name"] == "ulm-0110"  # a person is needed: first, whatever its name
    assert body["data"][1]["name"] == "ulm-0000"

    rest = winslow.api.get("/api/v1/overview", params={"skip": defaults.PAGE_SIZE}).json()
    assert [r["name"] for r in rest["data"]][-1] == "ulm-0119"
    assert len(rest["data"]) == 20

    found = winslow.api.get("/api/v1/overview", params={"q": "ULM-0117"}).json()
    assert ([r["name"] for r in found["data"]], found["count"]) == (["ulm-0117"], 1)
    assert found["needs_person"] == 0  # the count follows the search: ulm-0110 is not shown

    odd = winslow.api.get("/api/v1/overview", params={"label": "odd", "limit": 1000}).json()
    assert odd["count"] == 60 and all(r["labels"] == ["odd"] for r in odd["data"])
    failed = winslow.api.get("/api/v1/overview", params={"state": "failed"}).json()
    assert [r["name"] for r in failed["data"]] == ["ulm-0110"]

    store.create_project(
        name="aaa", pipeline_name="p", pipeline=PIPELINE, labels=(), variables={}, actor="t"
    )
    after = winslow.api.get("/api/v1/overview").json()  # what is derived follows the change
    assert after["count"] == defaults.PAGE_SIZE + 21
    assert [r["name"] for r in after["data"][:2]] == ["ulm-0110", "aaa"]


def test_the_overview_page_finds_a_project_beyond_the_first_page(winslow: Harness) -> None:
    fill(winslow, defaults.PAGE_SIZE + 5)
    browser = signed_in(winslow)

    first = browser.get("/").text
    assert first.count('<tr data-name="') == defaults.PAGE_SIZE
    assert f"1\u2013{defaults.PAGE_SIZE} of {defaults.PAGE_SIZE + 5}" in first
    assert f'href="/?skip={defaults.PAGE_SIZE}"' in first
    assert 'data-name="ulm-0103"' not in first

    found = browser.get("/", params={"q": "0103", "label": "odd"}).text
    assert found.count('<tr data-name="') == 1 and 'data-name="ulm-0103"' in found
    assert 'value="0103"' in found and '<option value="odd" selected>' in found
    none = browser.get("/", params={"q": "nowhere"}).text
    assert "No project matches." in none

    second = browser.get("/", params={"skip": defaults.PAGE_SIZE}).text
    assert second.count('<tr data-name="') == 5 and 'href="/"' in second
