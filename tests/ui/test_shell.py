"""Signing in and out, the overview and the nodes page, in a real browser."""

from __future__ import annotations

import re

import httpx
import psutil
import pytest

from tests.ui.conftest import VIEWPORT, admin_token, screenshot
from winslow.units import format_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PIPELINE = """
name: shell-demo
stages:
  - name: work
    command: ["sh", "-c", "sleep ${SECONDS}; echo done"]
  - name: check
    gate: true
    command: ["sh", "-c", "echo checked"]
variables:
  SECONDS: {default: "0"}
"""


def test_pages_redirect_to_sign_in_and_a_wrong_token_is_said_so(browser, console) -> None:
    context = browser.new_context(base_url=console.addr, viewport=VIEWPORT)
    tab = context.new_page()
    tab.goto("/nodes")
    assert tab.url.endswith("/signin?next=/nodes")
    tab.get_by_label("Token").fill("wsl_not-a-token")
    tab.get_by_role("button", name="Sign in").click()
    alert = tab.get_by_role("alert")
    alert.get_by_text("That token is not valid").wait_for()
    screenshot(tab, "signin-wrong-token")
    tab.get_by_label("Token").fill(admin_token(console))
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(console.addr + "/nodes")
    tab.get_by_role("heading", name="Nodes").wait_for()
    tab.get_by_role("button", name="Sign out").click()
    tab.wait_for_url(re.compile(r".*/signin$"))
    tab.goto("/")
    assert "/signin" in tab.url
    context.close()


def test_a_cookie_alone_cannot_change_anything(console) -> None:
    # A cross-site form could carry the cookie but never the console's header.
    cookies = {"winslow_session": admin_token(console)}
    assert httpx.get(console.addr + "/api/v1/projects", cookies=cookies).status_code == 200
    refused = httpx.post(
        console.addr + "/api/v1/projects", json={"name": "x", "pipeline": "y"}, cookies=cookies
    )
    assert refused.status_code == 401 and "x-winslow-console" in refused.json()["detail"]


def test_overview_lists_projects_live_needing_a_person_first(page, console, tmp_path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    console.cli("pipeline", "apply", str(pipeline))
    console.cli("project", "create", "alpha", "--pipeline", "shell-demo", "--label", "ulm")
    page.reload()
    rows = page.locator("#project-rows tr[data-name]")
    assert rows.count() == 1
    assert page.title() == "Projects · Winslow"

    # Created and started from the page; it reaches the gate and moves to the top, live.
    page.get_by_text("New project").click()
    page.get_by_label("Name").fill("beta")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r".*/projects/beta$"))
    page.goto("/")
    page.wait_for_function("document.title.startsWith('(1) ')", timeout=30_000)
    assert rows.first.get_attribute("data-name") == "beta"
    assert "awaiting input" in rows.first.inner_text()
    assert "1/2" in rows.first.inner_text()

    # Search and filters.
    page.get_by_label("Search").fill("alp")
    assert [r.get_attribute("data-name") for r in rows.all() if r.is_visible()] == ["alpha"]
    page.get_by_label("Search").fill("")
    page.get_by_label("State").select_option("awaiting_input")
    assert [r.get_attribute("data-name") for r in rows.all() if r.is_visible()] == ["beta"]
    page.get_by_label("State").select_option("")
    page.get_by_label("Label").select_option("ulm")
    assert [r.get_attribute("data-name") for r in rows.all() if r.is_visible()] == ["alpha"]
    screenshot(page, "overview")

    # An error from the API reaches the person in words.
    page.get_by_label("Label").select_option("")
    page.get_by_text("New project").click()
    page.get_by_label("Name").fill("alpha")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("alert").get_by_text("exists already").wait_for()


def test_nodes_page_shows_the_node(page, console) -> None:
    page.goto("/nodes")
    page.get_by_role("heading", name="local").wait_for()
    text = page.locator("main").inner_text()
    assert "CPUs" in text and "Memory" in text
    memory = page.locator("dt:text-is('Memory') + dd").inner_text()
    total = psutil.virtual_memory().total // (1024 * 1024) * 1024 * 1024
    assert memory == format_bytes(total)  # as the CLI, the logs and the scripts write it
    screenshot(page, "nodes")
