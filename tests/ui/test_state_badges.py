"""Every project and run state has a badge style in the console, so a new state (such as
``failing``) never shows as plain text. Read from ``console.css``; no browser needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from winslow.core.states import ProjectState, StageRunState

CSS = Path(__file__).resolve().parents[2] / "winslow" / "ui" / "static" / "console.css"
STATES = sorted({state.value for state in ProjectState} | {state.value for state in StageRunState})
STATES.remove(ProjectState.IDLE.value)  # idle wears the plain ``.state`` look


@pytest.mark.parametrize("state", STATES)
def test_state_has_a_badge_style(state: str) -> None:
    assert re.search(rf"\.state-{state}\b", CSS.read_text()), f"no .state-{state} in console.css"


def test_failing_looks_like_failed() -> None:
    rule = next(line for line in CSS.read_text().splitlines() if ".state-failing" in line)
    assert ".state-failed" in rule
