"""Node telemetry as values: rates from counters, rollups, and which kept resolution each
of the console's ranges reads (``core/telemetry.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from winslow.core.telemetry import (
    TIERS,
    VIEWS,
    Counters,
    GpuSample,
    NodeSample,
    TelemetryRange,
    bucket_start,
    complete_buckets,
    from_json,
    merge,
    rate,
    rates,
    rebucket,
    source_tier,
    to_json,
)

T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


def sample(seconds: float, cpu: tuple[float, ...] = (10.0, 30.0), **figures) -> NodeSample:
    return NodeSample(node="gpu-1", at=T0 + timedelta(seconds=seconds), cpu_percent=cpu, **figures)


def test_a_rate_is_bytes_per_second_between_two_readings():
    assert rate(1000, 6000, 5.0) == 1000.0


@pytest.mark.parametrize(
    ("before", "after", "seconds"),
    [(None, 10, 5.0), (10, None, 5.0), (10, 20, 0.0), (5000, 10, 5.0)],
    ids=["no earlier reading", "no later reading", "no time passed", "counter went back"],
)
def test_a_rate_that_cannot_be_known_is_none_never_negative(before, after, seconds):
    assert rate(before, after, seconds) is None


def test_rates_of_the_first_reading_are_unknown_then_come_from_the_counters():
    first = Counters(clock=100.0, disk_read=0, disk_written=0, net_received=0, net_sent=None)
    second = Counters(clock=102.0, disk_read=4096, disk_written=0, net_received=200, net_sent=9)
    assert rates(None, first).net_rx_bps is None
    measured = rates(first, second)
    assert (measured.disk_read_bps, measured.disk_write_bps) == (2048.0, 0.0)
    assert (measured.net_rx_bps, measured.net_tx_bps) == (100.0, None)


def test_buckets_align_to_the_epoch_whatever_the_first_sample():
    assert bucket_start(T0 + timedelta(seconds=59.9), 60) == T0
    assert bucket_start(T0 + timedelta(seconds=61), 60) == T0 + timedelta(minutes=1)
    assert bucket_start(T0 + timedelta(minutes=14), 900) == T0


def test_a_rollup_is_the_mean_of_each_figure_and_unknown_stays_unknown():
    merged = merge(
        [
            sample(0, (10.0, 30.0), memory_used_mb=100.0, net_rx_bps=None),
            sample(5, (30.0, 50.0), memory_used_mb=300.0, net_rx_bps=None),
        ],
        T0,
    )
    assert merged.cpu_percent == (20.0, 40.0)
    assert merged.cpu_mean == 30.0
    assert merged.memory_used_mb == 200.0
    assert merged.net_rx_bps is None  # Nomad measures no network: never a zero
    assert merged.count == 2


def test_a_rollup_of_rollups_weighs_each_by_the_samples_it_stands_for():
    three = NodeSample(node="n", at=T0, memory_used_mb=10.0, count=3)
    one = NodeSample(node="n", at=T0, memory_used_mb=50.0, count=1)
    assert merge([three, one], T0).memory_used_mb == 20.0
    assert merge([three, one], T0).count == 4


def test_gpus_are_averaged_by_index_and_a_figure_one_gpu_lacks_stays_unknown():
    first = sample(0, gpus=(GpuSample(0, 50.0, power_w=None), GpuSample(1, 10.0, power_w=100.0)))
    second = sample(5, gpus=(GpuSample(0, 100.0, power_w=None), GpuSample(1, 30.0, power_w=200.0)))
    gpus = merge([first, second], T0).gpus
    assert [(g.index, g.utilization_percent, g.power_w) for g in gpus] == [
        (0, 75.0, None),
        (1, 20.0, 150.0),
    ]


def test_rebucketing_gives_one_point_per_step_and_leaves_gaps_out():
    samples = [sample(s) for s in (0, 5, 10, 65, 200)]
    points = rebucket(samples, 60)
    assert [p.at for p in points] == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)]
    assert [p.count for p in points] == [3, 1, 1]


def test_only_buckets_that_ended_are_rolled_up():
    samples = [sample(s) for s in (0, 30, 60, 90)]
    done = complete_buckets(samples, 60, now=T0 + timedelta(seconds=100))
    assert [(p.at, p.count) for p in done] == [(T0, 2)]


def test_every_range_draws_between_300_and_700_points():
    for view_range, view in VIEWS.items():
        points = view.span.total_seconds() / view.step
        assert 300 <= points <= 700, view_range


def test_a_server_up_for_a_month_reads_the_coarsest_tier_fine_enough_for_each_range():
    now = T0
    long_ago = {tier.step: now - tier.keep for tier in TIERS}
    picked = {r: source_tier(v, now, long_ago).step for r, v in VIEWS.items()}
    assert picked == {
        TelemetryRange.LIVE: 0,
        TelemetryRange.H6: 60,
        TelemetryRange.H24: 60,
        TelemetryRange.D7: 900,
        TelemetryRange.D31: 900,
    }


def test_a_young_server_reads_the_finer_tier_that_reaches_back_further():
    now = T0
    oldest = {0: now - timedelta(hours=2), 60: now - timedelta(hours=1, minutes=58), 900: None}
    assert source_tier(VIEWS[TelemetryRange.D7], now, oldest).step == 0
    assert source_tier(VIEWS[TelemetryRange.D31], now, {0: now, 60: None, 900: None}).step == 0
    assert source_tier(VIEWS[TelemetryRange.H6], now, oldest).step == 0
    assert source_tier(VIEWS[TelemetryRange.H6], now, {}).step == 0


def test_a_sample_survives_its_stored_form():
    original = sample(
        0,
        memory_used_mb=1.5,
        memory_total_mb=8.0,
        disk_read_bps=0.0,
        gpus=(GpuSample(0, 12.0, 100.0, 8000.0, 55.0, None),),
        count=7,
    )
    assert from_json(original.node, original.at, to_json(original)) == original
