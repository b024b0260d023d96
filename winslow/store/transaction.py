"""One project, locked for one transaction: read it and its runs, write them, add history.

``Store.project_transaction`` hands out a ``ProjectTransaction`` with the project row
locked (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL) until the block ends,
then commits, or rolls back on an exception. It speaks in the values of
``core/models.py``: callers never see a row or a session, so the rules about which
change is allowed live in ``engine/transitions.py`` and the SQL stays here.

Changes are named by the fields of ``Project`` and ``Run``; each value is turned into
its column form in one place (``column_value``): enums become their wire word, tuples
and sets become lists (sets sorted), pydantic models become JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from winslow.core.models import Project, Run
from winslow.errors import NotFoundError
from winslow.store.origin import current_origin
from winslow.store.rows import now, to_project, to_run
from winslow.store.tables import EventRow, ProjectRow, ProjectTokenRow, RunRow, UsageRow


def column_value(value: Any) -> Any:
    """Return ``value`` as its column holds it."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


CHANGED_PROJECTS = "winslow.changed_projects"
"""``Session.info`` key: ids of the projects a transaction wrote, told to the store's
commit listeners (the live streams) once it committed."""


def _set_fields(row: Any, kind: type[Project] | type[Run], changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        if name not in kind.__dataclass_fields__ or not hasattr(type(row), name):
            raise TypeError(f"{kind.__name__} has no stored field {name!r}")
        setattr(row, name, column_value(value))


def lock_project_row(session: Session, ref: str) -> ProjectRow:
    """Return the project row with id or name ``ref``, locked until the transaction ends."""
    row = (
        session.scalars(select(ProjectRow).where(ProjectRow.id == ref).with_for_update()).first()
        or session.scalars(
            select(ProjectRow).where(ProjectRow.name == ref).with_for_update()
        ).first()
    )
    if row is None:
        raise NotFoundError(f"No project '{ref}'; `winslow project list` shows them.")
    return row


class ProjectTransaction:
    """The locked project of one transaction, and its runs and history."""

    def __init__(self, session: Session, row: ProjectRow) -> None:
        self._session = session
        self._row = row
        self._touched = False

    def _changed(self) -> None:
        self._session.info.setdefault(CHANGED_PROJECTS, set()).add(self._row.id)

    @property
    def project(self) -> Project:
        """The project as it is now in this transaction, changes included."""
        return to_project(self._row)

    def runs(self) -> list[Run]:
        """Every run of the project, oldest first, as this transaction sees them."""
        query = select(RunRow).where(RunRow.project_id == self._row.id).order_by(RunRow.id)
        return [to_run(row) for row in self._session.scalars(query)]

    def run(self, run_id: int) -> Run | None:
        """The project's run ``run_id``, or ``None`` if it has none of that number."""
        row = self._run_row(run_id)
        return to_run(row) if row is not None else None

    def name_taken(self, name: str) -> bool:
        """Whether another project is called ``name``."""
        query = select(ProjectRow.id).where(ProjectRow.name == name, ProjectRow.id != self._row.id)
        return self._session.scalars(query).first() is not None

    def update_project(self, **changes: Any) -> Project:
        """Write ``changes`` (``Project`` field → value) to the project; return it.

        The first write of a transaction bumps the project's version and update time,
        which is how readers (the engine, the project list) see that it changed.
        """
        _set_fields(self._row, Project, changes)
        self._changed()
        if not self._touched:
            self._row.version += 1
            self._row.updated_at = now()
            self._touched = True
        return to_project(self._row)

    def update_run(self, run_id: int, **changes: Any) -> Run:
        """Write ``changes`` (``Run`` field → value) to the project's run; return it."""
        row = self._run_row(run_id)
        if row is None:
            raise NotFoundError(f"Project '{self._row.name}' has no run {run_id}.")
        _set_fields(row, Run, changes)
        self._changed()
        return to_run(row)

    def update_runs(self, run_ids: Iterable[int], **changes: Any) -> None:
        """Write the same ``changes`` to each of the project's runs ``run_ids``."""
        query = select(RunRow).where(
            RunRow.project_id == self._row.id, RunRow.id.in_(list(run_ids))
        )
        self._changed()
        for row in self._session.scalars(query):
            _set_fields(row, Run, changes)

    def add_run(self, **fields: Any) -> Run:
        """Insert a run of the project with ``fields`` (``Run`` field → value); return it
        with its new id. ``created_at`` defaults to now."""
        row = RunRow(project_id=self._row.id, created_at=now())
        _set_fields(row, Run, fields)
        self._changed()
        self._session.add(row)
        self._session.flush()
        return to_run(row)

    def add_event(
        self, actor: str, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        """Append one line to the project's history; a command's line also says where
        the command came from (``store/origin.py``)."""
        self._changed()
        data = data or {}
        if (origin := current_origin()) is not None:
            data = {**data, "origin": data.get("origin") or origin.describe()}
            origin.written.add(self._row.id)
        self._session.add(
            EventRow(
                project_id=self._row.id,
                at=now(),
                actor=actor,
                kind=kind,
                message=message,
                data=data,
            )
        )

    def delete_project(self) -> None:
        """Delete the project with its runs, their usage, its tokens and its history."""
        project_id = self._row.id
        self._changed()
        runs = select(RunRow.id).where(RunRow.project_id == project_id)
        self._session.execute(delete(UsageRow).where(UsageRow.run_id.in_(runs)))
        self._session.execute(delete(RunRow).where(RunRow.project_id == project_id))
        self._session.execute(
            delete(ProjectTokenRow).where(ProjectTokenRow.project_id == project_id)
        )
        self._session.execute(delete(EventRow).where(EventRow.project_id == project_id))
        self._session.execute(delete(ProjectRow).where(ProjectRow.id == project_id))

    def _run_row(self, run_id: int) -> RunRow | None:
        row = self._session.get(RunRow, run_id)
        return row if row is not None and row.project_id == self._row.id else None
