"""The project page fits a 1366 by 800 laptop: what a person needs at a gate (state, reason,
controls, the gate card, the graph) is on the first screen, the rest sits behind ARIA tabs
that work by keyboard and are kept in the address, and a failed stage's last log lines are
shown once."""

from __future__ import annotations

import re

import pytest

from tests.ui.conftest import SCREENSHOTS, VIEWPORT, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GATED = """
name: ui-gated
stages:
  - name: detect
    command: ["sh", "-c", "echo detections=12; echo 'WINSLOW_RESULT: detections=12'"]
  - name: review
    gate: true
    description: Look at the detections before the report is written.
    command: ["sh", "-c", "echo reviewed"]
  - name: report
    command: ["sh", "-c", "echo report"]
"""

FAILING = """
name: ui-fails-twice
stages:
  - name: train
    retry: {on_failure: 1}
    # The marker is computed, so the command line the log starts with does not hold it.
    command: ["sh", "-c", "echo loading weights; echo marker-$((7000 + 1)) out of memory; exit 3"]
"""

VISIBLE_COUNT = """(marker) => {
  // How often `marker` is on screen: in text nodes whose element is rendered.
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let count = 0;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const element = node.parentElement;
    if (!element || !element.checkVisibility({ visibilityProperty: true })) continue;
    count += node.textContent.split(marker).length - 1;
  }
  return count;
}"""


def expect():
    return pytest.importorskip("playwright.sync_api").expect


def bottom(page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not rendered"
    return float(box["y"] + box["height"])


def test_at_a_gate_everything_needed_is_on_the_first_screen(page, console, tmp_path) -> None:
    check = expect()
    file = tmp_path / "gated.yaml"
    file.write_text(GATED)
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", "gated", "--pipeline", "ui-gated", "--start")
    console.wait_for("gated", {"awaiting_input"})
    page.goto("/projects/gated")
    check(page.locator("#project-state")).to_have_text("awaiting input")
    check(page.get_by_role("button", name="Resume", exact=True)).to_be_enabled()
    check(page.get_by_role("tab", name="Overview")).to_have_attribute("aria-selected", "true")
    # The gate card and the graph are other engineers' modules; the page gives them room.
    check(page.locator("#gate-card")).to_be_visible(timeout=15_000)
    check(page.locator("#project-graph")).to_be_visible(timeout=15_000)
    assert page.evaluate("window.scrollY") == 0
    height = VIEWPORT["height"]
    for selector in (
        "#project-state",
        "#project-reason",
        "#project-waiting",
        "section.controls",
        "#project-tabs",
        "#gate-card",
        "#project-graph",
        "#tabpanel-overview .overview-top",
    ):
        assert bottom(page, selector) <= height, f"{selector} is below the first screen"
    # The whole page was 1,850 to 2,300 px tall with everything stacked.
    assert page.evaluate("document.documentElement.scrollHeight") <= 1200
    # The log, files, charts, variables and history are behind tabs, not below.
    for panel in ("#log-panel", "#files-panel", "#run-card", "#variable-rows", "#history-rows"):
        check(page.locator(panel)).to_be_hidden()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "project-layout-gate-first-screen.png"))
    screenshot(page, "project-layout-gate")


def test_tabs_work_by_keyboard_and_the_address_keeps_them(page, console, tmp_path) -> None:
    check = expect()
    file = tmp_path / "gated.yaml"
    file.write_text(GATED)
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", "tabbed", "--pipeline", "ui-gated", "--start")
    console.wait_for("tabbed", {"awaiting_input"})
    page.goto("/projects/tabbed")
    overview = page.get_by_role("tab", name="Overview")
    log = page.get_by_role("tab", name="Log")
    history = page.get_by_role("tab", name="History")
    check(page.get_by_role("tablist")).to_have_count(1)
    check(page.get_by_role("tab")).to_have_count(7)
    # Only the selected tab is a stop of the Tab key (roving tabindex).
    check(overview).to_have_attribute("tabindex", "0")
    check(log).to_have_attribute("tabindex", "-1")

    overview.focus()
    page.keyboard.press("ArrowRight")
    check(log).to_be_focused()
    check(log).to_have_attribute("aria-selected", "true")
    check(overview).to_have_attribute("aria-selected", "false")
    check(page.get_by_role("tabpanel", name="Log")).to_be_visible()
    check(page.locator("#log-panel")).to_be_visible()
    check(page.locator("#timeline")).to_be_hidden()
    assert page.evaluate("location.hash") == "#log"
    page.keyboard.press("End")
    check(history).to_be_focused()
    check(page.locator("#history-rows")).to_be_visible()
    check(page.locator("#history-rows")).to_contain_text("awaiting_input")
    page.keyboard.press("ArrowRight")  # wraps round to the first
    check(overview).to_be_focused()
    check(page.locator("#timeline")).to_be_visible()
    page.keyboard.press("ArrowLeft")
    check(history).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Home")
    check(overview).to_have_attribute("aria-selected", "true")
    assert page.evaluate("location.hash") == ""

    # A link to a tab, and a reload, open that tab.
    page.get_by_role("tab", name="Variables").click()
    assert page.evaluate("location.hash") == "#variables"
    page.reload()
    check(page.get_by_role("tab", name="Variables")).to_have_attribute("aria-selected", "true")
    check(page.locator("#variables-form")).to_be_visible()
    page.goto("/projects/tabbed#files")
    check(page.get_by_role("tab", name="Files")).to_have_attribute("aria-selected", "true")
    check(page.locator("#files-panel")).to_be_visible()
    check(page.locator("#timeline")).to_be_hidden()

    # A stage picked in the graph shows its newest run's details.
    page.evaluate(
        "document.dispatchEvent(new CustomEvent('winslow:select-stage', "
        "{ detail: { stage: 'detect' } }))"
    )
    check(page.get_by_role("tab", name="Run details")).to_have_attribute("aria-selected", "true")
    check(page.locator("#run-title")).to_have_text(re.compile(r"^Run \d+ · detect$"))
    check(page.locator("#run-details")).to_contain_text("detections")
    screenshot(page, "project-layout-tabs")


def test_a_failed_stage_shows_its_last_log_lines_once(page, console, tmp_path) -> None:
    check = expect()
    file = tmp_path / "fails.yaml"
    file.write_text(FAILING)
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", "fails", "--pipeline", "ui-fails-twice", "--start")
    shown = console.wait_for("fails", {"failed"})
    attempts = [r for r in shown["runs"] if r["stage"] == "train"]
    assert len(attempts) == 2, "the retry ran"
    assert all(any("marker-7001" in line for line in r["log_tail"]) for r in attempts)
    page.goto("/projects/fails")
    check(page.locator("#project-state")).to_have_text("failed")
    tail = page.locator("tr[data-tail-of] details.tail[open] pre")
    check(tail).to_have_count(1)
    check(tail).to_contain_text("marker-7001 out of memory")
    # The newest attempt's lines are open; the retry's earlier ones are one click away.
    check(page.locator("tr[data-tail-of] details.tail")).to_have_count(2)
    assert page.evaluate(VISIBLE_COUNT, "marker-7001") == 1
    screenshot(page, "project-layout-failed")

    # The whole log is on its own tab, where the lines are once too.
    page.get_by_role("tab", name="Log").click()
    check(page.locator("#log-view")).to_contain_text("marker-7001", timeout=20_000)
    assert page.evaluate(VISIBLE_COUNT, "marker-7001") == 1
    screenshot(page, "project-layout-failed-log")
