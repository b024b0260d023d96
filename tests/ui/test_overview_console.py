"""The overview that scales, in a real browser against a real ``winslow up``: sorting on
the server by a column, paging, the count of projects that wait for a person following
the filters, where each running stage runs, and bulk pause and kill with each project's
result reported."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tests.fixtures.server import Server
from tests.ui.conftest import admin_token, rows_come_to, screenshot
from tests.ui.test_accessibility import AXE, BLOCKING, axe_violations, describe

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def api(console: Server) -> httpx.Client:
    headers = {"Authorization": f"Bearer {admin_token(console)}"}
    return httpx.Client(base_url=console.addr + "/api/v1", headers=headers, timeout=30)


@pytest.mark.own_server  # it counts every project the server has
def test_sorting_paging_and_the_waiting_count(page, console, tmp_path) -> None:
    check = pytest.importorskip("playwright.sync_api").expect
    with api(console) as client:
        client.put(
            "/pipelines/quick",
            json={"text": 'name: quick\nstages:\n  - name: a\n    command: ["true"]\n'},
        ).raise_for_status()
        client.put(
            "/pipelines/breaks",
            json={
                "text": 'name: breaks\nstages:\n  - name: a\n    command: ["sh", "-c", "exit 3"]\n'
            },
        ).raise_for_status()
        for number in range(30):
            client.post(
                "/projects", json={"name": f"p-{number:02d}", "pipeline": "quick"}
            ).raise_for_status()
        client.post(
            "/projects", json={"name": "zz-broken", "pipeline": "breaks", "start": True}
        ).raise_for_status()
        client.post(
            "/projects", json={"name": "aa-done", "pipeline": "quick", "start": True}
        ).raise_for_status()
    console.wait_for("zz-broken", {"failed"})
    console.wait_for("aa-done", {"succeeded"})

    page.goto("/")
    summary = page.locator("#needs-summary")
    check(summary).to_have_text("1 waits for a person")
    check(page).to_have_title(re.compile(r"^\(1\) Projects"))
    # The failed project is first (it waits for a person), then the rest by name.
    rows_come_to(page, lambda names: names[:2] == ["zz-broken", "aa-done"])

    # Only idle projects: none of those waits, so the count says none.
    page.get_by_label("State").select_option("idle")
    check(summary).to_have_text("Nothing waits for a person among the projects shown")
    check(page).to_have_title(re.compile(r"^Projects"))
    rows_come_to(page, lambda names: bool(names) and all(n.startswith("p-") for n in names))
    page.get_by_label("State").select_option("")
    check(summary).to_have_text("1 waits for a person")

    # Sort by progress, most done first: asked of the server, kept in the address.
    progress = page.locator("th[data-column=progress] a.sort")
    progress.click()
    page.wait_for_url(re.compile(r"sort=progress"))
    check(page.locator("th[data-column=progress]")).to_have_attribute("aria-sort", "ascending")
    progress.click()
    page.wait_for_url(re.compile(r"sort=progress&order=desc"))
    check(page.locator("th[data-column=progress]")).to_have_attribute("aria-sort", "descending")
    check(page.locator("#project-rows tr[data-name]").first).to_have_attribute(
        "data-name", "aa-done"
    )
    page.locator("th[data-column=name] a.sort").click()
    page.wait_for_url(re.compile(r"sort=name(?!.*order)"))
    page.locator("th[data-column=name] a.sort").click()
    page.wait_for_url(re.compile(r"sort=name&order=desc"))
    check(page.locator("#project-rows tr[data-name]").first).to_have_attribute(
        "data-name", "zz-broken"
    )
    assert page.locator("th[data-column=progress]").get_attribute("aria-sort") is None

    # Paging: 25 a page, sorted by name descending across pages.
    page.get_by_label("Per page").select_option("25")
    check(page.locator("#pager-text")).to_have_text("1\u201325 of 32")
    rows_come_to(page, lambda names: names[:3] == ["zz-broken", "p-29", "p-28"])
    page.locator("#pager-next").click()
    check(page.locator("#pager-text")).to_have_text("26\u201332 of 32")
    assert "skip=25" in page.url and "limit=25" in page.url
    last_page = ["p-05", "p-04", "p-03", "p-02", "p-01", "p-00", "aa-done"]
    rows_come_to(page, lambda names: names == last_page)
    screenshot(page, "overview-sorted-paged")
    page.set_viewport_size({"width": 1024, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024  # no sideways page
    screenshot(page, "overview-1024")
    # A phone looks in, it does not steer: no selection, no bulk actions, no sideways page.
    page.set_viewport_size({"width": 390, "height": 844})
    check(page.locator("#bulk-bar")).to_be_hidden()
    check(page.get_by_label("Select aa-done")).to_be_hidden()
    check(page.locator("#project-rows tr[data-name='aa-done'] .state")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "overview-phone")
    page.set_viewport_size({"width": 1366, "height": 800})
    page.go_back()
    check(page.locator("#pager-text")).to_have_text("1\u201325 of 32")

    # A reload keeps the order and the page size: the server renders them too.
    page.reload()
    check(page.locator("th[data-column=name]")).to_have_attribute("aria-sort", "descending")
    rows_come_to(page, lambda names: names[:1] == ["zz-broken"] and len(names) == 25)


HOLD = (
    "name: overview-hold\nstages:\n  - name: work\n    requirements:\n      cpus: 0.25\n"
    '    command: ["sh", "-c", "while [ ! -f {go} ]; do sleep 0.2; done"]\n'
)


def assert_accessible(page: Any, what: str) -> None:
    """No serious or critical axe-core violation in ``page`` as it is now (where axe-core
    is installed; ``test_accessibility.py`` says so when it is not)."""
    if not AXE.is_file():
        return
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING]
    assert not blocking, f"{what}:\n{describe(blocking)}"


def wait_until_placed(console: Server, project: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(r["state"] == "running" for r in console.api(f"/projects/{project}")["runs"]):
        assert time.monotonic() < deadline, f"no stage of {project} started"
        time.sleep(0.3)


def test_bulk_pause_reports_each_project_and_kill_asks_first(page, console, tmp_path) -> None:
    check = pytest.importorskip("playwright.sync_api").expect
    go = tmp_path / "go"
    with api(console) as client:
        client.put("/pipelines/overview-hold", json={"text": HOLD.format(go=go)}).raise_for_status()
        for name in ("run-a", "run-b", "run-c"):
            client.post(
                "/projects", json={"name": name, "pipeline": "overview-hold", "start": True}
            ).raise_for_status()
        client.post(
            "/projects", json={"name": "still", "pipeline": "overview-hold"}
        ).raise_for_status()
    for name in ("run-a", "run-b", "run-c"):
        wait_until_placed(console, name)
    try:
        page.goto("/")
        # Where each running stage runs: its node (a link to the nodes page); idle: nothing.
        for name in ("run-a", "run-b", "run-c"):
            cell = page.locator(f"#project-rows tr[data-name='{name}'] td.placements")
            check(cell.get_by_role("link", name="local")).to_have_attribute(
                "href", "/nodes#node-local"
            )
        check(page.locator("#project-rows tr[data-name='still'] td.placements")).to_have_text("")

        bar = page.get_by_role("toolbar", name="Act on the selected projects")
        check(bar.get_by_role("button", name="Pause")).to_be_disabled()
        page.get_by_label("Select run-a").check()
        page.get_by_label("Select still").check()
        check(page.locator("#bulk-count")).to_have_text("2 projects selected")
        bar.get_by_role("button", name="Pause").click()
        results = page.locator("#bulk-results")
        check(results.locator("h2")).to_have_text("Paused 1 of 2 projects; 1 refused")
        check(results.locator("li[data-project='run-a']")).to_have_class(re.compile(r"\bdone\b"))
        check(results.locator("li[data-project='run-a']")).to_contain_text("now pausing")
        refused = results.locator("li[data-project='still']")
        check(refused).to_have_class(re.compile(r"\brefused\b"))
        check(refused).to_contain_text("Project 'still' is idle; only a running project can pause.")
        assert refused.get_attribute("data-status") == "409"
        # The refused one stays selected, to try again; the paused one is done with.
        check(page.get_by_label("Select still")).to_be_checked()
        check(page.get_by_label("Select run-a")).not_to_be_checked()
        check(page.locator("#project-rows tr[data-name='run-a'] .state")).to_have_text(
            re.compile("pausing|paused")
        )
        screenshot(page, "overview-bulk-pause")
        assert_accessible(page, "the overview with bulk results")

        # Kill asks first; cancelling kills nothing.
        bar.get_by_role("button", name="Clear selection").click()
        page.get_by_label("Select run-b").check()
        page.get_by_label("Select run-c").check()
        bar.get_by_role("button", name="Kill…").click()
        dialog = page.get_by_role("dialog", name="Kill the running stages?")
        check(dialog).to_be_visible()
        check(dialog).to_contain_text("run-b, run-c")
        assert_accessible(page, "the overview asking before it kills")
        dialog.get_by_role("button", name="Cancel").click()
        check(dialog).to_be_hidden()
        assert console.api("/projects/run-b")["state"] == "running"
        bar.get_by_role("button", name="Kill…").click()
        dialog.get_by_role("button", name="Kill now").click()
        check(results.locator("h2")).to_have_text("Killed 2 of 2 projects")
        for name in ("run-b", "run-c"):
            console.wait_for(name, {"paused"})
    finally:
        go.touch()
