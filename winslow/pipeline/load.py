"""Reading pipeline YAML into a ``Pipeline``, with every problem located in the file.

PyYAML composes a node tree that still knows the line and column of each key and value; we
build plain data from it ourselves and keep those marks in a ``SourceMap``. Pydantic's errors
know only field paths, so each is turned into a ``PipelineProblem`` at file:line:column, with a
message in words a person uses ("expected a list of strings, got a string"). Then the semantic
checks of ``validate.py`` run, on the parts that validated if some did not, and every problem
is raised together in one ``PipelineError`` so a person fixes them all in one pass.
"""

from __future__ import annotations

import difflib
import re
import types
import unicodedata
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import pydantic
import yaml
from pydantic import BaseModel
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from winslow import defaults
from winslow.errors import PipelineError, PipelineProblem
from winslow.pipeline.model import NAME_PATTERN, Pipeline, Stage, Variable, scalar_text
from winslow.pipeline.validate import (
    NAME_RULE,
    FieldPath,
    Position,
    field_path,
    in_reading_order,
    semantic_problems,
)

MAX_NODES = 100_000
"""Most values one file may hold or expand to; aliases can make a tiny file huge ("billion
laughs"), and composing more than this many takes PyYAML seconds."""

MAX_DEPTH = 32
"""Deepest nesting of values a file may have; a pipeline's deepest field is 7 levels down.
Deeper YAML (``[[[[...``) would overflow Python's stack while it is composed."""

_LIMIT_UNITS: dict[str, str] = {
    "count": "GPUs",
    "cpus": "CPUs",
    "memory": f"megabytes ({defaults.MAX_MEMORY_MB // (1024 * 1024)} TiB)",
    "on_failure": "retries",
    "on_lost": "retries",
}
"""Units of the fields whose maximum in ``defaults`` exists to catch typos."""

_YAML_HINTS: dict[str, str] = {
    "mapping values are not allowed here": (
        "check the indentation, or quote the value if it contains ': '"
    ),
    "found character '\\t' that cannot start any token": "indent YAML with spaces, not tabs",
    "found undefined alias": "define the anchor (&name) before using the alias (*name)",
}

_LINE_BREAKS = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
"""What YAML counts as a line break, for placing a character the reader refused."""

_DEFAULT_TAGS = {
    MappingNode: "tag:yaml.org,2002:map",
    SequenceNode: "tag:yaml.org,2002:seq",
}

ModelT = TypeVar("ModelT", bound=BaseModel)


class SourceMap:
    """Where each key and value of a YAML document was written, looked up by field path.

    Positions are 1-based. A path that was never written (a missing key) resolves to its
    nearest written ancestor, so every problem points somewhere near its cause.
    """

    def __init__(self) -> None:
        self._keys: dict[FieldPath, yaml.Mark] = {}
        self._values: dict[FieldPath, yaml.Mark] = {}

    def key(self, path: FieldPath) -> Position:
        """Position of the key naming ``path``; its value's for list items and the root."""
        mark = self._keys.get(path)
        if mark is None:
            return self.value(path)
        return mark.line + 1, mark.column + 1

    def value(self, path: FieldPath) -> Position:
        """Position of the value at ``path``, or of its nearest written ancestor."""
        for end in range(len(path), -1, -1):
            mark = self._values.get(path[:end])
            if mark is not None:
                return mark.line + 1, mark.column + 1
        return None, None

    def add(self, path: FieldPath, *, key: yaml.Mark | None, value: yaml.Mark) -> None:
        """Record where ``path`` was written."""
        if key is not None:
            self._keys[path] = key
        self._values[path] = value


def load_pipeline_text(text: str, file: str = "<text>") -> Pipeline:
    """Parse and validate pipeline YAML; ``file`` names it in problems.

    Raises ``PipelineError`` listing every problem found, each at file:line:column with the
    field path (``stages[detect].requirements.gpu.count``).
    """
    pipeline, _ = load_pipeline_with_source(text, file)
    return pipeline


def load_pipeline_file(path: Path) -> Pipeline:
    """Read, parse and validate a pipeline file; problems name ``path`` as given.

    A file that cannot be read, or is not UTF-8, raises ``PipelineError`` too.
    """
    return load_pipeline_text(read_pipeline_file(path), str(path))


