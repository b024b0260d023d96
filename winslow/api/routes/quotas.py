"""Quotas: what your projects and your groups' projects may hold at once, and hold now.

Limits are set on users and groups (``PATCH /users/{name}``, ``PATCH /groups/{name}``);
this shows them next to what runs handed to the backend and not ended hold, the same
figures the engine holds a waiting stage back by.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from winslow.api.access import SignedIn
from winslow.api.deps import ContextDep
from winslow.api.routes import API_V1
from winslow.api.routes.people import Quota
from winslow.core.quota import Amounts, Limits, Subject, describe_use
from winslow.errors import ForbiddenError
from winslow.store.quota import quota_limits, quota_use

router = APIRouter(prefix=API_V1, tags=["people"])


class QuotaUsePublic(BaseModel):
    """What a subject's runs hold now: those submitted and not ended."""

    gpus: int
    cpus: float
    memory_mb: int


class QuotaPublic(BaseModel):
    kind: Literal["user", "group"]
    name: str
    limit: Quota | None
    """None: no quota; an amount missing from it: no limit on that amount."""
    use: QuotaUsePublic
    summary: str
    """As a person reads it: "uses 6 of 8 GPUs, 12 CPUs, 48.0 GiB memory"."""

    @classmethod
    def of(cls, subject: Subject, limits: Limits, use: Amounts) -> QuotaPublic:
        limit = None
        if not limits.unlimited:
            limit = Quota(gpus=limits.gpus, cpus=limits.cpus, memory_mb=limits.memory_mb)
        return cls(
            kind=subject.kind,
            name=subject.name,
            limit=limit,
            use=QuotaUsePublic(gpus=use.gpus, cpus=use.cpus, memory_mb=use.memory_mb),
            summary=describe_use(limits, use),
        )


class QuotasPublic(BaseModel):
    data: list[QuotaPublic]
    count: int


@router.get("/quotas", response_model=QuotasPublic)
def list_quotas(
    caller: SignedIn,
    context: ContextDep,
    everyone: bool = Query(default=False, description="Every user and group (admins only)."),
) -> QuotasPublic:
    """Your quota and your groups' quotas, each with what its runs hold now."""
    if everyone and not caller.principal.acts_as_admin:
        raise ForbiddenError("Only admins see everybody's quotas; leave out everyone=true.")
    subjects = None
    if not everyone:
        subjects = [Subject("user", caller.name)] + [Subject("group", g) for g in caller.groups]
    limits = quota_limits(context.store, subjects)
    use = quota_use(context.store)
    shown = sorted(limits, key=lambda s: (s.kind != "user", s.name))
    data = [QuotaPublic.of(s, limits[s], use.get(s, Amounts())) for s in shown]
    return QuotasPublic(data=data, count=len(data))
