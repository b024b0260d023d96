"""Readable contrast: every text colour of the console against its background, by WCAG 2.x.

Computed from the colours ``winslow/ui/static/console.css`` defines, so a palette change that
makes text hard to read fails here before anyone squints at it: the light palette (``:root``)
and the dark one (``:root[data-theme="dark"]``, which overrides the names it sets).
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
    ("--on-bad", "--bad", "text on danger buttons"),
    ("--ink", "--field-bg", "text in fields"),
    ("--code-ink", "--code-bg", "a failed run's last log lines"),
    ("--note-ink", "--bg", "Winslow's own log lines"),
    ("--ink", "--hover", "a log line under the pointer"),
    ("--ink", "--stderr-bg", "stderr log lines"),
]

THEMES = ("light", "dark")

AA_NORMAL_TEXT = 4.5
AA_GRAPHICS = 3.0
"""WCAG 1.4.11: lines of a chart against their background."""

CHART_LINES = [f"--chart-{letter}" for letter in "abcdefgh"]


def block(text: str, selector: str) -> str:
    """The declarations of the first rule whose selector is exactly ``selector``."""
    match = re.search(re.escape(selector) + r"\s*\{([^}]*)\}", text)
    assert match, f"console.css has no rule {selector!r}"
    return match.group(1)


def variables(theme: str = "light") -> dict[str, str]:
    text = CSS.read_text()

    def colours(declarations: str) -> dict[str, str]:
        return dict(re.findall(r"(--[a-z-]+):\s*(#[0-9a-fA-F]{6})", declarations))

    found = colours(block(text, ":root"))
    if theme == "dark":
        found.update(colours(block(text, ':root[data-theme="dark"]')))
    return found


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


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize(("text", "background", "what"), PAIRS)
def test_text_meets_wcag_aa(theme: str, text: str, background: str, what: str) -> None:
    colours = variables(theme)
    ratio = contrast(colours[text], colours[background])
    assert ratio >= AA_NORMAL_TEXT, f"{theme}: {what}: {text} on {background} is {ratio:.2f}:1"


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("line", CHART_LINES)
def test_chart_lines_stand_out_from_the_page(theme: str, line: str) -> None:
    colours = variables(theme)
    ratio = contrast(colours[line], colours["--bg"])
    assert ratio >= AA_GRAPHICS, f"{theme}: chart line {line} on --bg is {ratio:.2f}:1"


def test_dark_mode_sets_every_colour_again() -> None:
    """A colour the dark palette forgot would stay light on a dark page."""
    text = CSS.read_text()
    light = set(re.findall(r"(--[a-z-]+):", block(text, ":root")))
    dark = set(re.findall(r"(--[a-z-]+):", block(text, ':root[data-theme="dark"]')))
    assert light - dark == set()


def test_stylesheets_take_their_colours_from_the_palette() -> None:
    """Dark mode works only where a sheet uses ``var(--…)``: a colour written into a rule
    stays the same in both modes (white boxes on a dark page)."""
    text = CSS.read_text()
    palettes = (block(text, ":root"), block(text, ':root[data-theme="dark"]'))
    literal = re.compile(r"#[0-9a-fA-F]{3,8}\b|\brgba?\(|\bhsla?\(")
    found = []
    for sheet in sorted(CSS.parent.glob("*.css")):
        rules = sheet.read_text()
        if sheet == CSS:
            for palette in palettes:
                rules = rules.replace(palette, "")
        rules = re.sub(r"/\*.*?\*/", "", rules, flags=re.S)
        found += [f"{sheet.name}: {m.group(0)}" for m in literal.finditer(rules)]
    assert found == []
