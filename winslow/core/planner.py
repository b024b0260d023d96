"""Decide what a project needs next: a pure function of its definition, state and runs.

The engine observes (store and backend), calls ``decide`` and carries the decision out.
Pipelines are graphs: a stage starts once every stage it needs has a current successful
run, so independent branches start together and "the current stage" is a set.

``decide`` asks named rules in order (``planning/rules.py``: ``PROJECT_RULES``, and
``STAGE_RULES`` for each stage); the first that answers is the decision. Which runs count
and where each stage stands is in ``planning/runs.py``; the answers are the values of
``planning/decisions.py``. This module is the one place to import them from.
"""

from __future__ import annotations

from winslow.core.models import Project, Run
from winslow.core.planning.decisions import Decision, MoveProject, SkipRun, StartRun
from winslow.core.planning.rules import Situation, apply_rules
from winslow.core.planning.runs import (
    RunSet,
    StageStatus,
    current_run_list,
    current_run_sets,
    current_runs,
    effective_variables,
    missing_variables,
    needs_confirmation,
    results_view,
    stage_status,
    succeeded_in_sweep_order,
    tolerated,
)
from winslow.pipeline.model import Pipeline

__all__ = [
    "Decision",
    "MoveProject",
    "RunSet",
    "SkipRun",
    "StageStatus",
    "StartRun",
    "current_run_list",
    "current_run_sets",
    "current_runs",
    "decide",
    "effective_variables",
    "missing_variables",
    "needs_confirmation",
    "results_view",
    "stage_status",
    "succeeded_in_sweep_order",
    "tolerated",
]


def decide(project: Project, pipeline: Pipeline, runs: list[Run]) -> Decision:
    """Return what ``project`` needs now; an empty decision means nothing.

    Only running, pausing and failing projects ever need anything. Failures come first (a
    retry is the run's own business; an exhausted one makes the project ``failing`` while
    branches that do not need it go on, then ``failed``), then each stage the project may
    start, then the project's endings: paused, succeeded, or stuck.
    """
    return apply_rules(Situation.of(project, pipeline, runs))
