"""The console's project page: one project's stages and runs, its controls, variables,
history, and the log, files, results, metrics and resource usage of any run.

The page is rendered with everything it shows at first paint as JSON (the project with
its runs, the pipeline's stages and variables, the history); ``ui/static/js/project.js``
draws from that and keeps it live through the project's event stream, using the same API
as the CLI. An unknown project is a page saying so (HTTP 404), not JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from winslow.api.access import check_project
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep
from winslow.api.models import EventPublic, ProjectPublic
from winslow.api.routes.console import PageCaller, render
from winslow.core.access import Action
from winslow.core.models import Project
from winslow.errors import NotFoundError

router = APIRouter(include_in_schema=False)

HISTORY_ON_PAGE = 500
"""History lines the page arrives with, newest kept; later ones stream in."""

PANEL_STYLES = ("logview.css", "files.css")
"""Stylesheets of the log and files panels, linked when ``ui/static`` has them."""


def stage_rows(pipeline: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the pipeline's stages in order with their needs resolved (``None`` in the
    definition means the stage before) and whether a person must let them start."""
    stages = pipeline.get("stages", [])
    rows = []
    for index, stage in enumerate(stages):
        needs = stage.get("needs")
        if needs is None:
            needs = [stages[index - 1]["name"]] if index > 0 else []
        rows.append(
            {
                "name": stage["name"],
                "description": stage.get("description") or "",
                "needs": list(needs),
                "gate": confirmation(stage) != "never",
                "confirmation": confirmation(stage),
            }
        )
    return rows


def stage_settings(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return, per stage, what a redo may change and what its runs report: the image and
    resources it asks for (the redo dialog's placeholders), its ``when`` condition, the
    variables it sweeps over and the names of its log parsers.

    Read from the definition the project holds, so the page costs no extra query.
    """
    settings: dict[str, dict[str, Any]] = {}
    for stage in pipeline.get("stages", []):
        requirements = stage.get("requirements") or {}
        sweep = stage.get("sweep") or {}
        settings[stage["name"]] = {
            "image": stage.get("image"),
            "cpus": requirements.get("cpus"),
            "memory_mb": requirements.get("memory"),
            "gpus": (requirements.get("gpu") or {}).get("count"),
            "when": stage.get("when"),
            "sweep": list((sweep.get("over") or {}).keys()),
            "parsers": [parser["name"] for parser in stage.get("log_parsers") or []],
        }
    return settings


def confirmation(stage: dict[str, Any]) -> str:
    """When a person must let the stage start: never, once or always (``gate: true``)."""
    return str(stage.get("confirmation") or ("always" if stage.get("gate") else "never"))


def variable_rows(pipeline: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the variables the pipeline declares, in its order, as the editor lists them."""
    return [
        {
            "name": name,
            "description": spec.get("description") or "",
            "required": bool(spec.get("required")),
            "default": spec.get("default"),
        }
        for name, spec in (pipeline.get("variables") or {}).items()
    ]


def nomad_links(context: AppContext) -> dict[str, str] | None:
    """Where the Nomad UI shows a job (``{base}/jobs/<id>@<namespace>``), or ``None``
    when the backend is not Nomad."""
    if context.backend.name != "nomad":
        return None
    settings = context.settings
    base = settings.nomad_ui_url or settings.nomad_addr.rstrip("/") + "/ui"
    return {"base": base.rstrip("/"), "namespace": settings.nomad_namespace}


def page_data(context: AppContext, project: Project) -> dict[str, Any]:
    """Everything ``project.js`` needs to draw the page without asking the API first."""
    runs = context.store.runs(project.id)
    history = context.store.history(project.id)[-HISTORY_ON_PAGE:]
    return {
        "project": ProjectPublic.of(project, runs).model_dump(mode="json"),
        "stages": stage_rows(project.pipeline),
        "stage_settings": stage_settings(project.pipeline),
        "variables": variable_rows(project.pipeline),
        "history": [EventPublic.of(e).model_dump(mode="json") for e in history],
        "nomad": nomad_links(context),
    }


@router.get("/projects/{name}", response_class=HTMLResponse)
def project_page(
    name: str, request: Request, context: ContextDep, caller: PageCaller
) -> HTMLResponse:
    user = caller.name
    try:
        project = check_project(context, caller, name, Action.READ).project
    except NotFoundError:
        response = render(
            request, context, "project.html", user, title="No such project", missing=name
        )
        response.status_code = 404
        return response
    return render(
        request,
        context,
        "project.html",
        user,
        title=project.name,
        project=project,
        data=page_data(context, project),
        panel_styles=[
            sheet
            for sheet in PANEL_STYLES
            if (context.settings.resolved_ui_dir() / "static" / sheet).is_file()
        ],
    )
