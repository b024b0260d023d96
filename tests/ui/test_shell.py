"""Signing in and out, the overview and the nodes page, in a real browser."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from tests.api.test_redirects import ELSEWHERE, KEPT
from tests.ui.conftest import VIEWPORT, admin_token, rows_come_to, screenshot
from winslow.api.redirects import same_origin_path
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
    tab.get_by_role("button", name="Sign in with token").click()
    alert = tab.get_by_role("alert")
    alert.get_by_text("That token is not valid").wait_for()
    screenshot(tab, "signin-wrong-token")
    tab.get_by_label("Token").fill(admin_token(console))
    tab.get_by_role("button", name="Sign in with token").click()
    tab.wait_for_url(console.addr + "/nodes")
    tab.get_by_role("heading", name="Nodes").wait_for()
    tab.get_by_role("button", name="Sign out").click()
    tab.wait_for_url(re.compile(r".*/signin$"))
    tab.goto("/")
    assert "/signin" in tab.url
    context.close()


def test_a_cookie_alone_cannot_change_anything(console) -> None:
    # A cross-site form could carry the cookie but never the console's header.
    session = httpx.post(console.addr + "/api/v1/session", json={"token": admin_token(console)})
    cookies = {"winslow_session": session.cookies["winslow_session"]}
    assert httpx.get(console.addr + "/api/v1/projects", cookies=cookies).status_code == 200
    refused = httpx.post(
        console.addr + "/api/v1/projects", json={"name": "x", "pipeline": "y"}, cookies=cookies
    )
    assert refused.status_code == 401 and "x-winslow-console" in refused.json()["detail"]


def test_signing_out_ends_the_session_so_its_cookie_no_longer_works(page, console) -> None:
    [cookie] = [c for c in page.context.cookies() if c["name"] == "winslow_session"]
    assert cookie["value"] != admin_token(console)  # the browser never holds the token
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/signin$"))
    page.context.add_cookies([cookie])  # a copy kept from before
    page.goto("/nodes")
    assert page.url.endswith("/signin?next=/nodes")


def test_signing_in_with_a_next_that_leads_elsewhere_lands_on_the_console(browser, console) -> None:
    context = browser.new_context(base_url=console.addr, viewport=VIEWPORT)
    elsewhere = []

    def only_here(route) -> None:  # a request to any other host is noted, never sent
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            elsewhere.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", only_here)
    tab = context.new_page()
    for next_value in ("/%5Cevil.example/x", "%2F%5Cevil.example", "%09/%2Fevil.example"):
        tab.goto(f"/signin?next={next_value}")
        tab.get_by_label("Token").fill(admin_token(console))
        tab.get_by_role("button", name="Sign in with token").click()
        tab.wait_for_url(console.addr + "/")
        # The overview (its title leads with how many projects wait, if any).
        assert tab.title().endswith("Projects · Winslow"), next_value
    tab.goto("/signin?next=/nodes%3Fx%3D1")  # and a path of its own, it goes to
    tab.get_by_label("Token").fill(admin_token(console))
    tab.get_by_role("button", name="Sign in with token").click()
    tab.wait_for_url(console.addr + "/nodes?x=1")
    assert elsewhere == []
    context.close()


RESOLVE = """([values, base]) => values.map((value) => {
  const url = new URL(value, base);
  return [url.origin, url.pathname + url.search + url.hash];
})"""


def test_the_next_check_agrees_with_the_browsers_own_url_parser(page, console) -> None:
    values = [*ELSEWHERE, *(v for v, _ in KEPT), "/%2e%2e/%2E/x", "/a/./b?c#d", "/\u00e9t\u00e9"]
    base = console.addr + "/signin"
    ours = [same_origin_path(v) for v in values]
    for value, (origin, target), kept in zip(
        values, page.evaluate(RESOLVE, [ours, base]), ours, strict=True
    ):
        assert origin == console.addr, (value, kept)  # what we keep never leads away
        assert target == kept, (value, kept)  # and Chromium reads it as we wrote it
    # A value we keep goes where Chromium would have taken it; the rest (another origin,
    # or relative like "nodes" and "#x") goes home.
    for value, (origin, target), kept in zip(
        values, page.evaluate(RESOLVE, [values, base]), ours, strict=True
    ):
        if kept != "/":
            assert (origin, target) == (console.addr, kept), value


@pytest.mark.own_server  # it counts every project the server has
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
    rows_come_to(page, lambda names: names == ["alpha"])
    page.get_by_label("Search").fill("")
    page.get_by_label("State").select_option("awaiting_input")
    rows_come_to(page, lambda names: names == ["beta"])
    page.get_by_label("State").select_option("")
    page.get_by_label("Label").select_option("ulm")
    rows_come_to(page, lambda names: names == ["alpha"])
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
    assert "CPU" in text and "Memory" in text
    memory = page.locator("[data-figure=memory]").inner_text()
    total = psutil.virtual_memory().total // (1024 * 1024) * 1024 * 1024
    assert f" of {format_bytes(total)}" in memory  # as the CLI writes it
    screenshot(page, "nodes")


def test_every_page_names_its_icon_and_loads_without_a_console_error(browser, console) -> None:
    """Each page names the console's icon, so the browser does not ask for /favicon.ico
    (a 404 logged as a console error on every page before)."""
    context = browser.new_context(base_url=console.addr, viewport=VIEWPORT)
    tab = context.new_page()
    errors: list[str] = []
    tab.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    try:
        tab.goto("/signin")
        tab.get_by_label("Token").fill(admin_token(console))
        tab.get_by_role("button", name="Sign in with token").click()
        tab.wait_for_url(console.addr + "/")
        for path in ("/", "/resources", "/nodes", "/pipelines", "/tokens"):
            tab.goto(path)
            tab.wait_for_load_state("networkidle")
            icon = tab.locator('link[rel="icon"]').get_attribute("href")
            answer = httpx.get(console.addr + icon)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith("image/svg+xml")
        assert errors == []
    finally:
        context.close()
