"""Progress from a stage's log lines, and the time left estimated from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from winslow.core.progress import Progress, estimate, latest_progress, percent_in

STAMP = "2026-11-25T08:12:03.123Z"
AT = datetime(2026, 11, 25, 8, 12, 3, 123000, tzinfo=UTC)


def line(text: str, stream: str = "stdout", stamp: str = STAMP) -> str:
    return f"{stamp} {stream} | {text}"


@pytest.mark.parametrize(
    ("text", "percent"),
    [
        (" 45%|████▌     | 450/1000 [00:10<00:12, 44.1it/s]", 45.0),
        ("42 %", 42.0),
        ("detect: 37.5% of frames", 37.5),
        ("100%|██████████| 1000/1000", 100.0),
        ("0 %", 0.0),
        ("pass 1 at 20%, pass 2 at 30 %", 30.0),  # the last one on the line
        ("gpu at 250% and 60%", 60.0),
        ("WINSLOW_PROGRESS: 0.45", 45.0),
        ("WINSLOW_PROGRESS: 45%", 45.0),
        ("WINSLOW_PROGRESS: 0.2 (memory 90%)", 20.0),  # the marker wins
    ],
)
def test_a_line_reports_its_last_percentage(text, percent) -> None:
    assert percent_in(text) == percent


@pytest.mark.parametrize(
    "text", ["", "frame 450/1000", "load 250%", "v1.5%", "x50%", "WINSLOW_PROGRESS: 2"]
)
def test_a_line_without_progress_reports_none(text) -> None:
    assert percent_in(text) is None


def test_latest_report_wins_with_its_time() -> None:
    lines = [
        line("starting"),
        line(" 10%|█         | 100/1000", stamp="2026-11-25T08:12:00.000Z"),
        line("42 %", stream="stderr"),
        line("frame 430"),
    ]
    assert latest_progress(lines) == Progress(percent=42.0, at=AT)


def test_a_later_lower_value_wins_because_it_is_the_latest() -> None:
    assert latest_progress([line("90 %"), line("second pass 5 %")]) == Progress(5.0, AT)


def test_values_over_100_and_the_winslow_stream_are_ignored() -> None:
    lines = [line("30 %"), line("load 180 %"), line("stage-in 100%", stream="winslow")]
    assert latest_progress(lines) == Progress(30.0, AT)


def test_lines_that_are_not_records_are_skipped_and_none_without_reports() -> None:
    assert latest_progress(["50 %", line("hello"), ""]) is None
    assert latest_progress([]) is None


def test_estimate_is_linear_in_the_time_so_far() -> None:
    started = AT
    assert estimate(0.25, started, started + timedelta(seconds=60)) == 180
    assert estimate(0.5, started, started + timedelta(minutes=10)) == 600
    assert estimate(1.0, started, started + timedelta(minutes=10)) == 0


def test_no_estimate_before_one_percent_or_before_the_start() -> None:
    assert estimate(0.009, AT, AT + timedelta(seconds=60)) is None
    assert estimate(0.5, None, AT) is None
    assert estimate(0.01, AT, AT + timedelta(seconds=1)) == 99
