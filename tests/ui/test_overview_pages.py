"""The overview with more projects than one page holds, in a real browser: the search and
the filters ask the server, so the one project a person looks for is found."""

from __future__ import annotations

import httpx
import pytest

from tests.ui.conftest import admin_token
from winslow import defaults

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PIPELINE = 'name: many\nstages:\n  - name: work\n    command: ["true"]\n'


@pytest.mark.own_server  # it pages through every project the server has
def test_search_finds_a_project_that_is_not_on_the_first_page(page, console) -> None:
    headers = {"Authorization": f"Bearer {admin_token(console)}"}
    with httpx.Client(base_url=console.addr + "/api/v1", headers=headers, timeout=30) as api:
        api.put("/pipelines/many", json={"text": PIPELINE}).raise_for_status()
        for number in range(defaults.PAGE_SIZE + 3):
            label = ["late"] if number == defaults.PAGE_SIZE + 2 else []
            body = {"name": f"p-{number:03d}", "pipeline": "many", "labels": label}
            api.post("/projects", json=body).raise_for_status()
    page.goto("/")
    rows = page.locator("#project-rows tr[data-name]")
    assert rows.count() == defaults.PAGE_SIZE
    assert page.locator("#pager-text").inner_text() == f"1\u2013100 of {defaults.PAGE_SIZE + 3}"

    page.get_by_label("Search").fill("p-102")
    page.locator("#project-rows tr[data-name='p-102']").wait_for()
    page.wait_for_function("document.querySelectorAll('#project-rows tr[data-name]').length == 1")
    assert "q=p-102" in page.url  # a reload or a shared link keeps the search

    page.get_by_label("Search").fill("")
    page.wait_for_function(
        f"document.querySelectorAll('#project-rows tr[data-name]').length == {defaults.PAGE_SIZE}"
    )
    page.get_by_label("Label").select_option("late")
    page.wait_for_function("document.querySelectorAll('#project-rows tr[data-name]').length == 1")
    assert rows.first.get_attribute("data-name") == "p-102"

    page.get_by_label("Label").select_option("")
    page.wait_for_function(
        f"document.querySelectorAll('#project-rows tr[data-name]').length == {defaults.PAGE_SIZE}"
    )
    page.locator("#pager-next").click()
    page.wait_for_url("**/?skip=100")
    assert [r.get_attribute("data-name") for r in rows.all()] == ["p-100", "p-101", "p-102"]
