"""A run's resource usage: the samples the engine kept while it ran, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from winslow.api.access import ProjectReader
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import RunIdPath
from winslow.api.routes import API_V1
from winslow.store.usage import UsagePoint, run_samples

CSV_COLUMNS = ("at", "cpu_percent", "memory_mb", "gpu_percent", "gpu_memory_mb")
"""The header of ``usage.csv``, the fields of each sample in order."""

router = APIRouter(prefix=f"{API_V1}/projects", tags=["projects"])


class UsageSamplePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    cpu_percent: float
    """Of one core: 250 means two and a half cores busy."""
    memory_mb: float
    gpu_percent: float | None
    """Mean utilisation of the run's GPUs; None where it has none or none was measured."""
    gpu_memory_mb: float | None


class UsagePeakPublic(BaseModel):
    """The largest of each figure over the samples; None where no sample has it."""

    cpu_percent: float | None
    memory_mb: float | None
    gpu_percent: float | None
    gpu_memory_mb: float | None


class UsagePublic(BaseModel):
    run: int
    interval_seconds: float
    """How often samples are taken; the older samples of a very long run are sparser."""
    samples: list[UsageSamplePublic]
    peak: UsagePeakPublic


@router.get("/{ref}/runs/{run_id}/usage", response_model=UsagePublic)
def run_usage(
    _access: ProjectReader, ref: str, run_id: RunIdPath, context: ContextDep, _user: CurrentUser
) -> UsagePublic:
    """What a run used while it ran (CPU, memory, GPUs), sampled every few seconds."""
    _name, points = _samples(context, ref, run_id)
    return UsagePublic(
        run=run_id,
        interval_seconds=context.engine.usage.interval_seconds,
        samples=[UsageSamplePublic.model_validate(p) for p in points],
        peak=UsagePeakPublic(
            cpu_percent=_peak(p.cpu_percent for p in points),
            memory_mb=_peak(p.memory_mb for p in points),
            gpu_percent=_peak(p.gpu_percent for p in points),
            gpu_memory_mb=_peak(p.gpu_memory_mb for p in points),
        ),
    )


@router.get(
    "/{ref}/runs/{run_id}/usage.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One sample per line."}},
)
def run_usage_csv(
    _access: ProjectReader, ref: str, run_id: RunIdPath, context: ContextDep, _user: CurrentUser
) -> Response:
    """The same samples as ``usage``, as CSV: one line each, a GPU figure empty where
    unknown."""
    name, points = _samples(context, ref, run_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in points:
        writer.writerow(
            [
                # The same form as the JSON's times: ISO 8601 in UTC, ending in Z.
                p.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                p.cpu_percent,
                p.memory_mb,
                "" if p.gpu_percent is None else p.gpu_percent,
                "" if p.gpu_memory_mb is None else p.gpu_memory_mb,
            ]
        )
    filename = f"{name}-run-{run_id}-usage.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _samples(context: AppContext, ref: str, run_id: int) -> tuple[str, list[UsagePoint]]:
    """The project's name and the run's samples; ``NotFoundError`` (404) for an unknown
    project, or a run that is not the project's."""
    project = context.store.get_project(ref)
    context.store.get_run(project.id, run_id)
    return project.name, run_samples(context.store, run_id)


def _peak(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None
