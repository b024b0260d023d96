"""Which parts of a Python regular expression Go's RE2 syntax does not have.

A stage's GPU ``model`` pattern is read twice: by Python's ``re`` where the local backend
places a run, and by Go's ``regexp`` where Nomad checks a device constraint
(hashicorp/nomad nomad/structs/structs.go ``Constraint.Validate`` compiles it with
``regexp.Compile``; scheduler/feasible.go ``checkRegexpMatch`` matches with it). A pattern
must mean the same to both, so it is written in what they share: Python compiles it
(``model.py``), and this module names the first construct Python accepts and Go's
``regexp/syntax`` refuses or reads differently. Pure: a pattern in, a phrase out.

It is a scanner, not a parser: it walks escapes, character classes, groups and
quantifiers, which is all it needs for a pattern Python has already compiled.
"""

from __future__ import annotations

import re

MAX_REPEAT = 1000
"""Largest count Go's regexp takes in ``{n}`` or ``{n,m}`` (``regexp/syntax`` maxRepeat)."""

GO_FLAGS = frozenset("imsU")
"""Inline flags Go's regexp knows; Python's ``a``, ``L``, ``u`` and ``x`` it does not."""

_GROUP_OPENINGS: tuple[tuple[str, str], ...] = (
    ("(?=", "a look-ahead '(?='"),
    ("(?!", "a negative look-ahead '(?!'"),
    ("(?<=", "a look-behind '(?<='"),
    ("(?<!", "a negative look-behind '(?<!'"),
    ("(?>", "an atomic group '(?>'"),
    ("(?(", "a conditional '(?('"),
    ("(?#", "a comment group '(?#'"),
)
_REPEAT = re.compile(r"\{(\d*)(,(\d*))?\}")
_FLAGS = re.compile(r"\(\?([A-Za-z]*)(?:-([A-Za-z]*))?[:)]")
_NAMED_BACKREFERENCE = re.compile(r"\(\?P=(\w+)\)")


def go_regex_problem(pattern: str) -> str | None:
    """Return the first construct of ``pattern`` Go's RE2 lacks, in words (``"a look-ahead
    '(?='"``), or None when Go reads the pattern as Python does.

    ``pattern`` must already compile with Python's ``re``.
    """
    position = 0
    after_atom = False
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            problem = _escape_problem(pattern, position)
            if problem is not None:
                return problem
            position, after_atom = position + 2, True
        elif char == "[":
            position, after_atom = _class_end(pattern, position), True
        elif char == "(":
            problem = _group_problem(pattern, position)
            if problem is not None:
                return problem
            position, after_atom = _group_body(pattern, position), False
        elif char in "*+?" and after_atom:
            position = _after_quantifier(pattern, position + 1)
            if position < len(pattern) and pattern[position] == "+":
                return f"a possessive quantifier '{char}+'"
            after_atom = False
        elif char == "{" and after_atom and (repeat := _REPEAT.match(pattern, position)):
            problem = _repeat_problem(repeat)
            if problem is not None:
                return problem
            position = _after_quantifier(pattern, repeat.end())
            if position < len(pattern) and pattern[position] == "+":
                return f"a possessive quantifier '{repeat.group()}+'"
            after_atom = False
        else:
            position, after_atom = position + 1, char not in "|^$)"
    return None


def _escape_problem(pattern: str, position: int) -> str | None:
    escaped = pattern[position + 1 : position + 2]
    if escaped in "123456789" and escaped:
        digits = re.match(r"[0-7]{3}", pattern[position + 1 :])
        if digits is None:
            number = re.match(r"\d+", pattern[position + 1 :])
            assert number is not None
            return f"a back-reference '\\{number.group()}'"
    if escaped == "Z":
        return "'\\Z' (Go writes '\\z')"
    if escaped in ("u", "U", "N"):
        return f"a '\\{escaped}' escape (Go writes '\\x{{...}}')"
    return None


def _group_problem(pattern: str, position: int) -> str | None:
    for opening, words in _GROUP_OPENINGS:
        if pattern.startswith(opening, position):
            return words
    named = _NAMED_BACKREFERENCE.match(pattern, position)
    if named is not None:
        return f"a back-reference '{named.group()}'"
    flags = _FLAGS.match(pattern, position)
    if flags is not None:
        for flag in (flags.group(1) or "") + (flags.group(2) or ""):
            if flag not in GO_FLAGS:
                return f"the flag '{flag}' in '{flags.group()}'"
    return None


def _group_body(pattern: str, position: int) -> int:
    """Where the atoms of the group opening at ``position`` begin: past ``(``, ``(?:``,
    ``(?P<name>``, ``(?i:`` or a whole ``(?i)``."""
    if not pattern.startswith("(?", position):
        return position + 1
    named = re.compile(r"\(\?P?<\w+>").match(pattern, position)
    if named is not None:
        return named.end()
    flags = _FLAGS.match(pattern, position)
    if flags is not None:
        return flags.end()
    return position + 2


def _class_end(pattern: str, position: int) -> int:
    """The index just past the character class opening at ``position``."""
    index = position + 1
    if pattern.startswith("^", index):
        index += 1
    if pattern.startswith("]", index):
        index += 1  # a ']' first in the class is itself
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def _repeat_problem(repeat: re.Match[str]) -> str | None:
    low, comma, high = repeat.group(1), repeat.group(2), repeat.group(3)
    if not low and comma is not None:
        return f"'{repeat.group()}' (Go reads it literally; write '{{0{comma}}}')"
    counts = [int(n) for n in (low, high) if n]
    if any(n > MAX_REPEAT for n in counts):
        return f"a repeat count above {MAX_REPEAT} '{repeat.group()}'"
    return None


def _after_quantifier(pattern: str, position: int) -> int:
    """Skip the ``?`` that makes a quantifier lazy, which both read alike."""
    if pattern.startswith("?", position):
        return position + 1
    return position
