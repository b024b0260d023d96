"""The overview's order and its count of projects that wait for a person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from winslow.core.models import Project
from winslow.core.overview import WAITING_STATES, OverviewSort, sort_projects
from winslow.core.states import ProjectState

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def project(name: str, state: ProjectState, minutes: int = 0) -> Project:
    return Project(
        id=f"id-{name}",
        name=name,
        pipeline_name="p",
        pipeline={"stages": [{"name": "a"}, {"name": "b"}]},
        state=state,
        version=1,
        created_at=AT,
        updated_at=AT + timedelta(minutes=minutes),
    )


def test_waiting_means_nothing_moves_it_until_a_person_acts() -> None:
    assert {
        ProjectState.AWAITING_INPUT,
        ProjectState.PAUSED,
        ProjectState.FAILED,
    } == WAITING_STATES


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_ties_go_by_name_in_both_directions(order) -> None:
    projects = [project(n, ProjectState.IDLE) for n in ("c", "A", "b")]
    names = [p.name for p in sort_projects(projects, OverviewSort.STATE, order, dict)]
    assert names == ["A", "b", "c"]  # one state: by name, whichever the direction


def test_progress_reads_the_done_stages_once_for_all() -> None:
    projects = [project("x", ProjectState.RUNNING), project("y", ProjectState.RUNNING)]
    asked: list[list[str]] = []

    def done(ids: list[str]) -> dict[str, set[str]]:
        asked.append(ids)
        return {"id-y": {"a", "b", "gone"}, "id-x": {"a"}}

    ordered = sort_projects(projects, OverviewSort.PROGRESS, "desc", done)
    assert [p.name for p in ordered] == ["y", "x"]
    assert asked == [["id-x", "id-y"]]
