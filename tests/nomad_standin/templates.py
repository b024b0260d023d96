"""Nomad's string interpolation and the subset of consul-template a stage job uses.

``replace_env`` is Nomad's ``helper/args.ReplaceEnv``: every ``${name}`` whose name
matches ``[a-zA-Z0-9_\\-.]+`` is replaced when a lookup map knows it (node attributes
first, then the task environment) and left exactly as written otherwise.

``render_template`` executes the Go ``text/template`` subset that Winslow's job
templates need, with the template's own delimiters: text outside actions is copied
byte for byte (so a template with custom delimiters and no actions renders
literally), ``{{- ... -}}`` trim markers, comments, ``with``/``range``/``if``/``else``/
``end``, variables (``$k, $v :=``), field access (``.key``, ``.Key``, ``.Value``) and the
functions ``nomadVar``, ``nomadService``, ``env``, ``index``, ``toJSON``, ``toUpper``,
``toLower``, ``trimSpace`` and ``printf`` (``%s %d %q %v``). ``nomadVar`` answers
consul-template's ``NomadVarItems``: a map of items whose text is the value and whose
JSON (``toJSON``) is Go's ``%q`` of the value (``NomadVarItem.MarshalJSON``). A variable
that does not exist yet raises ``MissingVariableError``: consul-template waits for it
rather than rendering.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MissingVariableError",
    "TemplateError",
    "go_quote",
    "render_template",
    "replace_env",
]

_ENV_RE = re.compile(r"\$\{[a-zA-Z0-9_\-.]+\}")


def replace_env(text: str, *lookups: Mapping[str, str]) -> str:
    """Replace known ``${name}`` references in ``text``; leave unknown ones untouched."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(0)[2:-1]
        for lookup in lookups:
            if name in lookup:
                return lookup[name]
        return match.group(0)

    return _ENV_RE.sub(substitute, text)


class TemplateError(ValueError):
    """The template does not parse or execute; the message mimics Go's wording."""


class MissingVariableError(LookupError):
    """A ``nomadVar`` path has no variable yet; consul-template blocks on it."""

    def __init__(self, path: str, namespace: str) -> None:
        super().__init__(f"Missing: nomad.var.block({path}@{namespace}.global)")
        self.path = path
        self.namespace = namespace


@dataclass(frozen=True)
class VarItem:
    """consul-template's ``NomadVarItem``: prints as its value."""

    Key: str
    Value: str

    def __str__(self) -> str:
        return self.Value


class VarItems(dict[str, VarItem]):
    """consul-template's ``NomadVarItems`` (a map of item name to item)."""


VariableLookup = Callable[[str, str], Mapping[str, str] | None]
ServiceLookup = Callable[[str, str], list[dict[str, Any]]]
"""(service name, namespace) → its registrations, as consul-template's ``NomadService``
(``Name``, ``Address``, ``Port``, ``Tags``, ...)."""


@dataclass
class _Context:
    env: Mapping[str, str]
    variables: VariableLookup
    namespace: str
    err_missing_key: bool
    scopes: list[dict[str, Any]] = field(default_factory=list)
    services: ServiceLookup | None = None


def render_template(
    source: str,
    *,
    env: Mapping[str, str],
    variables: VariableLookup,
    namespace: str = "default",
    left: str = "{{",
    right: str = "}}",
    err_missing_key: bool = False,
    services: ServiceLookup | None = None,
) -> str:
    """Render ``source`` like consul-template inside a Nomad client.

    ``variables(path, namespace)`` returns a variable's items or None when absent.
    Raises ``TemplateError`` for what Go refuses and ``MissingVariableError`` for a
    variable that does not exist yet.
    """
    nodes = _Parser(_lex(source, left or "{{", right or "}}")).parse()
    ctx = _Context(env, variables, namespace, err_missing_key, [{"$": None}], services)
    out: list[str] = []
    _execute(nodes, None, ctx, out)
    return "".join(out)


# --- lexing: text and actions -------------------------------------------------------


@dataclass
class _Action:
    body: str
    line: int


