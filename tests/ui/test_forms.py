"""Forms speak the user's language: a refusal of the API is put onto the field it is about
(marked, its words beside it, focused), in the redo dialog and in the variables form."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.server import Server
from tests.ui.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GATED = """
name: gated
stages:
  - name: make
    command: ["sh", "-c", "echo made > out.txt"]
  - name: review
    gate: true
    command: ["true"]
"""


def expect():
    return pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def winslow_server(module_server: Server) -> Server:
    # Each test makes its own project, so one server serves them all.
    return module_server


def waiting(console: Server, tmp_path, project: str) -> dict:
    file = tmp_path / "gated.yaml"
    file.write_text(GATED)
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", project, "--pipeline", "gated", "--start")
    return console.wait_for(project, {"awaiting_input"}, timeout=90)


DESCRIBED = """(id) => {
  const field = document.getElementById(id);
  const [first] = (field.getAttribute('aria-describedby') || '').split(' ');
  const note = document.getElementById(first);
  return note && note.classList.contains('field-problem') ? note.textContent : null;
}"""


def test_redo_dialog_marks_the_memory_field_the_api_refused(page, console, tmp_path) -> None:
    check = expect()
    waiting(console, tmp_path, "forms-redo")
    page.goto("/projects/forms-redo")
    page.get_by_role("button", name="Redo stage make with changes").click()
    dialog = page.get_by_role("dialog")
    check(dialog).to_be_visible()
    memory = dialog.get_by_label("Memory")
    memory.fill("0")
    dialog.get_by_label("CPUs").fill("2")
    dialog.get_by_role("button", name="Redo", exact=True).click()

    # The API's 422 names overrides.resources.memory: the Memory field carries it.
    check(memory).to_have_attribute("aria-invalid", "true")
    check(memory).to_be_focused()
    assert page.evaluate(DESCRIBED, "redo-memory") == "Must be greater than 0."
    check(dialog.locator(".field-problem")).to_have_count(1)
    check(dialog.get_by_role("alert")).to_have_text("Not redone: change Memory as marked.")
    check(dialog.get_by_label("CPUs")).not_to_have_attribute("aria-invalid", "true")
    assert "overrides.resources" not in dialog.inner_text()  # no internal path in sight
    check(dialog).to_be_visible()
    assert len(console.json("project", "show", "forms-redo")["runs"]) == 1
    screenshot(page, "forms-redo-memory")

    # Changing the field takes its mark away; the redo then goes through.
    memory.fill("512M")
    check(memory).not_to_have_attribute("aria-invalid", "true")
    check(dialog.locator(".field-problem")).to_have_count(0)
    dialog.get_by_role("button", name="Redo", exact=True).click()
    check(dialog).to_be_hidden()
    # The overrides wait on the project until the engine creates the redo's run.
    deadline = time.monotonic() + 30
    runs = console.api("/projects/forms-redo")["runs"]
    while len(runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        runs = console.api("/projects/forms-redo")["runs"]
    assert runs[-1]["overrides"]["resources"]["memory_mb"] == 512


def test_variables_form_marks_the_variable_the_api_refused(page, console, tmp_path) -> None:
    check = expect()
    waiting(console, tmp_path, "forms-vars")
    page.goto("/projects/forms-vars")
    page.get_by_role("tab", name="Variables").click()
    page.locator("#new-variable-name").fill("WINSLOW_STAGE")
    page.locator("#new-variable-value").fill("mine")
    page.get_by_role("button", name="Add variable").click()
    page.get_by_role("button", name="Save variables").click()

    field = page.locator("#var-WINSLOW_STAGE")
    check(field).to_have_attribute("aria-invalid", "true")
    check(field).to_be_focused()
    words = page.evaluate(DESCRIBED, "var-WINSLOW_STAGE")
    assert words and words.startswith("'WINSLOW_STAGE' starts with WINSLOW_")
    assert "give the variable another name" in words
    check(page.locator("#variables-status")).to_have_text("Not saved: see the marked field.")
    check(page.locator("#errors .error")).to_have_count(0)  # said at the field, not twice
    assert console.json("project", "show", "forms-vars")["variables"] == {}
    screenshot(page, "forms-variables")
