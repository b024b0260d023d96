"""Results and log-parser series read from a stage's log lines and its results.json."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from winslow.core.outputs import (
    MAX_RESULT_CHARS,
    MAX_RESULTS,
    OutputScanner,
    Series,
    SeriesPoint,
    iter_lines,
    merge_results,
    parse_results_file,
    result_line,
    series_from_json,
    series_to_json,
    typed_value,
)
from winslow.pipeline.model import LogParser

T0 = datetime(2026, 11, 25, 8, 12, 3, 123000, tzinfo=UTC)


def line(text: str, stream: str = "stdout", at: datetime = T0) -> str:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    return f"{stamp} {stream} | {text}"


def scan(*lines: str, parsers: list[LogParser] | None = None, **kw) -> OutputScanner:
    return OutputScanner(parsers or [], **kw).feed_all(lines)


TRAIN = LogParser(
    name="train",
    pattern=r"epoch=(?P<epoch>\d+) loss=(?P<loss>\S+)(?: acc=(?P<acc>\S+))?",
)


# Results ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("0.93", 0.93),
        ("1e-3", 0.001),
        ("true", True),
        ("False", False),
        ("  ulm-0603 north  ", "ulm-0603 north"),
        ("nan", "nan"),  # no one prints "nan" meaning a number to keep
        ("1e999", "1e999"),  # JSON has no infinity
        ("1_000", "1_000"),
        ("", ""),
    ],
)
def test_result_values_are_typed_as_a_person_reads_them(text, value) -> None:
    typed = typed_value(text)
    assert typed == value and type(typed) is type(value)


def test_a_long_result_value_is_cut_and_stays_text() -> None:
    assert typed_value("7" * (MAX_RESULT_CHARS + 5)) == "7" * MAX_RESULT_CHARS


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("WINSLOW_RESULT: vehicles=42", ("vehicles", 42)),
        ("  WINSLOW_RESULT:mAP = 0.61", ("mAP", 0.61)),
        ("WINSLOW_RESULT: note=a=b", ("note", "a=b")),
        ("WINSLOW_RESULT: _x9=", ("_x9", "")),
        ("WINSLOW_RESULT: 9lives=1", None),  # a key begins with a letter or _
        ("WINSLOW_RESULT: bad-key=1", None),
        ("WINSLOW_RESULT: " + "k" * 65 + "=1", None),  # 64 characters at most
        ("WINSLOW_RESULT: novalue", None),
        ("+ echo 'WINSLOW_RESULT: vehicles=42'", None),  # a shell's trace is no report
        ("vehicles=42", None),
    ],
)
def test_result_lines(text, found) -> None:
    assert result_line(text) == found


def test_later_result_lines_overwrite_earlier_ones_and_keep_first_order() -> None:
    scanner = scan(
        line("WINSLOW_RESULT: vehicles=40"),
        line("WINSLOW_RESULT: model=yolo", "stderr"),
        line("WINSLOW_RESULT: vehicles=42"),
    )
    assert scanner.results == {"vehicles": 42, "model": "yolo"}
    assert list(scanner.results) == ["vehicles", "model"]


def test_our_own_stream_and_stray_lines_report_no_results() -> None:
    scanner = scan(
        line("WINSLOW_RESULT: vehicles=1", "winslow"),
        "WINSLOW_RESULT: vehicles=2",  # not a log record
        line("WINSLOW_RESULT: 1bad=3"),
        line("WINSLOW_RESULT: ok=4"),
    )
    assert scanner.results == {"ok": 4}


def test_at_most_max_results_keys_but_known_keys_still_change() -> None:
    lines = [line(f"WINSLOW_RESULT: k{i}={i}") for i in range(MAX_RESULTS + 5)]
    scanner = scan(*lines, line("WINSLOW_RESULT: k0=changed"))
    assert len(scanner.results) == MAX_RESULTS
    assert scanner.results["k0"] == "changed"
    assert f"k{MAX_RESULTS}" not in scanner.results
    assert scanner.problems  # said, not silently dropped


def test_results_file_scalars_count_and_the_rest_is_reported() -> None:
    data = json.dumps(
        {
            "vehicles": 42,
            "mAP": 0.61,
            "done": True,
            "camera": "north",
            "boxes": [1, 2],
            "per_class": {"car": 40},
            "missing": None,
            "bad key": 1,
        }
    ).encode()
    results, problems = parse_results_file(data)
    assert results == {"vehicles": 42, "mAP": 0.61, "done": True, "camera": "north"}
    assert len(problems) == 4
    assert any("boxes" in p and "list" in p for p in problems)
    assert any("per_class" in p and "object" in p for p in problems)


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b"", b'"text"', b"NaN"])
def test_a_results_file_that_is_no_object_gives_nothing_and_says_why(data) -> None:
    results, problems = parse_results_file(data)
    assert results == {} and len(problems) == 1


def test_a_results_file_with_infinity_skips_that_key() -> None:
    results, problems = parse_results_file(b'{"a": Infinity, "b": 1}')
    assert results == {"b": 1} and len(problems) == 1


def test_results_file_wins_over_log_lines() -> None:
    from_log = {"vehicles": 40, "model": "yolo"}
    from_file = {"vehicles": 42, "mAP": 0.61}
    merged = merge_results(from_log, from_file)
    assert merged == {"vehicles": 42, "model": "yolo", "mAP": 0.61}
    assert list(merged) == ["vehicles", "model", "mAP"]


def test_merged_results_stay_within_the_cap_with_the_file_first() -> None:
    from_file = {f"f{i}": i for i in range(MAX_RESULTS - 1)}
    merged = merge_results({"a": 1, "b": 2, "f0": -1}, from_file)
    assert len(merged) == MAX_RESULTS
    assert merged["a"] == 1 and "b" not in merged and merged["f0"] == 0


# Series ----------------------------------------------------------------------------------


def test_a_parser_with_several_groups_yields_one_point_per_matching_line() -> None:
    later = T0 + timedelta(seconds=2)
    scanner = scan(
        line("starting"),
        line("epoch=1 loss=0.9 acc=0.5"),
        line("epoch=2 loss=0.7", "stderr", later),  # acc is optional
        parsers=[TRAIN],
    )
    assert scanner.series() == [
        Series(
            name="train",
            fields=("epoch", "loss", "acc"),
            points=(
                SeriesPoint(T0, {"epoch": 1.0, "loss": 0.9, "acc": 0.5}),
                SeriesPoint(later, {"epoch": 2.0, "loss": 0.7}),
            ),
            truncated=False,
        )
    ]


def test_a_group_that_holds_no_number_is_skipped_and_a_point_needs_one() -> None:
    parser = LogParser(name="eval", pattern=r"split=(?P<split>\w+) map=(?P<map>\S+)")
    scanner = scan(
        line("split=val map=0.42"),
        line("split=test map=n/a"),  # nothing numeric: no point
        parsers=[parser],
    )
    (series,) = scanner.series()
    assert series.fields == ("split", "map")
    assert series.points == (SeriesPoint(T0, {"map": 0.42}),)


def test_fields_follow_the_pattern_order_not_the_alphabet() -> None:
    parser = LogParser(name="p", pattern=r"(?P<zeta>\d+) (?P<alpha>\d+)")
    assert scan(parsers=[parser]).series()[0].fields == ("zeta", "alpha")


def test_several_parsers_match_the_same_line_independently() -> None:
    loss = LogParser(name="loss", pattern=r"loss=(?P<loss>\S+)")
    speed = LogParser(name="speed", pattern=r"(?P<fps>[\d.]+) fps")
    scanner = scan(line("loss=0.5 at 31.5 fps"), line("loss=0.4"), parsers=[loss, speed])
    by_name = {s.name: s for s in scanner.series()}
    assert [p.values for p in by_name["loss"].points] == [{"loss": 0.5}, {"loss": 0.4}]
    assert [p.values for p in by_name["speed"].points] == [{"fps": 31.5}]


def test_our_own_stream_never_makes_points() -> None:
    scanner = scan(line("epoch=1 loss=0.9", "winslow"), parsers=[TRAIN])
    assert scanner.series()[0].points == ()


def test_a_stage_without_parsers_has_no_series() -> None:
    assert scan(line("epoch=1 loss=0.9")).series() == []


def test_points_past_the_cap_are_thinned_evenly_and_the_last_is_kept() -> None:
    lines = [line(f"epoch={i} loss=1", at=T0 + timedelta(seconds=i)) for i in range(1000)]
    (series,) = scan(*lines, parsers=[TRAIN], max_points=100).series()
    epochs = [int(p.values["epoch"]) for p in series.points]
    assert series.truncated
    assert 50 <= len(epochs) <= 100
    assert epochs[0] == 0 and epochs[-1] == 999
    steps = {b - a for a, b in itertools.pairwise(epochs[:-1])}
    assert len(steps) == 1  # evenly spaced, apart from the last point
    # The same log thins the same way every time.
    assert scan(*lines, parsers=[TRAIN], max_points=100).series() == [series]


def test_points_up_to_the_cap_are_all_kept() -> None:
    lines = [line(f"epoch={i} loss=1") for i in range(100)]
    (series,) = scan(*lines, parsers=[TRAIN], max_points=100).series()
    assert len(series.points) == 100 and not series.truncated


def test_series_survive_their_stored_json() -> None:
    series = scan(line("epoch=1 loss=0.9 acc=0.5"), parsers=[TRAIN]).series()
    stored = json.loads(json.dumps(series_to_json(series)))
    assert series_from_json(stored) == series


@pytest.mark.parametrize("body", [None, [], {"format": 2, "series": []}, {"format": 1}])
def test_stored_series_of_another_shape_are_refused(body) -> None:
    with pytest.raises(ValueError):
        series_from_json(body)


# Reading a log in chunks -----------------------------------------------------------------


def test_lines_split_across_chunks_come_out_whole() -> None:
    chunks = [b"first li", b"ne\nsecond\r\nthi", b"rd", b"\n", b"last without newline"]
    assert list(iter_lines(chunks)) == ["first line", "second", "third", "last without newline"]


def test_a_line_longer_than_the_limit_is_cut_and_the_next_one_is_whole() -> None:
    chunks = [b"a" * 10, b"b" * 10, b"c\nnext\n"]
    assert list(iter_lines(chunks, max_line=8)) == ["aaaaaaaa", "next"]


def test_utf8_split_between_chunks_decodes() -> None:
    data = "größe=1\n".encode()
    assert list(iter_lines([data[:3], data[3:]])) == ["größe=1"]
