"""The gate card: what the gate a project waits at shows and asks.

``GET /projects/{ref}/gate`` answers while the project awaits a person at a gate (or, with
``?stage=``, for any gated stage): the
gate's description with the results it quotes filled in, as Markdown and as HTML rendered
here (markdown-it with raw HTML off, so neither a pipeline nor a stage's result can put
markup into the console), the typed inputs with the answers prefilled, and the workspace
files the gate asks a person to review, each with the run whose workspace holds it. The
answers go back with the resume (``POST /projects/{ref}/resume`` with ``answers``).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from winslow import defaults
from winslow.api.access import ProjectReader
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.routes import API_V1
from winslow.api.routes.workspaces import read_workspace
from winslow.core.models import Project, Run
from winslow.core.planning.runs import current_run_sets, effective_variables, results_view
from winslow.core.states import ProjectState, StageRunState
from winslow.errors import NotFoundError, WinslowError
from winslow.pipeline.gate import (
    POOL_PREFIX,
    GateAsk,
    GateInput,
    fill_description,
    pool_path,
    review_matches,
)
from winslow.pipeline.interpolate import interpolate, references
from winslow.pipeline.model import Confirmation, Pipeline

router = APIRouter(prefix=API_V1, tags=["projects"])

MAX_REVIEW_PREVIEWS = 12
"""Files one gate card previews, whatever its patterns match."""


class GateInputPublic(BaseModel):
    name: str
    label: str
    type: Literal["string", "number", "boolean", "choice"]
    help: str
    required: bool
    value: str | None
    """The prefilled answer: the project's current value, else the default."""
    min: float | None = None
    max: float | None = None
    choices: list[str] = []


class ReviewFilePublic(BaseModel):
    path: str
    run: int
    """The run whose workspace holds the file; for a pool file, whose detections apply."""
    stage: str
    source: Literal["workspace", "pool"] = "workspace"


class GatePublic(BaseModel):
    """The gate a project waits at, as its card shows it."""

    project: str
    stage: str
    description: str
    """The Markdown with the quoted results filled in."""
    description_html: str
    """``description`` rendered; raw HTML in it comes out escaped."""
    inputs: list[GateInputPublic]
    review: list[ReviewFilePublic]


@functools.cache
def _markdown() -> Any:
    """The renderer, built on first use: markdown-it is 60 modules a server without gate
    texts never needs. Raw HTML in the text is shown as text; links with unsafe schemes
    are refused."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render_markdown(text: str) -> str:
    """Return ``text`` as HTML; raw HTML in it is escaped, never passed through."""
    return str(_markdown().render(text))


StageQuery = Annotated[
    str | None,
    Query(
        max_length=defaults.MAX_TEXT_LENGTH,
        description="A gated stage whose card to show; default: the gate the project waits at",
    ),
]


@router.get("/projects/{ref}/gate", response_model=GatePublic)
def show_gate(
    _access: ProjectReader,
    ref: str,
    context: ContextDep,
    _user: CurrentUser,
    stage: StageQuery = None,
) -> GatePublic:
    """The gate the project waits at (or gated ``stage``): description, questions and files
    to review, with the answers it would take now prefilled.

    404 when the project waits at no gate now, or ``stage`` is no gate of its pipeline.
    """
    project = context.store.get_project(ref)
    pipeline = Pipeline.model_validate(project.pipeline)
    gate = _gate_named(project, pipeline, stage)
    runs = context.store.runs(project.id)
    ask = pipeline.stage(gate).ask or GateAsk()
    current = current_run_sets(runs)
    text = ask.description
    if text:
        text = fill_description(
            text,
            results_view(pipeline, current),
            effective_variables(pipeline, project.variables),
        )
    return GatePublic(
        project=project.name,
        stage=gate,
        description=text,
        description_html=render_markdown(text) if text else "",
        inputs=[_input(project, item) for item in ask.inputs],
        review=_review_files(context, pipeline, gate, ask, runs, project.variables),
    )


def _gate_named(project: Project, pipeline: Pipeline, stage: str | None) -> str:
    """The gate asked for: ``stage`` if it is one, else the one the project waits at."""
    if stage is None:
        waiting = project.waiting_for.get("gate")
        if project.state is not ProjectState.AWAITING_INPUT or not waiting:
            raise NotFoundError(
                f"Project '{project.name}' waits at no gate now; it is {project.state.value}."
            )
        return str(waiting)
    gates = [s.name for s in pipeline.stages if s.confirm is not Confirmation.NEVER]
    if stage not in gates:
        listed = ", ".join(gates) or "none"
        raise NotFoundError(
            f"Stage '{stage}' of project '{project.name}' is no gate; its gates are: {listed}."
        )
    return stage


def _input(project: Project, item: GateInput) -> GateInputPublic:
    value = project.variables.get(item.name, item.default_text())
    return GateInputPublic(
        name=item.name,
        label=item.label or item.name,
        type=item.type.value,
        help=item.help,
        required=item.required,
        value=value,
        min=item.min,
        max=item.max,
        choices=list(item.choices),
    )


def _review_files(
    context: AppContext,
    pipeline: Pipeline,
    gate: str,
    ask: GateAsk,
    runs: list[Run],
    variables: dict[str, str],
) -> list[ReviewFilePublic]:
    """The files the review entries name, in their order: pool files by their path with
    variables filled in, workspace files as the patterns match in the workspaces of the
    gate's needs (a file in more than one is shown from the later stage, whose workspace
    carries it on)."""
    if not ask.review:
        return []
    current = current_run_sets(runs)
    found: dict[str, ReviewFilePublic] = {}
    latest: Run | None = None
    for need in pipeline.needs_of(gate):
        for run in current.get(need, {}).values():
            if run.state is not StageRunState.SUCCEEDED or run.workspace_pruned:
                continue
            latest = run if latest is None or run.id > latest.id else latest
            for path in review_matches(ask.review, _paths(context, run), MAX_REVIEW_PREVIEWS):
                found[path] = ReviewFilePublic(path=path, run=run.id, stage=run.stage)
    values = effective_variables(pipeline, variables)
    shown: dict[str, ReviewFilePublic] = {}
    for entry in ask.review:
        pooled = pool_path(entry)
        if pooled is None:
            for path in review_matches([entry], list(found), MAX_REVIEW_PREVIEWS):
                shown.setdefault(path, found[path])
        elif latest is not None and not _missing_names(pooled, values):
            path = interpolate(pooled, values)
            shown.setdefault(
                POOL_PREFIX + path,
                ReviewFilePublic(path=path, run=latest.id, stage=latest.stage, source="pool"),
            )
    return list(shown.values())[:MAX_REVIEW_PREVIEWS]


def _missing_names(text: str, values: dict[str, str]) -> bool:
    """Whether ``text`` references a variable without a value (then it is not shown)."""
    return bool(references(text) - values.keys())


def _paths(context: AppContext, run: Run) -> list[str]:
    try:
        _, _, manifest = read_workspace(context.objects, run, None)
    except WinslowError:
        return []  # a workspace storage cannot read shows no previews, not a broken card
    return list(manifest.files)
