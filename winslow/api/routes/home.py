"""The page at ``/``: where to go from here, rendered from ``ui/templates``."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from winslow import __version__
from winslow.api.deps import ContextDep

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=4)
def templates_in(directory: str) -> Jinja2Templates:
    return Jinja2Templates(directory=directory)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, context: ContextDep) -> HTMLResponse:
    templates = templates_in(str(context.settings.ui_dir / "templates"))
    return templates.TemplateResponse(
        request, "index.html", {"version": __version__, "backend": context.backend.name}
    )
