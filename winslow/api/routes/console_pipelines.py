"""The console's pipelines pages: the list, and one editor for viewing, fixing and creating.

The list shows good pipelines and, apart, the files that failed to load with every problem,
so a broken file is never hidden. The editor opens any pipeline file, broken ones included
(that is how they get fixed), and checks the text through the same validation the API and
CLI use; saving goes through ``PUT /api/v1/pipelines/{name}`` from ``pipeline.js``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from winslow.api.access import pipeline_role, visible_pipelines
from winslow.api.deps import ContextDep
from winslow.api.routes.console import PageCaller, PageUser, render
from winslow.errors import NotFoundError, PipelineError, ValidationError
from winslow.pipeline.folder import PIPELINE_SUFFIXES
from winslow.pipeline.model import NAME_PATTERN, Confirmation

if TYPE_CHECKING:
    from winslow.api.context import AppContext
    from winslow.errors import PipelineProblem
    from winslow.pipeline.model import Pipeline

router = APIRouter(include_in_schema=False)

NEW_PIPELINE_TEXT = """\
name: my-pipeline
description: What this pipeline does, in one line.
variables:
  INPUT_VIDEO: {description: pool path of the video, required: true}
stages:
  - name: first
    command: ["sh", "-c", "echo working on ${INPUT_VIDEO}"]
"""
"""What the editor starts from for a new pipeline: short, valid, and showing the shape."""


@dataclass(frozen=True)
class ProblemView:
    """One problem as the pages show it: the file's name (not its path) and a location."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    @property
    def where(self) -> str:
        """``broken.yaml:4:5``: as much of the location as is known."""
        parts = [self.file, *(str(n) for n in (self.line, self.column) if n is not None)]
        return ":".join(parts)


@dataclass(frozen=True)
class StageView:
    """A stage as the editor's summary shows it."""

    name: str
    needs: list[str]
    gate: bool
    image: str | None
    command: str


def problem_views(error: PipelineError) -> list[ProblemView]:
    return [
        ProblemView(Path(p.file).name, p.line, p.column, p.field, p.message) for p in error.problems
    ]


def problem_dicts(problems: list[PipelineProblem]) -> list[dict[str, Any]]:
    """The problems in the API's shape, for the editor's script."""
    return [
        {
            "file": Path(p.file).name,
            "line": p.line,
            "column": p.column,
            "field": p.field,
            "message": p.message,
        }
        for p in problems
    ]


def stage_views(pipeline: Pipeline) -> list[StageView]:
    return [
        StageView(
            name=stage.name,
            needs=pipeline.needs_of(stage.name),
            gate=stage.confirm is not Confirmation.NEVER,
            image=stage.image,
            command=shlex.join(stage.command or []),
        )
        for stage in pipeline.stages
    ]


def pipeline_files(context: AppContext, good: set[str]) -> dict[str, str]:
    """The file name of each good pipeline, by pipeline name."""
    return {name: path.name for name, path in context.pipelines.files().items() if name in good}


def editable_name(file_name: str) -> str | None:
    """The name the editor opens a broken file under (its stem), if that is a valid name."""
    stem = Path(file_name).stem
    return stem if re.fullmatch(NAME_PATTERN, stem) else None


@router.get("/pipelines", response_class=HTMLResponse)
def pipelines_page(request: Request, context: ContextDep, caller: PageCaller) -> HTMLResponse:
    user = caller.name
    good, broken = context.pipelines.load_all()
    shown = set(visible_pipelines(context, caller, good))
    good = {name: pipeline for name, pipeline in good.items() if name in shown}
    files = pipeline_files(context, set(good))
    rows = [
        {
            "name": p.name,
            "description": p.description,
            "stages": [s.name for s in p.stages],
            "file": files.get(p.name, ""),
        }
        for p in sorted(good.values(), key=lambda p: p.name)
    ]
    broken_files = [
        {"file": file, "open_as": editable_name(file), "problems": problem_views(error)}
        for file, error in sorted(broken.items())
    ]
    return render(
        request,
        context,
        "pipelines.html",
        user,
        title="Pipelines",
        rows=rows,
        broken=broken_files,
        folder=str(context.pipelines.path),
    )


@router.get("/pipelines/new", response_class=HTMLResponse)
def new_pipeline_page(request: Request, context: ContextDep, user: PageUser) -> HTMLResponse:
    return render(
        request,
        context,
        "pipeline.html",
        user,
        title="New pipeline",
        name=None,
        file=None,
        text=NEW_PIPELINE_TEXT,
        problems=[],
        stages=[],
        missing=None,
    )


@router.get("/pipelines/{name}", response_class=HTMLResponse)
def pipeline_page(
    name: str, request: Request, context: ContextDep, caller: PageCaller
) -> HTMLResponse:
    user = caller.name
    try:
        if pipeline_role(context, caller, name) is None:
            raise NotFoundError(f"No pipeline '{name}'; `winslow pipeline list` shows them.")
        text = context.pipelines.read_text(name)
    except (NotFoundError, ValidationError) as error:
        response = render(
            request,
            context,
            "pipeline.html",
            user,
            title=name,
            name=name,
            missing=error.message,
        )
        response.status_code = 404
        return response
    good, broken = context.pipelines.load_all()
    files = pipeline_files(context, set(good))
    file = files.get(name) or next(
        (f"{name}{s}" for s in PIPELINE_SUFFIXES if f"{name}{s}" in broken), None
    )
    problems: list[PipelineProblem] = []
    stages: list[StageView] = []
    if file in broken:
        problems = broken[file].problems
    elif name in good:
        stages = stage_views(good[name])
    return render(
        request,
        context,
        "pipeline.html",
        user,
        title=name,
        name=name,
        file=file,
        text=text,
        problems=problem_dicts(problems),
        stages=stages,
        missing=None,
    )
