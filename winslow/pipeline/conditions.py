"""A stage's ``when`` condition: a Jinja2 expression over earlier results and variables.

Evaluated in Jinja2's sandbox, never with ``eval``: attribute access is limited to data,
nothing can be imported or called that the sandbox does not allow. Names the expression
may use:

- ``results.<stage>.<key>``: what an earlier stage reported (``WINSLOW_RESULT: key=value``
  or ``results.json``). For a stage that sweeps, ``results.<stage>`` is a list with one
  entry per succeeded combination: its results and its sweep values together.
- every project variable by name (``QUALITY == "high"``), also as ``vars.QUALITY``.
  Variables are text; compare numbers with ``NAME | int`` or ``NAME | float``.

An unknown name is an error, not false: a typo must not silently skip a day of GPU work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

_ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

_RESULT_PATH = re.compile(r"\bresults\.([A-Za-z0-9_]+)(?:\.([A-Za-z_][A-Za-z0-9_]*))?")
_NAME = re.compile(r"(?<![\w.'\"])([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")
_WORDS = frozenset(
    {"and", "or", "not", "in", "is", "true", "false", "none", "True", "False", "None"}
    | {"if", "else", "results", "vars"}
)


class ConditionError(ValueError):
    """The condition cannot be evaluated; the message says why, in a person's words."""


@dataclass(frozen=True)
class Verdict:
    """What a condition came to, and the values it looked at (for the skip reason)."""

    passed: bool
    values: dict[str, Any]

    def describe(self, expression: str) -> str:
        shown = ", ".join(f"{name} = {value!r}" for name, value in self.values.items())
        outcome = "true" if self.passed else "false"
        return f"condition `{expression}` is {outcome}" + (f" ({shown})" if shown else "")


def syntax_problem(expression: str) -> str | None:
    """Return why ``expression`` is not a valid condition, or None when it is."""
    if not expression.strip():
        return "the condition is empty"
    try:
        _ENVIRONMENT.compile_expression(expression)
    except TemplateSyntaxError as exc:
        return f"the condition is not a valid expression: {exc.message}"
    return None


def referenced_stages(expression: str) -> set[str]:
    """Return the stages ``expression`` reads results of (``results.<stage>``)."""
    return {match.group(1) for match in _RESULT_PATH.finditer(_without_strings(expression))}


def evaluate(expression: str, results: Mapping[str, Any], variables: Mapping[str, str]) -> Verdict:
    """Evaluate ``expression``; raise ``ConditionError`` when it cannot be."""
    problem = syntax_problem(expression)
    if problem is not None:
        raise ConditionError(problem)
    context: dict[str, Any] = {**variables, "vars": dict(variables), "results": dict(results)}
    try:
        value = _ENVIRONMENT.compile_expression(expression, undefined_to_none=False)(**context)
        passed = bool(value)
    except UndefinedError as exc:
        raise ConditionError(f"the condition uses something that has no value: {exc}") from exc
    except SecurityError as exc:
        raise ConditionError(f"the condition does something not allowed: {exc}") from exc
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ConditionError(f"the condition cannot be evaluated: {exc}") from exc
    return Verdict(passed, _values_seen(expression, results, variables))


def _without_strings(expression: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", expression)


def _values_seen(
    expression: str, results: Mapping[str, Any], variables: Mapping[str, str]
) -> dict[str, Any]:
    """The values of the names the expression mentions, for a person to read."""
    text = _without_strings(expression)
    seen: dict[str, Any] = {}
    for match in _RESULT_PATH.finditer(text):
        stage, key = match.group(1), match.group(2)
        value: Any = results.get(stage)
        if key is not None and isinstance(value, Mapping):
            seen[f"results.{stage}.{key}"] = value.get(key)
        else:
            seen[f"results.{stage}"] = value
    for name in _NAME.findall(_RESULT_PATH.sub("", text)):
        if name not in _WORDS and name in variables:
            seen[name] = variables[name]
    for name in re.findall(r"\bvars\.([A-Za-z_][A-Za-z0-9_]*)", text):
        if name in variables:
            seen[name] = variables[name]
    return seen
