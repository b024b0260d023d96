"""The pipeline definition as data: what a YAML file in ``pipelines/`` may say.

Pydantic models with ``extra="forbid"`` so a misspelled key is an error, never silently
dropped. Sizes and durations are parsed from human strings ("8G", "2h") to one unit each
(MiB, seconds) by ``winslow.units`` so the rest of Winslow never parses them again.
Semantic checks that span fields (duplicate stages, undefined variables, cycles) live in
``validate.py``.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from winslow import defaults, units
from winslow.pipeline.gate import GateAsk

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
"""Pipeline and stage names: safe in URLs, file names and Nomad job IDs."""

VARIABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
"""Variable names: what a shell accepts as an environment variable."""

RESERVED_VARIABLE_PREFIX = "WINSLOW_"
"""Variable names Winslow keeps for its own (``WINSLOW_PROJECT``, ``WINSLOW_WORKSPACE``...):
a pipeline or a person may not define one; a stage would see Winslow's value, or none."""


def reserved_variable_problem(name: str) -> str | None:
    """Why ``name`` may not be a variable a pipeline or project defines; None if it may."""
    if not name.startswith(RESERVED_VARIABLE_PREFIX):
        return None
    return (
        f"'{name}' starts with {RESERVED_VARIABLE_PREFIX}, which names Winslow's own variables "
        "(WINSLOW_PROJECT, WINSLOW_STAGE, WINSLOW_RUN, WINSLOW_WORKSPACE, WINSLOW_INPUTS), "
        "which stages see instead; give the variable another name"
    )


def parse_megabytes(value: Any) -> Any:
    """Turn ``8G``, ``512M``, ``1.5GiB`` or a bare number of megabytes into MiB.

    Text goes through ``units.parse_megabytes`` (binary units: ``G`` is GiB); YAML's own
    numbers pass on to pydantic's checks.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        return value
    return units.parse_megabytes(value)


def parse_seconds(value: Any) -> Any:
    """Turn ``90s``, ``30m``, ``2h``, ``1h30m`` or a bare number of seconds into seconds.

    Text goes through ``units.parse_duration``; YAML's own numbers pass on to pydantic.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        return value
    return units.parse_duration(value)


def scalar_text(value: Any) -> Any:
    """YAML reads ``true`` and ``8`` as bool and int; variables and env are text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


Megabytes = Annotated[int, BeforeValidator(parse_megabytes)]
Seconds = Annotated[int, BeforeValidator(parse_seconds)]


class WorkspaceMode(str, Enum):
    """How a stage's workspace begins."""

    CONTINUE = "continue"
    """A copy of the outputs of the stages it needs (the default)."""
    FRESH = "fresh"
    """Empty."""


class Confirmation(str, Enum):
    """When a person must let a stage start."""

    NEVER = "never"
    """It starts on its own once its needs succeeded (the default)."""
    ONCE = "once"
    """The first time it would start in a project; redos and later runs start on their own."""
    ALWAYS = "always"
    """Every time it would start on its own (what ``gate: true`` means)."""


