"""Values that reach a Nomad task literally, through env files Nomad reads back exactly.

Nomad interpolates ``${...}`` in task ``Env`` values and evaluates driver ``Config``
strings as HCL2 templates, with no escape in either. What a user wrote therefore travels
in an env-file ``Templates`` entry: quoted the way hashicorp/go-envparse reads back to the
original bytes, between template delimiters that do not occur in it. An argument that
Nomad would interpolate becomes ``${WINSLOW_ARG_<i>}`` in ``Config``, and its value goes
into such a file; Nomad substitutes the variable once and does not look into it again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ENV_LINE_MAX_BYTES = 60_000
"""Longest env-file line we write, bytes: Nomad reads the file with a bufio.Scanner,
which refuses lines over 64 KiB."""

DELIMITER_BASE = "winslow:none"
"""Template delimiters of the literal env files are built from this and checked absent."""

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# ---------------------------------------------------------------------------------------
# Env files Nomad reads back exactly (hashicorp/go-envparse)


def encode_env_value(value: str) -> str:
    """Return ``value`` double-quoted so that go-envparse yields exactly ``value``.

    Inside double quotes go-envparse copies every byte but ``"`` and ``\\`` as it is (UTF-8
    included; ``$`` expands nothing) and refuses raw control characters, so those are the
    ones escaped: ``\\\\``, ``\\"``, ``\\n``, ``\\t``, and ``\\u00XX`` for the other control
    characters. Raises ``ValueError`` for NUL, which no process environment can hold.
    """
    if "\x00" in value:
        raise ValueError("it contains a NUL character, which an environment cannot carry")
    out = ['"']
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def encode_env_file(env: Mapping[str, str]) -> str:
    """Return an env file, one ``NAME="value"`` line each, that go-envparse reads as ``env``.

    Raises ``ValueError`` naming the variable when a name is not ``[A-Za-z_][A-Za-z0-9_]*``,
    a value holds NUL or is not encodable as UTF-8, or a line would pass
    ``ENV_LINE_MAX_BYTES``.
    """
    lines = []
    for name, value in env.items():
        if not _VARIABLE_NAME.fullmatch(name):
            raise ValueError(f"variable name {name!r} is not of the form [A-Za-z_][A-Za-z0-9_]*")
        try:
            line = f"{name}={encode_env_value(value)}"
            size = len(line.encode("utf-8"))
        except (ValueError, UnicodeEncodeError) as exc:
            reason = exc.args[0] if isinstance(exc, ValueError) else "it is not valid text"
            raise ValueError(f"variable {name}: {reason}") from exc
        if size > ENV_LINE_MAX_BYTES:
            raise ValueError(
                f"variable {name} is {size} bytes as an env-file line; Nomad reads lines of "
                f"at most 64 KiB, so keep it under {ENV_LINE_MAX_BYTES} bytes"
            )
        lines.append(line + "\n")
    return "".join(lines)


def choose_delimiters(content: str) -> tuple[str, str]:
    """Return template delimiters of which neither occurs in ``content``.

    Deterministic: the same content always gets the same pair, so a job rendered again
    after a restart is the same job.
    """
    suffix = 0
    while True:
        tag = DELIMITER_BASE if suffix == 0 else f"{DELIMITER_BASE}:{suffix}"
        left, right = f"[[{tag}", f"{tag}]]"
        if left not in content and right not in content:
            return left, right
        suffix += 1


# ---------------------------------------------------------------------------------------
# Arguments Nomad would interpolate


@dataclass(frozen=True)
class NodeText:
    """An argument of our own that Nomad is meant to interpolate (``${NOMAD_ALLOC_DIR}``)."""

    text: str


def needs_literal_delivery(text: str) -> bool:
    """Return True when Nomad would read ``text`` in driver config as an HCL2 template."""
    return "${" in text or "%{" in text


def deliver_args(args: Sequence[str | NodeText]) -> tuple[list[str], dict[str, str]]:
    """Return the driver-config form of ``args`` and the env carrying literal ones.

    An argument that Nomad would interpolate becomes ``${WINSLOW_ARG_<i>}``, ``i`` its
    position, and its value goes into the returned env, which must reach the task through
    an env-file template. Nomad's HCL2 evaluation substitutes a variable's value as a
    string and does not evaluate it again.
    """
    rendered: list[str] = []
    literal: dict[str, str] = {}
    for index, arg in enumerate(args):
        if isinstance(arg, NodeText):
            rendered.append(arg.text)
        elif needs_literal_delivery(arg):
            name = f"WINSLOW_ARG_{index}"
            literal[name] = arg
            rendered.append("${" + name + "}")
        else:
            rendered.append(arg)
    return rendered, literal
