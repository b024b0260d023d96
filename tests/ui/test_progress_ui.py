"""A running stage's progress on the project page: a labelled bar with the time left."""

from __future__ import annotations

import re

import pytest

from tests.ui.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PIPELINE = """
name: ui-progress
stages:
  - name: encode
    command: ["sh", "-c", "echo '10 %'; sleep 0.5; echo ' 40%|████      | 40/100'; sleep 60"]
"""


def expect():
    return pytest.importorskip("playwright.sync_api").expect


def test_a_running_stage_shows_its_progress_and_time_left(page, console, tmp_path) -> None:
    check = expect()
    (tmp_path / "p.yaml").write_text(PIPELINE)
    console.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    console.cli("project", "create", "bar", "--pipeline", "ui-progress", "--start")
    console.wait_for("bar", {"running"})
    page.goto("/projects/bar")
    bar = page.get_by_role("progressbar", name=re.compile(r"^40 % done, "))
    check(bar).to_be_visible(timeout=20_000)
    check(bar).to_have_attribute(
        "aria-label", re.compile(r"^40 % done, (about \d+ min|under a minute) left$")
    )
    row = page.locator('#timeline tbody[data-stage="encode"] tr.run')
    check(row).to_contain_text(re.compile(r"40 % · (about \d+ min|under a minute) left"))
    screenshot(page, "project-progress")

    console.cli("project", "kill", "bar")
    console.wait_for("bar", {"paused"})
    check(page.get_by_role("progressbar")).to_have_count(0, timeout=20_000)  # only while it runs
