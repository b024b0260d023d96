"""The audit trail: every command the API took, who sent it, from where, and how it ended.

``record`` writes one entry (table ``audit_log``, ``store/audit_tables.py``) and, for a
command that changed a project without writing a line of its history (a workspace
upload, say), one ``command`` line in that history, so a project's history names every
command made on it. ``list_audit`` reads the trail newest first, a page at a time.
Entries are only ever added: the trail outlives the projects and people it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from winslow.errors import NotFoundError
from winslow.store.audit_tables import AuditRow
from winslow.store.rows import now, utc
from winslow.store.tables import ProjectRow
from winslow.store.transaction import ProjectTransaction, lock_project_row

if TYPE_CHECKING:
    from winslow.store.repo import Store

COMMAND_EVENT = "command"
"""The ``kind`` of the history line that names a command which wrote no other."""

ADDRESS_CHARS = 64
"""Characters of a client's address kept (the column's size)."""


@dataclass(frozen=True)
class AuditEntry:
    """One command as the trail keeps it."""

    id: int
    at: datetime
    actor: str
    via: str
    address: str
    method: str
    path: str
    operation: str
    status: int
    project_id: str | None
    summary: str
    changes: Any
    request: str


@dataclass(frozen=True)
class Command:
    """A command to be recorded: what ``record`` takes."""

    actor: str
    via: str
    address: str
    method: str
    path: str
    operation: str
    status: int
    summary: str
    changes: Any = None
    project_id: str | None = None
    request: str = ""


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=utc(row.at) or now(),
        actor=row.actor,
        via=row.via,
        address=row.address,
        method=row.method,
        path=row.path,
        operation=row.operation,
        status=row.status,
        project_id=row.project_id,
        summary=row.summary,
        changes=row.changes,
        request=row.request,
    )


def project_id_of(store: Store, ref: str) -> str | None:
    """The id of the project whose id or name is ``ref``; ``None`` if there is none."""
    query = select(ProjectRow.id).where(or_(ProjectRow.id == ref, ProjectRow.name == ref))
    with store.sessions() as session:
        found = list(session.scalars(query))
    # An id beats a name: another project may be named like this one's id.
    return ref if ref in found else (found[0] if found else None)


def record(
    store: Store, command: Command, *, in_history: bool = False, at: datetime | None = None
) -> AuditEntry:
    """Add ``command`` to the trail and return its entry. With ``in_history``, also add a
    ``command`` line to the history of its project, where that project still exists."""
    # SQLite keeps the written words, not the instant: a time in another zone goes in as UTC.
    at = utc(at) or now()
    row = AuditRow(
        at=at,
        actor=command.actor[:100],
        via=command.via[:140],
        address=command.address[:ADDRESS_CHARS],
        method=command.method[:10],
        path=command.path,
        operation=command.operation[:200],
        status=command.status,
        project_id=command.project_id,
        summary=command.summary,
        changes=command.changes,
        request=command.request[:32],
    )
    with store.transaction() as session:
        session.add(row)
        if in_history and command.project_id is not None:
            _note_in_history(session, command)
        session.flush()
        return _entry(row)


def _note_in_history(session: Session, command: Command) -> None:
    assert command.project_id is not None
    try:
        project = lock_project_row(session, command.project_id)
    except NotFoundError:
        return
    origin = {"address": command.address, "via": command.via, "request": command.request}
    data = {"operation": command.operation, "status": command.status, "origin": origin}
    ProjectTransaction(session, project).add_event(
        command.actor, COMMAND_EVENT, command.summary, data
    )


def list_audit(
    store: Store,
    *,
    actor: str | None = None,
    project_id: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The newest ``limit`` entries, newest first: of ``actor``, on ``project_id``, at or
    after ``since``, older than entry ``before_id`` (the next page), as far as given."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if actor is not None:
        query = query.where(AuditRow.actor == actor)
    if project_id is not None:
        query = query.where(AuditRow.project_id == project_id)
    if since is not None:
        # Stored in UTC; SQLite compares the written words, not the instants.
        query = query.where(AuditRow.at >= (utc(since) or since))
    if before_id is not None:
        query = query.where(AuditRow.id < before_id)
    with store.sessions() as session:
        return [_entry(row) for row in session.scalars(query)]
