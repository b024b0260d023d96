"""Substitution of ``${NAME}`` references in a stage's command, env values and inputs.

A reference is ``${`` followed by anything up to the next ``}``; ``$${...}`` is an escape that
produces the literal ``${...}``, so shell code in a command can keep its own ``${HOME}``. A plain
``$NAME`` is never touched. Names missing from the values are collected, never raised one at a
time, so a person fixes them all in one go. Pure: values in, text out.

``${WINSLOW_WORKSPACE}`` and ``${WINSLOW_INPUTS}`` (``NODE_PATH_VARIABLES``) are paths only
the node knows. For a run, the engine substitutes everything else and writes the command
and env as *node text* (``interpolate_stage(..., for_node=True)``, ``node_literal``), which
the node turns into the final text with ``resolve_node_paths``. Node text is the final text
but for a run of ``n`` dollar signs right before ``{WINSLOW_WORKSPACE}`` or
``{WINSLOW_INPUTS}``: an odd ``n`` is ``n // 2`` dollar signs and the path, an even ``n``
is ``n // 2`` dollar signs and the literal ``{NAME}``. So ``${WINSLOW_WORKSPACE}`` is the
path and ``$${WINSLOW_WORKSPACE}`` the literal ``${WINSLOW_WORKSPACE}``, however the text
came about: an escape in the pipeline and a variable's value stay literal.
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

NODE_PATH_VARIABLES = ("WINSLOW_WORKSPACE", "WINSLOW_INPUTS")
"""Built-in names whose values, paths on the node, only the node knows."""

_REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
"""Group 1 is ``$`` for an escape; group 2 is the name, unchecked so bad names are reported."""

_NODE_REFERENCE = re.compile(r"(\$+)\{(" + "|".join(NODE_PATH_VARIABLES) + r")\}")
"""A run of dollar signs before a node path's name, in node text."""


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
    stage: Stage, values: Mapping[str, str], *, for_node: bool = False
) -> tuple[list[str], dict[str, str], list[str]]:
    """Return the stage's command, env and inputs with references substituted.

    A stage without a command (it runs its image's own) gets an empty list. Env keys are
    left as written. Raises ``MissingVariableError`` naming every missing name of the stage.

    With ``for_node`` the ``NODE_PATH_VARIABLES`` need no value: command and env come back
    as node text in which references to them are left for ``resolve_node_paths`` and all
    else is literal; in inputs (pool paths, never resolved on the node) they stay as
    written, ``${WINSLOW_INPUTS}``.
    """
    known = {**dict.fromkeys(NODE_PATH_VARIABLES, ""), **values} if for_node else values
    missing = missing_for_stage(stage, known)
    if missing:
        raise MissingVariableError(missing, stage=stage.name)
    if not for_node:
        command = [_substitute(part, values) for part in stage.command or []]
        env = {key: _substitute(value, values) for key, value in stage.env.items()}
        return command, env, [_substitute(path, values) for path in stage.inputs]
    command = [_node_text(part, values) for part in stage.command or []]
    env = {key: _node_text(value, values) for key, value in stage.env.items()}
    as_written = {name: "${" + name + "}" for name in NODE_PATH_VARIABLES}
    inputs = [_substitute(path, {**as_written, **values}) for path in stage.inputs]
    return command, env, inputs


def node_literal(text: str) -> str:
    """Return the node text that stands for exactly ``text``: no path is filled into it.

    >>> node_literal("${WINSLOW_WORKSPACE}/out $HOME")
    '$${WINSLOW_WORKSPACE}/out $HOME'
    """
    return _NODE_REFERENCE.sub(lambda m: m.group(1) * 2 + "{" + m.group(2) + "}", text)


def resolve_node_paths(text: str, workspace: str, inputs: str) -> str:
    """Return the final text of node ``text``: ``${WINSLOW_WORKSPACE}`` and
    ``${WINSLOW_INPUTS}`` replaced by the paths, ``$${WINSLOW_WORKSPACE}`` the literal
    ``${WINSLOW_WORKSPACE}`` (see the module's docstring for longer runs of ``$``).

    >>> resolve_node_paths("${WINSLOW_INPUTS}/a $${WINSLOW_INPUTS}", "/ws", "/in")
    '/in/a ${WINSLOW_INPUTS}'
    """
    paths = dict(zip(NODE_PATH_VARIABLES, (workspace, inputs), strict=True))

    def replace(match: re.Match[str]) -> str:
        dollars, name = len(match.group(1)), match.group(2)
        return "$" * (dollars // 2) + (paths[name] if dollars % 2 else "{" + name + "}")

    return _NODE_REFERENCE.sub(replace, text)


def _stage_texts(stage: Stage) -> list[str]:
    return [*(stage.command or []), *stage.env.values(), *stage.inputs]


def _substitute(text: str, values: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        return values[match.group(2)]

    return _REFERENCE.sub(replace, text)


def _node_text(text: str, values: Mapping[str, str]) -> str:
    """Return ``text`` substituted as node text: references to ``NODE_PATH_VARIABLES``
    left for the node, everything else (escapes, values, the text between) literal."""
    done: list[str] = []
    literal: list[str] = []
    end = 0
    for match in _REFERENCE.finditer(text):
        literal.append(text[end : match.start()])
        end = match.end()
        name = match.group(2)
        if match.group(1):
            literal.append("${" + name + "}")
        elif name in NODE_PATH_VARIABLES:
            # Dollar signs just before the reference are literal: doubled, they stay so.
            before = node_literal("".join(literal))
            bare = before.rstrip("$")
            done += [bare, "$" * (2 * (len(before) - len(bare))), "${" + name + "}"]
            literal = []
        else:
            literal.append(values[name])
    literal.append(text[end:])
    done.append(node_literal("".join(literal)))
    return "".join(done)
