"""The three shapes a first-Winslow pipeline file comes in, read into one: the record format.

The first Winslow's pipelines were, newest first: YAML whose ``stages`` are wrapped items
(``- Worker: {...}``, ``- AndGateway:``, ``- XorGateway:``, since December 2022); YAML whose
``stages`` are plain mappings with a ``type`` (``Execution``, ``AndGateway``, ``XOrGateway``)
and the singular ``requirements.cpu`` (the *plain-list* format, 2019 to 2022); and the TOML
drafts of 2019 (``[pipelineDefinition]``, ``[[stageDefinition]]`` with ``depends-on``) that
its repository still holds. ``read_legacy`` recognises which one a text is and returns it as
record-format data, what it had to leave behind on the way, and where each record-format
path was written in the original, so problems found later point at the file a person has.
Pure: text in, data out.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from winslow.errors import PipelineError, PipelineProblem

STAGE_KINDS = ("Worker", "AndGateway", "XorGateway")
"""The wrapper keys of the record format's stage items."""

FORMAT_NAMES = {
    "record": "a first-Winslow pipeline",
    "plain-list": "a first-Winslow pipeline of the older plain-list format",
    "toml-draft": "a first-Winslow TOML draft of 2019",
}
"""How the converted file's header names the format it came from."""

Path = tuple[str | int, ...]
Position = tuple[int, int]

_PLAIN_TYPES = {"Execution": "Worker", "AndGateway": "AndGateway", "XOrGateway": "XorGateway"}
_CONFIRMATION_ORDER = ("NEVER", "ONCE", "ALWAYS")

_TOML_UNSUPPORTED: dict[str, str] = {
    "progress": (
        "Winslow reads progress from `NN %` or `WINSLOW_PROGRESS:` lines of the output, so "
        "print it in that form"
    ),
    "fail": "Winslow judges a run by its exit code only",
    "warn": "Winslow has no warnings from log lines",
    "allow": "Winslow counts exit code 0 as success and every other as failure",
    "deny": "Winslow counts exit code 0 as success and every other as failure",
}
"""Keys of the TOML drafts' stages that never reached the record format, and why."""