def _lex(source: str, left: str, right: str) -> list[str | _Action]:
    parts: list[str | _Action] = []
    pos = 0
    while True:
        start = source.find(left, pos)
        if start < 0:
            parts.append(source[pos:])
            break
        text = source[pos:start]
        inner_start = start + len(left)
        # "{{- " trims the whitespace before the action (Go needs the space after '-').
        if source[inner_start : inner_start + 1] == "-" and source[
            inner_start + 1 : inner_start + 2
        ] in (" ", "\t", "\n", "\r"):
            text = text.rstrip(" \t\r\n")
            inner_start += 1
        end = source.find(right, inner_start)
        line = source.count("\n", 0, start) + 1
        if end < 0:
            raise TemplateError(f"template: tmpl:{line}: unclosed action")
        body = source[inner_start:end]
        after = end + len(right)
        trim_after = body.endswith("-") and body[-2:-1] in (" ", "\t", "\n", "\r")
        if trim_after:
            body = body[:-1]
        parts.append(text)
        parts.append(_Action(body.strip(), line))
        if trim_after:
            while after < len(source) and source[after] in " \t\r\n":
                after += 1
        pos = after
    return parts


# --- parsing: a small tree of text, pipelines and blocks ------------------------------


@dataclass
class _Pipeline:
    declare: list[str]
    commands: list[list[Any]]
    line: int


@dataclass
class _Block:
    kind: str  # with | range | if
    pipeline: _Pipeline
    body: list[Any]
    else_body: list[Any]


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<declare>:=)
      | (?P<pipe>\|)
      | (?P<comma>,)
      | (?P<lparen>\()
      | (?P<rparen>\))
      | (?P<field>(?:\$[A-Za-z0-9_]*)?(?:\.[A-Za-z0-9_]+)+|\.)
      | (?P<var>\$[A-Za-z0-9_]*)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Field:
    base: str | None  # None: dot; "$x": a variable
    names: tuple[str, ...]


@dataclass(frozen=True)
class _Ident:
    name: str


def _tokens(body: str, line: int) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(body):
        if body[pos:].strip() == "":
            break
        match = _TOKEN.match(body, pos)
        if not match or match.end() == pos:
            raise TemplateError(f"template: tmpl:{line}: unexpected {body[pos:].strip()!r}")
        pos = match.end()
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "string":
            tokens.append(("literal", _go_unquote(value, line)))
        elif kind == "raw":
            tokens.append(("literal", value[1:-1]))
        elif kind == "number":
            tokens.append(("literal", float(value) if "." in value else int(value)))
        elif kind == "field":
            if value == ".":
                tokens.append(("operand", _Field(None, ())))
            else:
                base, _, rest = (
                    value.partition(".") if value.startswith("$") else ("", "", value[1:])
                )
                tokens.append(("operand", _Field(base or None, tuple(rest.split(".")))))
        elif kind == "var":
            tokens.append(("operand", _Field(value, ())))
        elif kind == "ident":
            tokens.append(("ident", _Ident(value)))
        else:
            tokens.append((kind, value))
    return tokens


def _go_unquote(literal: str, line: int) -> str:
    try:
        return str(json.loads(literal))
    except json.JSONDecodeError:
        raise TemplateError(f"template: tmpl:{line}: bad string literal {literal}") from None


def _parse_pipeline(body: str, line: int) -> _Pipeline:
    tokens = _tokens(body, line)
    declare: list[str] = []
    if any(kind == "declare" for kind, _ in tokens):
        while tokens and tokens[0][0] != "declare":
            kind, value = tokens.pop(0)
            if kind == "operand" and value.base and not value.names:
                declare.append(value.base)
            elif kind != "comma":
                raise TemplateError(f"template: tmpl:{line}: bad variable declaration")
        tokens.pop(0)
    commands: list[list[Any]] = [[]]
    for kind, value in tokens:
        if kind == "pipe":
            commands.append([])
        elif kind in ("lparen", "rparen", "comma"):
            raise TemplateError(f"template: tmpl:{line}: unsupported syntax {value!r}")
        else:
            commands[-1].append(value if kind != "literal" else ("lit", value))
    if any(not command for command in commands):
        raise TemplateError(f"template: tmpl:{line}: missing value for command")
    return _Pipeline(declare, commands, line)


