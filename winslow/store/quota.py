"""Quotas in the store: the limits of users and groups, and what their runs hold now.

A round of the engine reads the limits once (two small queries: users and groups are
few) and, only where some subject has a limit, what runs hold in one aggregate query
over the runs handed to the backend and not ended, summed per project owner and charged
group. ``RoundQuotas`` reads nothing until the round has a run to submit.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from winslow.core.quota import (
    Amounts,
    Limits,
    QuotaLedger,
    Subject,
    SubjectKind,
    use_by_subject,
)
from winslow.core.states import ACTIVE_RUN_STATES
from winslow.store.people_tables import GroupRow, UserRow
from winslow.store.tables import ProjectRow, RunRow

if TYPE_CHECKING:
    from winslow.core.models import Project
    from winslow.core.resources import ResourceRequest
    from winslow.store.repo import Store


def quota_limits(
    store: Store, subjects: Collection[Subject] | None = None
) -> dict[Subject, Limits]:
    """Every user's and group's limits (of ``subjects`` only, when given), those without
    a quota included as unlimited."""
    found: dict[Subject, Limits] = {}
    tables: tuple[tuple[SubjectKind, type[UserRow] | type[GroupRow]], ...] = (
        ("user", UserRow),
        ("group", GroupRow),
    )
    with store.sessions() as session:
        for kind, table in tables:
            query = select(table.name, table.quota)
            if subjects is not None:
                names = [s.name for s in subjects if s.kind == kind]
                if not names:
                    continue
                query = query.where(table.name.in_(names))
            for name, quota in session.execute(query):
                # A cleared quota may be kept as JSON null rather than SQL NULL.
                limits = Limits.from_json(quota if isinstance(quota, dict) else None)
                found[Subject(kind, name)] = limits
    return found


def quota_use(store: Store) -> dict[Subject, Amounts]:
    """What the runs handed to the backend and not ended hold, per user and group."""
    query = (
        select(
            ProjectRow.owner,
            ProjectRow.charged_group,
            func.sum(RunRow.cpus),
            func.sum(RunRow.memory_mb),
            func.sum(RunRow.gpus),
        )
        .join(ProjectRow, ProjectRow.id == RunRow.project_id)
        .where(
            RunRow.state.in_([s.value for s in ACTIVE_RUN_STATES]),
            RunRow.submitted.is_(True),
        )
        .group_by(ProjectRow.owner, ProjectRow.charged_group)
    )
    with store.sessions() as session:
        rows = session.execute(query).all()
    return use_by_subject(
        (
            owner or "",
            group,
            Amounts(cpus=float(cpus or 0), memory_mb=int(memory or 0), gpus=int(gpus or 0)),
        )
        for owner, group, cpus, memory, gpus in rows
    )


def quota_ledger(store: Store) -> QuotaLedger:
    """The limits and current use of every subject with a quota; use is read only when
    some subject has one."""
    limits = {s: lim for s, lim in quota_limits(store).items() if not lim.unlimited}
    if not limits:
        return QuotaLedger({}, {})
    return QuotaLedger(limits, quota_use(store))


class RoundQuotas:
    """The quota ledger of one engine round, read when the round first asks."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._ledger: QuotaLedger | None = None

    @property
    def ledger(self) -> QuotaLedger:
        if self._ledger is None:
            self._ledger = quota_ledger(self._store)
        return self._ledger

    def refusal(self, project: Project, request: ResourceRequest) -> str | None:
        """Why a run of ``project`` asking ``request`` must wait; None if it may start."""
        return self.ledger.refusal(project.owner, project.charged_group, Amounts.of(request))

    def take(self, project: Project, request: ResourceRequest) -> None:
        """Count a run of ``project`` about to be submitted."""
        self.ledger.take(project.owner, project.charged_group, Amounts.of(request))
