"""What a gate asks a person: typed questions, a description quoting results, files to review.

A gated stage may carry an ``ask:`` block (the model ``GateAsk``): a Markdown description
that may quote earlier results as ``{{ results.detect.detections }}``, typed inputs whose
answers become project variables, and workspace files (or glob patterns) the console
previews on the gate card. This module holds the models and the pure rules around them:
the answers a person gives are checked and turned into variable text
(``check_answers``), and the description is filled with the results it quotes
(``fill_description``). Rendering the Markdown into HTML is the API's job.

Answers are checked against the declaration, not trusted: a number within its range, a
choice among its choices, a boolean that is one. Every wrong answer is reported at once,
each under its input's name, so a form can mark every field in one go.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any

from jinja2 import ChainableUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from winslow.errors import ValidationError

MAX_INPUTS = 32
"""Inputs one gate may ask; a longer form is a configuration file, not a question."""

MAX_REVIEW_FILES = 16
"""Review patterns one gate may list."""

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
"""How a boolean answer may be written on a command line (any case)."""


class InputType(str, Enum):
    """What kind of answer an input takes."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CHOICE = "choice"


def _scalar(value: Any) -> Any:
    if isinstance(value, list | dict):
        raise ValueError("expected a single value (text, a number or true/false), got a list")
    return value


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateInput(_Strict):
    """One question of a gate; the answer becomes project variable ``name``."""

    name: str
    type: InputType = InputType.STRING
    label: str = ""
    """What the form shows; the name where empty."""
    help: str = ""
    default: Annotated[str | bool | float | None, BeforeValidator(_scalar)] = None
    """The prefilled answer; an input without one must be answered (a boolean: false)."""
    min: float | None = None
    max: float | None = None
    """The range of a number, each end included."""
    choices: list[Annotated[str, BeforeValidator(_text)]] = []
    """What a ``choice`` may be."""

    @property
    def required(self) -> bool:
        return self.default is None and self.type is not InputType.BOOLEAN

    def default_text(self) -> str | None:
        """The default as the variable text it becomes, or None without one."""
        if self.type is InputType.BOOLEAN:
            return "true" if self.default is True else "false"
        if self.default is None:
            return None
        if self.type is InputType.NUMBER and isinstance(self.default, float):
            return number_text(self.default)
        return str(self.default).lower() if isinstance(self.default, bool) else str(self.default)


class GateAsk(_Strict):
    """What a gate shows and asks before its stage starts (a stage's ``ask:``)."""

    description: str = ""
    """Markdown; ``{{ results.<stage>.<key> }}`` and ``{{ vars.NAME }}`` quote values."""
    inputs: list[GateInput] = Field(default=[], max_length=MAX_INPUTS)
    review: list[str] = Field(default=[], max_length=MAX_REVIEW_FILES)
    """Workspace paths or glob patterns (``frames/*.jpg``) the gate card previews, and
    resource pool videos as ``pool:${INPUT_VIDEO}`` (shown with the detections of the
    workspace before the gate drawn on their frames)."""

    @field_validator("review")
    @classmethod
    def _relative(cls, value: list[str]) -> list[str]:
        for entry in value:
            path = pool_path(entry) or entry
            if not path.strip() or path.startswith("/") or ".." in path.split("/"):
                where = "the resource pool" if pool_path(entry) else "the workspace"
                raise ValueError(
                    f"review path {entry!r} must be a path inside {where}, "
                    "relative and without '..'"
                )
        return value


POOL_PREFIX = "pool:"
"""A review entry that names a resource pool file rather than a workspace one."""


def pool_path(entry: str) -> str | None:
    """The resource pool path a review entry names (``pool:videos/a.mp4``), else None."""
    return entry[len(POOL_PREFIX) :] if entry.startswith(POOL_PREFIX) else None


class AnswersError(ValidationError):
    """Answers to a gate's inputs are missing or wrong. ``fields`` maps where each wrong
    answer sits in a resume request (``answers.MIN_TRACK_FRAMES``) to what is wrong with it,
    so a form can put every message onto its field."""

    code = "invalid_answers"

    def __init__(self, gate: str, problems: Mapping[str, str]) -> None:
        self.gate = gate
        self.fields = {f"answers.{name}": problem for name, problem in problems.items()}
        listed = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
        super().__init__(f"The answers to gate '{gate}' are not complete or not right: {listed}.")


