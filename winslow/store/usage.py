"""The resource usage samples of runs (table ``run_usage``): added in rounds, read per run.

A run keeps its samples after it ends; they go with its project. A run sampled every
five seconds for days would grow without end, so each run holds at most
``MAX_SAMPLES_PER_RUN``: when a round passes that, the older half of the run's samples is
thinned by merging neighbours pairwise into one sample at the earlier time that holds the
larger of each figure. Recent samples keep their full detail, the whole run stays
covered (older stretches more coarsely, each thinning doubling their spacing), and no
peak is lost, which is what a person sizing a stage's requests looks for. Thinning is
deterministic: the same samples thin the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from winslow.store.repo import Store
from winslow.store.rows import utc
from winslow.store.tables import RunRow, UsageRow

MAX_SAMPLES_PER_RUN = 10_000
"""Most samples one run keeps; 10 000 cover 14 hours at full detail every 5 seconds."""


@dataclass(frozen=True)
class UsagePoint:
    """One sample of what a run used (see ``UsageRow`` for the units)."""

    run_id: int
    at: datetime
    cpu_percent: float
    memory_mb: float
    gpu_percent: float | None = None
    gpu_memory_mb: float | None = None


def add_samples(store: Store, points: Sequence[UsagePoint]) -> int:
    """Store ``points`` in one transaction, thinning runs that pass the cap; return how many
    were stored (points of runs deleted meanwhile are dropped)."""
    if not points:
        return 0
    with store.transaction() as session:
        wanted = {p.run_id for p in points}
        existing = set(session.scalars(select(RunRow.id).where(RunRow.id.in_(wanted))))
        kept = [p for p in points if p.run_id in existing]
        session.add_all(
            UsageRow(
                run_id=p.run_id,
                at=p.at,
                cpu_percent=p.cpu_percent,
                memory_mb=p.memory_mb,
                gpu_percent=p.gpu_percent,
                gpu_memory_mb=p.gpu_memory_mb,
            )
            for p in kept
        )
        session.flush()
        for run_id in sorted({p.run_id for p in kept}):
            _thin_if_full(session, run_id)
    return len(kept)


def run_samples(store: Store, run_id: int) -> list[UsagePoint]:
    """The run's samples, oldest first."""
    with store.sessions() as session:
        rows = session.scalars(
            select(UsageRow).where(UsageRow.run_id == run_id).order_by(UsageRow.at, UsageRow.id)
        )
        return [_point(row) for row in rows]


def merge_pairs(points: Sequence[UsagePoint]) -> list[UsagePoint]:
    """Merge neighbours pairwise: each pair becomes one point at the first one's time with
    the larger of each figure (a GPU figure known on one side only is kept); a last
    point without a partner stays as it is."""
    merged: list[UsagePoint] = []
    for first, second in zip(points[0::2], points[1::2], strict=False):
        merged.append(
            UsagePoint(
                run_id=first.run_id,
                at=first.at,
                cpu_percent=max(first.cpu_percent, second.cpu_percent),
                memory_mb=max(first.memory_mb, second.memory_mb),
                gpu_percent=_larger(first.gpu_percent, second.gpu_percent),
                gpu_memory_mb=_larger(first.gpu_memory_mb, second.gpu_memory_mb),
            )
        )
    if len(points) % 2:
        merged.append(points[-1])
    return merged


def _thin_if_full(session: Session, run_id: int) -> None:
    count = session.scalar(select(func.count()).where(UsageRow.run_id == run_id)) or 0
    if count <= MAX_SAMPLES_PER_RUN:
        return
    older = list(
        session.scalars(
            select(UsageRow)
            .where(UsageRow.run_id == run_id)
            .order_by(UsageRow.at, UsageRow.id)
            .limit(count // 2)
        )
    )
    merged = merge_pairs([_point(row) for row in older])
    # Pair k keeps row 2k (the earlier one) and drops row 2k + 1.
    keep = older[0::2]
    drop = [row.id for row in older[1::2]]
    for row, point in zip(keep, merged, strict=True):
        row.cpu_percent = point.cpu_percent
        row.memory_mb = point.memory_mb
        row.gpu_percent = point.gpu_percent
        row.gpu_memory_mb = point.gpu_memory_mb
    session.execute(delete(UsageRow).where(UsageRow.id.in_(drop)))


def _larger(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _point(row: UsageRow) -> UsagePoint:
    return UsagePoint(
        run_id=row.run_id,
        at=utc(row.at) or row.at,
        cpu_percent=row.cpu_percent,
        memory_mb=row.memory_mb,
        gpu_percent=row.gpu_percent,
        gpu_memory_mb=row.gpu_memory_mb,
    )
