"""A run's progress and time left, read from the end of its log (see ``core/progress.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel

from winslow.api.access import ProjectReader
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import RunIdPath
from winslow.api.routes import API_V1
from winslow.api.routes.projects import read_log_tail
from winslow.core.progress import estimate, latest_progress
from winslow.core.states import StageRunState

PROGRESS_TAIL_BYTES = 64 * 1024
"""How much of a log's end (bytes) is searched for the latest progress report."""

router = APIRouter(prefix=f"{API_V1}/projects", tags=["projects"])


class ProgressPublic(BaseModel):
    run: int
    state: StageRunState
    percent: float | None
    """The latest percentage the stage printed, 0 to 100; None when it printed none."""
    at: datetime | None
    """When the stage printed it (the log line's time)."""
    seconds_left: int | None
    """A linear estimate while the run runs; None when it does not or progress is unknown."""
    source: str = "log"


@router.get("/{ref}/runs/{run_id}/progress", response_model=ProgressPublic)
def run_progress(
    _access: ProjectReader, ref: str, run_id: RunIdPath, context: ContextDep, _user: CurrentUser
) -> ProgressPublic:
    """The latest progress a run's stage printed (``NN %``) and, while it runs, its time left."""
    project = context.store.get_project(ref)
    run = context.store.get_run(project.id, run_id)
    _start, data = read_log_tail(context, run, PROGRESS_TAIL_BYTES)
    progress = latest_progress(data.decode("utf-8", errors="replace").split("\n"))
    seconds_left = None
    if progress is not None and run.state is StageRunState.RUNNING:
        seconds_left = estimate(progress.percent / 100, run.started_at, datetime.now(UTC))
    return ProgressPublic(
        run=run.id,
        state=run.state,
        percent=None if progress is None else progress.percent,
        at=None if progress is None else progress.at,
        seconds_left=seconds_left,
    )