class SweepWorkspace(str, Enum):
    """How the runs of a sweep share a workspace."""

    OWN = "own"
    """Each combination starts from the stage's sources on its own and they run in parallel;
    the next stage starts from all their workspaces, layered in combination order."""
    SHARED = "shared"
    """One workspace: combinations run one after another, each starting from the one before."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SweepRange(Strict):
    """The values ``min``, ``min + step``, … up to ``max`` (included where it is hit)."""

    min: float
    max: float
    step: float = Field(default=1, gt=0)

    def values(self) -> list[str]:
        whole = all(float(v).is_integer() for v in (self.min, self.max, self.step))
        count = int((self.max - self.min) / self.step + 1e-9) + 1 if self.max >= self.min else 0
        values = [self.min + i * self.step for i in range(count)]
        if whole:
            return [str(int(v)) for v in values]
        # Round away float noise (0.1 + 2 * 0.1 = 0.30000000000000004) to the step's digits.
        digits = max(_decimals(self.min), _decimals(self.step))
        return [f"{v:.{digits}f}" for v in values]


def _decimals(value: float) -> int:
    text = repr(float(value))
    if "e" in text:
        return 12
    return len(text.split(".")[1].rstrip("0")) if "." in text else 0


SweepValues = list[Annotated[str, BeforeValidator(lambda v: scalar_text(v))]] | SweepRange


class Sweep(Strict):
    """Run a stage once for every combination of the values of some variables."""

    over: dict[str, SweepValues] = Field(min_length=1)
    """Variable → a list of values, or a range ``{min, max, step}``."""
    workspace: SweepWorkspace = SweepWorkspace.OWN
    continue_on_failure: bool = False
    """Let the next stages go on once every combination ended and at least one succeeded."""

    def value_lists(self) -> dict[str, list[str]]:
        return {
            name: values.values() if isinstance(values, SweepRange) else list(values)
            for name, values in self.over.items()
        }

    def combinations(self) -> list[dict[str, str]]:
        """Every combination, the first variable varying slowest (as nested loops would)."""
        combos: list[dict[str, str]] = [{}]
        for name, values in self.value_lists().items():
            combos = [{**combo, name: value} for combo in combos for value in values]
        return combos


def combination_key(combination: dict[str, str]) -> str:
    """The text naming a combination: ``LR=0.1,BATCH=8`` (empty for a stage that sweeps not)."""
    return ",".join(f"{name}={value}" for name, value in combination.items())


class LogParser(Strict):
    """Log lines matching ``pattern`` become points of a time series of the run.

    Every named group that holds a number becomes one value of the point, so
    ``loss=(?P<loss>[0-9.]+) acc=(?P<acc>[0-9.]+)`` yields the series ``loss`` and ``acc``.
    """

    name: str = Field(pattern=NAME_PATTERN)
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _named_groups(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern is not a valid regular expression: {exc}") from exc
        if not compiled.groupindex:
            raise ValueError(
                "pattern has no named group; name what to keep, as in (?P<loss>[0-9.]+)"
            )
        return value


class Variable(Strict):
    """A project variable the pipeline's stages may reference as ``${NAME}``."""

    description: str = ""
    required: bool = False
    default: str | None = None

    @field_validator("default", mode="before")
    @classmethod
    def _scalar_to_text(cls, value: Any) -> Any:
        return scalar_text(value)


class GpuRequirements(Strict):
    """GPUs a stage needs; ``model`` is a regular expression over the GPU's name."""

    count: int = Field(default=0, ge=0, le=defaults.MAX_GPUS)
    model: str | None = None
    min_memory: Megabytes | None = Field(default=None, ge=0)
    fallback: Literal["cpu"] | None = None
    """``cpu``: run without GPUs, but only where no node Winslow knows has ``count`` GPUs
    matching ``model`` and ``min_memory`` at all (down or draining nodes count: they may
    come back). While such a node exists the stage waits for its GPUs, however busy they
    are, so a busy GPU machine never turns hours of GPU work into days on CPUs. The
    decision is taken once, when the run is first placed, and written in the project's
    history; the run then has no GPU (``CUDA_VISIBLE_DEVICES`` is empty) and its stage
    chooses its CPU path. None (the default): the stage runs only with its GPUs, and
    where no node has them it fails as one no node can hold."""

    @field_validator("model")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"model is not a valid regular expression: {exc}") from exc
        return value


class Requirements(Strict):
    """What a stage needs of the node it runs on."""

    cpus: float = Field(default=1, gt=0, le=defaults.MAX_CPUS)
    memory: Megabytes = Field(default=512, gt=0, le=defaults.MAX_MEMORY_MB)
    gpu: GpuRequirements = GpuRequirements()


class RetryPolicy(Strict):
    """How often Winslow starts a stage again on its own before asking a person."""

    on_failure: int = Field(default=0, ge=0, le=defaults.MAX_RETRIES)
    """New attempts after the stage exited non-zero or timed out."""
    on_lost: int = Field(default=1, ge=0, le=defaults.MAX_RETRIES)
    """New attempts after the node or process running the stage vanished, or object
    storage or the node failed its stage-in or stage-out (never the stage's own doing)."""


class CheckpointPolicy(Strict):
    """The stage writes checkpoints to ``$WINSLOW_WORKSPACE/.winslow/checkpoint/``; the node
    publishes what changed there at most every ``every`` seconds (and at once when the
    stage runs ``winslow checkpoint``), and a retry after ``lost`` starts from the latest."""

    every: Seconds = Field(default=defaults.CHECKPOINT_EVERY_SECONDS, gt=0)


