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

import dataclasses
import functools
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from winslow import __version__, defaults
from winslow.api.access import visible_pipelines, visible_projects
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentCaller, PageLimit, PageSkip, session_secret
from winslow.api.models import OverviewPublic, OverviewRow, RunPlacement
from winslow.api.redirects import same_origin_path
from winslow.api.routes import API_V1
from winslow.api.routes.nodes_live import nodes_live
from winslow.core.logformat import escape_name
from winslow.core.models import Project, Run
from winslow.core.overview import (
    WAITING_STATES,
    OverviewSort,
    SortOrder,
    sort_projects,
    stage_names,
)
from winslow.core.states import NEEDS_PERSON_STATES, ProjectState
from winslow.errors import NotFoundError
from winslow.identity.oidc import provider_name
from winslow.store.repo import Store
from winslow.store.sessions import session_caller
from winslow.store.tokens import Caller
from winslow.units import format_bytes, format_duration

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix=API_V1, tags=["console"])

SPARK_MD5 = Path("node_modules/spark-md5/spark-md5.min.js")
"""The one npm package the console uses (MD5 of upload parts; browsers have no MD5),
below ``ui/``; `make` installs it into the checkout, and a wheel built then carries it."""

DAGRE = Path("node_modules/@dagrejs/dagre/dist/dagre.min.js")
"""The layout library the pipeline graph is drawn with (``static/js/graph.js``); an IIFE
that defines the global ``dagre``, installed and carried as ``SPARK_MD5`` is."""


class SignInRequiredError(Exception):
    """A page was asked for without a valid session; the app redirects to sign in."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def page_caller(request: Request, context: ContextDep) -> Caller:
    """The person behind a page request (by the session cookie), or
    ``SignInRequiredError``."""
    secret = session_secret(request)
    caller = session_caller(context.store, secret) if secret else None
    if caller is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequiredError(target)
    # The shell's navigation shows admin pages to admins; render() reads it from here.
    request.state.caller = caller
    return caller


PageCaller = Annotated[Caller, Depends(page_caller)]


def page_user(caller: PageCaller) -> str:
    return caller.name


PageUser = Annotated[str, Depends(page_user)]


def sign_in_redirect(next_url: str) -> Response:
    """303 to the sign-in page, which comes back to ``next_url`` if that is a path here."""
    safe = same_origin_path(next_url)
    return Response(status_code=303, headers={"Location": f"/signin?next={quote(safe)}"})


def _acts_as_admin(request: Request) -> bool:
    caller = getattr(request.state, "caller", None)
    return isinstance(caller, Caller) and caller.principal.acts_as_admin


@lru_cache(maxsize=4)
def templates_in(directory: str) -> Jinja2Templates:
    templates = Jinja2Templates(directory=directory)
    # Sizes read the same on a page as in the CLI, the logs and the console's scripts.
    templates.env.filters["size"] = format_bytes
    # A name a stage or an S3 client wrote may hold bidi and zero-width characters.
    templates.env.filters["shown_name"] = escape_name
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
            "admin": _acts_as_admin(request),
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
        oidc_provider=provider_name(issuer) if (issuer := context.settings.oidc_issuer) else None,
        title="Sign in",
        idle_days=round(defaults.SESSION_IDLE_SECONDS / 86400),
        max_days=round(defaults.SESSION_MAX_AGE_SECONDS / 86400),
    )


def _vendored(context: AppContext, relative: Path, needed_for: str) -> FileResponse:
    """A pinned npm library the console serves, from ``winslow/ui/node_modules``."""
    path = context.settings.resolved_ui_dir() / relative
    if not path.is_file():
        raise NotFoundError(
            f"{path} is missing, so the console cannot {needed_for}: run `make` in the "
            "checkout (npm ci in winslow/ui/), and install again if Winslow was installed from it."
        )
    return FileResponse(path, media_type="text/javascript")


@router.get("/vendor/spark-md5.js")
def spark_md5(context: ContextDep) -> FileResponse:
    return _vendored(context, SPARK_MD5, "upload")


@router.get("/vendor/dagre.js")
def dagre(context: ContextDep) -> FileResponse:
    return _vendored(context, DAGRE, "draw pipeline graphs")


# -- overview ---------------------------------------------------------------------------


PROGRESS_BY_ID_UP_TO = 500
"""Sorting by progress reads the done stages of the matching projects by ID up to this
many; beyond it one pass over every project's done stages costs less than the ID list."""

PROGRESS_KEPT_SECONDS = 10.0
"""How long the done stages of every project are kept for sorting by progress, seconds:
that pass costs 100 ms at 10,000 runs, and a person pages through the sorted list. The
rows shown read their own progress afresh; only their order may be this much behind."""


