"""How the console's overview orders and counts projects: pure, projects in, order out.

Sorting is done on the server, over every project that matches, so the first page of a
sorted list of ten thousand is the right one. Ties go by name in both directions, so an
order never shuffles between two requests. Which projects *wait for a person* is decided
here too, because the overview's counter, its highlighted rows and its tab title must
mean the same.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from enum import Enum
from typing import Any, Literal

from winslow.core.models import Project
from winslow.core.states import ADVANCING_PROJECT_STATES, NEEDS_PERSON_STATES, ProjectState

WAITING_STATES = NEEDS_PERSON_STATES - ADVANCING_PROJECT_STATES
"""Projects that wait for a person: nothing moves them on until someone acts (a gate, a
pause, a failure). ``failing`` needs a look too, but its other branches still run; it
waits once it has ended failed."""

STATE_ORDER = (
    ProjectState.AWAITING_INPUT,
    ProjectState.FAILED,
    ProjectState.FAILING,
    ProjectState.PAUSED,
    ProjectState.PAUSING,
    ProjectState.RUNNING,
    ProjectState.IDLE,
    ProjectState.SUCCEEDED,
)
"""Sorting by state: what a person must act on first, what is finished last."""
STATE_RANK = {state: rank for rank, state in enumerate(STATE_ORDER)}


class OverviewSort(str, Enum):
    """The overview's sortable columns; the value is the wire word of ``?sort=``."""

    NAME = "name"
    STATE = "state"
    IN_STATE = "in_state"
    """How long the project has been in its state (ascending: the freshest first)."""
    PROGRESS = "progress"
    """The share of its stages done."""
    UPDATED = "updated"


SortOrder = Literal["asc", "desc"]


def stage_names(project: Project) -> set[str]:
    return {str(s["name"]) for s in project.pipeline.get("stages", [])}


def progress_of(project: Project, done: set[str]) -> float:
    """The share of ``project``'s stages done, 0 to 1 (0 for a pipeline without stages)."""
    stages = stage_names(project)
    return len(done & stages) / len(stages) if stages else 0.0


def sort_projects(
    projects: Collection[Project],
    sort: OverviewSort,
    order: SortOrder,
    done: Callable[[list[str]], Mapping[str, set[str]]],
) -> list[Project]:
    """``projects`` by ``sort`` in ``order``, ties by name; ``done`` gives the done stages
    of the projects with these IDs (called only when sorting by progress)."""
    by_name = sorted(projects, key=lambda p: p.name.lower())
    descending = order == "desc"
    key: Callable[[Project], Any]
    if sort is OverviewSort.NAME:
        return by_name[::-1] if descending else by_name
    if sort is OverviewSort.STATE:
        key = _state_rank
    elif sort is OverviewSort.IN_STATE:
        key = _state_changed
        descending = not descending  # a short time in the state is a late change of it
    elif sort is OverviewSort.UPDATED:
        key = _updated
    else:
        stages = done([p.id for p in by_name])
        key = lambda p: progress_of(p, stages.get(p.id, set()))  # noqa: E731
    # Python's sort is stable in both directions: equal keys keep the order by name.
    return sorted(by_name, key=key, reverse=descending)


def _state_rank(project: Project) -> int:
    return STATE_RANK.get(project.state, len(STATE_RANK))


def _state_changed(project: Project) -> Any:
    return project.state_changed_at or project.updated_at


def _updated(project: Project) -> Any:
    return project.updated_at
