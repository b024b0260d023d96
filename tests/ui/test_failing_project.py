"""A failing project in a real browser: the failure shows at once, in the colours of a
failed one, with its reason, while the other branch still runs; pause and resume work."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_failing_project_shows_its_failure_and_can_be_paused(page, console, tmp_path) -> None:
    check = pytest.importorskip("playwright.sync_api").expect
    go_on = tmp_path / "go-on"
    file = tmp_path / "branches.yaml"
    file.write_text(
        "name: ui-branches\nstages:\n"
        '  - name: report\n    command: ["sh", "-c", "exit 2"]\n'
        "  - name: infer\n    needs: []\n"
        f'    command: ["sh", "-c", "while [ ! -f {go_on} ]; do sleep 0.1; done"]\n'
    )
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", "branches", "--pipeline", "ui-branches", "--start")
    console.wait_for("branches", {"failing"})
    page.goto("/projects/branches")
    state = page.locator("#project-state .state")
    check(state).to_have_text("failing")
    check(state).to_have_class(re.compile(r"\bstate-failing\b"))
    check(page.locator("#project-reason")).to_contain_text(
        "failed: exited with code 2; the project ends failed once stage 'infer' has ended"
    )
    check(page.get_by_role("button", name="Resume", exact=True)).to_be_enabled()
    pause = page.get_by_role("button", name="Pause after current stage")
    check(pause).to_be_enabled()
    pause.click()
    check(state).to_have_text("pausing")
    go_on.touch()
    check(state).to_have_text("failed", timeout=30_000)