class RetentionPolicy(Strict):
    """Which ended runs keep their workspace; the rest are pruned after a run ends.

    A stage's current run, its latest run and its active runs always keep theirs.
    """

    keep_succeeded: int | None = Field(default=None, ge=0)
    """How many of the stage's latest succeeded runs keep their workspace; ``None``: all."""
    keep_failed: bool = True
    """Whether failed, lost and cancelled runs keep their workspace."""

    @property
    def keeps_everything(self) -> bool:
        return self.keep_succeeded is None and self.keep_failed


class Stage(Strict):
    """One step of a pipeline; every execution of it is a run."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    image: str | None = None
    command: list[str] | None = None
    env: dict[str, str] = {}
    requirements: Requirements = Requirements()
    gate: bool = False
    """The pipeline stops for a person before this stage starts (``confirmation: always``)."""
    confirmation: Confirmation | None = None
    """When a person must let the stage start; default ``always`` with ``gate``, else never."""
    ask: GateAsk | None = None
    """What the gate shows and asks before the stage starts: a description, typed inputs
    whose answers become variables, files to review."""
    approvers: Literal["maintainer", "member"] = "maintainer"
    """Who may let the gate pass: the project's maintainers and owners, or its members too."""
    required_variables: list[str] = []
    """Variables this stage cannot start without (beyond the pipeline's required ones)."""
    inputs: list[str] = []
    """Resource pool paths the stage reads; they appear under ``$WINSLOW_INPUTS``."""
    workspace: WorkspaceMode = WorkspaceMode.CONTINUE
    needs: list[str] | None = None
    """Stages that must succeed first; ``None`` means the stage before this one."""
    timeout: Seconds | None = Field(default=None, gt=0)
    retry: RetryPolicy = RetryPolicy()
    checkpoint: CheckpointPolicy | None = None
    """Checkpoints the node publishes while the stage runs; ``None``: none."""
    retention: RetentionPolicy | None = None
    """Which of this stage's runs keep their workspace; ``None``: the pipeline's policy."""
    when: str | None = None
    """A condition over earlier results and variables; false: the stage is skipped."""
    sweep: Sweep | None = None
    log_parsers: list[LogParser] = []

    @field_validator("when", mode="before")
    @classmethod
    def _when_text(cls, value: Any) -> Any:
        return scalar_text(value)

    @field_validator("env", mode="before")
    @classmethod
    def _env_scalars_to_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: scalar_text(v) for k, v in value.items()}
        return value

    @property
    def combinations(self) -> list[dict[str, str]]:
        """The variable values of each run the stage makes: one empty one unless it sweeps."""
        return self.sweep.combinations() if self.sweep is not None else [{}]

    @property
    def confirm(self) -> Confirmation:
        """The stage's confirmation mode, ``gate`` taken into account."""
        if self.confirmation is not None:
            return self.confirmation
        return Confirmation.ALWAYS if self.gate else Confirmation.NEVER


class Pipeline(Strict):
    """A whole pipeline definition."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    variables: dict[str, Variable] = {}
    stages: list[Stage] = Field(min_length=1)
    retention: RetentionPolicy | None = None
    """Which runs keep their workspace; ``None``: every run keeps it (nothing is pruned)."""

    def stage(self, name: str) -> Stage:
        """Return the stage called ``name``; raise ``KeyError`` if there is none."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def retention_of(self, name: str) -> RetentionPolicy | None:
        """Return the retention of stage ``name``: its own, else the pipeline's."""
        for stage in self.stages:
            if stage.name == name and stage.retention is not None:
                return stage.retention
        return self.retention

    def needs_of(self, name: str) -> list[str]:
        """Return the stages ``name`` waits for, resolving the default (the stage before)."""
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                if stage.needs is not None:
                    return list(stage.needs)
                return [self.stages[index - 1].name] if index > 0 else []
        raise KeyError(name)

    def downstream_of(self, name: str) -> list[str]:
        """Return ``name`` and every stage that depends on it, in pipeline order."""
        found = {name}
        changed = True
        while changed:
            changed = False
            for stage in self.stages:
                if stage.name not in found and found & set(self.needs_of(stage.name)):
                    found.add(stage.name)
                    changed = True
        return [s.name for s in self.stages if s.name in found]