class _Parser:
    def __init__(self, parts: list[str | _Action]) -> None:
        self.parts = parts
        self.pos = 0

    def parse(self) -> list[Any]:
        nodes, end = self._list()
        if end is not None:
            raise TemplateError(f"template: tmpl:{end.line}: unexpected {{{{{end.body}}}}}")
        return nodes

    def _list(self) -> tuple[list[Any], _Action | None]:
        nodes: list[Any] = []
        while self.pos < len(self.parts):
            part = self.parts[self.pos]
            self.pos += 1
            if isinstance(part, str):
                if part:
                    nodes.append(part)
                continue
            body = part.body
            if body.startswith("/*"):
                if not body.endswith("*/"):
                    raise TemplateError(f"template: tmpl:{part.line}: unclosed comment")
                continue
            word = body.split(None, 1)[0] if body else ""
            if word in ("end", "else"):
                return nodes, part
            if word in ("with", "range", "if"):
                pipeline = _parse_pipeline(body[len(word) :], part.line)
                inner, closer = self._list()
                else_body: list[Any] = []
                if closer is not None and closer.body.split(None, 1)[0] == "else":
                    else_body, closer = self._list()
                if closer is None or closer.body != "end":
                    raise TemplateError(f"template: tmpl:{part.line}: unexpected EOF")
                nodes.append(_Block(word, pipeline, inner, else_body))
                continue
            if word in ("define", "template", "block", "break", "continue"):
                raise TemplateError(f"template: tmpl:{part.line}: {word} is not supported here")
            nodes.append(_parse_pipeline(body, part.line))
        return nodes, None


# --- execution ------------------------------------------------------------------------


def _truth(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, VarItem):
        return True
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return bool(value)


def _execute(nodes: list[Any], dot: Any, ctx: _Context, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Pipeline):
            value = _run_pipeline(node, dot, ctx)
            if not node.declare:
                out.append(_print(value))
        else:
            _execute_block(node, dot, ctx, out)


def _execute_block(block: _Block, dot: Any, ctx: _Context, out: list[str]) -> None:
    ctx.scopes.append({})
    try:
        if block.kind == "range":
            value = _run_pipeline(block.pipeline, dot, ctx, declare=False)
            items = _range_items(value, block.pipeline.line)
            if not items:
                _execute(block.else_body, dot, ctx, out)
            for key, element in items:
                names = block.pipeline.declare
                if len(names) == 1:
                    ctx.scopes[-1][names[0]] = element
                elif len(names) == 2:
                    ctx.scopes[-1][names[0]] = key
                    ctx.scopes[-1][names[1]] = element
                _execute(block.body, element, ctx, out)
            return
        value = _run_pipeline(block.pipeline, dot, ctx)
        if _truth(value):
            _execute(block.body, value if block.kind == "with" else dot, ctx, out)
        else:
            _execute(block.else_body, dot, ctx, out)
    finally:
        ctx.scopes.pop()


