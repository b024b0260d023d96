"""Readable contrast: every text colour of the console against its background, by WCAG 2.x.

Computed from the colours ``winslow/ui/static/console.css`` defines, so a palette change that
makes text hard to read fails here before anyone squints at it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "winslow" / "ui" / "static" / "console.css"

PAIRS = [
    # (text, background, what it is)
    ("--ink", "--bg", "body text"),
    ("--muted", "--bg", "secondary text"),
    ("--muted", "--panel", "secondary text on the header"),
    ("--accent", "--bg", "links"),
    ("--accent-ink", "--accent", "primary buttons"),
    ("--ok", "--ok-bg", "succeeded badges"),
    ("--run", "--run-bg", "running badges, current page in the menu"),
    ("--warn", "--warn-bg", "awaiting input / paused badges"),
    ("--bad", "--bad-bg", "failed badges, error messages"),
    ("--idle", "--idle-bg", "idle badges, labels"),
    ("--skip", "--skip-bg", "skipped badges"),
    ("--skip", "--bg", "skipped stage notes"),
]

AA_NORMAL_TEXT = 4.5
AA_GRAPHICS = 3.0
"""WCAG 1.4.11: lines of a chart against their background."""

CHART_LINES = [f"--chart-{letter}" for letter in "abcdefgh"]


def variables() -> dict[str, str]:
    text = CSS.read_text()
    return dict(re.findall(r"(--[a-z-]+):\s*(#[0-9a-fA-F]{6})", text))


def luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_formula_matches_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(("text", "background", "what"), PAIRS)
def test_text_meets_wcag_aa(text: str, background: str, what: str) -> None:
    colours = variables()
    ratio = contrast(colours[text], colours[background])
    assert ratio >= AA_NORMAL_TEXT, f"{what}: {text} on {background} is {ratio:.2f}:1"


@pytest.mark.parametrize("line", CHART_LINES)
def test_chart_lines_stand_out_from_the_page(line: str) -> None:
    colours = variables()
    ratio = contrast(colours[line], colours["--bg"])
    assert ratio >= AA_GRAPHICS, f"chart line {line} on --bg is {ratio:.2f}:1"
