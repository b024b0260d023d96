"""The text of Winslow's own log lines: control characters escaped, the rest as it is."""

from __future__ import annotations

import unicodedata

import pytest

from winslow.core.logformat import RECORD, STAGE_STREAMS, escape_text


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("\t", "\\t"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        (
            "\x00\x07\x08\x0b\x0c\x1c\x1d\x1e\x1f\x7f",
            "\\x00\\x07\\x08\\x0b\\x0c\\x1c\\x1d\\x1e\\x1f\\x7f",
        ),
        ("\x80\x85\x9b\x9f", "\\x80\\x85\\x9b\\x9f"),
        ("\u202eexe.pdf\u202c", "\\u202eexe.pdf\\u202c"),
        (
            "\u061c\u200e\u200f\u2066\u2067\u2068\u2069",
            "\\u061c\\u200e\\u200f\\u2066\\u2067\\u2068\\u2069",
        ),
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
    ],
)
def test_control_characters_are_escaped(text, escaped) -> None:
    assert escape_text(text) == escaped


def test_everything_else_stays_as_it_is() -> None:
    text = "Ulm 2019 Straße 🚗 ✓ 東京 a\\nb C:\\path 'quoted' \"x\" | 42 % \u00a0\u200b"
    assert escape_text(text) == text


def test_no_escaped_text_holds_a_line_break_or_a_bidi_control() -> None:
    everything = "".join(map(chr, range(0x3000)))
    escaped = escape_text(everything)
    assert len(escaped.splitlines()) == 1
    assert not any(unicodedata.category(c) == "Cc" for c in escaped)
    assert not any(
        unicodedata.bidirectional(c)
        in ("LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI")
        for c in escaped
    )


def test_a_record_and_the_stage_streams() -> None:
    record = RECORD.match("2026-11-25T08:12:03.123Z winslow | starting: a | b")
    assert record is not None
    assert (record["stamp"], record["stream"], record["text"]) == (
        "2026-11-25T08:12:03.123Z",
        "winslow",
        "starting: a | b",
    )
    assert {"stdout", "stderr"} == STAGE_STREAMS
