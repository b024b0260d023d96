"""Sizes and durations: every form people write parses, every text Winslow shows reads back."""

from __future__ import annotations

import pydantic
import pytest

from winslow.backends.local.usage import parse_docker_size
from winslow.pipeline.model import Requirements, Stage
from winslow.settings import Settings
from winslow.units import (
    GIB,
    KIB,
    MIB,
    TIB,
    counted,
    format_bytes,
    format_duration,
    format_megabytes,
    parse_bytes,
    parse_duration,
    parse_megabytes,
    parse_reported_bytes,
)

# --- parsing sizes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, megabytes",
    [
        ("8G", 8 * 1024),
        ("512M", 512),
        ("1.5GiB", 1536),
        ("2T", 2 * 1024 * 1024),
        ("500G", 500 * 1024),
        ("512", 512),  # a bare number is MiB
        ("8g", 8 * 1024),
        ("8GB", 8 * 1024),
        ("8gb", 8 * 1024),
        ("8Gi", 8 * 1024),
        ("16 GiB", 16 * 1024),
        (" 8G ", 8 * 1024),
        ("512mb", 512),
        ("512Mi", 512),
        ("1TiB", 1024 * 1024),
        ("1.1G", 1126),  # a part of a MiB is dropped, as it always was
        ("2048K", 2),
        ("0", 0),
    ],
)
def test_sizes_people_write_parse_to_megabytes(text, megabytes):
    assert parse_megabytes(text) == megabytes


@pytest.mark.parametrize(
    "text, size",
    [
        ("512", 512),  # a bare number is bytes unless the caller says otherwise
        ("512B", 512),
        ("1k", KIB),
        ("1KB", KIB),
        ("1KiB", KIB),
        ("1.5GiB", 3 * GIB // 2),
        ("2T", 2 * TIB),
        ("4G", 4 * GIB),
        ("0.5K", 512),
    ],
)
def test_sizes_parse_to_bytes_in_binary_units(text, size):
    assert parse_bytes(text) == size


def test_a_bare_number_means_the_unit_the_caller_names():
    assert parse_bytes("100", bare="M") == 100 * MIB
    assert parse_bytes("100", bare="G") == 100 * GIB
    assert parse_bytes("100M", bare="G") == 100 * MIB  # a written unit wins


@pytest.mark.parametrize("text", ["lots", "", "G", "8X", "-1G", "8 G B", "1e3", ".5G", "8GiBs"])
def test_a_bad_size_names_the_value_and_what_is_accepted(text):
    with pytest.raises(ValueError) as caught:
        parse_megabytes(text)
    assert str(caught.value) == (
        f"{text!r} is not a size; write a number with a unit B, K, M, G or T (powers of 1024: "
        "G, GB and GiB are all GiB), such as 512M, 8G or 1.5GiB; a number alone is MiB"
    )


def test_a_bad_size_says_what_a_bare_number_means_there():
    with pytest.raises(ValueError, match=r"a number alone is bytes$"):
        parse_bytes("lots")


def test_an_endless_size_is_refused_not_crashed_on():
    with pytest.raises(ValueError, match="is too large a size"):
        parse_bytes("9" * 400 + "T")


# --- sizes other tools print --------------------------------------------------------------


@pytest.mark.parametrize(
    "text, size",
    [
        ("0B", 0),
        ("512kB", 512_000),  # docker's kB and MB are powers of 1000 ...
        ("3MB", 3_000_000),
        ("2GB", 2e9),
        ("1.5GiB", 1.5 * GIB),  # ... its KiB and GiB powers of 1024
        ("120.1MiB", 120.1 * MIB),
        ("7", 7),
    ],
)
def test_reported_sizes_are_read_as_the_tool_means_them(text, size):
    assert parse_reported_bytes(text) == size


def test_a_bad_reported_size_says_which_units_tools_use():
    with pytest.raises(ValueError) as caught:
        parse_reported_bytes("3 parsecs")
    assert str(caught.value) == (
        "'3 parsecs' is not a size as tools print it; expected a number with B, kB, MB, GB, "
        "TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"
    )


# --- formatting sizes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, text",
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1280, "1.3 KiB"),  # halves round up, as the console's toFixed does
        (1536, "1.5 KiB"),
        (MIB - 1, "1.0 MiB"),  # never "1024.0 KiB"
        (MIB, "1.0 MiB"),
        (5 * MIB, "5.0 MiB"),
        (GIB, "1.0 GiB"),
        (10**9, "953.7 MiB"),  # a decimal gigabyte is under a GiB
        (int(1.2 * 10**9), "1.1 GiB"),
        (5 * TIB, "5.0 TiB"),
        (3000 * TIB, "3000.0 TiB"),  # TiB is the largest unit
        (-2048, "-2.0 KiB"),
    ],
)
def test_sizes_are_shown_in_binary_units(size, text):
    assert format_bytes(size) == text