def number_text(value: float) -> str:
    """A number as variable text: ``8`` for 8.0, ``0.25`` for 0.25."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def check_answers(
    gate: str,
    ask: GateAsk,
    answers: Mapping[str, Any],
    previous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return every input's answer as variable text, or raise ``AnswersError``.

    An input left out takes its ``previous`` value (what the project holds from an earlier
    answer), else its default; one with neither is missing. Answers may be JSON values or
    the text a command line gives (``"12"``, ``"true"``).
    """
    previous = previous or {}
    declared = {item.name: item for item in ask.inputs}
    problems: dict[str, str] = {
        name: f"gate '{gate}' asks no '{name}'; it asks {_names(ask)}"
        for name in answers
        if name not in declared
    }
    values: dict[str, str] = {}
    for item in ask.inputs:
        if item.name in answers and answers[item.name] is not None:
            value, problem = _answer(item, answers[item.name])
        elif item.name in previous:
            value, problem = previous[item.name], None
        else:
            value = item.default_text()
            problem = "an answer is required" if value is None else None
        if problem is not None:
            problems[item.name] = problem
        elif value is not None:
            values[item.name] = value
    if problems:
        raise AnswersError(gate, problems)
    return values


def _names(ask: GateAsk) -> str:
    return ", ".join(item.name for item in ask.inputs) or "nothing"


def _answer(item: GateInput, raw: Any) -> tuple[str | None, str | None]:
    """The answer as text, or the problem with it."""
    if item.type is InputType.BOOLEAN:
        word = str(raw).strip().lower() if not isinstance(raw, bool) else str(raw).lower()
        if word in TRUE_WORDS:
            return "true", None
        if word in FALSE_WORDS:
            return "false", None
        return None, f"expected true or false, got {raw!r}"
    if item.type is InputType.NUMBER:
        return _number(item, raw)
    if isinstance(raw, dict | list):
        return None, "expected a single value, got a list"
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    if item.type is InputType.CHOICE and text not in item.choices:
        return None, f"expected one of {', '.join(item.choices)}; got {text!r}"
    return text, None


def _number(item: GateInput, raw: Any) -> tuple[str | None, str | None]:
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError):
        return None, f"expected a number, got {raw!r}"
    if not math.isfinite(value):
        return None, f"expected a finite number, got {raw!r}"
    if item.min is not None and value < item.min:
        return None, f"must be at least {number_text(item.min)}, got {number_text(value)}"
    if item.max is not None and value > item.max:
        return None, f"must be at most {number_text(item.max)}, got {number_text(value)}"
    return number_text(value), None


class _Missing(ChainableUndefined):
    """A quoted value that is not there (the stage reported none): shown, not fatal."""

    def __str__(self) -> str:
        return "(no value)"


_ENVIRONMENT = SandboxedEnvironment(undefined=_Missing, autoescape=False)

_RESULT_STAGE = re.compile(r"\bresults\.([A-Za-z0-9_]+)")


def description_problem(text: str) -> str | None:
    """Why ``text`` cannot be filled in as a description, or None when it can."""
    try:
        _ENVIRONMENT.parse(text)
    except TemplateSyntaxError as exc:
        return f"the description is not a valid template (line {exc.lineno}): {exc.message}"
    return None


def quoted_stages(text: str) -> set[str]:
    """The stages whose results ``text`` quotes inside ``{{ }}`` or ``{% %}``."""
    found: set[str] = set()
    for block in re.findall(r"\{[{%](.*?)[}%]\}", text, flags=re.S):
        found |= set(_RESULT_STAGE.findall(block))
    return found


def fill_description(text: str, results: Mapping[str, Any], variables: Mapping[str, str]) -> str:
    """Return the Markdown ``text`` with the results and variables it quotes filled in.

    A value that is not there reads "(no value)"; a template that fails to render is shown
    as written, with the reason after it, so a gate never hides its card.
    """
    context = {"results": dict(results), "vars": dict(variables)}
    try:
        return _ENVIRONMENT.from_string(text).render(context)
    # The sandbox raises many kinds of error; every one means "show it as written".
    except Exception as exc:
        return f"{text}\n\n(The values could not be filled in: {exc}.)"


def review_matches(patterns: list[str], paths: list[str], limit: int) -> list[str]:
    """The workspace ``paths`` the review ``patterns`` name, pattern by pattern (each one's
    matches sorted), without repeats, at most ``limit``. ``*`` matches across folders."""
    found: dict[str, None] = {}
    for pattern in patterns:
        for path in sorted(paths):
            if path == pattern or fnmatch.fnmatchcase(path, pattern):
                found.setdefault(path)
    return list(found)[:limit]
