"""The notification tables: subscriptions, deliveries, and the dispatcher's cursor.

They share ``Base`` with ``store/tables.py``, which imports this module so that
``Base.metadata`` (migrations, schema checks) sees them. A delivery keeps the body it
sends, so every retry sends the same bytes under the same signature.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from winslow.store.tables import Base


class SubscriptionRow(Base):
    """Who hears of what: a webhook or an e-mail address, for one project or a pipeline."""

    __tablename__ = "notify_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    """``webhook`` or ``email``."""
    target: Mapped[str] = mapped_column(String(2000))
    """The webhook's URL or the e-mail address."""
    secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """The webhook's HMAC key; kept as it is, since signing needs it."""
    project_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE"), nullable=True, index=True
    )
    pipeline_name: Mapped[str | None] = mapped_column(String(63), nullable=True)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Events to hear of; empty: all of them."""
    long_run_seconds: Mapped[int] = mapped_column(Integer, default=600)
    """A success is news only after a run at least this long."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(100))


class DeliveryRow(Base):
    """One notification to one subscription, and how sending it went."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_notify_deliveries_event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("notify_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The history line it tells of; ``NULL`` for a test."""
    event: Mapped[str] = mapped_column(String(20))
    project_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), index=True)
    """``pending``, ``delivered`` or ``failed`` (no attempt left)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class NotifyCursorRow(Base):
    """How far the dispatcher has read the history: one row."""

    __tablename__ = "notify_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, default=0)
