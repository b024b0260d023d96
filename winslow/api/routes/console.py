"""The web console's shell: the sign-in page, the overview and nodes pages.

Pages are rendered on the server from ``ui/templates`` with the data they show, so a page
is whole at first paint; small ES modules in ``ui/static/js`` keep the live parts live
through the same API the CLI uses (the session cookie stands in for the bearer token).
Other pages live beside this module: ``console_project``, ``console_resources``,
``console_pipelines``; the sessions themselves (signing in and out) live in
``routes/sessions.py``. After signing in, the console goes where ``next`` says only if
that is a path of this server (``api/redirects.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from winslow import __version__, defaults
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentUser, session_secret
from winslow.api.models import OverviewPublic, OverviewRow
from winslow.api.redirects import same_origin_path
from winslow.core.states import NEEDS_PERSON_STATES, ProjectState
from winslow.errors import NotFoundError
from winslow.store.sessions import session_caller
from winslow.units import format_bytes, format_duration

router = APIRouter(include_in_schema=False)
api_router = APIRouter(tags=["console"])

SPARK_MD5 = Path("node_modules/spark-md5/spark-md5.min.js")
"""The one npm package the console uses (MD5 of upload parts; browsers have no MD5),
below ``ui/``; `make` installs it into the checkout, and a wheel built then carries it."""


class SignInRequiredError(Exception):
    """A page was asked for without a valid session; the app redirects to sign in."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def page_user(request: Request, context: ContextDep) -> str:
    """The person behind a page request (by the session cookie), or
    ``SignInRequiredError``."""
    secret = session_secret(request)
    caller = session_caller(context.store, secret) if secret else None
    if caller is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequiredError(target)
    return caller.name


PageUser = Annotated[str, Depends(page_user)]


def sign_in_redirect(next_url: str) -> Response:
    """303 to the sign-in page, which comes back to ``next_url`` if that is a path here."""
    safe = same_origin_path(next_url)
    return Response(status_code=303, headers={"Location": f"/signin?next={quote(safe)}"})


@lru_cache(maxsize=4)
def templates_in(directory: str) -> Jinja2Templates:
    templates = Jinja2Templates(directory=directory)
    # Sizes read the same on a page as in the CLI, the logs and the console's scripts.
    templates.env.filters["size"] = format_bytes
    return templates


def render(
    request: Request, context: AppContext, template: str, user: str | None, **values: Any
) -> HTMLResponse:
    """Render ``template`` with what every page shows (version, backend, who is signed in,
    what does not work now)."""
    templates = templates_in(str(context.settings.resolved_ui_dir() / "templates"))
    return templates.TemplateResponse(
        request,
        template,
        {
            "version": __version__,
            "backend": context.backend.name,
            "user": user,
            "path": request.url.path,
            "problems": context.problems(),
            **values,
        },
    )


# -- signing in --------------------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
def sign_in_page(request: Request, context: ContextDep, next: str = "/") -> HTMLResponse:
    """The sign-in form; ``next`` is where it goes afterwards, if that is a path here."""
    return render(
        request,
        context,
        "signin.html",
        None,
        next=same_origin_path(next),
        title="Sign in",
        idle_days=round(defaults.SESSION_IDLE_SECONDS / 86400),
        max_days=round(defaults.SESSION_MAX_AGE_SECONDS / 86400),
    )


@router.get("/vendor/spark-md5.js")
def spark_md5(context: ContextDep) -> FileResponse:
    path = context.settings.resolved_ui_dir() / SPARK_MD5
    if not path.is_file():
        raise NotFoundError(
            f"{path} is missing, so the console cannot upload: run `make` in the checkout "
            "(npm ci in winslow/ui/), and install again if Winslow was installed from it."
        )
    return FileResponse(path, media_type="text/javascript")


# -- overview ---------------------------------------------------------------------------


def overview_rows(context: AppContext) -> list[OverviewRow]:
    """Every project as the overview shows it: those needing a person first, then by name.

    Three queries whatever the number of projects: projects, active runs, succeeded stages.
    """
    projects = context.store.list_projects()
    active: dict[str, list[str]] = {}
    for run in context.store.active_runs():
        active.setdefault(run.project_id, []).append(run.stage)
    done = context.store.succeeded_stages()
    rows = []
    for project in projects:
        stages = [s["name"] for s in project.pipeline.get("stages", [])]
        current = sorted(set(active.get(project.id, [])))
        if not current and project.waiting_for.get("stage"):
            current = [str(project.waiting_for["stage"])]
        rows.append(
            OverviewRow(
                id=project.id,
                name=project.name,
                labels=list(project.labels),
                pipeline=project.pipeline_name,
                state=project.state,
                state_reason=project.state_reason,
                needs_person=project.state in NEEDS_PERSON_STATES,
                current_stages=current,
                stages_total=len(stages),
                stages_done=len(done.get(project.id, set()) & set(stages)),
                state_since=project.state_changed_at or project.updated_at,
            )
        )
    rows.sort(key=lambda r: (not r.needs_person, r.name))
    return rows


@api_router.get("/overview", response_model=OverviewPublic)
def overview_api(context: ContextDep, _user: CurrentUser) -> OverviewPublic:
    """The overview's rows (the console refreshes with it when projects change)."""
    rows = overview_rows(context)
    return OverviewPublic(
        data=rows,
        needs_person=sum(r.needs_person for r in rows),
        states=[state.value for state in ProjectState],
    )


def since(moment: datetime | None) -> str:
    """``3 h 12 min``-style time since ``moment``, as the overview shows it (and its JS)."""
    if moment is None:
        return ""
    return format_duration((datetime.now(UTC) - moment).total_seconds(), coarse=True)


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, context: ContextDep, user: PageUser) -> HTMLResponse:
    rows = overview_rows(context)
    labels = sorted({label for row in rows for label in row.labels})
    return render(
        request,
        context,
        "overview.html",
        user,
        title="Projects",
        rows=rows,
        labels=labels,
        states=[state.value for state in ProjectState],
        needs_person=sum(r.needs_person for r in rows),
        pipelines=sorted(context.pipelines.load_all()[0]),
        since=since,
    )


# -- nodes ------------------------------------------------------------------------------


@router.get("/nodes", response_class=HTMLResponse)
def nodes_page(request: Request, context: ContextDep, user: PageUser) -> HTMLResponse:
    active = context.store.active_runs()
    names = {p.id: p.name for p in context.store.list_projects()}
    nodes = [
        {
            "node": node,
            "runs": [
                {"run": run, "project": names.get(run.project_id, run.project_id)}
                for run in active
                if run.node == node.name
            ],
        }
        for node in context.backend.nodes()
    ]
    return render(request, context, "nodes.html", user, title="Nodes", nodes=nodes)