def test_megabytes_are_shown_as_sizes():
    assert format_megabytes(8192) == "8.0 GiB"
    assert format_megabytes(512) == "512.0 MiB"
    assert format_megabytes(120.1) == "120.1 MiB"


@pytest.mark.parametrize("size", [0, 512, 1536, 5 * MIB, 3 * GIB // 2, 2 * TIB])
def test_a_shown_size_parses_back(size):
    assert parse_bytes(format_bytes(size)) == size


# --- parsing durations --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90", 90),  # a bare number is seconds
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1.5h", 5400),
        ("24h", 86400),
        (" 30 m ", 1800),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d4h", 2 * 86400 + 4 * 3600),
        ("1h0m30s", 3630),
        ("5min", 300),
        ("1 h 05 min", 3900),
        ("0.5", 0),  # a part of a second is dropped, as it always was
    ],
)
def test_durations_people_write_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


HELP = (
    "write seconds, or a number with a unit s, m (or min), h or d, parts largest first: "
    "90, 90s, 30m, 1.5h, 1h30m, 2d"
)


@pytest.mark.parametrize(
    "text", ["soon", "", "2H", "1w", "5ms", "-1h", "1h30", "1 30m", "h", "1e3", "2 hours"]
)
def test_a_bad_duration_names_the_value_and_what_is_accepted(text):
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == f"{text!r} is not a duration; {HELP}"


@pytest.mark.parametrize("text", ["30m1h", "1m30m", "30s1m"])
def test_duration_parts_go_largest_first_once_each(text):
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == (
        f"{text!r} is not a duration: write each unit once, largest first (1h30m, not 30m1h); "
        + HELP
    )


def test_an_endless_duration_is_refused_not_crashed_on():
    with pytest.raises(ValueError, match="is too long a duration"):
        parse_duration("9" * 400 + "d")


# --- formatting durations -----------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds, text, coarse",
    [
        (0, "0 s", "0 s"),
        (45, "45 s", "45 s"),
        (59.4, "59 s", "59 s"),
        (59.5, "1 min 00 s", "1 min"),  # rounded to the nearest second
        (185, "3 min 05 s", "3 min"),
        (3599, "59 min 59 s", "59 min"),
        (3600, "1 h 00 min", "1 h 00 min"),
        (3780, "1 h 03 min", "1 h 03 min"),
        (47 * 3600 + 59 * 60, "47 h 59 min", "47 h 59 min"),
        (48 * 3600, "2 d 00 h", "2 d 00 h"),
        (10 * 86400 + 4 * 3600, "10 d 04 h", "10 d 04 h"),
        (-5, "0 s", "0 s"),  # a clock a little behind is no negative time
    ],
)
def test_durations_are_shown_in_two_parts_at_most(seconds, text, coarse):
    assert format_duration(seconds) == text
    assert format_duration(seconds, coarse=True) == coarse


@pytest.mark.parametrize("seconds", [0, 45, 185, 3599, 3780, 47 * 3600 + 59 * 60, 3 * 86400])
def test_a_shown_duration_parses_back(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


# --- every place agrees -------------------------------------------------------------------


def test_pipelines_settings_and_api_bodies_read_g_as_gib():
    assert Requirements(memory="8G").memory == 8192
    assert Requirements(memory=8192).memory == 8192  # YAML's numbers are MiB already
    assert Settings(node_cache_max="500G").node_cache_max_bytes == 500 * GIB
    assert Settings(node_cache_max="100").node_cache_max_bytes == 100 * MIB


def test_a_stage_timeout_takes_every_duration_form():
    stage = Stage(name="s", command=["true"], timeout="1h30m")
    assert stage.timeout == 5400


def test_a_bad_setting_names_the_variable():
    with pytest.raises(ValueError, match=r"^WINSLOW_NODE_CACHE_MAX: 'lots' is not a size"):
        _ = Settings(node_cache_max="lots").node_cache_max_bytes


def test_a_bad_pipeline_value_keeps_the_units_message():
    with pytest.raises(pydantic.ValidationError, match="'8X' is not a size; write a number"):
        Requirements(memory="8X")


def test_docker_memory_is_read_in_dockers_own_units():
    assert parse_docker_size("1.5GiB") == 1.5 * GIB
    assert parse_docker_size("512kB") == 512_000
    assert parse_docker_size("3 parsecs") is None


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 files"), (1, "1 file"), (2, "2 files"), (1000, "1000 files")]
)
def test_a_count_reads_as_a_person_writes_it(count: int, text: str) -> None:
    """A stage's log said "staging in 1 input (1 files, 8 B)"."""
    assert counted(count, "file") == text