@dataclass
class LegacySource:
    """A first-Winslow file read into the record format.

    ``positions`` maps record-format paths (``("stages", 2, "Worker", "requirements",
    "cpus")``) to where they were written (line and column, from 1) in the original file.
    """

    kind: str
    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    positions: dict[Path, Position] = field(default_factory=dict)

    def locate(self, path: Path) -> Position | None:
        """Where ``path`` was written, else where the nearest enclosing part was."""
        for end in range(len(path), 0, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return None


def read_legacy(text: str, file: str) -> LegacySource:
    """Recognise which first-Winslow format ``text`` is and read it as the record format.

    Raises ``PipelineError`` naming what the text is when it is none of them (invalid YAML
    with its line, TOML that is no draft, a mapping without a list of stages).
    """
    try:
        data = yaml.safe_load(text)
        yaml_error: yaml.YAMLError | None = None
    except yaml.YAMLError as exc:
        data, yaml_error = None, exc
    if isinstance(data, dict) and isinstance(data.get("stages"), list):
        stages = data["stages"]
        if stages and all(_is_plain_stage(stage) for stage in stages):
            return _from_plain_list(data, positions(text), file)
        return LegacySource("record", data, [], positions(text))
    try:
        toml = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        toml = None
    if toml is not None:
        if "pipelineDefinition" in toml or "stageDefinition" in toml:
            return _from_toml_draft(toml, text, file)
        _error(
            file,
            "this is TOML, but not a first-Winslow TOML draft (those have a "
            "[pipelineDefinition] table and [[stageDefinition]] tables)",
        )
    if yaml_error is not None:
        mark = getattr(yaml_error, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        problem = getattr(yaml_error, "problem", None) or yaml_error
        _error(file, f"invalid YAML: {problem}", line, column)
    _error(
        file,
        "expected a first-Winslow pipeline: a mapping with `stages`, a list of `- Worker:`, "
        "`- AndGateway:` or `- XorGateway:` items (or, in the older plain-list format, of "
        "stages with a `name`); or a TOML draft with [[stageDefinition]] tables",
    )


def positions(text: str) -> dict[Path, Position]:
    """Where each path of YAML ``text`` was written: a mapping entry at its key, a list item
    at its value. Empty when the text is not YAML."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    found: dict[Path, Position] = {}
    todo: list[tuple[Path, yaml.Node]] = [((), root)] if root is not None else []
    while todo:
        path, node = todo.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, key.value)
                found[child] = (key.start_mark.line + 1, key.start_mark.column + 1)
                todo.append((child, value))
        elif isinstance(node, yaml.SequenceNode):
            for index, value in enumerate(node.value):
                child = (*path, index)
                found[child] = (value.start_mark.line + 1, value.start_mark.column + 1)
                todo.append((child, value))
    return found


def _error(file: str, message: str, line: int | None = None, column: int | None = None) -> NoReturn:
    raise PipelineError([PipelineProblem(file, line, column, "", message)])


def _is_plain_stage(stage: Any) -> bool:
    """A plain-list stage is a mapping of its fields, never one wrapper key over a mapping."""
    if not isinstance(stage, dict):
        return False
    wrapped = len(stage) == 1 and isinstance(next(iter(stage.values())), dict)
    return not wrapped


# --- the plain-list format ------------------------------------------------------------------


def _from_plain_list(data: dict[str, Any], found: dict[Path, Position], file: str) -> LegacySource:
    notes: list[str] = []
    record = {k: v for k, v in data.items() if k not in ("stages", "requires", "markers")}
    user_input = data.get("userInput", data.get("requires"))
    if isinstance(user_input, dict):
        record["userInput"] = _user_input(user_input)
    markers = data.get("markers")
    if markers:
        notes.append(
            f"the pipeline's markers {markers} are not carried over: Winslow labels projects "
            "(`winslow project create --label`), not pipelines"
        )
    kinds: list[str] = []
    stages: list[dict[str, Any]] = []
    for index, stage in enumerate(data["stages"]):
        kind = _PLAIN_TYPES.get(str(stage.get("type") or "Execution"))
        if kind is None:
            where = found.get(("stages", index, "type"))
            _error(
                file,
                f"stages[{index}] has the type {stage.get('type')!r}; the plain-list format "
                "knows Execution, AndGateway and XOrGateway",
                *(where or (None, None)),
            )
        kinds.append(kind)
        stages.append({kind: _plain_stage(stage, notes)})
    record["stages"] = stages
    moved: dict[Path, Position] = {}
    for path, position in found.items():
        if len(path) >= 2 and path[0] == "stages" and isinstance(path[1], int):
            rest = tuple(_PLAIN_RENAMES.get(p, p) if isinstance(p, str) else p for p in path[2:])
            moved[("stages", path[1], kinds[path[1]], *rest)] = position
        elif path[:1] == ("requires",):
            moved[("userInput", *path[1:])] = position
        else:
            moved[path] = position
    return LegacySource("plain-list", record, notes, moved)


_PLAIN_RENAMES = {"cpu": "cpus", "valueFor": "requiredEnvVariables"}


def _plain_stage(stage: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    raw = {k: v for k, v in stage.items() if k not in ("type", "tags", "result")}
    requirements = dict(raw.get("requirements") or {})
    if "cpu" in requirements:
        requirements.setdefault("cpus", requirements.pop("cpu"))
    if stage.get("tags"):
        requirements["tags"] = stage["tags"]
    if requirements:
        raw["requirements"] = requirements
    if isinstance(raw.get("userInput"), dict):
        raw["userInput"] = _user_input(raw["userInput"])
    if stage.get("result"):
        notes.append(
            f"stage '{stage.get('name')}': result {stage['result']} is not carried over: it "
            "held a past run's output; Winslow keeps results with each run"
        )
    return raw


def _user_input(raw: dict[str, Any]) -> dict[str, Any]:
    """The older ``environment`` (or ``valueFor``) list is the later ``requiredEnvVariables``."""
    result = {k: v for k, v in raw.items() if k not in ("environment", "valueFor", "value-for")}
    for old in ("environment", "valueFor", "value-for"):
        if old in raw:
            result.setdefault("requiredEnvVariables", raw[old])
    return result


# --- the TOML drafts ------------------------------------------------------------------------


def _from_toml_draft(toml: dict[str, Any], text: str, file: str) -> LegacySource:
    notes: list[str] = []
    head = toml.get("pipelineDefinition") or {}
    record: dict[str, Any] = {}
    for key in ("name", "description"):
        if head.get(key):
            record[key] = head[key]
    if isinstance(head.get("userInput"), dict):
        record["userInput"] = _user_input(head["userInput"])
    env = head.get("env", head.get("environment"))
    if isinstance(env, dict):
        record["environment"] = env
    drafts = [s for s in toml.get("stageDefinition") or [] if isinstance(s, dict)]
    items = [_toml_stage(draft, notes) for draft in drafts]
    by_name = {str(draft.get("name")): index for index, draft in enumerate(drafts)}
    for draft in drafts:
        for before in draft.get("depends-on") or []:
            if str(before) not in by_name:
                _error(
                    file,
                    f"stage '{draft.get('name')}': depends-on names unknown stage '{before}'; "
                    "the stages are: " + ", ".join(f"'{n}'" for n in by_name),
                )
            items[by_name[str(before)]].setdefault("nextStages", []).append(str(draft["name"]))
    stages = [_toml_gate(item, items, by_name, notes) for item in items]
    record["stages"] = stages
    headers = [i + 1 for i, line in enumerate(text.splitlines()) if _STAGE_TABLE.match(line)]
    found: dict[Path, Position] = {}
    for index, (line, stage) in enumerate(zip(headers, stages, strict=False)):
        found[("stages", index, next(iter(stage)))] = (line, 1)
    return LegacySource("toml-draft", record, notes, found)


_STAGE_TABLE = re.compile(r"\s*\[\[\s*stageDefinition\s*\]\]")


def _toml_stage(draft: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    label = draft.get("name")
    raw: dict[str, Any] = {
        k: v for k, v in draft.items() if k in ("name", "description", "image", "highlight")
    }
    requires = draft.get("requires") or {}
    requirements = {k: v for k, v in requires.items() if k != "ram"}
    if "ram" in requires:
        requirements["megabytesOfRam"] = requires["ram"]
    if "cpu" in requirements:
        requirements.setdefault("cpus", requirements.pop("cpu"))
    if requirements:
        raw["requirements"] = requirements
    if isinstance(draft.get("env"), dict):
        raw["environment"] = draft["env"]
    if isinstance(draft.get("userInput"), dict):
        raw["userInput"] = _user_input(draft["userInput"])
    for key, reason in _TOML_UNSUPPORTED.items():
        if draft.get(key):
            notes.append(f"stage '{label}': {key} {draft[key]} is not carried over: {reason}")
    return raw


def _toml_gate(
    item: dict[str, Any], items: list[dict[str, Any]], by_name: dict[str, int], notes: list[str]
) -> dict[str, Any]:
    """A draft stage without an image only asked a person; it becomes a join whose question
    the stages after it ask instead."""
    if _image_name(item.get("image")):
        return {"Worker": item}
    asked = item.pop("userInput", None) or {}
    after = [items[by_name[name]] for name in item.get("nextStages", [])]
    if asked and after:
        for successor in after:
            merged = dict(successor.get("userInput") or {})
            levels = [str(merged.get("confirmation", "NEVER")).upper()]
            levels.append(str(asked.get("confirmation", "NEVER")).upper())
            known = [level for level in levels if level in _CONFIRMATION_ORDER]
            merged["confirmation"] = max(known or ["NEVER"], key=_CONFIRMATION_ORDER.index)
            required = list(merged.get("requiredEnvVariables") or [])
            required += [v for v in asked.get("requiredEnvVariables") or [] if v not in required]
            merged["requiredEnvVariables"] = required
            successor["userInput"] = merged
        names = ", ".join(f"'{s.get('name')}'" for s in after)
        notes.append(
            f"stage '{item.get('name')}' has no image: it only asked a person "
            f"({_describe(asked)}), so the stages after it ({names}) ask that now"
        )
    elif asked:
        notes.append(
            f"stage '{item.get('name')}' has no image and no stage after it: its question "
            f"({_describe(asked)}) is dropped"
        )
    return {"AndGateway": {k: v for k, v in item.items() if k in ("name", "nextStages")}}


def _image_name(image: Any) -> str:
    return str(image.get("name") or "") if isinstance(image, dict) else str(image or "")


def _describe(user_input: dict[str, Any]) -> str:
    parts = []
    if user_input.get("confirmation"):
        parts.append(f"confirmation {str(user_input['confirmation']).upper()}")
    if user_input.get("requiredEnvVariables"):
        parts.append(f"values for {', '.join(user_input['requiredEnvVariables'])}")
    return " and ".join(parts) or "nothing"