def read_pipeline_file(path: Path) -> str:
    """Return the text of a pipeline file; raise ``PipelineError`` if it cannot be read or
    is not UTF-8, so a caller handles one error for every way a file can be wrong."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        message = f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        raise PipelineError([PipelineProblem(str(path), None, None, "", message)]) from exc
    except OSError as exc:
        message = f"the file cannot be read: {exc.strerror or exc}"
        raise PipelineError([PipelineProblem(str(path), None, None, "", message)]) from exc


def load_pipeline_with_source(text: str, file: str = "<text>") -> tuple[Pipeline, SourceMap]:
    """Like ``load_pipeline_text``, also returning where each field was written, for tools
    that point at a pipeline's lines later (an editor, a run's error)."""
    data, source, yaml_problems = _parse(text, file)
    try:
        pipeline = Pipeline.model_validate(data)
    except pydantic.ValidationError as exc:
        schema = _schema_problems(exc, data, source, file)
        semantic = semantic_problems(_salvage(data), source, file)
        raise PipelineError(in_reading_order([*yaml_problems, *schema, *semantic])) from None
    problems = [*yaml_problems, *semantic_problems(pipeline, source, file)]
    if problems:
        raise PipelineError(in_reading_order(problems))
    return pipeline, source


# --- YAML ------------------------------------------------------------------------------------


def _parse(text: str, file: str) -> tuple[Any, SourceMap, list[PipelineProblem]]:
    """Return the document as plain data, where it was written, and problems that do not stop
    validation (duplicate keys). Raises ``PipelineError`` for YAML that cannot be read."""
    try:
        loader = _BoundedLoader(text)
    except ReaderError as exc:
        raise PipelineError([_reader_problem(exc, text, file)]) from None
    builder = _Builder(loader, file)
    try:
        root = loader.get_single_node()
        if root is None:
            message = "the file is empty; a pipeline needs at least `name` and `stages`"
            raise PipelineError([PipelineProblem(file, None, None, "", message)])
        data = builder.build(root, (), key=None)
    except _Abandon:
        data = None  # its problem is in builder.fatal
    except _TooLarge as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise PipelineError([PipelineProblem(file, line, column, "", str(exc.problem))]) from None
    except yaml.MarkedYAMLError as exc:
        raise PipelineError([_yaml_problem(exc, file)]) from None
    except yaml.YAMLError as exc:
        problem = PipelineProblem(file, None, None, "", f"invalid YAML: {exc}")
        raise PipelineError([problem]) from None
    finally:
        loader.dispose()
    stage_names = _raw_stage_names(data)
    problems = [
        PipelineProblem(file, line, column, field_path(path, stage_names), message)
        for path, line, column, message in builder.problems
    ]
    if builder.fatal:
        raise PipelineError(in_reading_order([*builder.fatal, *problems]))
    return data, builder.source, problems


class _TooLarge(yaml.MarkedYAMLError):
    """The file nests or holds more values than a pipeline ever needs; composing stops."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, composing at most ``MAX_NODES`` values nested at most
    ``MAX_DEPTH`` deep: its composer recurses once per level and holds every value, so an
    unbounded file costs the stack or seconds of CPU before any check could run."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._composed = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        self._composed += 1
        try:
            if self._depth > MAX_DEPTH:
                self._refuse(
                    f"values are nested more than {MAX_DEPTH} deep; a pipeline needs far "
                    "fewer levels (is a bracket left open?)"
                )
            if self._composed > MAX_NODES:
                self._refuse(
                    f"the file holds more than {MAX_NODES} values; a pipeline needs far fewer"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _refuse(self, message: str) -> None:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        raise _TooLarge(problem=message, problem_mark=mark)


def _reader_problem(exc: ReaderError, text: str, file: str) -> PipelineProblem:
    """Where the character PyYAML's reader refused is, and which it is, in words."""
    position = exc.position if isinstance(exc.position, int) else 0
    line, line_start = 1, 0
    for found in _LINE_BREAKS.finditer(text, 0, position):
        line, line_start = line + 1, found.end()
    column = position - line_start + 1
    code = exc.character if isinstance(exc.character, int) else 0
    char = chr(code)
    kind = {"Cc": "a control character", "Cs": "half of a surrogate pair, not text"}
    what = kind.get(unicodedata.category(char)) or unicodedata.name(char, "a character")
    message = (
        f"invalid YAML: U+{code:04X} ({what}) cannot appear in a YAML file; delete it "
        "(pasted text can carry invisible characters)"
    )
    return PipelineProblem(file, line, column, "", message)


def _yaml_problem(exc: yaml.MarkedYAMLError, file: str, field: str = "") -> PipelineProblem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    problem = exc.problem or "cannot be parsed"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    hint = _YAML_HINTS.get(problem)
    if hint:
        message += f"; {hint}"
    return PipelineProblem(file, line, column, field, message)


class _Builder:
    """Turns a composed node tree into dicts, lists and scalars, recording every position.

    Keys are kept as the text written, never as YAML 1.1 would read them: every key in a
    pipeline is a name, and ``ON:`` in an env block must not become ``True``.
    """

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.source = SourceMap()
        self.problems: list[tuple[FieldPath, int, int, str]] = []
        """Problems that do not stop validation, formatted once stage names are known."""
        self.fatal: list[PipelineProblem] = []
        self._count = 0
        self._open: set[int] = set()
        self._own_keys: dict[int, set[int]] = {}

    def problem(
        self, mark: yaml.Mark, path: FieldPath, message: str, *, fatal: bool = False
    ) -> None:
        line, column = mark.line + 1, mark.column + 1
        if fatal:
            self.fatal.append(PipelineProblem(self.file, line, column, field_path(path), message))
        else:
            self.problems.append((path, line, column, message))

    def build(self, node: Node, path: FieldPath, *, key: yaml.Mark | None) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            self.problem(
                node.start_mark,
                path,
                f"the file expands to more than {MAX_NODES} values; are aliases (*name) "
                "nested too deep?",
                fatal=True,
            )
            raise _Abandon
        if len(path) > MAX_DEPTH:
            message = f"aliases (*name) nest values more than {MAX_DEPTH} deep"
            self.problem(node.start_mark, path[:MAX_DEPTH], message, fatal=True)
            raise _Abandon
        self.source.add(path, key=key, value=node.start_mark)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._open:
            message = "an alias (*name) refers to a value that contains it"
            self.problem(node.start_mark, path, message, fatal=True)
            return None
        if node.tag != _DEFAULT_TAGS.get(type(node)):  # type: ignore[arg-type]
            message = f"the tag {node.tag} is not supported here"
            self.problem(node.start_mark, path, message, fatal=True)
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [
                    self.build(item, (*path, index), key=None)
                    for index, item in enumerate(node.value)
                ]
            assert isinstance(node, MappingNode)
            return self._mapping(node, path)
        finally:
            self._open.discard(id(node))

    def _scalar(self, node: ScalarNode, path: FieldPath) -> Any:
        try:
            return self.loader.construct_object(node)
        except yaml.MarkedYAMLError as exc:
            self.fatal.append(_yaml_problem(exc, self.file, field_path(path)))
            return None
        except (ValueError, OverflowError):
            # PyYAML's own constructors fail plainly on `!!int foo` or a date like 2024-13-45.
            tag = node.tag.rsplit(":", 1)[-1]
            message = f"{node.value!r} is not a valid YAML !!{tag}; put it in quotes for text"
            self.problem(node.start_mark, path, message, fatal=True)
            return None

    def _mapping(self, node: MappingNode, path: FieldPath) -> dict[str, Any]:
        # Merged keys (<<: *defaults) may be overridden; only keys written twice in this very
        # mapping are a mistake. Flattening rewrites the node, so remember its own keys once.
        own = self._own_keys.setdefault(id(node), {id(key) for key, _ in node.value})
        try:
            self.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            self.fatal.append(_yaml_problem(exc, self.file, field_path(path)))
            return {}
        result: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                message = "a key must be plain text, not a list or mapping"
                self.problem(key_node.start_mark, path, message, fatal=True)
                continue
            name = key_node.value
            earlier = seen.get(name)
            if earlier is not None and id(earlier) in own and id(key_node) in own:
                self.problem(
                    key_node.start_mark,
                    (*path, name),
                    f"key '{name}' is written twice in this mapping (first at line "
                    f"{earlier.start_mark.line + 1}); remove one",
                )
            seen[name] = key_node
            result[name] = self.build(value_node, (*path, name), key=key_node.start_mark)
        return result


class _Abandon(yaml.YAMLError):
    """Stops building a document that grew too large; its problem is already recorded."""


# --- schema problems ----------------------------------------------------------------------


def _schema_problems(
    exc: pydantic.ValidationError, data: Any, source: SourceMap, file: str
) -> list[PipelineProblem]:
    stage_names = _raw_stage_names(data)
    problems = []
    for error in exc.errors(include_url=False):
        loc: FieldPath = tuple(error["loc"])
        at_key = False
        if loc and loc[-1] == "[key]":
            loc, at_key = loc[:-1], True
        message = _explain(error, loc)
        if error["type"] == "missing":
            line, column = source.value(loc[:-1])
        elif at_key or error["type"] == "extra_forbidden":
            line, column = source.key(loc)
        else:
            line, column = source.value(loc)
        problems.append(PipelineProblem(file, line, column, field_path(loc, stage_names), message))
    return problems


def _raw_stage_names(data: Any) -> list[object]:
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, list):
        return []
    return [stage.get("name") if isinstance(stage, dict) else None for stage in stages]