@dataclass(frozen=True)
class OverviewQuery:
    """Which projects the overview shows: a name search, a state, a label, an order, and a
    page. Without ``sort``, those that need a person come first, each part by name."""

    search: str = ""
    state: ProjectState | None = None
    label: str | None = None
    skip: int = 0
    limit: int = defaults.PAGE_SIZE
    sort: OverviewSort | None = None
    order: SortOrder = "asc"

    @property
    def filtered(self) -> bool:
        return bool(self.search or self.state or self.label)


@dataclass(frozen=True)
class OverviewPage:
    rows: list[OverviewRow]
    count: int
    """Projects that match the query, on every page."""
    needs_person: int
    """Projects matching the query that wait for a person (the counter and the tab's title
    show it, so it never counts a project the filters hide)."""
    labels: list[str]
    """Every label of every project (the label filter offers them)."""


def overview_query(
    q: Annotated[str, Query(max_length=200, description="Part of a project's name.")] = "",
    state: ProjectState | None = None,
    label: str | None = None,
    skip: PageSkip = 0,
    limit: PageLimit = defaults.PAGE_SIZE,
    sort: Annotated[
        OverviewSort | None, Query(description="Sort by this column, on the server.")
    ] = None,
    order: Annotated[SortOrder, Query(description="Ascending or descending.")] = "asc",
) -> OverviewQuery:
    return OverviewQuery(q.strip(), state, label or None, skip, limit, sort, order)


OverviewQueryDep = Annotated[OverviewQuery, Depends(overview_query)]


@dataclass(frozen=True)
class ProjectIndex:
    """What every overview request derives from the kept project list, derived once."""

    projects: tuple[Project, ...]
    ordered: list[tuple[str, Project]]
    """Lower-cased name and project: those needing a person first, each part by name."""
    waiting: int
    """Projects that wait for a person, of all."""
    labels: list[str]

    @classmethod
    def of(cls, projects: tuple[Project, ...]) -> ProjectIndex:
        first = [p for p in projects if p.state in NEEDS_PERSON_STATES]
        rest = [p for p in projects if p.state not in NEEDS_PERSON_STATES]
        return cls(
            projects=projects,
            ordered=[(p.name.lower(), p) for p in first + rest],
            waiting=sum(p.state in WAITING_STATES for p in projects),
            labels=sorted({label for p in projects for label in p.labels}),
        )


_index_lock = threading.Lock()
_index: ProjectIndex | None = None
_done_kept: tuple[Store, float, dict[str, set[str]]] | None = None


def project_index(projects: tuple[Project, ...]) -> ProjectIndex:
    """The index of ``projects``, the store's kept tuple: built again only when the store
    hands out another tuple (a project changed), not on every request."""
    global _index
    with _index_lock:
        index = _index
    if index is None or index.projects is not projects:
        index = ProjectIndex.of(projects)
        with _index_lock:
            _index = index
    return index


def select_projects(index: ProjectIndex, query: OverviewQuery) -> list[Project]:
    """The projects ``query`` matches, those needing a person first, each part by name."""
    text = query.search.lower()
    return [
        p
        for name, p in index.ordered
        if (not text or text in name)
        and (query.state is None or p.state is query.state)
        and (query.label is None or query.label in p.labels)
    ]


def done_stages(store: Store, ids: list[str]) -> dict[str, set[str]]:
    """The done stages of the projects ``ids``: read by ID up to ``PROGRESS_BY_ID_UP_TO``,
    else those of every project, kept for ``PROGRESS_KEPT_SECONDS``."""
    global _done_kept
    if len(ids) <= PROGRESS_BY_ID_UP_TO:
        return store.succeeded_stages(ids)
    with _index_lock:
        kept = _done_kept
    if kept is None or kept[0] is not store or time.monotonic() - kept[1] > PROGRESS_KEPT_SECONDS:
        kept = (store, time.monotonic(), store.succeeded_stages())
        with _index_lock:
            _done_kept = kept
    return kept[2]


