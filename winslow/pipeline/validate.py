"""Checks that span fields of a pipeline, after its schema holds.

Pydantic checks each value on its own; what needs the whole pipeline lives here: unique stage
names, ``needs`` that name real stages without a cycle, ``${NAME}`` references to declared
variables, names a shell accepts. Every check runs and every problem is returned, located
through a ``Locator`` so this module never sees YAML. Pure: a pipeline in, problems out.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from winslow import defaults
from winslow.errors import PipelineProblem
from winslow.pipeline.conditions import referenced_stages, syntax_problem
from winslow.pipeline.gate import (
    GateAsk,
    GateInput,
    InputType,
    description_problem,
    quoted_stages,
)
from winslow.pipeline.goregex import go_regex_problem
from winslow.pipeline.interpolate import BUILTIN_VARIABLES, references
from winslow.pipeline.model import (
    NAME_PATTERN,
    VARIABLE_PATTERN,
    Confirmation,
    Pipeline,
    Stage,
    SweepRange,
    reserved_variable_problem,
)

FieldPath = tuple[str | int, ...]
"""Where a value sits in the pipeline document: ``("stages", 1, "requirements", "cpus")``."""

Position = tuple[int | None, int | None]
"""1-based line and column, either ``None`` where unknown."""


class Locator(Protocol):
    """Finds where a field path was written; ``load.SourceMap`` is the YAML one."""

    def key(self, path: FieldPath) -> Position:
        """Position of the key that names ``path`` (its value's where it has no key)."""
        ...

    def value(self, path: FieldPath) -> Position:
        """Position of the value at ``path``."""
        ...


class Nowhere:
    """A locator for pipelines that were never text: every position is unknown."""

    def key(self, path: FieldPath) -> Position:
        return None, None

    def value(self, path: FieldPath) -> Position:
        return None, None


VARIABLE_NAME_RULE = "use at most 128 letters, digits and '_', not starting with a digit"
"""``VARIABLE_PATTERN`` in words, for messages."""

NAME_RULE = (
    "use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 characters"
)
"""``NAME_PATTERN`` in words, for messages."""


def field_path(path: FieldPath, stage_names: Sequence[object] = ()) -> str:
    """Return ``path`` as people read it: ``stages[detect].requirements.gpu.count``.

    A stage is shown by its name where ``stage_names`` holds a valid one at its index, else
    by its index. Keys that are not plain words are quoted: ``env['a.b']``.
    """
    text = ""
    for position, part in enumerate(path):
        if isinstance(part, int):
            name = stage_names[part] if part < len(stage_names) else None
            is_stage = position == 1 and path[0] == "stages"
            if is_stage and isinstance(name, str) and re.fullmatch(NAME_PATTERN, name):
                text += f"[{name}]"
            else:
                text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def semantic_problems(
    pipeline: Pipeline, locator: Locator | None = None, file: str = "<pipeline>"
) -> list[PipelineProblem]:
    """Return every cross-field problem of ``pipeline``, in the order they were written.

    ``locator`` turns field paths into line and column; without one, positions are unknown.
    """
    checker = _Checker(pipeline, locator or Nowhere(), file)
    checker.check_variables()
    checker.check_stage_names()
    checker.check_needs()
    checker.check_cycles()
    for index, stage in enumerate(pipeline.stages):
        checker.check_runs_something(index, stage)
        checker.check_env_names(index, stage)
        checker.check_references(index, stage)
        checker.check_confirmation(index, stage)
        checker.check_condition(index, stage)
        checker.check_sweep(index, stage)
        checker.check_log_parsers(index, stage)
        checker.check_gpu_model(index, stage)
        checker.check_ask(index, stage)
    return in_reading_order(checker.problems)


def in_reading_order(problems: Iterable[PipelineProblem]) -> list[PipelineProblem]:
    """Return ``problems`` without repeats, sorted by line and column; unlocated ones last."""
    unknown = 1 << 30
    return sorted(
        dict.fromkeys(problems),
        key=lambda p: (
            unknown if p.line is None else p.line,
            unknown if p.column is None else p.column,
        ),
    )


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Checker:
    def __init__(self, pipeline: Pipeline, locator: Locator, file: str) -> None:
        self.pipeline = pipeline
        self.locator = locator
        self.file = file
        self.stage_names = [stage.name for stage in pipeline.stages]
        self.problems: list[PipelineProblem] = []

    def report(self, path: FieldPath, message: str, *, at_key: bool = False) -> None:
        line, column = self.locator.key(path) if at_key else self.locator.value(path)
        field = field_path(path, self.stage_names)
        self.problems.append(PipelineProblem(self.file, line, column, field, message))

    def check_variables(self) -> None:
        for name, variable in self.pipeline.variables.items():
            if not re.fullmatch(VARIABLE_PATTERN, name):
                self.report(
                    ("variables", name),
                    f"'{name}' is not a valid variable name; {VARIABLE_NAME_RULE}",
                    at_key=True,
                )
            elif (reserved := reserved_variable_problem(name)) is not None:
                self.report(("variables", name), reserved, at_key=True)
            if variable.required and variable.default is not None:
                self.report(
                    ("variables", name, "default"),
                    f"variable '{name}' is required and has a default; required variables "
                    "have no default, so remove one of the two",
                    at_key=True,
                )

    def check_stage_names(self) -> None:
        first_index: dict[str, int] = {}
        for index, stage in enumerate(self.pipeline.stages):
            if stage.name not in first_index:
                first_index[stage.name] = index
                continue
            first_line, _ = self.locator.value(("stages", first_index[stage.name], "name"))
            where = f" at line {first_line}" if first_line is not None else ""
            self.report(
                ("stages", index, "name"),
                f"stage name '{stage.name}' is already used by the stage{where}; "
                "stage names must be unique",
            )

    def check_needs(self) -> None:
        known = set(self.stage_names)
        for index, stage in enumerate(self.pipeline.stages):
            for position, need in enumerate(stage.needs or []):
                path: FieldPath = ("stages", index, "needs", position)
                if need == stage.name:
                    self.report(path, f"stage '{stage.name}' needs itself; remove '{need}'")
                elif need not in known:
                    named = [n for n in self.stage_names if re.fullmatch(NAME_PATTERN, n)]
                    listed = ", ".join(dict.fromkeys(named))
                    self.report(
                        path,
                        f"needs unknown stage '{need}'{_did_you_mean(need, self.stage_names)}; "
                        f"the stages are: {listed}",
                    )

    def check_cycles(self) -> None:
        graph = self._needs_graph()
        for component in _strongly_connected(graph, self.stage_names):
            if len(component) < 2:
                continue
            cycle = _cycle_through(component[0], graph, set(component))
            # The default (the stage before) never closes a cycle on its own, so some stage
            # in it has an explicit ``needs`` to point at.
            blamed = next(
                (
                    index
                    for index, stage in enumerate(self.pipeline.stages)
                    if stage.name in component and stage.needs is not None
                ),
                self.stage_names.index(component[0]),
            )
            self.report(
                ("stages", blamed, "needs"),
                "needs form a cycle: "
                + " → ".join(cycle)
                + "; each waits for the next, so none can start",
                at_key=True,
            )

    def check_runs_something(self, index: int, stage: Stage) -> None:
        if stage.image is None and not stage.command:
            self.report(
                ("stages", index),
                f"stage '{stage.name}' has neither image nor command; give it at least one",
            )

    def check_env_names(self, index: int, stage: Stage) -> None:
        for key in stage.env:
            if not re.fullmatch(VARIABLE_PATTERN, key):
                self.report(
                    ("stages", index, "env", key),
                    f"'{key}' is not a valid environment variable name; {VARIABLE_NAME_RULE}",
                    at_key=True,
                )

    def check_confirmation(self, index: int, stage: Stage) -> None:
        if stage.gate and stage.confirmation not in (None, Confirmation.ALWAYS):
            self.report(
                ("stages", index, "confirmation"),
                f"stage '{stage.name}' has `gate: true` (confirmation always) and "
                f"`confirmation: {stage.confirmation.value}`; keep one of them",
                at_key=True,
            )
        for position, name in enumerate(stage.required_variables):
            if not re.fullmatch(VARIABLE_PATTERN, name):
                self.report(
                    ("stages", index, "required_variables", position),
                    f"'{name}' is not a valid variable name; {VARIABLE_NAME_RULE}",
                )

    def check_condition(self, index: int, stage: Stage) -> None:
        if stage.when is None:
            return
        path: FieldPath = ("stages", index, "when")
        problem = syntax_problem(stage.when)
        if problem is not None:
            self.report(path, f"stage '{stage.name}': {problem}")
            return
        before = self._upstream_of(stage.name)
        for name in sorted(referenced_stages(stage.when)):
            if name == stage.name:
                self.report(path, f"stage '{stage.name}' reads its own results; it has none yet")
            elif name not in self.stage_names:
                hint = _did_you_mean(name, self.stage_names)
                self.report(path, f"the condition reads results of unknown stage '{name}'{hint}")
            elif name not in before:
                self.report(
                    path,
                    f"the condition reads results of stage '{name}', which need not have run "
                    f"before '{stage.name}'; add '{name}' to its needs (or to a stage it needs)",
                )

    def check_sweep(self, index: int, stage: Stage) -> None:
        if stage.sweep is None:
            return
        base: FieldPath = ("stages", index, "sweep", "over")
        total = 1
        for name, values in stage.sweep.over.items():
            if not re.fullmatch(VARIABLE_PATTERN, name):
                self.report(
                    (*base, name),
                    f"'{name}' is not a valid variable name; {VARIABLE_NAME_RULE}",
                    at_key=True,
                )
            elif (reserved := reserved_variable_problem(name)) is not None:
                self.report((*base, name), reserved, at_key=True)
            count = len(values.values()) if isinstance(values, SweepRange) else len(values)
            if count == 0:
                what = "range from min to max" if isinstance(values, SweepRange) else "list"
                self.report((*base, name), f"sweep over '{name}' has no values (an empty {what})")
            elif not isinstance(values, SweepRange) and len(set(values)) != count:
                self.report((*base, name), f"sweep over '{name}' lists a value twice")
            total *= max(count, 1)
        if total > defaults.MAX_SWEEP_RUNS:
            self.report(
                ("stages", index, "sweep"),
                f"stage '{stage.name}' sweeps {total} combinations; at most "
                f"{defaults.MAX_SWEEP_RUNS} are allowed",
                at_key=True,
            )

    def check_log_parsers(self, index: int, stage: Stage) -> None:
        seen: set[str] = set()
        for position, parser in enumerate(stage.log_parsers):
            if parser.name in seen:
                self.report(
                    ("stages", index, "log_parsers", position, "name"),
                    f"log parser name '{parser.name}' is used twice in stage '{stage.name}'",
                )
            seen.add(parser.name)

    def check_gpu_model(self, index: int, stage: Stage) -> None:
        pattern = stage.requirements.gpu.model
        problem = go_regex_problem(pattern) if pattern is not None else None
        if problem is not None:
            self.report(
                ("stages", index, "requirements", "gpu", "model"),
                f"{pattern!r} uses {problem}, which Nomad's regular expressions (Go RE2) do "
                "not have; write the pattern without it",
            )

    def check_ask(self, index: int, stage: Stage) -> None:
        if stage.ask is None:
            return
        base: FieldPath = ("stages", index, "ask")
        if stage.confirm is Confirmation.NEVER:
            self.report(
                base,
                f"stage '{stage.name}' asks (`ask:`) but never waits for a person; add "
                "`gate: true` (or `confirmation: once`), or remove `ask:`",
                at_key=True,
            )
        self._check_description(stage, stage.ask, (*base, "description"))
        seen: set[str] = set()
        for position, item in enumerate(stage.ask.inputs):
            path: FieldPath = (*base, "inputs", position)
            if not re.fullmatch(VARIABLE_PATTERN, item.name):
                self.report(
                    (*path, "name"),
                    f"'{item.name}' is not a valid variable name; {VARIABLE_NAME_RULE}",
                )
            elif (reserved := reserved_variable_problem(item.name)) is not None:
                self.report((*path, "name"), reserved)
            elif item.name in seen:
                self.report((*path, "name"), f"gate '{stage.name}' asks '{item.name}' twice")
            seen.add(item.name)
            for key, message in _input_problems(item):
                self.report((*path, key), message, at_key=key == "type")

    def _check_description(self, stage: Stage, ask: GateAsk, path: FieldPath) -> None:
        problem = description_problem(ask.description)
        if problem is not None:
            self.report(path, f"stage '{stage.name}': {problem}")
            return
        before = self._upstream_of(stage.name)
        for name in sorted(quoted_stages(ask.description)):
            if name not in self.stage_names:
                hint = _did_you_mean(name, self.stage_names)
                self.report(path, f"the description quotes results of unknown stage '{name}'{hint}")
            elif name not in before:
                self.report(
                    path,
                    f"the description quotes results of stage '{name}', which need not have run "
                    f"before '{stage.name}'; add '{name}' to its needs (or to a stage it needs)",
                )

    def _upstream_of(self, name: str) -> set[str]:
        graph = self._needs_graph()
        found: set[str] = set()
        todo = list(graph.get(name, []))
        while todo:
            need = todo.pop()
            if need not in found:
                found.add(need)
                todo.extend(graph.get(need, []))
        return found

    def check_references(self, index: int, stage: Stage) -> None:
        base: FieldPath = ("stages", index)
        texts: list[tuple[FieldPath, str]] = [
            *(((*base, "command", i), part) for i, part in enumerate(stage.command or [])),
            *(((*base, "env", key), value) for key, value in stage.env.items()),
            *(((*base, "inputs", i), path) for i, path in enumerate(stage.inputs)),
            *(
                ((*base, "ask", "review", i), p)
                for i, p in enumerate(stage.ask.review if stage.ask else [])
            ),
        ]
        # A sweep's values and a gate's answers are variables too: they declare theirs.
        swept = set(stage.sweep.over) if stage.sweep is not None else set()
        swept |= {item.name for s in self.pipeline.stages if s.ask for item in s.ask.inputs}
        declared = sorted(set(self.pipeline.variables) | swept)
        for path, text in texts:
            for name in sorted(references(text)):
                if name in self.pipeline.variables or name in BUILTIN_VARIABLES or name in swept:
                    continue
                if not re.fullmatch(VARIABLE_PATTERN, name):
                    self.report(
                        path,
                        f"'${{{name}}}' is not a valid variable reference; {VARIABLE_NAME_RULE}"
                        f", or write '$${{{name}}}' for a literal '${{{name}}}'",
                    )
                    continue
                hint = _did_you_mean(name, [*declared, *sorted(BUILTIN_VARIABLES)])
                self.report(
                    path,
                    f"stage '{stage.name}' references ${{{name}}}, but no variable '{name}' is "
                    f"declared{hint}; declare it under `variables:`, or write '$${{{name}}}' "
                    f"for a literal '${{{name}}}'",
                )

    def _needs_graph(self) -> dict[str, list[str]]:
        """Each stage's resolved needs that name another real stage; the rest are reported
        by ``check_needs``."""
        known = set(self.stage_names)
        graph: dict[str, list[str]] = {}
        for stage in self.pipeline.stages:
            if stage.name in graph:
                continue  # a duplicate name; reported by check_stage_names
            needs = self.pipeline.needs_of(stage.name)
            graph[stage.name] = [n for n in needs if n in known and n != stage.name]
        return graph


def _strongly_connected(graph: dict[str, list[str]], order: Sequence[str]) -> list[list[str]]:
    """Tarjan's algorithm, without recursion so a long chain of stages cannot overflow the
    stack; each component lists its stages in pipeline order."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    position = {name: i for i, name in reversed(list(enumerate(order)))}

    def enter(node: str) -> None:
        index_of[node] = low[node] = len(index_of)
        stack.append(node)
        on_stack.add(node)

    for root in graph:
        if root in index_of:
            continue
        enter(root)
        work: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index_of:
                    enter(successor)
                    work.append((successor, iter(graph[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index_of[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index_of[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component, key=position.__getitem__))
    return sorted(components, key=lambda c: position[c[0]])


def _cycle_through(start: str, graph: dict[str, list[str]], within: set[str]) -> list[str]:
    """The shortest walk along needs from ``start`` back to itself, inside one component."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for successor in graph[node]:
                if successor not in within or successor in came_from:
                    continue
                came_from[successor] = node
                if successor == start:
                    walk = [start]
                    while walk[-1] != start or len(walk) == 1:
                        walk.append(came_from[walk[-1]])
                    return list(reversed(walk))
                following.append(successor)
        frontier = following
    return [start, start]


def _input_problems(item: GateInput) -> list[tuple[str, str]]:
    """Where a gate input contradicts itself: (its key, the problem)."""
    problems: list[tuple[str, str]] = []
    number = item.type is InputType.NUMBER
    for key, value in (("min", item.min), ("max", item.max)):
        if value is not None and not number:
            problems.append(
                (key, f"`{key}` applies to a number; '{item.name}' is a {item.type.value}")
            )
    if item.choices and item.type is not InputType.CHOICE:
        problems.append(
            ("choices", f"`choices` apply to a choice; '{item.name}' is a {item.type.value}")
        )
    if item.type is InputType.CHOICE:
        if not item.choices:
            problems.append(("type", f"choice '{item.name}' has no `choices`; list what it may be"))
        elif len(set(item.choices)) != len(item.choices):
            problems.append(("choices", f"choice '{item.name}' lists a value twice"))
    if number and item.min is not None and item.max is not None and item.min > item.max:
        problems.append(("max", f"max {item.max:g} is below min {item.min:g}"))
    if item.default is not None:
        problem = _default_problem(item)
        if problem is not None:
            problems.append(("default", problem))
    return problems


def _default_problem(item: GateInput) -> str | None:
    default = item.default
    if item.type is InputType.BOOLEAN:
        return None if isinstance(default, bool) else f"expected true or false, got {default!r}"
    if item.type is InputType.CHOICE and str(default) not in item.choices:
        return f"default {default!r} is not one of the choices: {', '.join(item.choices)}"
    if item.type is not InputType.NUMBER:
        return None
    if isinstance(default, bool) or not isinstance(default, float | int):
        return f"expected a number, got {default!r}"
    if item.min is not None and default < item.min:
        return f"default {default:g} is below min {item.min:g}"
    if item.max is not None and default > item.max:
        return f"default {default:g} is above max {item.max:g}"
    return None
