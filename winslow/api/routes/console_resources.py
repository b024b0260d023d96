"""The console's resources page: the resource pool browsed by folder, with uploads.

The first listing is rendered here, so the page is whole at first paint; the page's
module (``ui/static/js/resources.js``) then moves between folders, uploads, downloads
and deletes through the same API the CLI uses. Object storage has no folders: a folder
exists while a file is below it, so a folder nobody uploaded into yet lists as empty,
and the page says so instead of calling it missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from winslow.api.access import may_write_resources
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep
from winslow.api.models import FileEntry
from winslow.api.routes.console import PageCaller, render
from winslow.api.routes.files import list_resources
from winslow.core.logformat import escape_name
from winslow.core.paths import clean_relative_path
from winslow.errors import NotFoundError, ValidationError, WinslowError
from winslow.storage.keys import resource_key

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

RESOURCE_UPLOADS = "/resources/uploads"
"""The API path (below ``/api/v1``) the page's uploads go to."""


@dataclass(frozen=True)
class Crumb:
    """One step of the breadcrumb: its name and the folder it opens (``""``: the top)."""

    name: str
    path: str


def crumbs_of(folder: str) -> list[Crumb]:
    """The breadcrumb of ``folder``: the pool's top, then each folder down to it."""
    steps = [Crumb("Resources", "")]
    parts = folder.split("/") if folder else []
    for depth, name in enumerate(parts, start=1):
        steps.append(Crumb(name, "/".join(parts[:depth])))
    return steps


def folders_first(entries: list[FileEntry]) -> list[FileEntry]:
    """Folders, then files, each by name (case aside), as file browsers list them."""
    return sorted(entries, key=lambda e: (not e.is_dir, e.name.casefold(), e.name))


def _is_file(context: AppContext, path: str) -> bool:
    try:
        context.objects.head(resource_key(path))
    except NotFoundError:
        return False
    return True


@router.get("/resources", response_class=HTMLResponse)
def resources_page(
    request: Request, context: ContextDep, caller: PageCaller, path: str = ""
) -> HTMLResponse:
    """The folder ``path`` of the resource pool; a file's path shows the folder it is in.

    A path that is not acceptable (``..``, a control character) or a listing object
    storage refuses renders the page with the reason, not an API error body.
    """
    user = caller.name
    values: dict[str, object] = {
        "title": "Resources",
        "may_write": may_write_resources(context, caller),
        "uploads_path": RESOURCE_UPLOADS,
        "folder": "",
        "crumbs": crumbs_of(""),
        "entries": [],
        "notice": None,
        "error": None,
        "selected": None,
    }
    status = 200
    try:
        folder = clean_relative_path(path, allow_empty=True)
        listing = list_resources(context, user, folder, _access=caller)
        if not listing.data and folder and _is_file(context, folder):
            selected = folder
            folder = folder.rpartition("/")[0]
            listing = list_resources(context, user, folder, _access=caller)
            values["selected"] = selected
            values["notice"] = f"'{escape_name(selected)}' is a file; this is the folder it is in."
        values.update(folder=folder, crumbs=crumbs_of(folder), entries=folders_first(listing.data))
    except ValidationError as exc:
        status = 422
        values["error"] = exc.message
    except WinslowError as exc:
        log.warning("resources page: listing %r failed: %s", path, exc.message)
        status = 502
        values["error"] = exc.message
    response = render(request, context, "resources.html", user, **values)
    response.status_code = status
    return response
