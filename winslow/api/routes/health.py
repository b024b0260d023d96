"""Liveness: the only endpoint that needs no token."""

from __future__ import annotations

from fastapi import APIRouter

from winslow import __version__
from winslow.api.deps import ContextDep
from winslow.api.models import Health, HealthProblem
from winslow.api.routes import API_V1

router = APIRouter(prefix=API_V1, tags=["health"])


@router.get("/health", response_model=Health)
def health(context: ContextDep) -> Health:
    """Whether the server runs, and what of it does not work now (``degraded``)."""
    problems = [HealthProblem(component=p.component, reason=p.reason) for p in context.problems()]
    return Health(
        status="degraded" if problems else "ok",
        version=__version__,
        backend=context.backend.name,
        problems=problems,
    )
