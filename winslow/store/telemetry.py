"""Node telemetry in SQL (table ``node_telemetry``): add raw samples, roll them up, prune,
and read a view.

The tiers, spans and steps are decided in ``core/telemetry.py``; this module only moves
rows. A rollup round is idempotent: each tier is rolled from the next finer one, from the
bucket after its newest rollup on, and only buckets that have ended are written
(``complete_buckets``), so running a round twice, or after a restart, writes nothing twice.

Usage::

    add_samples(store, [sample])
    roll_up(store, now)       # every minute or so
    prune(store, now)         # drops what no view needs any more
    tier, points = read_view(store, "gpu-1", TelemetryRange.H24, now)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from winslow.core.telemetry import (
    TIERS,
    VIEWS,
    NodeSample,
    TelemetryRange,
    Tier,
    complete_buckets,
    expired,
    from_json,
    rebucket,
    source_tier,
    to_json,
)
from winslow.store.repo import Store
from winslow.store.rows import utc
from winslow.store.telemetry_tables import NodeTelemetryRow


def add_samples(store: Store, samples: Sequence[NodeSample]) -> int:
    """Store raw samples in one transaction; return how many."""
    if not samples:
        return 0
    with store.transaction() as session:
        session.add_all(
            NodeTelemetryRow(node=s.node, step=0, at=s.at, data=to_json(s)) for s in samples
        )
    return len(samples)


def roll_up(store: Store, now: datetime) -> int:
    """Write the rollups of every tier whose buckets ended by ``now``; return how many rows
    were written."""
    written = 0
    with store.transaction() as session:
        nodes = list(session.scalars(select(NodeTelemetryRow.node).distinct()))
        for finer, tier in itertools.pairwise(TIERS):
            for node in nodes:
                written += _roll_node(session, node, finer, tier, now)
    return written


def prune(store: Store, now: datetime) -> int:
    """Delete every sample older than its tier keeps them; return how many rows went."""
    gone = 0
    with store.transaction() as session:
        for tier in TIERS:
            result = session.execute(
                delete(NodeTelemetryRow).where(
                    NodeTelemetryRow.step == tier.step,
                    NodeTelemetryRow.at < expired(tier, now),
                )
            )
            gone += int(getattr(result, "rowcount", 0) or 0)
        # A tier no longer kept (its step left TIERS) would otherwise stay for ever.
        steps = [tier.step for tier in TIERS]
        result = session.execute(
            delete(NodeTelemetryRow).where(NodeTelemetryRow.step.not_in(steps))
        )
        gone += int(getattr(result, "rowcount", 0) or 0)
    return gone


def read_view(
    store: Store, node: str, view_range: TelemetryRange, now: datetime
) -> tuple[Tier, list[NodeSample]]:
    """The node's points for ``view_range`` up to ``now``, oldest first, and the tier they
    were read from (``core.telemetry.source_tier`` picks it)."""
    view = VIEWS[view_range]
    start = now - view.span
    with store.sessions() as session:
        oldest = {
            tier.step: utc(
                session.scalar(
                    select(func.min(NodeTelemetryRow.at)).where(
                        NodeTelemetryRow.node == node, NodeTelemetryRow.step == tier.step
                    )
                )
            )
            for tier in TIERS
        }
        tier = source_tier(view, now, oldest)
        samples = _read(session, node, tier.step, start, now)
    return tier, rebucket(samples, view.step)


def latest_sample(store: Store, node: str, since: datetime) -> NodeSample | None:
    """The node's newest raw sample taken at ``since`` or later, or None (the nodes page
    shows what a node uses now, not what it used before it stopped answering)."""
    query = (
        select(NodeTelemetryRow)
        .where(NodeTelemetryRow.node == node, NodeTelemetryRow.step == TIERS[0].step)
        .where(NodeTelemetryRow.at >= since)
        .order_by(NodeTelemetryRow.at.desc(), NodeTelemetryRow.id.desc())
        .limit(1)
    )
    with store.sessions() as session:
        row = session.scalars(query).first()
        return None if row is None else from_json(row.node, utc(row.at) or row.at, row.data)


def known_nodes(store: Store) -> set[str]:
    """The names of every node with a kept sample."""
    with store.sessions() as session:
        return set(session.scalars(select(NodeTelemetryRow.node).distinct()))


def _roll_node(session: Session, node: str, finer: Tier, tier: Tier, now: datetime) -> int:
    newest = utc(
        session.scalar(
            select(func.max(NodeTelemetryRow.at)).where(
                NodeTelemetryRow.node == node, NodeTelemetryRow.step == tier.step
            )
        )
    )
    since = newest + timedelta(seconds=tier.step) if newest is not None else None
    samples = _read(session, node, finer.step, since, None)
    rollups = complete_buckets(samples, tier.step, now)
    session.add_all(
        NodeTelemetryRow(node=node, step=tier.step, at=s.at, data=to_json(s)) for s in rollups
    )
    return len(rollups)


def _read(
    session: Session, node: str, step: int, start: datetime | None, end: datetime | None
) -> list[NodeSample]:
    query = select(NodeTelemetryRow).where(
        NodeTelemetryRow.node == node, NodeTelemetryRow.step == step
    )
    if start is not None:
        query = query.where(NodeTelemetryRow.at >= start)
    if end is not None:
        query = query.where(NodeTelemetryRow.at <= end)
    rows = session.scalars(query.order_by(NodeTelemetryRow.at, NodeTelemetryRow.id))
    return [from_json(row.node, utc(row.at) or row.at, row.data) for row in rows]
