"""The pipelines pages in a real browser: list, edit with problems at their line, apply,
create, delete, and fixing a broken file."""

from __future__ import annotations

import re

import pytest

from tests.ui.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEMO = """\
name: demo
description: Two stages and a gate.
stages:
  - name: work
    command: ["sh", "-c", "echo working"]
  - name: check
    gate: true
    command: ["sh", "-c", "echo checked"]
"""


def editor_text(page) -> str:
    return page.locator("#pipeline-text").input_value()


def test_edit_shows_problems_at_their_line_and_apply_refuses_them(page, console, tmp_path) -> None:
    source = tmp_path / "demo.yaml"
    source.write_text(DEMO)
    console.cli("pipeline", "apply", str(source))

    page.goto("/pipelines")
    row = page.locator("#pipeline-rows tr[data-name=demo]")
    assert row.locator("td").all_inner_texts() == [
        "demo",
        "Two stages and a gate.",
        "2: work · check",
        "demo.yaml",
    ]

    row.get_by_role("link", name="demo").click()
    page.wait_for_url(re.compile(r".*/pipelines/demo$"))
    assert editor_text(page) == DEMO
    stages = page.locator("#stage-list li").all_inner_texts()
    assert [s.split("\n")[0] for s in stages] == ["work", "check gate"]
    assert "needs work" in stages[1]
    assert "sh -c 'echo working'" in stages[0]
    page.locator("#check-status").get_by_text("No problems").wait_for()
    screenshot(page, "pipeline-editor")

    # A typo on line 5: the check runs while typing, no button pressed.
    page.get_by_label("Definition (YAML)").fill(DEMO.replace("    command:", "    comand:", 1))
    problem = page.locator("#problem-list button.problem")
    problem.wait_for()
    words = problem.inner_text()
    assert words.startswith("line 5, column 5: stages[work].comand: unknown key 'comand'")
    assert "did you mean 'command'?" in words
    marker = page.locator("#gutter-lines .ln.bad")
    assert marker.count() == 1 and marker.inner_text().endswith("5")
    assert "did you mean 'command'?" in marker.get_attribute("title")
    assert marker.get_attribute("role") == "img"
    assert marker.get_attribute("aria-label").startswith("Line 5: 1 problem: stages[work].comand")
    assert page.get_by_label("Definition (YAML)").get_attribute("aria-invalid") == "true"

    # The list entry takes the cursor to the line.
    problem.click()
    selected = page.evaluate(
        "() => { const t = document.getElementById('pipeline-text');"
        " return [document.activeElement === t, t.value.slice(t.selectionStart, t.selectionEnd)]; }"
    )
    assert selected == [True, '    comand: ["sh", "-c", "echo working"]']

    # Apply is refused; the problem is shown and the stored pipeline is unchanged.
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("alert").get_by_text("Not applied: 1 problem").wait_for()
    assert "did you mean" in page.locator("#problem-list").inner_text()
    screenshot(page, "pipeline-problems")
    stored = console.json("pipeline", "show", "demo")
    assert stored["text"] == DEMO
    assert stored["definition"]["stages"][0]["command"] == ["sh", "-c", "echo working"]

    # Fixed and changed: applied, and stored.
    fixed = DEMO.replace("echo working", "echo fixed")
    page.get_by_label("Definition (YAML)").fill(fixed)
    page.locator("#check-status").get_by_text("No problems").wait_for()
    assert page.locator("#gutter-lines .ln.bad").count() == 0
    page.get_by_role("button", name="Apply").click()
    page.locator("#notice").get_by_text("Applied").wait_for()
    assert page.locator("#refusal").is_hidden()
    assert "sh -c 'echo fixed'" in page.locator("#stage-list").inner_text()
    stored = console.json("pipeline", "show", "demo")
    assert stored["definition"]["stages"][0]["command"] == ["sh", "-c", "echo fixed"]
    assert stored["text"] == fixed


