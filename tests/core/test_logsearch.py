"""The log search's pure part: lines cut from chunks, matching, pages, and its time bound."""

from __future__ import annotations

import time

import pytest

from winslow.core.logsearch import (
    MAX_LINE_BYTES,
    SHOWN_CHARS,
    LineScanner,
    LogSearch,
    PatternError,
    compile_pattern,
)

LOG = b"alpha one\nBeta two\nalphabet three\n\ngamma ALPHA four\nlast without newline alpha"


def search(
    text: bytes, query: str, *, chunk: int = 7, limit: int = 100, **options: bool
) -> LogSearch:
    found = LogSearch(compile_pattern(query, **options), limit=limit, clock=lambda: 0, deadline=1)
    found.found = []  # type: ignore[attr-defined]
    for start in range(0, len(text), chunk):
        found.found += found.feed(text[start : start + chunk])  # type: ignore[attr-defined]
        if found.done:
            return found
    found.found += found.finish()  # type: ignore[attr-defined]
    return found


def test_lines_keep_numbers_and_offsets_across_chunk_borders() -> None:
    scanner = LineScanner()
    lines = [line for i in range(0, len(LOG), 3) for line in scanner.feed(LOG[i : i + 3])]
    last = scanner.finish()
    assert last is not None
    lines.append(last)
    whole = LOG.split(b"\n")
    assert [line.data for line in lines] == whole
    assert [line.number for line in lines] == list(range(1, len(whole) + 1))
    for line in lines:
        assert LOG[line.offset : line.offset + line.length] == line.data


def test_substring_is_case_insensitive_unless_asked() -> None:
    hits = search(LOG, "alpha").found  # type: ignore[attr-defined]
    assert [(h.line, h.offset) for h in hits] == [(1, 0), (3, 19), (5, 35), (6, 52)]
    assert hits[2].text == "gamma ALPHA four" and hits[2].spans == [(6, 11)]
    exact = search(LOG, "alpha", case=True).found  # type: ignore[attr-defined]
    assert [h.line for h in exact] == [1, 3, 6]


def test_regex_and_plain_text_differ_only_when_asked() -> None:
    assert [h.line for h in search(LOG, r"^\w+ t", is_regex=True).found] == [2, 3]  # type: ignore[attr-defined]
    assert search(LOG, r"^\w+ t").found == []  # type: ignore[attr-defined]
    assert [h.line for h in search(b"a.b\naxb\n", "a.b").found] == [1]  # type: ignore[attr-defined]


def test_a_bad_regex_says_what_is_wrong() -> None:
    with pytest.raises(PatternError, match=r"'\(unclosed' is not a regular expression: .*position"):
        compile_pattern("(unclosed", is_regex=True)
    compile_pattern("(unclosed")  # plain text: any characters


def test_a_full_page_says_where_the_next_begins() -> None:
    first = search(LOG, "alpha", limit=2)
    assert [h.line for h in first.found] == [1, 3]  # type: ignore[attr-defined]
    assert first.reason == "limit"
    assert (first.next_line, first.next_offset) == (4, LOG.index(b"\n\ngamma") + 1)
    rest = LogSearch(
        compile_pattern("alpha"),
        limit=10,
        clock=lambda: 0,
        deadline=1,
        line=first.next_line,
        offset=first.next_offset,
    )
    hits = rest.feed(LOG[first.next_offset :]) + rest.finish()
    assert [(h.line, h.offset) for h in hits] == [(5, 35), (6, 52)]
    assert rest.reason == "end" and rest.next_line is None


def test_a_long_line_is_searched_in_its_start_and_shown_as_a_window() -> None:
    line = b"x" * 5000 + b" needle " + b"y" * 5000
    beyond = b"z" * (MAX_LINE_BYTES + 10) + b" needle"
    text = line + b"\n" + beyond + b"\nneedle\n"
    hits = search(text, "needle", chunk=4096).found  # type: ignore[attr-defined]
    assert [h.line for h in hits] == [1, 3]  # the needle past MAX_LINE_BYTES is not seen
    window = hits[0]
    assert window.cut and len(window.text) == SHOWN_CHARS
    a, b = window.spans[0]
    assert window.text[a:b] == "needle"
    assert window.start + a == 5001
    assert hits[1].offset == len(line) + 1 + len(beyond) + 1  # offsets stay exact


def test_the_time_budget_stops_a_search_where_it_was() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 1
        return now[0]

    found = LogSearch(compile_pattern("a"), limit=100, clock=clock, deadline=3.5)
    hits = found.feed(b"a1\na2\na3\na4\na5\n")
    assert [h.line for h in hits] == [1, 2, 3]
    assert found.reason == "timeout" and (found.next_line, found.next_offset) == (4, 9)
    assert found.skipped_line is None


def test_a_catastrophic_pattern_is_stopped_and_its_line_skipped() -> None:
    pattern = compile_pattern(r"(a|aa)+$", is_regex=True)
    found = LogSearch(pattern, limit=10, clock=time.monotonic, deadline=time.monotonic() + 0.3)
    started = time.monotonic()
    found.feed(b"ok\n" + b"a" * 60 + b"b\nmore\n")
    assert time.monotonic() - started < 10  # `re` would take far longer than the test's life
    assert found.reason == "timeout" and found.skipped_line == 2
    assert found.next_line == 3
