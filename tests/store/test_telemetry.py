"""Node telemetry in SQL, on SQLite and on PostgreSQL: samples go in raw, roll up into
one-minute and fifteen-minute means once their bucket ended, expire tier by tier, and a
range reads the right tier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from tests.fixtures.postgres import ON_BOTH_DATABASES
from winslow.core.telemetry import GpuSample, NodeSample, TelemetryRange
from winslow.store.repo import Store
from winslow.store.rows import utc
from winslow.store.tables import Base
from winslow.store.telemetry import add_samples, known_nodes, prune, read_view, roll_up
from winslow.store.telemetry_tables import NodeTelemetryRow

pytestmark = ON_BOTH_DATABASES

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


def sample(at: datetime, busy: float = 20.0, node: str = "gpu-1") -> NodeSample:
    return NodeSample(
        node=node,
        at=at,
        cpu_percent=(busy, busy),
        memory_used_mb=1000.0,
        memory_total_mb=4000.0,
        net_rx_bps=None,
        gpus=(GpuSample(0, utilization_percent=busy, temperature_c=50.0),),
    )


def every_5s(start: datetime, end: datetime, busy: float = 20.0) -> list[NodeSample]:
    count = int((end - start).total_seconds() // 5)
    return [sample(start + timedelta(seconds=5 * i), busy) for i in range(count)]


def rows(store: Store, step: int) -> int:
    with store.sessions() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(NodeTelemetryRow)
                .where(NodeTelemetryRow.step == step)
            )
            or 0
        )


def test_node_telemetry_table_matches_its_migration(store: Store) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "node_telemetry" in str(d)] == []


def test_samples_come_back_as_stored_with_unknown_figures_unknown(store: Store) -> None:
    assert add_samples(store, [sample(NOW - timedelta(seconds=10), 40.0)]) == 1
    tier, points = read_view(store, "gpu-1", TelemetryRange.LIVE, NOW)
    assert tier.step == 0
    [point] = points
    assert point.cpu_percent == (40.0, 40.0)
    assert point.gpus[0].temperature_c == 50.0
    assert point.net_rx_bps is None
    assert known_nodes(store) == {"gpu-1"}


def test_rollups_cover_ended_buckets_once_however_often_they_run(store: Store) -> None:
    add_samples(store, every_5s(NOW - timedelta(minutes=30), NOW + timedelta(seconds=30)))
    written = roll_up(store, NOW + timedelta(seconds=30))
    # 30 one-minute buckets ended; the minute under way waits. 15-minute: two ended.
    assert rows(store, 60) == 30
    assert rows(store, 900) == 2
    assert written == 32
    assert roll_up(store, NOW + timedelta(seconds=30)) == 0
    add_samples(store, every_5s(NOW + timedelta(seconds=30), NOW + timedelta(seconds=90)))
    assert roll_up(store, NOW + timedelta(seconds=90)) == 1  # only the minute that ended
    assert rows(store, 60) == 31


def test_a_rollup_holds_the_mean_of_its_minute(store: Store) -> None:
    start = NOW - timedelta(minutes=1)
    add_samples(store, every_5s(start, start + timedelta(seconds=30), busy=10.0))
    add_samples(store, every_5s(start + timedelta(seconds=30), NOW, busy=30.0))
    roll_up(store, NOW)
    _, [point] = read_view(store, "gpu-1", TelemetryRange.H6, NOW)
    assert point.at == start
    assert point.cpu_percent == (20.0, 20.0)
    assert point.gpus[0].utilization_percent == 20.0
    assert point.count == 12


def test_prune_drops_each_tier_after_its_keep_and_everything_after_31_days(store: Store) -> None:
    for age in (timedelta(hours=5), timedelta(hours=7)):
        add_samples(store, [sample(NOW - age)])
    with store.transaction() as session:
        for step, age in (
            (60, timedelta(days=6)),
            (60, timedelta(days=8)),
            (900, timedelta(days=30)),
            (900, timedelta(days=32)),
        ):
            session.add(NodeTelemetryRow(node="gpu-1", step=step, at=NOW - age, data={"cpu": []}))
    assert prune(store, NOW) == 3
    assert (rows(store, 0), rows(store, 60), rows(store, 900)) == (1, 1, 1)
    with store.sessions() as session:
        oldest = session.scalar(select(func.min(NodeTelemetryRow.at)))
    assert oldest is not None and utc(oldest) > NOW - timedelta(days=31)


def test_each_range_reads_its_tier_and_draws_300_to_700_points(store: Store) -> None:
    # Six hours of raw samples, a week of minutes, 31 days of quarter hours, as a server
    # up for a month keeps them.
    add_samples(store, every_5s(NOW - timedelta(hours=6), NOW))
    with store.transaction() as session:
        minutes = 7 * 24 * 60
        session.add_all(
            NodeTelemetryRow(
                node="gpu-1", step=60, at=NOW - timedelta(minutes=m), data={"cpu": [5.0], "n": 12}
            )
            for m in range(1, minutes + 1)
        )
        session.add_all(
            NodeTelemetryRow(
                node="gpu-1",
                step=900,
                at=NOW - timedelta(minutes=15 * q),
                data={"cpu": [5.0], "n": 180},
            )
            for q in range(1, 31 * 96 + 1)
        )
    expected = {
        TelemetryRange.LIVE: 0,
        TelemetryRange.H6: 60,
        TelemetryRange.H24: 60,
        TelemetryRange.D7: 900,
        TelemetryRange.D31: 900,
    }
    for view_range, step in expected.items():
        tier, points = read_view(store, "gpu-1", view_range, NOW)
        assert tier.step == step, view_range
        assert 300 <= len(points) <= 700, (view_range, len(points))
        assert points == sorted(points, key=lambda p: p.at)


def test_a_node_reads_only_its_own_samples(store: Store) -> None:
    add_samples(store, [sample(NOW - timedelta(seconds=5), node="gpu-1")])
    add_samples(store, [sample(NOW - timedelta(seconds=5), node="gpu-2", busy=90.0)])
    _, points = read_view(store, "gpu-2", TelemetryRange.LIVE, NOW)
    assert [p.cpu_percent for p in points] == [(90.0, 90.0)]
    _, none = read_view(store, "gpu-3", TelemetryRange.LIVE, NOW)
    assert none == []
