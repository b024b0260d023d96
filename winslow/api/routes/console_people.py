"""The console's people pages: people and groups (admins), and each person's API tokens.

Both pages arrive with what they show as JSON, as the project page does; their modules
(``ui/static/js/people.js``, ``tokens.js``) draw it and make every change through the
JSON API the CLI uses (``routes/people.py``, ``routes/tokens.py``), so the page checks
nothing the API does not check again. The project page's access tab is drawn by
``access.js`` from ``GET /projects/{ref}/access`` and needs no page route of its own.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from winslow.api.access import visible_projects
from winslow.api.deps import ContextDep
from winslow.api.routes.console import PageCaller, render
from winslow.api.routes.people import GroupPublic, UserPublic
from winslow.api.routes.tokens import TokenPublic
from winslow.core.access import Scope
from winslow.store import people, tokens

router = APIRouter(include_in_schema=False)


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request, context: ContextDep, caller: PageCaller) -> HTMLResponse:
    """Every user and group, for admins; anyone else gets a page saying it is not theirs
    (HTTP 403), not the API's JSON."""
    if not caller.principal.acts_as_admin:
        response = render(
            request, context, "people.html", caller.name, title="People", forbidden=True
        )
        response.status_code = 403
        return response
    users = people.list_users(context.store)
    groups = people.list_groups(context.store)
    return render(
        request,
        context,
        "people.html",
        caller.name,
        title="People",
        forbidden=False,
        data={
            "me": caller.name,
            "users": [UserPublic.of(u).model_dump(mode="json") for u in users],
            "groups": [GroupPublic.of(g).model_dump(mode="json") for g in groups],
        },
    )


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, context: ContextDep, caller: PageCaller) -> HTMLResponse:
    """The signed-in person's own API tokens, revoked ones included, and a form for a new
    one; the scopes offered are those the session may give (admin for admins only)."""
    found = tokens.list_tokens(context.store, caller.name)
    projects = visible_projects(context, caller, context.store.kept_projects())
    # Scopes are declared narrowest first; a session cannot give more than its own.
    ordered = list(Scope)
    scopes = ordered[: ordered.index(caller.scope) + 1]
    if not caller.principal.acts_as_admin:
        scopes = [s for s in scopes if s is not Scope.ADMIN]
    return render(
        request,
        context,
        "tokens.html",
        caller.name,
        title="API tokens",
        data={
            "tokens": [TokenPublic.of(t).model_dump(mode="json") for t in found],
            "scopes": [s.value for s in scopes],
            # Tokens hold project ids; the page shows names, and offers them to pick from.
            "projects": {p.id: p.name for p in projects},
        },
    )