def _explain(error: Any, loc: FieldPath) -> str:
    """Say in words what a pydantic error means at ``loc``."""
    kind: str = error["type"]
    value = error.get("input")
    ctx: dict[str, Any] = error.get("ctx") or {}
    field = loc[-1] if loc else None
    if kind == "extra_forbidden":
        allowed = sorted(_allowed_keys(loc[:-1]))
        close = difflib.get_close_matches(str(field), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{field}'{hint}; expected one of: {', '.join(allowed)}"
    if kind == "missing":
        if loc == ("stages",):
            return "missing required key 'stages'; a pipeline needs at least one stage"
        return f"missing required key '{field}'"
    if not loc and kind in {"model_type", "model_attributes_type", "dict_type"}:
        return "the file must be a mapping with `name` and `stages` at the top, got " + _described(
            value, scalar_expected=False
        )
    if kind in {"greater_than", "greater_than_equal"}:
        bound = ctx.get("gt", ctx.get("ge"))
        words = "more than" if kind == "greater_than" else "at least"
        return f"must be {words} {_number(bound)}, got {_number(value)}"
    if kind in {"less_than", "less_than_equal"}:
        bound = ctx.get("lt", ctx.get("le"))
        if isinstance(field, str) and field in _LIMIT_UNITS:
            return (
                f"got {_number(value)}, more than the limit of {_number(bound)} "
                f"{_LIMIT_UNITS[field]}; is this a typo?"
            )
        words = "less than" if kind == "less_than" else "at most"
        return f"must be {words} {_number(bound)}, got {_number(value)}"
    if kind == "too_short":
        if loc == ("stages",):
            return "a pipeline needs at least one stage; `stages` is empty"
        return f"must have at least {ctx.get('min_length')} items, got {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == NAME_PATTERN:
            return f"{value!r} is not a valid name; {NAME_RULE}"
        return f"{value!r} does not match the pattern {ctx.get('pattern')}"
    if kind == "enum":
        choices = _enum_values(_annotation_at(loc))
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"expected one of: {', '.join(choices)}; got {value!r}{hint}"
    if kind in {"value_error", "assertion_error"} and "error" in ctx:
        return str(ctx["error"])
    if len(loc) == 2 and loc[0] == "variables" and isinstance(value, str | int | float):
        # The value alone where the variable's mapping belongs: show the mapping.
        return (
            f"expected a mapping, got {_described(value, scalar_expected=True)}; a variable "
            f'is written `{field}: {{default: "{scalar_text(value)}"}}` (with '
            "`description` and `required: true` if it must be set)"
        )
    if kind.endswith(("_type", "_parsing")) or kind == "int_from_float":
        annotation = _annotation_at(loc)
        if annotation is not None:
            return _type_mismatch(annotation, value)
    message: str = error["msg"]
    return message[:1].lower() + message[1:]


def _type_mismatch(annotation: object, value: object) -> str:
    expected = _unwrap(annotation)
    scalar_expected = expected in (str, int, float, bool)
    message = f"expected {_expected(expected)}, got {_described(value, scalar_expected)}"
    if expected is str and isinstance(value, bool | int | float | date):
        message += "; put it in quotes if it is meant as text"
        if isinstance(value, bool):
            message += " (YAML reads yes, no, on and off as true or false)"
    return message


def _expected(annotation: object) -> str:
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin is list:
        return "a list of " + _plural(get_args(annotation)[0])
    if origin is dict:
        return "a mapping of names to " + _plural(get_args(annotation)[1])
    words = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    if annotation in words:
        return words[annotation]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of: " + ", ".join(_enum_values(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping"
    return "a different kind of value"


def _plural(annotation: object) -> str:
    annotation = _unwrap(annotation)
    words = {str: "strings", int: "whole numbers", float: "numbers", bool: "true or false"}
    if annotation in words:
        return words[annotation]
    if isinstance(annotation, type):
        return annotation.__name__.lower() + "s"
    return "values"


def _described(value: object, scalar_expected: bool) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {_number(value)}"
    if isinstance(value, str):
        return repr(value) if scalar_expected else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unwrap(annotation: object) -> object:
    """Strip ``Annotated`` and ``| None`` down to the type a person is asked to write."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            rest = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _annotation_at(loc: FieldPath) -> object | None:
    """The declared type of the value at ``loc``, walking from ``Pipeline`` down."""
    current: object = Pipeline
    for part in loc:
        current = _unwrap(current)
        origin = get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            current = field.annotation
        elif origin is list and isinstance(part, int):
            current = get_args(current)[0]
        elif origin is dict:
            current = get_args(current)[1]
        else:
            return None
    return current


def _allowed_keys(loc: FieldPath) -> list[str]:
    model = _unwrap(_annotation_at(loc))
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _enum_values(annotation: object) -> list[str]:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(member.value) for member in annotation]
    return []


# --- salvage ------------------------------------------------------------------------------

_UNNAMED = "<stage {}>"
"""Name given to a stage without one while salvaging; never valid, so nothing can need it."""


def _salvage(data: Any) -> Pipeline:
    """The parts of a schema-invalid pipeline that validate on their own, at their indices,
    so the semantic checks still run on them and report alongside the schema problems.

    Broken fields are dropped (a schema problem reports each); a stage that is not a mapping
    becomes a stand-in that no semantic check objects to.
    """
    if not isinstance(data, dict):
        return Pipeline.model_construct(name="", variables={}, stages=[])
    raw_variables = data.get("variables")
    variables: dict[str, Variable] = {}
    if isinstance(raw_variables, dict):
        for name, raw in raw_variables.items():
            salvaged = _validate_what_holds(Variable, raw)
            variables[name] = salvaged[0] if salvaged else Variable()
    elif isinstance(raw_variables, list):
        # `variables: [A, B]` still shows which names the author meant to declare.
        variables = {item: Variable() for item in raw_variables if isinstance(item, str)}
    raw_stages = data.get("stages")
    stages = (
        [_salvage_stage(index, raw) for index, raw in enumerate(raw_stages)]
        if isinstance(raw_stages, list)
        else []
    )
    name = data.get("name")
    return Pipeline.model_construct(
        name=name if isinstance(name, str) else "", variables=variables, stages=stages
    )


def _salvage_stage(index: int, raw: Any) -> Stage:
    stand_in = Stage.model_construct(name=_UNNAMED.format(index), image="", needs=[])
    if not isinstance(raw, dict):
        return stand_in
    name = raw.get("name")
    # Validate with a stand-in name, then put back the one written: even a name that breaks
    # the pattern is what other stages' `needs` refer to.
    salvaged = _validate_what_holds(Stage, {**raw, "name": "salvaged"})
    if salvaged is None:
        return stand_in
    stage, dropped = salvaged
    update: dict[str, Any] = {"name": name if isinstance(name, str) else stand_in.name}
    fields = list(Stage.model_fields)
    meant = dropped | {m for key in dropped for m in difflib.get_close_matches(key, fields)}
    if meant & {"image", "command"} and stage.image is None:
        # A broken or misspelled command is still a command; "neither image nor command"
        # would be noise on top of its own problem.
        update["image"] = ""
    return stage.model_copy(update=update)


def _validate_what_holds(model: type[ModelT], raw: Any) -> tuple[ModelT, set[str]] | None:
    """Validate ``raw`` after dropping each top-level key that has an error; return the model
    and the keys dropped."""
    if not isinstance(raw, dict):
        return None
    fields = dict(raw)
    dropped: set[str] = set()
    while True:
        try:
            return model.model_validate(fields), dropped
        except pydantic.ValidationError as exc:
            broken = {
                str(error["loc"][0]) for error in exc.errors() if error["loc"]
            } & fields.keys()
            if not broken:
                return None
            for key in broken:
                del fields[key]
            dropped |= broken
