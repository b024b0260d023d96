"""The audit trail over HTTP: every command the API took, newest first, for admins.

``api/audit.py`` records; this reads. A page ends with ``next_before``: pass it as
``before`` for the page of older entries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from winslow.api.access import AdminCaller
from winslow.api.deps import ContextDep
from winslow.api.routes import API_V1
from winslow.store.audit import list_audit, project_id_of

router = APIRouter(prefix=API_V1, tags=["audit"])

AUDIT_PAGE = 100
"""Entries in a page unless ``limit`` says otherwise."""

AUDIT_PAGE_MAX = 1000
"""The most entries one page holds."""


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    """The user; the name tried for a refused sign-in; ``trigger:<name>``; ``anonymous``."""
    via: str
    """``session:<handle>``, ``token:<name>``, ``trigger:<name>`` or ``anonymous``."""
    address: str
    method: str
    path: str
    operation: str
    """The OpenAPI ``operationId``; empty where no operation answers the path."""
    status: int
    project_id: str | None
    summary: str
    changes: Any
    """The JSON body with secrets masked (``***``), or ``{"bytes": n}``; ``null``: none."""
    request: str
    """The id the command's history lines carry in ``data.origin.request``."""

    model_config = ConfigDict(from_attributes=True)


class AuditPublic(BaseModel):
    data: list[AuditEntryPublic]
    next_before: int | None
    """``before`` of the next (older) page; ``null`` on the last."""


@router.get("/audit", response_model=AuditPublic)
def audit(
    context: ContextDep,
    _admin: AdminCaller,
    actor: Annotated[str | None, Query(description="Only this user's commands.")] = None,
    project: Annotated[
        str | None, Query(description="Only commands on this project (name or id).")
    ] = None,
    since: Annotated[datetime | None, Query(description="Only commands at or after.")] = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**62, description="Only entries older than this (an id).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE_MAX, description="At most this many.")] = (
        AUDIT_PAGE
    ),
) -> AuditPublic:
    """Every command the API took (who, when, from where, what, how it ended), newest
    first; admins only."""
    # A deleted project is found by its id only: the trail keeps no names.
    project_id = (project_id_of(context.store, project) or project) if project else None
    found = list_audit(
        context.store,
        actor=actor,
        project_id=project_id,
        since=since,
        before_id=before,
        limit=limit,
    )
    return AuditPublic(
        data=[AuditEntryPublic.model_validate(entry) for entry in found],
        next_before=found[-1].id if len(found) == limit else None,
    )
