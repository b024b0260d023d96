"""The table of node telemetry (``node_telemetry``), on the shared ``Base``.

Apart from ``tables.py`` because it belongs to no project: it holds what nodes used,
sampled by the server, at several resolutions. The figures of a sample are one JSON
object (``core.telemetry.to_json``): they are always read whole, a sample of a node
with eight GPUs and 64 cores would otherwise need a table of its own per figure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from winslow.store.tables import Base


class NodeTelemetryRow(Base):
    """One sample of a node (``step`` 0), or the mean of a ``step``-second bucket."""

    __tablename__ = "node_telemetry"
    __table_args__ = (Index("ix_node_telemetry_node_step_at", "node", "step", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer)
    """Seconds per bucket: 0 for raw samples, 60 and 900 for the rollups."""
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """The sample's time, or its bucket's start."""
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