def test_editor_keyboard_and_a_far_problem_scrolled_into_view(page, console) -> None:
    page.goto("/pipelines/new")
    editor = page.get_by_label("Definition (YAML)")

    # Tab indents by two spaces, Shift+Tab takes them away; Escape then Tab leaves.
    editor.fill("name: x\n")
    editor.press("End")
    editor.press("Tab")
    assert editor_text(page) == "name: x\n  "
    editor.press("Shift+Tab")
    assert editor_text(page) == "name: x\n"
    editor.press("Escape")
    editor.press("Tab")
    assert page.evaluate("document.activeElement.id") != "pipeline-text"

    # A problem far down: its entry scrolls the editor there; marker and band stay on it.
    text = "name: long\nstages:\n" + "".join(
        f'  - name: s{i}\n    command: ["true"]\n' for i in range(40)
    )
    lines = text.split("\n")
    lines[71] = lines[71].replace("command", "comand")
    editor.fill("\n".join(lines))
    page.get_by_role("button", name=re.compile(r"^line 72, column 5: stages\[s34\]")).click()
    where = page.evaluate(
        """() => {
        const box = (s) => document.querySelector(s).getBoundingClientRect();
        const t = document.getElementById('pipeline-text');
        return {scrolled: t.scrollTop, editor: [box('#pipeline-text').top,
                box('#pipeline-text').bottom], marker: box('#gutter-lines .ln.bad').top,
                band: box('#line-marks .band').top};
        }"""
    )
    assert where["scrolled"] > 0
    assert where["marker"] == where["band"]
    assert where["editor"][0] < where["marker"] < where["editor"][1]


@pytest.mark.own_server  # it counts every pipeline the server has
def test_create_from_the_page_then_delete_with_confirmation(page, console) -> None:
    page.goto("/pipelines")
    page.get_by_role("link", name="New pipeline").click()
    page.wait_for_url(re.compile(r".*/pipelines/new$"))
    text = 'name: fresh\nstages:\n  - name: only\n    command: ["true"]\n'
    page.get_by_label("Definition (YAML)").fill(text)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r".*/pipelines/fresh$"))
    page.locator("#notice").get_by_text("Created and applied pipeline 'fresh'").wait_for()
    assert console.json("pipeline", "show", "fresh")["text"] == text

    # A second pipeline of that name is refused rather than replacing the first.
    page.goto("/pipelines/new")
    page.get_by_label("Definition (YAML)").fill(text.replace('["true"]', '["false"]'))
    page.get_by_role("button", name="Create").click()
    page.get_by_role("alert").get_by_text("a pipeline 'fresh' exists already").wait_for()
    assert console.json("pipeline", "show", "fresh")["text"] == text

    # Leaving with unapplied changes asks first.
    asked = []
    page.once("dialog", lambda d: (asked.append(d.type), d.accept()))
    page.goto("/pipelines/fresh")
    assert asked == ["beforeunload"]
    page.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog", name="Delete pipeline fresh?")
    dialog.get_by_role("button", name="Cancel").click()
    assert dialog.is_hidden()
    assert console.json("pipeline", "list")["data"][0]["name"] == "fresh"
    page.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete pipeline").click()
    page.wait_for_url(re.compile(r".*/pipelines$"))
    assert console.json("pipeline", "list")["data"] == []
    page.get_by_text("No pipelines yet").wait_for()
    page.goto("/pipelines/fresh")
    page.get_by_role("alert").get_by_text("No pipeline 'fresh'").wait_for()


@pytest.mark.own_server  # it counts every pipeline the server has
def test_a_broken_file_is_listed_with_its_problems_and_can_be_fixed(
    page, console, tmp_path
) -> None:
    source = tmp_path / "demo.yaml"
    source.write_text(DEMO)
    console.cli("pipeline", "apply", str(source))
    folder = console.data_dir / "pipelines"
    broken = "name: broken\nstages:\n  - name: a\n    command: sh -c true\n"
    (folder / "broken.yaml").write_text(broken)

    page.goto("/pipelines")
    section = page.get_by_role("region", name="Broken files")
    entry = section.locator(".broken-file[data-file='broken.yaml']")
    assert entry.locator("li").inner_text() == (
        "broken.yaml:4:14 stages[a].command: expected a list of strings, got a string"
    )
    assert page.locator("#pipeline-rows tr[data-name]").count() == 1  # the good one still shows
    screenshot(page, "pipelines")
    entry.get_by_role("link", name="Open and fix").click()
    page.wait_for_url(re.compile(r".*/pipelines/broken$"))
    assert editor_text(page) == broken
    assert page.locator("#gutter-lines .ln.bad").inner_text().endswith("4")
    assert page.locator("#problem-list").inner_text().startswith("line 4, column 14:")

    page.get_by_label("Definition (YAML)").fill(broken.replace("sh -c true", '["true"]'))
    page.get_by_role("button", name="Apply").click()
    page.locator("#notice").get_by_text("Applied").wait_for()
    assert page.locator("#stage-list").inner_text().startswith("a")
    page.goto("/pipelines")
    assert page.get_by_role("region", name="Broken files").count() == 0
    assert page.locator("#pipeline-rows tr[data-name=broken] td").last.inner_text() == "broken.yaml"
