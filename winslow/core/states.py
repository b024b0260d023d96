"""Project and run states, and the transitions between them, as data.

States are ``str`` enums whose value is the wire word, so JSON, SQL and logs agree.
``engine/transitions.py`` is the one place that checks these tables before writing.
"""

from __future__ import annotations

from enum import Enum


class ProjectState(str, Enum):
    IDLE = "idle"
    """Created, never started."""
    RUNNING = "running"
    PAUSING = "pausing"
    """A pause was asked for; active runs go on, no new stage starts."""
    FAILING = "failing"
    """A branch failed beyond its retries; the other branches go on; the project ends failed."""
    PAUSED = "paused"
    AWAITING_INPUT = "awaiting_input"
    """A gate, or variables are missing: the project says which."""
    FAILED = "failed"
    SUCCEEDED = "succeeded"


class StageRunState(str, Enum):
    PENDING = "pending"
    """Created; waiting for resources or for the backend to start it."""
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LOST = "lost"
    """The node or process running it vanished without an exit status."""
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    """Never ran: its ``when`` condition was false, or every stage it needs was skipped."""


ACTIVE_RUN_STATES = frozenset({StageRunState.PENDING, StageRunState.RUNNING})
TERMINAL_RUN_STATES = frozenset(
    {
        StageRunState.SUCCEEDED,
        StageRunState.FAILED,
        StageRunState.LOST,
        StageRunState.CANCELLED,
        StageRunState.SKIPPED,
    }
)
UNSUCCESSFUL_RUN_STATES = frozenset(
    {StageRunState.FAILED, StageRunState.LOST, StageRunState.CANCELLED}
)
DONE_RUN_STATES = frozenset({StageRunState.SUCCEEDED, StageRunState.SKIPPED})
"""Ends that let the pipeline go on."""

ADVANCING_PROJECT_STATES = frozenset(
    {ProjectState.RUNNING, ProjectState.PAUSING, ProjectState.FAILING}
)
"""States in which the engine moves a project along."""

NEEDS_PERSON_STATES = frozenset(
    {ProjectState.AWAITING_INPUT, ProjectState.FAILING, ProjectState.FAILED, ProjectState.PAUSED}
)
"""A person should look now; ``failing`` too, as its failure is known while other branches
still run."""

PROJECT_TRANSITIONS: dict[ProjectState, frozenset[ProjectState]] = {
    ProjectState.IDLE: frozenset({ProjectState.RUNNING}),
    ProjectState.RUNNING: frozenset(
        {
            ProjectState.PAUSING,
            ProjectState.FAILING,
            ProjectState.PAUSED,
            ProjectState.AWAITING_INPUT,
            ProjectState.FAILED,
            ProjectState.SUCCEEDED,
        }
    ),
    ProjectState.PAUSING: frozenset(
        {ProjectState.PAUSED, ProjectState.RUNNING, ProjectState.FAILED}
    ),
    # Resume retries the failed branch (running); pause or kill stops the rest (pausing);
    # a definition change that drops the failed stage lets the project end as running would.
    ProjectState.FAILING: frozenset(
        {
            ProjectState.RUNNING,
            ProjectState.PAUSING,
            ProjectState.PAUSED,
            ProjectState.AWAITING_INPUT,
            ProjectState.FAILED,
            ProjectState.SUCCEEDED,
        }
    ),
    ProjectState.PAUSED: frozenset({ProjectState.RUNNING}),
    ProjectState.AWAITING_INPUT: frozenset({ProjectState.RUNNING, ProjectState.PAUSED}),
    ProjectState.FAILED: frozenset({ProjectState.RUNNING}),
    ProjectState.SUCCEEDED: frozenset({ProjectState.RUNNING}),
}

RUN_TRANSITIONS: dict[StageRunState, frozenset[StageRunState]] = {
    # A short stage can end between two looks, so pending may jump straight to an end.
    StageRunState.PENDING: frozenset(
        {
            StageRunState.RUNNING,
            StageRunState.SUCCEEDED,
            StageRunState.FAILED,
            StageRunState.LOST,
            StageRunState.CANCELLED,
        }
    ),
    StageRunState.RUNNING: frozenset(
        {
            StageRunState.SUCCEEDED,
            StageRunState.FAILED,
            StageRunState.LOST,
            StageRunState.CANCELLED,
        }
    ),
    StageRunState.SUCCEEDED: frozenset(),
    StageRunState.FAILED: frozenset(),
    StageRunState.LOST: frozenset(),
    StageRunState.CANCELLED: frozenset(),
    # Skipped runs are written as skipped by the engine and never change.
    StageRunState.SKIPPED: frozenset(),
}


def can_move_project(current: ProjectState, target: ProjectState) -> bool:
    """Return whether a project may go from ``current`` to ``target``."""
    return target in PROJECT_TRANSITIONS[current]


def can_move_run(current: StageRunState, target: StageRunState) -> bool:
    """Return whether a run may go from ``current`` to ``target``."""
    return target in RUN_TRANSITIONS[current]
