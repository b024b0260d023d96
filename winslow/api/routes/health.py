"""Liveness: the only endpoint that needs no token."""

from __future__ import annotations

from fastapi import APIRouter

from winslow import __version__
from winslow.api.deps import ContextDep
from winslow.api.models import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(context: ContextDep) -> Health:
    return Health(status="ok", version=__version__, backend=context.backend.name)
