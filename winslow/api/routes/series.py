"""A run's log-parser time series (see ``core/outputs.py``), as JSON or CSV, and the runs of
one stage side by side.

An ended run shows the series stored when it ended; a run still running shows what its
live log holds so far. A run that ended without stored series (an older run, or its log
was archived after the engine looked) has them computed from its archived log with the
parsers its project's pipeline has now, and stored, so a long log is read once.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from winslow.api.access import ProjectReader
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import RunIdPath
from winslow.api.routes import API_V1
from winslow.api.routes.projects import read_log
from winslow.core.models import Project, Run
from winslow.core.outputs import Series
from winslow.core.states import StageRunState
from winslow.engine.outputs import archived_series, log_series, read_series
from winslow.errors import NotFoundError, ValidationError
from winslow.pipeline.model import LogParser, Pipeline
from winslow.storage.objects import content_disposition

LATEST_RUNS = 10
"""Runs a stage's series show when the request names none: the stage's latest."""

MAX_COMPARED_RUNS = 50
"""Most runs one request for a stage's series may name."""

CSV_HEADER = ("run", "stage", "series", "at", "field", "value")
"""Columns of a run's series as CSV: one row per point and field."""

router = APIRouter(prefix=f"{API_V1}/projects", tags=["projects"])


class PointPublic(BaseModel):
    at: datetime
    """The time of the log line that matched."""
    values: dict[str, float]
    """Field → the number its group held; fields whose text was no number are left out."""


class SeriesPublic(BaseModel):
    name: str
    """The log parser's name."""
    fields: list[str]
    """The parser's named groups, in pattern order."""
    points: list[PointPublic]
    truncated: bool
    """More lines matched than are kept; the points are thinned evenly (the last is kept)."""


class RunSeriesPublic(BaseModel):
    run: int
    stage: str
    combination: dict[str, str]
    state: StageRunState
    live: bool
    """The run is still pending or running: its series may still grow."""
    series: list[SeriesPublic]


class StageSeriesPublic(BaseModel):
    stage: str
    runs: list[RunSeriesPublic]


@router.get("/{ref}/runs/{run_id}/series", response_model=RunSeriesPublic)
def run_series(
    _access: ProjectReader, ref: str, run_id: RunIdPath, context: ContextDep, _user: CurrentUser
) -> RunSeriesPublic:
    """The time series the stage's log parsers found in the run's log."""
    project = context.store.get_project(ref)
    run = context.store.get_run(project.id, run_id)
    return _public(context, _parsers_of(project, run.stage), run)


@router.get(
    "/{ref}/runs/{run_id}/series.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per value."}},
)
def run_series_csv(
    _access: ProjectReader, ref: str, run_id: RunIdPath, context: ContextDep, _user: CurrentUser
) -> Response:
    """The run's series as CSV (``run,stage,series,at,field,value``), one row per value."""
    project = context.store.get_project(ref)
    run = context.store.get_run(project.id, run_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for one in _series_of(context, _parsers_of(project, run.stage), run):
        for point in one.points:
            at = point.at.isoformat()
            for field in one.fields:
                if field in point.values:
                    value = _csv_number(point.values[field])
                    writer.writerow((run.id, run.stage, one.name, at, field, value))
    name = f"{project.name}-{run.stage}-run{run.id}-series.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition(name)},
    )


@router.get("/{ref}/stages/{stage}/series", response_model=StageSeriesPublic)
def stage_series(
    _access: ProjectReader,
    ref: str,
    stage: str,
    context: ContextDep,
    _user: CurrentUser,
    runs: Annotated[
        str | None,
        Query(description="Run IDs of this stage, comma-separated; default: its latest 10"),
    ] = None,
) -> StageSeriesPublic:
    """The series of several runs of one stage, to compare them."""
    project = context.store.get_project(ref)
    every = context.store.runs(project.id)
    of_stage = [run for run in every if run.stage == stage]
    defined = {s.name for s in Pipeline.model_validate(project.pipeline).stages}
    if not of_stage and stage not in defined:
        raise NotFoundError(
            f"Project '{project.name}' has no stage '{stage}'; `winslow project show "
            f"{project.name}` lists its stages."
        )
    if runs is None:
        chosen = of_stage[-LATEST_RUNS:]
    else:
        chosen = _pick(project, stage, every, _run_ids(runs))
    parsers = _parsers_of(project, stage)
    return StageSeriesPublic(stage=stage, runs=[_public(context, parsers, r) for r in chosen])


def _run_ids(text: str) -> list[int]:
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise ValidationError(
                f"runs={text!r}: {part!r} is not a run ID; give run IDs as runs=3,5,8."
            )
        if int(part) not in ids:
            ids.append(int(part))
    if len(ids) > MAX_COMPARED_RUNS:
        raise ValidationError(
            f"runs names {len(ids)} runs; compare at most {MAX_COMPARED_RUNS} at a time."
        )
    return ids


def _pick(project: Project, stage: str, every: list[Run], ids: list[int]) -> list[Run]:
    """The runs ``ids`` names, in that order; 404 for one that is not a run of ``stage``."""
    by_id = {run.id: run for run in every}
    picked: list[Run] = []
    for run_id in ids:
        run = by_id.get(run_id)
        if run is None:
            raise NotFoundError(
                f"Project '{project.name}' has no run {run_id}; `winslow project show "
                f"{project.name}` lists its runs."
            )
        if run.stage != stage:
            raise NotFoundError(
                f"Run {run_id} of project '{project.name}' is a run of stage '{run.stage}', "
                f"not '{stage}'; leave it out, or compare the runs of '{run.stage}'."
            )
        picked.append(run)
    return picked


def _parsers_of(project: Project, stage: str) -> list[LogParser]:
    """The stage's log parsers in the project's pipeline; none for a stage no longer in it."""
    try:
        return list(Pipeline.model_validate(project.pipeline).stage(stage).log_parsers)
    except KeyError:
        return []


def _series_of(context: AppContext, parsers: list[LogParser], run: Run) -> list[Series]:
    if run.active:
        # The node has the live log; the backend reads it whole (no ranged reads there).
        return log_series(parsers, [read_log(context, run, 0)])
    stored = read_series(context.objects, run)
    if stored is not None:
        return stored
    if not parsers:
        return []
    archived = archived_series(context.objects, run, parsers)
    if archived is not None:
        return archived
    return log_series(parsers, [read_log(context, run, 0)])


def _public(context: AppContext, parsers: list[LogParser], run: Run) -> RunSeriesPublic:
    return RunSeriesPublic(
        run=run.id,
        stage=run.stage,
        combination=run.combination,
        state=run.state,
        live=run.active,
        series=[
            SeriesPublic(
                name=one.name,
                fields=list(one.fields),
                points=[PointPublic(at=p.at, values=p.values) for p in one.points],
                truncated=one.truncated,
            )
            for one in _series_of(context, parsers, run)
        ],
    )


def _csv_number(value: float) -> str:
    """``3`` rather than ``3.0`` for a whole number, so counts read as counts."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)
