"""The audit trail's table: one row per command the API took, refused ones included.

It shares ``Base`` with ``store/tables.py``, which imports this module so that
``Base.metadata`` (migrations, schema checks) sees it. ``project_id`` is no foreign key on
purpose: the trail outlives a deleted project, whose deletion is one of its rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from winslow.store.tables import Base


class AuditRow(Base):
    """Who asked for what, when, from where, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    """The user's name; the name tried for a refused sign-in; ``trigger:<name>``;
    ``anonymous``."""
    via: Mapped[str] = mapped_column(String(140))
    """``session:<handle>``, ``token:<name>``, ``trigger:<name>`` or ``anonymous``."""
    address: Mapped[str] = mapped_column(String(64), default="")
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    """The path, with its query (secret-looking parameters masked)."""
    operation: Mapped[str] = mapped_column(String(200), default="")
    """The OpenAPI ``operationId``; empty where no operation answers the path."""
    status: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    summary: Mapped[str] = mapped_column(Text)
    changes: Mapped[Any] = mapped_column(JSON, nullable=True)
    """The request's JSON body with secrets masked, or ``{"bytes": n}`` for a large or
    non-JSON one; ``NULL`` for none."""
    request: Mapped[str] = mapped_column(String(32), default="")
    """The id the command's history lines carry in ``data["origin"]["request"]``."""
