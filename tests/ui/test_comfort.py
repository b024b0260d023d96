"""Comfort: dark mode (the system's choice, or the person's switch, kept), keyboard
shortcuts, a console usable at 1024 px wide, and a read-only phone layout."""

from __future__ import annotations

import re

import pytest

from tests.ui.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PIPELINE = """
name: ui-comfort
stages:
  - name: fetch
    command: ["sh", "-c", "echo fetched 3 files"]
  - name: detect
    command: ["sh", "-c", "for i in 1 2 3; do echo frame $i done; done"]
  - name: report
    command: ["sh", "-c", "echo report written; echo last line of the report"]
"""


def expect():
    return pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def finished(module_server, tmp_path_factory) -> str:
    """A project whose three stages ran, shared by the module's tests (which only look at
    it); its name."""
    file = tmp_path_factory.mktemp("comfort") / "comfort.yaml"
    file.write_text(PIPELINE)
    module_server.cli("pipeline", "apply", str(file))
    module_server.cli("project", "create", "comfy", "--pipeline", "ui-comfort", "--start")
    module_server.wait_for("comfy", {"succeeded"})
    return "comfy"


def background(page) -> str:
    return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))


def no_sideways_scroll(page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_dark_mode_follows_the_system_and_the_switch(page, finished) -> None:
    check = expect()
    page.emulate_media(color_scheme="light")
    page.goto(f"/projects/{finished}")
    check(page.locator("html")).to_have_attribute("data-theme", "light")
    assert background(page) == "rgb(255, 255, 255)"
    switch = page.get_by_role("switch", name="Dark mode")
    check(switch).to_have_attribute("aria-checked", "false")
    screenshot(page, "comfort-light")

    # The system turns dark: the page follows at once, without a reload.
    page.emulate_media(color_scheme="dark")
    check(page.locator("html")).to_have_attribute("data-theme", "dark")
    check(switch).to_have_attribute("aria-checked", "true")
    assert background(page) == "rgb(20, 24, 31)"
    ink = page.evaluate("getComputedStyle(document.body).color")
    assert ink == "rgb(230, 234, 240)"
    # Cards, fields and the dialog take the dark colours too (no white boxes left).
    check(page.locator("section.controls")).to_have_css("background-color", "rgb(28, 34, 43)")
    check(page.locator("#resume-stage")).to_have_css("background-color", "rgb(16, 20, 26)")
    screenshot(page, "comfort-dark")

    # The person's choice wins over the system's, and is kept across pages and reloads.
    switch.click()
    check(page.locator("html")).to_have_attribute("data-theme", "light")
    check(switch).to_have_attribute("aria-checked", "false")
    assert page.evaluate("localStorage.getItem('winslow-theme')") == "light"
    page.reload()
    check(page.locator("html")).to_have_attribute("data-theme", "light")
    assert background(page) == "rgb(255, 255, 255)"
    page.get_by_role("switch", name="Dark mode").click()
    page.goto("/")
    check(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background(page) == "rgb(20, 24, 31)"
    screenshot(page, "comfort-dark-overview")


def test_keyboard_shortcuts(page, finished) -> None:
    check = expect()
    page.goto(f"/projects/{finished}")
    rows = page.locator("#timeline tr.run")
    check(rows).to_have_count(3)
    ids = [int(rows.nth(i).get_attribute("data-run") or 0) for i in range(3)]
    # The newest run is shown to begin with; k goes up the timeline, j down.
    check(rows.nth(2)).to_have_attribute("aria-current", "true")
    page.locator("body").press("k")
    check(rows.nth(1)).to_have_attribute("aria-current", "true")
    check(page.locator("#log-run")).to_contain_text(f"run {ids[1]} · detect")
    page.keyboard.press("k")
    check(rows.nth(0)).to_have_attribute("aria-current", "true")
    page.keyboard.press("k")  # stays at the first
    check(rows.nth(0)).to_have_attribute("aria-current", "true")
    page.keyboard.press("j")
    check(rows.nth(1)).to_have_attribute("aria-current", "true")

    # `/` opens the log's search box, on its tab; letters typed there are text.
    page.keyboard.press("/")
    check(page.get_by_role("tab", name="Log")).to_have_attribute("aria-selected", "true")
    search = page.locator(
        '#log-search, [data-shortcut="search"], #log-view input[type="search"]'
    ).first
    check(search).to_be_focused()
    page.keyboard.type("jk")
    check(search).to_have_value("jk")
    check(rows.nth(1)).to_have_attribute("aria-current", "true")
    search.fill("")
    check(page.locator("#log-view")).to_contain_text("frame 3 done")

    # `g` goes back to the graph's tab.
    page.locator("#log-view [role=log]").first.focus()
    page.keyboard.press("g")
    check(page.get_by_role("tab", name="Overview")).to_have_attribute("aria-selected", "true")
    check(page.get_by_role("tab", name="Overview")).to_be_focused()

    # `?` lists them all; Escape closes the list.
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    check(dialog).to_be_visible()
    for key in ("/", "j", "k", "g", "?"):
        check(dialog.locator("kbd", has_text=re.compile(f"^{re.escape(key)}$"))).to_have_count(1)
    screenshot(page, "comfort-shortcuts")
    page.keyboard.press("Escape")
    check(dialog).to_be_hidden()
    # The header's button opens the same list for those who do not know the key.
    page.get_by_role("button", name="Shortcuts").click()
    check(dialog).to_be_visible()


def cut_off_at_the_right(page, selectors: tuple[str, ...]) -> list[str]:
    """Those of ``selectors`` (each must be shown) whose right edge is past the window's."""
    check = expect()
    cut = []
    for selector in selectors:
        part = page.locator(selector).first
        check(part).to_be_visible()
        box = part.bounding_box()
        assert box is not None, f"{selector} is not rendered"
        if box["x"] + box["width"] > page.viewport_size["width"] + 0.5:
            cut.append(selector)
    return cut


AT_1024 = {
    "/pipelines/ui-comfort": ("#pipeline-graph svg", "#pipeline-text", "#apply", "#delete"),
    "/people": (
        "#user-rows tr:first-child td:last-child",
        "#user-form button[type=submit]",
        "#member-form button[type=submit]",
        "#group-form button[type=submit]",
    ),
    "/tokens": ("#token-rows tr:first-child td:last-child", "#token-form button[type=submit]"),
}
"""Pages with wide parts, and the parts a person needs whole there (a graph beside an
editor, tables with their actions in the last column, forms in a row)."""


def test_usable_at_1024_pixels_wide(page, finished) -> None:
    check = expect()
    page.set_viewport_size({"width": 1024, "height": 768})
    for path in ("/", f"/projects/{finished}", "/pipelines", "/resources", "/nodes", *AT_1024):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert no_sideways_scroll(page), f"{path} scrolls sideways at 1024 px"
        cut = cut_off_at_the_right(page, AT_1024.get(path, ()))
        assert not cut, f"{path} at 1024 px: {cut} end past the window's right edge"
        if path in AT_1024:
            screenshot(page, "comfort-1024-" + path.strip("/").replace("/", "-"))
    page.goto(f"/projects/{finished}")
    for tab in ("Log", "Files", "Run details", "Variables", "History", "Overview"):
        page.get_by_role("tab", name=tab).click()
        check(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")
        assert no_sideways_scroll(page), f"the {tab} tab scrolls sideways at 1024 px"
    check(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    screenshot(page, "comfort-1024")


def test_a_phone_shows_the_project_but_cannot_change_it(page, finished) -> None:
    check = expect()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/projects/{finished}")
    check(page.locator("#project-state")).to_have_text("succeeded")
    check(page.locator("#project-state")).to_be_in_viewport()
    check(page.locator("#project-reason")).to_be_visible()
    check(page.locator("#timeline tr.run").first).to_be_visible()
    # Nothing that changes the project: no controls, no redo, read-only variables.
    check(page.locator("section.controls")).to_be_hidden()
    check(page.get_by_role("button", name="Resume", exact=True)).to_be_hidden()
    check(page.locator("button.redo-stage").first).to_be_hidden()
    assert no_sideways_scroll(page)
    screenshot(page, "comfort-phone")
    page.get_by_role("tab", name="Variables").click()
    check(page.get_by_role("button", name="Add variable")).to_be_hidden()
    check(page.get_by_role("button", name="Save variables")).to_be_hidden()
    page.get_by_role("tab", name="Files").click()
    upload = page.locator("#files-panel form.files-upload")
    check(upload).to_have_count(1)
    check(upload).to_be_hidden()
    page.get_by_role("tab", name="Log").click()
    # The latest log lines, readable: on screen, in a normal size, without sideways scroll.
    line = page.locator("#log-view").get_by_text("last line of the report", exact=True)
    check(line).to_be_visible(timeout=20_000)
    check(line).to_be_in_viewport()
    size = float(line.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    assert size >= 11
    assert no_sideways_scroll(page)
    screenshot(page, "comfort-phone-log")

    # Wider again, the same page can steer the project: the phone only hid the controls.
    page.set_viewport_size({"width": 1366, "height": 800})
    check(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    page.get_by_role("tab", name="Files").click()
    check(upload).to_be_visible()