def overview_page_of(context: AppContext, query: OverviewQuery, caller: Caller) -> OverviewPage:
    """One page of the overview, from the kept project list the project list API reads.

    Runs are read for the page's projects only, so a page costs the same with ten or ten
    thousand projects and their history behind it (sorting by progress reads the done
    stages of every matching project: a person asks for it, the first page does not).
    """
    kept = context.store.kept_projects()
    if caller.admin and caller.projects is None:
        index = project_index(kept)
    else:  # the caller's own view; only an admin's is the same for many requests
        index = ProjectIndex.of(tuple(visible_projects(context, caller, kept)))
    window = slice(query.skip, query.skip + query.limit)
    if query.filtered or query.sort is not None:
        selected = select_projects(index, query) if query.filtered else list(index.projects)
        if query.sort is not None:
            store = context.store
            selected = sort_projects(
                selected,
                query.sort,
                query.order,
                functools.partial(done_stages, store),
            )
        count, page = len(selected), selected[window]
        waiting = (
            sum(p.state in WAITING_STATES for p in selected) if query.filtered else index.waiting
        )
    else:  # the page as first shown: no pass over every project
        count, page = len(index.ordered), [p for _, p in index.ordered[window]]
        waiting = index.waiting
    ids = {p.id for p in page}
    active: dict[str, list[Run]] = {}
    for run in context.store.active_runs(ids) if ids else []:
        active.setdefault(run.project_id, []).append(run)
    done = context.store.succeeded_stages(ids) if ids else {}
    return OverviewPage(
        rows=[overview_row(p, active.get(p.id, []), done.get(p.id, set())) for p in page],
        count=count,
        needs_person=waiting,
        labels=index.labels,
    )


def overview_row(project: Project, active: list[Run], done: set[str]) -> OverviewRow:
    stages = stage_names(project)
    current = sorted({run.stage for run in active})
    if not current and project.waiting_for.get("stage"):
        current = [str(project.waiting_for["stage"])]
    return OverviewRow(
        id=project.id,
        name=project.name,
        labels=list(project.labels),
        pipeline=project.pipeline_name,
        state=project.state,
        state_reason=project.state_reason,
        needs_person=project.state in WAITING_STATES,
        current_stages=current,
        stages_total=len(stages),
        stages_done=len(done & stages),
        state_since=project.state_changed_at or project.updated_at,
        updated_at=project.updated_at,
        placements=[
            RunPlacement(
                run=run.id,
                stage=run.stage,
                node=run.node,
                gpus=list(run.gpu_indices),
                gpu_count=len(run.gpu_indices) or run.gpus,
            )
            for run in active
        ],
    )


@api_router.get("/overview", response_model=OverviewPublic)
def overview_api(
    context: ContextDep, caller: CurrentCaller, query: OverviewQueryDep
) -> OverviewPublic:
    """A page of the overview's rows (the console refreshes with it when projects change,
    and searches with it when not every project is on the page)."""
    page = overview_page_of(context, query, caller)
    return OverviewPublic(
        data=page.rows,
        count=page.count,
        needs_person=page.needs_person,
        states=[state.value for state in ProjectState],
    )


def since(moment: datetime | None) -> str:
    """``3 h 12 min``-style time since ``moment``, as the overview shows it (and its JS)."""
    if moment is None:
        return ""
    return format_duration((datetime.now(UTC) - moment).total_seconds(), coarse=True)


@router.get("/", response_class=HTMLResponse)
def overview_page(
    request: Request, context: ContextDep, caller: PageCaller, query: OverviewQueryDep
) -> HTMLResponse:
    page = overview_page_of(context, query, caller)
    user = caller.name
    return render(
        request,
        context,
        "overview.html",
        user,
        title="Projects",
        rows=page.rows,
        count=page.count,
        query=query,
        labels=page.labels,
        states=[state.value for state in ProjectState],
        needs_person=page.needs_person,
        pipelines=sorted(visible_pipelines(context, caller, context.pipelines.load_all()[0])),
        since=since,
        page_link=functools.partial(page_link, query),
        sort_link=functools.partial(sort_link, query),
    )


def sort_link(query: OverviewQuery, column: str) -> str:
    """The overview sorted by ``column``: ascending, or descending when it is so already."""
    sort = OverviewSort(column)
    order: SortOrder = "desc" if query.sort is sort and query.order == "asc" else "asc"
    return page_link(dataclasses.replace(query, sort=sort, order=order), 0)


def page_link(query: OverviewQuery, skip: int) -> str:
    """The overview's address for the page starting at ``skip``, filters kept."""
    values = {
        "q": query.search,
        "state": query.state.value if query.state else "",
        "label": query.label or "",
        "skip": str(skip) if skip else "",
        "limit": str(query.limit) if query.limit != defaults.PAGE_SIZE else "",
        "sort": query.sort.value if query.sort else "",
        "order": query.order if query.sort and query.order != "asc" else "",
    }
    return "/?" + urlencode({k: v for k, v in values.items() if v})


# -- nodes ------------------------------------------------------------------------------


@router.get("/nodes", response_class=HTMLResponse)
def nodes_page(request: Request, context: ContextDep, user: PageUser) -> HTMLResponse:
    """Every node: what it holds, has free and uses now, per GPU too, and what runs where
    (``nodes.js`` keeps it live with ``GET /api/v1/nodes/live``)."""
    live = nodes_live(context)
    return render(
        request, context, "nodes.html", user, title="Nodes", live=live, nodes=live.data, since=since
    )