def _range_items(value: Any, line: int) -> list[tuple[Any, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [(key, value[key]) for key in sorted(value)]
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    raise TemplateError(f"template: tmpl:{line}: range can't iterate over {_print(value)}")


def _lookup_var(name: str, ctx: _Context, line: int) -> Any:
    for scope in reversed(ctx.scopes):
        if name in scope:
            return scope[name]
    raise TemplateError(f'template: tmpl:{line}: undefined variable "{name}"')


def _field(value: Any, name: str, ctx: _Context, line: int) -> Any:
    if isinstance(value, VarItems):
        if name in value:
            return value[name]
        if ctx.err_missing_key:
            raise TemplateError(
                f'template: tmpl:{line}: executing at <.{name}>: map has no entry for key "{name}"'
            )
        return VarItem(name, "")  # a typed map answers its zero value: prints as ""
    if isinstance(value, dict):
        if name in value:
            return value[name]
        return None
    if isinstance(value, VarItem) and name in ("Key", "Value"):
        return getattr(value, name)
    if value is None:
        return None
    raise TemplateError(f"template: tmpl:{line}: can't evaluate field {name}")


def _operand(token: Any, dot: Any, ctx: _Context, line: int) -> Any:
    if isinstance(token, tuple) and token[0] == "lit":
        return token[1]
    if isinstance(token, _Field):
        value = dot if token.base is None else _lookup_var(token.base, ctx, line)
        for name in token.names:
            value = _field(value, name, ctx, line)
        return value
    raise TemplateError(f"template: tmpl:{line}: unexpected {token}")


def _run_pipeline(pipeline: _Pipeline, dot: Any, ctx: _Context, *, declare: bool = True) -> Any:
    value: Any = None
    for position, command in enumerate(pipeline.commands):
        head = command[0]
        args = [_operand(token, dot, ctx, pipeline.line) for token in command[1:]]
        if position > 0:
            args.append(value)  # Go passes the previous result as the last argument
        if isinstance(head, _Ident):
            value = _call(head.name, args, ctx, pipeline.line)
        else:
            if args and position == 0:
                raise TemplateError(
                    f"template: tmpl:{pipeline.line}: can't give argument to non-function"
                )
            value = _operand(head, dot, ctx, pipeline.line)
    if declare and pipeline.declare:
        ctx.scopes[-1][pipeline.declare[-1]] = value
    return value


def _call(name: str, args: list[Any], ctx: _Context, line: int) -> Any:
    def need(count: int) -> None:
        if len(args) != count:
            raise TemplateError(
                f"template: tmpl:{line}: wrong number of args for {name}: "
                f"want {count} got {len(args)}"
            )

    if name == "nomadVar":
        need(1)
        path, _, namespace = str(args[0]).partition("@")
        namespace = namespace or ctx.namespace
        items = ctx.variables(path, namespace)
        if items is None:
            raise MissingVariableError(path, namespace)
        return VarItems({key: VarItem(key, value) for key, value in items.items()})
    if name == "nomadService":
        # Registrations of the service; none yet renders an empty range, and the template
        # renders again when one appears (consul-template watches the query). With three
        # arguments (`nomadService COUNT KEY NAME`) consul-template picks COUNT of them by
        # rendezvous hashing on KEY: the same ones for one key each time, spread over keys.
        if len(args) not in (1, 3):
            need(1)
        service, _, namespace = str(args[-1]).partition("@")
        found = ctx.services(service, namespace or ctx.namespace) if ctx.services else []
        if len(args) == 1:
            return found
        count, key = int(args[0]), str(args[1])

        def weight(instance: Any) -> str:
            identity = str(instance.get("ID", "")) if isinstance(instance, dict) else str(instance)
            return hashlib.sha256(f"{key}/{identity}".encode()).hexdigest()

        return sorted(found, key=weight, reverse=True)[:count]
    if name == "env":
        need(1)
        return ctx.env.get(str(args[0]), "")
    if name == "index":
        if len(args) != 2:
            need(2)
        return _field(args[0], str(args[1]), ctx, line)
    if name == "toJSON":
        need(1)
        return _to_json(args[0], line)
    if name in ("toUpper", "toLower", "trimSpace"):
        need(1)
        text = _print(args[0])
        return {"toUpper": text.upper, "toLower": text.lower, "trimSpace": text.strip}[name]()
    if name == "printf":
        if not args:
            need(1)
        return _printf(str(args[0]), args[1:])
    raise TemplateError(f'template: tmpl:{line}: function "{name}" not defined')


def _print(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, VarItems):
        inner = " ".join(f"{key}:{value[key]}" for key in sorted(value))
        return f"map[{inner}]"
    return str(value)


def _printf(fmt: str, args: list[Any]) -> str:
    out: list[str] = []
    values = iter(args)
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            verb = fmt[i + 1]
            i += 2
            if verb == "%":
                out.append("%")
                continue
            value = next(values, None)
            if verb == "q":
                out.append(go_quote(_print(value)))
            elif verb == "d" and isinstance(value, int):
                out.append(str(value))
            else:
                out.append(_print(value))
            continue
        out.append(fmt[i])
        i += 1
    return "".join(out)


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (``%q``): printable Unicode kept, the rest escaped."""
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
    named.update({"\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'})
    out = ['"']
    for char in text:
        if char in named:
            out.append(named[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def _html_escape_json(encoded: str) -> str:
    # encoding/json escapes these even inside a Marshaler's output (compact with escapeHTML).
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        encoded = encoded.replace(char, escape)
    return encoded.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _to_json(value: Any, line: int) -> str:
    if isinstance(value, VarItem):
        quoted = go_quote(value.Value)
        # Go's %q may write escapes JSON does not know (\a, \v, \x..); encoding/json
        # then refuses the Marshaler's output.
        if re.search(r"\\[avxU]", quoted.replace("\\\\", "")):
            raise TemplateError(
                f"template: tmpl:{line}: error calling toJSON: json: error calling MarshalJSON "
                "for type dependency.NomadVarItem: invalid character in string escape code"
            )
        return _html_escape_json(quoted)
    if isinstance(value, VarItems):
        inner = ",".join(f"{json.dumps(key)}:{_to_json(value[key], line)}" for key in sorted(value))
        return "{" + _html_escape_json(inner) + "}"
    return _html_escape_json(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
