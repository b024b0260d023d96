"""Substitution of ``${NAME}`` references in a stage's command, env values and inputs.

A reference is ``${`` followed by anything up to the next ``}``; ``$${...}`` is an escape that
produces the literal ``${...}``, so shell code in a command can keep its own ``${HOME}``. A plain
``$NAME`` is never touched. Names missing from the values are collected, never raised one at a
time, so a person fixes them all in one go. Pure: values in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from winslow.errors import ValidationError

if TYPE_CHECKING:
    from winslow.pipeline.model import Stage

BUILTIN_VARIABLES = frozenset(
    {"WINSLOW_PROJECT", "WINSLOW_STAGE", "WINSLOW_RUN", "WINSLOW_WORKSPACE", "WINSLOW_INPUTS"}
)
"""Names Winslow sets for every run; stages may reference them without declaring them."""

_REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
"""Group 1 is ``$`` for an escape; group 2 is the name, unchecked so bad names are reported."""


class MissingVariableError(ValidationError, KeyError):
    """A text references variables that have no value; ``names`` lists them all, sorted.

    A ``KeyError`` too, so code that treats a missing value as a missing key keeps working.
    """

    code = "missing_variable"

    def __init__(self, names: Iterable[str], stage: str | None = None) -> None:
        self.names = sorted(set(names))
        self.stage = stage
        listed = ", ".join(self.names)
        plural = "s" if len(self.names) > 1 else ""
        subject = f"Stage '{stage}' references" if stage is not None else "The text references"
        them = "them" if plural else "it"
        super().__init__(
            f"{subject} variable{plural} without a value: {listed}. Set {them} on the project,"
            " or give a default under `variables:` in the pipeline."
        )

    def __str__(self) -> str:
        # KeyError would quote the message as a repr.
        return self.message


def references(text: str) -> set[str]:
    """Return the names ``text`` references as ``${NAME}``, leaving out escaped ``$${NAME}``."""
    return {match.group(2) for match in _REFERENCE.finditer(text) if not match.group(1)}


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """Return ``text`` with every ``${NAME}`` replaced by ``values[NAME]`` and ``$${`` by ``${``.

    Raises ``MissingVariableError`` naming every referenced name absent from ``values``::

        interpolate("--model ${MODEL} --cache $${HOME}", {"MODEL": "yolo"})
        # '--model yolo --cache ${HOME}'
    """
    missing = references(text) - values.keys()
    if missing:
        raise MissingVariableError(missing)
    return _substitute(text, values)


def missing_for_stage(stage: Stage, values: Mapping[str, str]) -> list[str]:
    """Return the names ``stage`` references in command, env values or inputs that ``values``
    lacks, sorted."""
    found: set[str] = set()
    for text in _stage_texts(stage):
        found |= references(text)
    return sorted(found - values.keys())


def interpolate_stage(
    stage: Stage, values: Mapping[str, str]
) -> tuple[list[str], dict[str, str], list[str]]:
    """Return the stage's command, env and inputs with references substituted.

    A stage without a command (it runs its image's own) gets an empty list. Env keys are
    left as written. Raises ``MissingVariableError`` naming every missing name of the stage.
    """
    missing = missing_for_stage(stage, values)
    if missing:
        raise MissingVariableError(missing, stage=stage.name)
    command = [_substitute(part, values) for part in stage.command or []]
    env = {key: _substitute(value, values) for key, value in stage.env.items()}
    inputs = [_substitute(path, values) for path in stage.inputs]
    return command, env, inputs


def _stage_texts(stage: Stage) -> list[str]:
    return [*(stage.command or []), *stage.env.values(), *stage.inputs]


def _substitute(text: str, values: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        return values[match.group(2)]

    return _REFERENCE.sub(replace, text)
