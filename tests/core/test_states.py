"""Every (from, to) pair of both transition tables: legal ones allowed, the rest refused."""

from __future__ import annotations

import itertools

import pytest

from winslow.core.states import (
    PROJECT_TRANSITIONS,
    RUN_TRANSITIONS,
    TERMINAL_RUN_STATES,
    ProjectState,
    StageRunState,
    can_move_project,
    can_move_run,
)

LEGAL_PROJECT = {
    (ProjectState.IDLE, ProjectState.RUNNING),
    (ProjectState.RUNNING, ProjectState.PAUSING),
    (ProjectState.RUNNING, ProjectState.FAILING),
    (ProjectState.RUNNING, ProjectState.PAUSED),
    (ProjectState.RUNNING, ProjectState.AWAITING_INPUT),
    (ProjectState.RUNNING, ProjectState.FAILED),
    (ProjectState.RUNNING, ProjectState.SUCCEEDED),
    (ProjectState.PAUSING, ProjectState.PAUSED),
    (ProjectState.PAUSING, ProjectState.RUNNING),
    (ProjectState.PAUSING, ProjectState.FAILED),
    (ProjectState.FAILING, ProjectState.RUNNING),
    (ProjectState.FAILING, ProjectState.PAUSING),
    (ProjectState.FAILING, ProjectState.PAUSED),
    (ProjectState.FAILING, ProjectState.AWAITING_INPUT),
    (ProjectState.FAILING, ProjectState.FAILED),
    (ProjectState.FAILING, ProjectState.SUCCEEDED),
    (ProjectState.PAUSED, ProjectState.RUNNING),
    (ProjectState.AWAITING_INPUT, ProjectState.RUNNING),
    (ProjectState.AWAITING_INPUT, ProjectState.PAUSED),
    (ProjectState.FAILED, ProjectState.RUNNING),
    (ProjectState.SUCCEEDED, ProjectState.RUNNING),
}

PROJECT_PAIRS = list(itertools.product(ProjectState, ProjectState))
RUN_PAIRS = list(itertools.product(StageRunState, StageRunState))


@pytest.mark.parametrize(
    ("current", "target"), PROJECT_PAIRS, ids=[f"{a.name} => {b.name}" for a, b in PROJECT_PAIRS]
)
def test_project_transition(current: ProjectState, target: ProjectState) -> None:
    assert can_move_project(current, target) is ((current, target) in LEGAL_PROJECT)


@pytest.mark.parametrize(
    ("current", "target"), RUN_PAIRS, ids=[f"{a.name} => {b.name}" for a, b in RUN_PAIRS]
)
def test_run_transition(current: StageRunState, target: StageRunState) -> None:
    # A skipped run is created skipped; nothing ever moves into or out of that state.
    legal = (
        current not in TERMINAL_RUN_STATES
        and target not in (StageRunState.PENDING, StageRunState.SKIPPED)
        and (current is StageRunState.PENDING or target is not StageRunState.RUNNING)
    )
    assert can_move_run(current, target) is legal


def test_every_state_has_a_row_in_each_table() -> None:
    assert set(PROJECT_TRANSITIONS) == set(ProjectState)
    assert set(RUN_TRANSITIONS) == set(StageRunState)


def test_states_are_their_wire_words() -> None:
    assert ProjectState.AWAITING_INPUT == "awaiting_input"
    assert StageRunState.LOST.value == "lost"
