"""Conversion of a first-Winslow pipeline file into Winslow's pipeline format.

The first Winslow wrote a pipeline as a list of ``Worker``, ``AndGateway`` and ``XorGateway``
items linked by ``nextStages`` ids (its older plain-list format and its TOML drafts are read
into that form first, by ``legacy_formats``). Winslow has stages only, each naming the stages
it ``needs``; so gateways dissolve into edges: a stage needs every worker that reaches it
directly or through gateways. A file without any ``nextStages`` ran its stages in order, so
it becomes a chain. ``deletionPolicy`` and ``discardable`` become ``retention``. Regex log
parsers become ``log_parsers`` (their groups named).
What has no counterpart (XOR's JsonLogic conditions, shm size, node tags, ...) is not guessed
at: each such part becomes one sentence in
``Conversion.unmapped``, naming the stage and the field, so a person knows what to re-add.
The result is checked with ``load_pipeline_text`` before it is returned, so a conversion is
always a pipeline Winslow accepts; its problems point at the lines of the original file.
Pure: text in, text and data out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from winslow.errors import PipelineError, PipelineProblem
from winslow.pipeline.interpolate import references
from winslow.pipeline.legacy_formats import (
    FORMAT_NAMES,
    STAGE_KINDS,
    LegacySource,
    Path,
    positions,
    read_legacy,
)
from winslow.pipeline.load import load_pipeline_text
from winslow.pipeline.model import NAME_PATTERN, VARIABLE_PATTERN, LogParser

_CONFIRMATIONS = {"NEVER": "never", "ONCE": "once", "ALWAYS": "always"}

_WORKER_UNSUPPORTED: dict[str, str] = {
    "privileged": (
        "it ran as a privileged container; Winslow never runs stages privileged, so check that "
        "it still works without"
    ),
    "ignoreFailuresWithinExecutionGroup": (
        "failures within its execution group were ignored; Winslow stops at a failed run "
        "(see `retry: {on_failure: N}` for automatic new attempts)"
    ),
    "highlight": "the first Winslow never showed it (its Highlight tab was disabled)",
}
"""Worker fields with no Winslow counterpart, and why, reported only when set."""

_PIPELINE_UNSUPPORTED: dict[str, str] = {
    "groups": "access in Winslow is by API token, not by group",
    "charts": "Winslow has no charts of log-parser output",
    "belongsToProject": "Winslow's pipelines are all shared; apply it under a name of its own",
    "publicAccess": "access in Winslow is by API token, not by a public flag",
}
"""Pipeline fields with no Winslow counterpart, and why, reported only when set."""

_KNOWN_WORKER_KEYS = {
    "id",
    "name",
    "description",
    "nextStages",
    "image",
    "requirements",
    "userInput",
    "environment",
    "logParsers",
    "discardable",
    *_WORKER_UNSUPPORTED,
}
_KNOWN_PIPELINE_KEYS = {
    "id",
    "name",
    "description",
    "userInput",
    "stages",
    "environment",
    "deletionPolicy",
    *_PIPELINE_UNSUPPORTED,
}


@dataclass(frozen=True)
class Conversion:
    """A converted pipeline: ``pipeline`` as data, ``yaml`` as the text to save, and
    ``unmapped``: one sentence per part of the original that was not carried over."""

    pipeline: dict[str, Any]
    yaml: str
    unmapped: list[str] = field(default_factory=list)


@dataclass
class _Item:
    kind: str
    index: int
    raw: dict[str, Any]
    label: str
    next_refs: list[str]


def convert(text: str, file: str) -> Conversion:
    """Convert a first-Winslow pipeline ``text`` (record format, plain-list format or TOML
    draft); ``file`` names it in messages.

    Returns a ``Conversion`` whose YAML loads with ``load_pipeline_text``. Raises
    ``PipelineError`` when ``text`` is none of those formats, has no list of stages, links to
    an unknown ``nextStages`` id, links stages in a cycle, or converts to a pipeline Winslow
    refuses (each problem at the original's line)::

        conversion = convert(Path("old.yml").read_text(), "old.yml")
        Path("new.yaml").write_text(conversion.yaml)
        for sentence in conversion.unmapped:
            print("warning:", sentence)
    """
    return _Converter(file, read_legacy(text, file)).run()


def _error(file: str, message: str, line: int | None = None, column: int | None = None) -> NoReturn:
    raise PipelineError([PipelineProblem(file, line, column, "", message)])


def _text(value: Any) -> str:
    """A YAML scalar as the text the first Winslow (Java strings) would have seen."""
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _literal(value: str) -> str:
    """``value`` with each ``${`` escaped, so Winslow passes it on as written: ``$${Z}``
    becomes ``$$${Z}``, which Winslow turns back into ``$${Z}``."""
    return value.replace("${", "$${")


def _valid_name(raw: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).lstrip("_.-")[:63].rstrip("-")
    return name or "stage"


class _Converter:
    def __init__(self, file: str, source: LegacySource) -> None:
        self.file = file
        self.source = source
        self.unmapped: list[str] = list(source.notes)
        self.variables: dict[str, dict[str, Any]] = {}
        self.variable_origin: dict[str, Path] = {}
        self.stage_origin: dict[int, Path] = {}

    def run(self) -> Conversion:
        data = self.source.data
        items = self._items(data)
        successors = self._resolve_links(items)
        if len(items) > 1 and not any(item.next_refs for item in items):
            successors = self._chain(items)
        order = self._topological_order(items, successors)
        pipeline: dict[str, Any] = {"name": self._pipeline_name(data)}
        names = self._stage_names(items)
        predecessors: dict[int, list[int]] = {item.index: [] for item in items}
        for source, targets in successors.items():
            for target in targets:
                predecessors[target].append(source)
        position = {index: rank for rank, index in enumerate(order)}

        self._pipeline_fields(data)
        stages: list[dict[str, Any]] = []
        for index in order:
            item = items[index]
            if item.kind == "Worker":
                needs = sorted(
                    self._worker_needs(index, items, predecessors), key=position.__getitem__
                )
                stage = self._stage(item, names[index])
                stage["needs"] = [names[n] for n in needs]
                self.stage_origin[len(stages)] = ("stages", item.index, item.kind)
                stages.append(stage)
            else:
                self._gateway(item, [items[s].label for s in successors[index]])
        if not stages:
            _error(self.file, "the pipeline has no Worker stages; there is nothing to run")

        if data.get("description"):
            pipeline["description"] = _text(data["description"])
        retention = self._retention(data.get("deletionPolicy"))
        if retention:
            pipeline["retention"] = retention
        if self.variables:
            pipeline["variables"] = self.variables
        pipeline["stages"] = stages
        text_out = self._dump(pipeline)
        self._check(text_out)
        return Conversion(pipeline=pipeline, yaml=text_out, unmapped=list(self.unmapped))

    def _chain(self, items: list[_Item]) -> dict[int, list[int]]:
        """Links each item to the next in the file: how the first Winslow ran a pipeline
        whose stages name no ``nextStages``."""
        self.unmapped.append(
            "no stage names nextStages, so the stages run one after another in the file's "
            "order, as the first Winslow ran them: " + " -> ".join(i.label for i in items)
        )
        return {
            item.index: [item.index + 1] if item.index + 1 < len(items) else [] for item in items
        }

    def _check(self, text_out: str) -> None:
        """Validate the converted text; its problems are told at the original's lines, the
        ones a person can open, with Winslow's field names."""
        try:
            load_pipeline_text(text_out, f"{self.file} (converted)")
        except PipelineError as exc:
            deepest: dict[int, Path] = {}
            for path, (row, _column) in positions(text_out).items():
                if len(path) >= len(deepest.get(row, ())):
                    deepest[row] = path
            problems = []
            for problem in exc.problems:
                found = deepest.get(problem.line) if problem.line is not None else None
                at = self.source.locate(self._origin(found)) if found is not None else None
                line, column = at if at is not None else (None, None)
                problems.append(
                    PipelineProblem(self.file, line, column, problem.field, problem.message)
                )
            problems.append(PipelineProblem(self.file, None, None, "", _INVALID_HINT))
            raise PipelineError(problems) from None

    def _origin(self, path: Path) -> Path:
        """The original's path that converted ``path`` was made from (or the nearest part)."""
        if len(path) >= 2 and path[0] == "stages" and isinstance(path[1], int):
            base = self.stage_origin.get(path[1], ())
            rest = path[2:]
            for length in range(len(rest), 0, -1):
                mapped = _STAGE_ORIGINS.get(rest[:length])
                if mapped is not None:
                    return (*base, *mapped, *rest[length:])
            return base
        if len(path) >= 2 and path[0] == "variables":
            return self.variable_origin.get(str(path[1]), ())
        return _PIPELINE_ORIGINS.get(path[:1], path[:1])

    # --- reading --------------------------------------------------------------------------

    def _items(self, data: dict[str, Any]) -> list[_Item]:
        items = []
        for index, wrapper in enumerate(data["stages"]):
            where = f"stages[{index}]"
            if not isinstance(wrapper, dict) or len(wrapper) != 1:
                _error(
                    self.file,
                    f"{where} is not a single `Worker:`, `AndGateway:` or `XorGateway:` item",
                )
            kind, raw = next(iter(wrapper.items()))
            if kind not in STAGE_KINDS or not isinstance(raw, dict):
                _error(
                    self.file, f"{where} is a {kind!r}; expected one of: " + ", ".join(STAGE_KINDS)
                )
            label = _text(raw.get("name")) or f"#{index + 1}"
            refs = raw.get("nextStages") or []
            if not isinstance(refs, list):
                _error(self.file, f"{kind} '{label}': nextStages must be a list of stage ids")
            items.append(_Item(kind, index, raw, label, [_text(r) for r in refs]))
        return items

    def _resolve_links(self, items: list[_Item]) -> dict[int, list[int]]:
        """Successors by index. A stage is found by its ``id``; one written without an id is
        found by its name, since the id the first Winslow derived from it is not written."""
        by_id: dict[str, int] = {}
        by_name: dict[str, int] = {}
        for item in items:
            given = _text(item.raw.get("id"))
            if given:
                if given in by_id:
                    other = items[by_id[given]].label
                    _error(
                        self.file,
                        f"{item.kind} '{item.label}' has the id '{given}' of "
                        f"'{other}'; ids must be unique",
                    )
                by_id[given] = item.index
            by_name.setdefault(item.label, item.index)
        successors: dict[int, list[int]] = {}
        for item in items:
            targets: list[int] = []
            for ref in item.next_refs:
                target = by_id.get(ref, by_name.get(ref))
                if target is None:
                    known = ", ".join(f"'{i}'" for i in by_id) or "none"
                    _error(
                        self.file,
                        f"{item.kind} '{item.label}': nextStages names unknown "
                        f"stage id '{ref}'; the ids are: {known}",
                    )
                    continue
                if target not in targets:
                    targets.append(target)
            successors[item.index] = targets
        return successors

    def _topological_order(self, items: list[_Item], successors: dict[int, list[int]]) -> list[int]:
        """Kahn's algorithm, taking the earliest item in the file first among the ready."""
        incoming = {item.index: 0 for item in items}
        for targets in successors.values():
            for target in targets:
                incoming[target] += 1
        ready = sorted(i for i, count in incoming.items() if count == 0)
        order: list[int] = []
        while ready:
            current = ready.pop(0)
            order.append(current)
            for target in successors[current]:
                incoming[target] -= 1
                if incoming[target] == 0:
                    ready.append(target)
                    ready.sort()
        if len(order) < len(items):
            stuck = [f"'{items[i].label}'" for i in sorted(incoming) if incoming[i] > 0]
            _error(
                self.file,
                "nextStages form a cycle through "
                + ", ".join(stuck)
                + "; Winslow pipelines run each stage once per run, so break the loop",
            )
        return order

    def _stage_names(self, items: list[_Item]) -> dict[int, str]:
        names: dict[int, str] = {}
        used: set[str] = set()
        for item in items:
            if item.kind != "Worker":
                continue
            base = item.label if re.fullmatch(NAME_PATTERN, item.label) else _valid_name(item.label)
            name, n = base, 1
            while name in used:
                n += 1
                name = f"{base[: 63 - len(str(n)) - 1]}-{n}"
            used.add(name)
            names[item.index] = name
            if name != item.label:
                self.unmapped.append(
                    f"stage '{item.label}' is named '{name}' now: Winslow stage names are "
                    "unique and use letters, digits, '_', '.' and '-' only"
                )
        return names

    def _worker_needs(
        self, index: int, items: list[_Item], predecessors: dict[int, list[int]]
    ) -> set[int]:
        """Workers that lead to ``index`` directly or through gateways only."""
        found: set[int] = set()
        seen: set[int] = set()
        todo = list(predecessors[index])
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            if items[current].kind == "Worker":
                found.add(current)
            else:
                todo.extend(predecessors[current])
        return found

    # --- mapping --------------------------------------------------------------------------

    def _pipeline_name(self, data: dict[str, Any]) -> str:
        raw = _text(data.get("name")) or re.sub(r"\.[^.]*$", "", self.file.rsplit("/", 1)[-1])
        name = raw if re.fullmatch(NAME_PATTERN, raw) else _valid_name(raw)
        if name != raw:
            self.unmapped.append(
                f"the pipeline '{raw}' is named '{name}' now: Winslow pipeline names use "
                "letters, digits, '_', '.' and '-' only"
            )
        return name

    def _pipeline_fields(self, data: dict[str, Any]) -> None:
        environment = data.get("environment") or {}
        if isinstance(environment, dict):
            for key, value in environment.items():
                if self._variable_name_ok(str(key), "the pipeline's environment"):
                    # A variable's value is never read for references, so it stays unescaped.
                    self._declare(
                        str(key),
                        description="pipeline environment of the first Winslow",
                        default=_text(value),
                    )
                    self.variable_origin[str(key)] = ("environment", key)
        user_input = _mapping(data.get("userInput"))
        for number, key in enumerate(_list(user_input.get("requiredEnvVariables"))):
            if self._variable_name_ok(key, "the pipeline's userInput.requiredEnvVariables"):
                self._declare(key, description="required by the pipeline", required=True)
                origin = ("userInput", "requiredEnvVariables", number)
                self.variable_origin.setdefault(key, origin)
        confirmation = _text(user_input.get("confirmation")).upper()
        if confirmation and confirmation != "NEVER":
            self.unmapped.append(
                f"the pipeline's userInput.confirmation {confirmation} has no pipeline-wide "
                "counterpart; set `confirmation:` on the stages that need it"
            )
        for key, reason in _PIPELINE_UNSUPPORTED.items():
            if data.get(key) not in (None, False, [], {}):
                self.unmapped.append(f"the pipeline's {key} is not carried over: {reason}")
        for key in data:
            if key not in _KNOWN_PIPELINE_KEYS:
                self.unmapped.append(
                    f"the pipeline's key '{key}' is not a first-Winslow field; it was left out"
                )

    def _stage(self, item: _Item, name: str) -> dict[str, Any]:
        raw, label = item.raw, item.label
        stage: dict[str, Any] = {"name": name}
        if raw.get("description"):
            stage["description"] = _text(raw["description"])
        image = raw.get("image") or {}
        if not isinstance(image, dict):
            image = {"name": image}
        if image.get("name"):
            stage["image"] = _text(image["name"])
        args = [
            self._literal_noted(_text(a), label, "image.args") for a in _list(image.get("args"))
        ]
        if args:
            stage["command"] = args
        if "image" not in stage and "command" not in stage:
            _error(
                self.file,
                f"Worker '{label}' has no image.name; Winslow cannot tell what to "
                "run, so give it an image in the original file and import it again",
            )
        for shm_key in ("shmMegabytes", "shmSizeMegabytes"):
            if image.get(shm_key):
                self.unmapped.append(
                    f"stage '{label}': image.{shm_key} ({image[shm_key]} MiB of /dev/shm) is not "
                    "supported; the stage gets the container runtime's default /dev/shm size"
                )
        requirements = self._requirements(_mapping(raw.get("requirements")), label)
        if requirements:
            stage["requirements"] = requirements
        env = self._env(raw.get("environment") or {}, label)
        if env:
            stage["env"] = env
        self._user_input(_mapping(raw.get("userInput")), label, stage)
        for key in stage.get("required_variables", []):
            origin = ("stages", item.index, item.kind, "userInput", "requiredEnvVariables")
            self.variable_origin.setdefault(key, origin)
        self._log_parsers(raw.get("logParsers"), label, stage)
        if _text(raw.get("discardable")) == "true":
            # Discardable workspaces were pruned once later stages had them, failed or not;
            # Winslow keeps a stage's current and latest run however few it is told to keep.
            stage["retention"] = {"keep_succeeded": 0, "keep_failed": False}
        for key, reason in _WORKER_UNSUPPORTED.items():
            if raw.get(key) not in (None, False, [], {}):
                self.unmapped.append(f"stage '{label}': {key} is not carried over: {reason}")
        for key in raw:
            if key not in _KNOWN_WORKER_KEYS:
                self.unmapped.append(
                    f"stage '{label}': key '{key}' is not a first-Winslow Worker field; it was "
                    "left out"
                )
        return stage

    def _requirements(self, raw: dict[str, Any], label: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        # The first Winslow read zero or less (`cpus: -1`) as "not set": no requirement.
        if _set(raw.get("cpus")):
            result["cpus"] = raw["cpus"]
        if _set(raw.get("megabytesOfRam")):
            result["memory"] = raw["megabytesOfRam"]
        gpu = _mapping(raw.get("gpu"))
        if _set(gpu.get("count")):
            result["gpu"] = {"count": gpu["count"]}
            vendor = _text(gpu.get("vendor"))
            # Winslow's GPUs are the ones nvidia-smi reports, so 'nvidia' asks for nothing more.
            if vendor and vendor.lower() != "nvidia":
                self.unmapped.append(
                    f"stage '{label}': requirements.gpu.vendor '{vendor}' is not supported; "
                    "Winslow schedules NVIDIA GPUs only (requirements.gpu.model can narrow "
                    "them by name)"
                )
        support = _list(gpu.get("support"))
        if support:
            self.unmapped.append(
                f"stage '{label}': requirements.gpu.support {support} is not carried over: "
                "the first Winslow never checked it and Winslow has no such field; use "
                "requirements.gpu.model (a regex over the GPU's name) to pick GPUs"
            )
        tags = _list(raw.get("tags"))
        if tags:
            self.unmapped.append(
                f"stage '{label}': requirements.tags {tags} (pinning to nodes) are not "
                "supported; Winslow picks any node with the resources"
            )
        return result

    def _env(self, raw: Any, label: str) -> dict[str, str]:
        env: dict[str, str] = {}
        if not isinstance(raw, dict):
            return env
        for key, value in raw.items():
            if self._variable_name_ok(str(key), f"stage '{label}': environment"):
                env[str(key)] = self._literal_noted(_text(value), label, f"environment {key}")
        return env

    def _user_input(self, raw: dict[str, Any], label: str, stage: dict[str, Any]) -> None:
        confirmation = _text(raw.get("confirmation")).upper()
        if confirmation in _CONFIRMATIONS:
            if confirmation != "NEVER":
                stage["confirmation"] = _CONFIRMATIONS[confirmation]
        elif confirmation:
            self.unmapped.append(
                f"stage '{label}': userInput.confirmation '{confirmation}' is not one of "
                "NEVER, ONCE, ALWAYS; the stage starts without confirmation"
            )
        required = [
            key
            for key in _list(raw.get("requiredEnvVariables"))
            if self._variable_name_ok(key, f"stage '{label}': userInput.requiredEnvVariables")
        ]
        if required:
            stage["required_variables"] = required
            for key in required:
                self._declare(key, description=f"required by stage '{label}'", required=True)

    # --- helpers --------------------------------------------------------------------------

    def _declare(
        self, name: str, *, description: str, default: str | None = None, required: bool = False
    ) -> None:
        """Declare a pipeline variable; a pipeline-environment default satisfies a requirement,
        as it did in the first Winslow, so such a variable keeps its default."""
        variable = self.variables.setdefault(name, {"description": description})
        if default is not None:
            variable["default"] = default
            variable.pop("required", None)
        elif required and "default" not in variable:
            variable["required"] = True

    def _variable_name_ok(self, name: str, where: str) -> bool:
        if re.fullmatch(VARIABLE_PATTERN, name):
            return True
        self.unmapped.append(
            f"{where}: '{name}' is not a valid variable name in Winslow (letters, digits and "
            "'_', not starting with a digit); it was left out"
        )
        return False

    def _literal_noted(self, value: str, label: str, where: str) -> str:
        # Only a plain `${X}` could be meant for Winslow to fill; a written `$${Z}` stays so.
        names = sorted(references(value))
        if names:
            listed = ", ".join(f"${{{n}}}" for n in names)
            self.unmapped.append(
                f"stage '{label}': {where} keeps {listed} as written (escaped as $${{...}}), "
                "as the first Winslow passed it on; to have Winslow fill it from a project "
                "variable, declare the variable and remove one '$'"
            )
        return _literal(value)

    def _log_parsers(self, value: Any, label: str, stage: dict[str, Any]) -> None:
        """Regex → CSV parsers become log parsers: the regex's groups become series."""
        parsers = [p for p in value if isinstance(p, dict)] if isinstance(value, list) else []
        converted: list[dict[str, str]] = []
        destinations: list[str] = []
        for position, parser in enumerate(parsers, start=1):
            matcher = _text(parser.get("matcher"))
            destination = _text(parser.get("destination"))
            stem = re.sub(r"\.[^.]*$", "", destination.rsplit("/", 1)[-1])
            name = _valid_name(stem) if stem else f"parser-{position}"
            while name in {c["name"] for c in converted}:
                name = f"{name}-{position}"
            pattern = _python_regex(matcher, re.sub(r"\W", "_", stem) or "value")
            try:
                LogParser(name=name, pattern=pattern)
            except ValueError:
                self.unmapped.append(
                    f"stage '{label}': log parser {matcher!r} is not a regular expression "
                    "Winslow can read; it was left out"
                )
                continue
            converted.append({"name": name, "pattern": pattern})
            if destination:
                destinations.append(destination)
        if converted:
            stage["log_parsers"] = converted
            where = f" (written to {', '.join(destinations)})" if destinations else ""
            self.unmapped.append(
                f"stage '{label}': logParsers became log_parsers "
                f"{', '.join(c['name'] for c in converted)}: their regex groups are now series "
                f"(API, CSV, console charts); the CSV formatters and files{where} are not kept"
            )

    def _retention(self, policy: Any) -> dict[str, Any]:
        """The pipeline's ``deletionPolicy`` as Winslow's ``retention`` (empty: keep all)."""
        if not isinstance(policy, dict):
            return {}
        retention: dict[str, Any] = {}
        keep = policy.get("numberOfWorkspacesOfSucceededStagesToKeep")
        if keep is not None:
            retention["keep_succeeded"] = keep
            self.unmapped.append(
                f"the pipeline's deletionPolicy kept the workspaces of the latest {keep} "
                f"succeeded stages of the whole pipeline; retention keeps the latest {keep} "
                "succeeded runs of each stage"
            )
        if _text(policy.get("keepWorkspaceOfFailedStage")) == "false":
            retention["keep_failed"] = False
        if _text(policy.get("alwaysKeepMostRecentWorkspace")) == "false":
            self.unmapped.append(
                "the pipeline's deletionPolicy.alwaysKeepMostRecentWorkspace false is not "
                "carried over: Winslow always keeps the workspace of each stage's current "
                "and latest run"
            )
        return retention

    def _gateway(self, item: _Item, successors: list[str]) -> None:
        if item.kind != "XorGateway":
            return  # an AND split or join is exactly what `needs` express
        conditions = [_text(c) for c in _list(item.raw.get("conditions"))]
        sub_type = _text(item.raw.get("gatewaySubType")).upper()
        if sub_type == "MERGER":
            self.unmapped.append(
                f"XOR gateway '{item.label}' (merger) let the next stage start after any one "
                "branch; Winslow has no such join, so it now waits for all of them"
            )
            return
        targets = ", ".join(f"'{s}'" for s in successors) or "nothing"
        self.unmapped.append(
            f"XOR gateway '{item.label}': its conditions {conditions} choose one branch of "
            f"{targets}; JsonLogic is not translated, so every branch now runs after it: "
            "give each branch's first stage a `when:` condition (results.<stage>.<key>, "
            "variables)"
        )

    def _dump(self, pipeline: dict[str, Any]) -> str:
        header = [
            f"# Converted from {self.file} ({FORMAT_NAMES[self.source.kind]}) by"
            " `winslow pipeline import`.",
        ]
        if self.unmapped:
            header.append("# Changed or not carried over:")
            header.extend(f"#  - {' '.join(sentence.split())}" for sentence in self.unmapped)
        body = yaml.safe_dump(pipeline, sort_keys=False, allow_unicode=True, width=100)
        return "\n".join(header) + "\n" + body


_INVALID_HINT = (
    "the converted pipeline does not validate (problems above, at the lines of this file they "
    "come from, named by Winslow's fields); fix this file, or convert it and edit the YAML"
)

_STAGE_ORIGINS: dict[Path, Path] = {
    ("name",): ("name",),
    ("description",): ("description",),
    ("image",): ("image", "name"),
    ("command",): ("image", "args"),
    ("requirements", "memory"): ("requirements", "megabytesOfRam"),
    ("requirements",): ("requirements",),
    ("env",): ("environment",),
    ("confirmation",): ("userInput", "confirmation"),
    ("required_variables",): ("userInput", "requiredEnvVariables"),
    ("log_parsers",): ("logParsers",),
    ("retention",): ("discardable",),
}
"""Where a converted stage's fields come from in its first-Winslow item."""

_PIPELINE_ORIGINS: dict[Path, Path] = {("retention",): ("deletionPolicy",)}


def _python_regex(java: str, stem: str) -> str:
    """Java's regex dialect as Python's: ``(?<name>`` becomes ``(?P<name>``, and unnamed
    groups get names (after the parser's file) so their values can become series."""
    unnamed = sum(1 for _index, kind in _group_openings(java) if kind == "unnamed")
    out: list[str] = []
    done, number = 0, 0
    for index, kind in _group_openings(java):
        out.append(java[done:index])
        if kind == "named":
            out.append("(?P<")
            done = index + 3
        else:
            number += 1
            out.append(f"(?P<{stem if unnamed == 1 else f'{stem}_{number}'}>")
            done = index + 1
    text = "".join(out) + java[done:]
    return text if "(?P<" in text else f"(?P<{stem}>{text})"


def _group_openings(java: str) -> list[tuple[int, str]]:
    """Where capturing groups open in ``java``: ``named`` (``(?<name>``) or ``unnamed``,
    skipping escapes, character classes and the other ``(?`` constructs."""
    found: list[tuple[int, str]] = []
    index, in_class = 0, False
    while index < len(java):
        char = java[index]
        if char == "\\":
            index += 2
            continue
        if in_class or char in "[]":
            in_class = (char == "[") or (in_class and char != "]")
        elif java.startswith("(?<", index) and not java.startswith(("(?<=", "(?<!"), index):
            found.append((index, "named"))
        elif char == "(" and not java.startswith("(?", index):
            found.append((index, "unnamed"))
        index += 1
    return found


def _set(value: Any) -> bool:
    """Whether a first-Winslow number is set: present and, if a number, above zero. Other
    values are kept, for validation to point at."""
    if value is None or value == "" or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value > 0
    return True


def _list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [_text(v) for v in value]
    return []


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
