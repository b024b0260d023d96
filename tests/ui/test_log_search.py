"""Searching the whole log from the log viewer, in a real browser: hits with their line
numbers stream in under the search box; choosing one shows the log around it, read from
the server when it is far beyond the loaded lines, numbered from the hit's line."""

from __future__ import annotations

import pytest

from tests.ui.conftest import screenshot
from tests.ui.test_logview_files import IN_VIEW, MOUNT, api_get, run_of

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# 60,000 lines: the viewer loads only the last 256 KiB (about 5,000 of them). The words
# are split in the command (`nee""dle`) so that its own log line does not match.
HAYSTACK = """
name: haystack
stages:
  - name: talk
    command:
      - sh
      - -c
      - >-
        seq -f 'line %g' 1 149; echo 'nee''dle early'; seq -f 'line %g' 151 59989;
        echo 'nee''dle late'; seq -f 'line %g' 59991 60000
"""


def mount(page) -> None:
    """The viewer alone on a quiet page of the console (the pipelines list)."""
    page.goto("/pipelines")
    page.evaluate(
        MOUNT, ["/static/js/logview.js", "mountLogViewer", "haystack", ["/static/logview.css"]]
    )


HITS = "() => [...document.querySelectorAll('#panel .logview-hit')].map((b) => b.innerText)"
NUMBERED = """(text) => {
  const row = [...document.querySelectorAll('#panel .logview-line')]
    .find((e) => e.querySelector('.logview-text').textContent === text);
  if (!row) return null;
  const number = row.querySelector('.logview-num')?.textContent;
  return [number, row.classList.contains('logview-target'), document.activeElement === row];
}"""


def test_search_box_finds_hits_in_the_whole_log_and_jumps_to_them(page, console, tmp_path) -> None:
    pipeline = tmp_path / "haystack.yaml"
    pipeline.write_text(HAYSTACK)
    console.cli("pipeline", "apply", str(pipeline))
    console.cli("project", "create", "haystack", "--pipeline", "haystack", "--start")
    console.wait_for("haystack", {"succeeded"})
    talk = run_of(console, "haystack", "talk")
    whole = api_get(console, f"/projects/haystack/runs/{talk['id']}/logs").text.split("\n")
    early = next(n for n, text in enumerate(whole, start=1) if text.endswith("needle early"))
    late = next(n for n, text in enumerate(whole, start=1) if text.endswith("needle late"))

    mount(page)
    page.evaluate("(run) => window.panel.show(run)", talk)
    page.wait_for_function(IN_VIEW, arg="line 60000")
    assert page.evaluate(IN_VIEW, "needle early") is False  # far beyond the loaded lines

    # Typing searches the server; the hits come with their line numbers.
    box = page.locator("#log-search")
    assert box.get_attribute("data-shortcut") == "search"
    box.fill("NEEDLE")
    page.locator("#panel .logview-hit").nth(1).wait_for()
    status = page.locator("#panel .logview-search-status")
    status.get_by_text("2 lines match in the whole log.").wait_for()
    hits = page.evaluate(HITS)
    numbers = page.locator("#panel .logview-hit-num").all_text_contents()
    assert numbers == [f"line {early:,}", f"line {late:,}"]
    assert "needle early" in hits[0] and "needle late" in hits[1]
    assert page.locator("#panel .logview-hit mark").first.inner_text() == "needle"
    screenshot(page, "log-search-hits")

    # Choosing the hit far beyond the loaded lines reads the log around it and shows it,
    # numbered, marked and focused.
    page.locator("#panel .logview-hit").first.click()
    page.wait_for_function(IN_VIEW, arg="needle early")
    assert page.evaluate(NUMBERED, "needle early") == [f"{early:,}", True, True]
    assert page.evaluate(NUMBERED, "line 149") == [f"{early - 1:,}", False, False]
    assert page.evaluate(IN_VIEW, "line 60000") is False
    screenshot(page, "log-search-jump")

    # Below the window, the rest of the log loads on request, numbered on.
    later = page.get_by_role("button", name="Load later")
    assert later.is_visible()
    last_before = page.evaluate(
        "() => [...document.querySelectorAll('#panel .logview-text')].at(-1).textContent"
    )
    later.click()
    next_line = f"line {int(last_before.split()[1]) + 1}"
    page.wait_for_function(
        "(t) => [...document.querySelectorAll('#panel .logview-text')]"
        ".some((e) => e.textContent === t)",
        arg=next_line,
    )
    number = page.evaluate(NUMBERED, next_line)[0]
    assert number == f"{whole.index(next(t for t in whole if t.endswith(' ' + next_line))) + 1:,}"

    # The keyboard: down from the box to the hits, Enter on one shows it (in the loaded tail).
    box.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    focused = "() => document.activeElement.querySelector('.logview-hit-num').textContent"
    assert page.evaluate(focused) == f"line {late:,}"
    page.keyboard.press("Enter")
    page.wait_for_function(IN_VIEW, arg="needle late")
    assert page.evaluate(NUMBERED, "needle late") == [f"{late:,}", True, True]

    # A pattern that is no regular expression: the box is marked and says why.
    page.get_by_label("regex").check()
    box.fill("needle (")
    box.press("Enter")
    status.get_by_text("is not a regular expression").wait_for()
    assert box.get_attribute("aria-invalid") == "true"
    box.fill(r"needle (early|late)$")
    box.press("Enter")
    status.get_by_text("2 lines match in the whole log.").wait_for()
    assert box.get_attribute("aria-invalid") is None
