"""Small builders of core values for pure tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from winslow.core.models import Project, Run
from winslow.core.planning.rules import Situation
from winslow.core.states import ProjectState, StageRunState
from winslow.pipeline.model import Pipeline

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def pipeline(*stages: dict[str, Any], variables: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline.model_validate(
        {"name": "traffic", "variables": variables or {}, "stages": list(stages)}
    )


def stage(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "command": ["true"], **extra}


def project(
    state: ProjectState = ProjectState.RUNNING, pipe: Pipeline | None = None, **extra: Any
) -> Project:
    pipe = pipe or pipeline(stage("detect"), stage("track"))
    return Project(
        id="p1",
        name="ulm-0603",
        pipeline_name=pipe.name,
        pipeline=pipe.model_dump(mode="json"),
        state=state,
        version=1,
        created_at=T0,
        updated_at=T0,
        **extra,
    )


_next_id = iter(range(1, 10_000))


def run(
    stage_name: str, state: StageRunState, attempt: int = 1, run_id: int | None = None, **extra: Any
) -> Run:
    return Run(
        id=run_id if run_id is not None else next(_next_id),
        project_id="p1",
        stage=stage_name,
        attempt=attempt,
        state=state,
        created_at=T0,
        **extra,
    )


def situation(
    pipe: Pipeline,
    runs: Iterable[Run] = (),
    state: ProjectState = ProjectState.RUNNING,
    **extra: Any,
) -> Situation:
    """What the planner's rules see for a project of ``pipe`` with these runs."""
    return Situation.of(project(state, pipe, **extra), pipe, list(runs))
