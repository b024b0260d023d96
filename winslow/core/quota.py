"""Quotas: how much the runs of a user's or a group's projects may hold at once.

A project's runs count against its owner's quota and against the quota of the group it
is charged to. What counts is what runs hold now: every run handed to the backend and
not ended, whether or not a node has started it yet (the backend may start it any
moment). A run that would take either subject past a limit is not submitted: it waits
with the reason a person reads on it ("group vision uses 8 of 8 GPUs; this stage needs 2
more") and is submitted in a later round once use drops. Pure: the store reads limits
and use, the engine asks and counts each run it submits, so two runs of one round never
both squeeze into the last slot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from winslow.core.resources import ResourceRequest
from winslow.units import format_megabytes

CPU_SLACK = 1e-9
"""What sums of fractional CPUs may exceed a limit by through float rounding, CPUs."""

SubjectKind = Literal["user", "group"]


@dataclass(frozen=True, order=True)
class Subject:
    """Who a quota belongs to: a user or a group, by name."""

    kind: SubjectKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Amounts:
    """CPUs, memory (MiB) and GPUs: what a run needs, or what a subject's runs hold."""

    cpus: float = 0.0
    memory_mb: int = 0
    gpus: int = 0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(
            cpus=self.cpus + other.cpus,
            memory_mb=self.memory_mb + other.memory_mb,
            gpus=self.gpus + other.gpus,
        )

    @classmethod
    def of(cls, request: ResourceRequest) -> Amounts:
        """What a run asking ``request`` of a node holds once submitted."""
        return cls(cpus=request.cpus, memory_mb=request.memory_mb, gpus=request.gpu.count)


@dataclass(frozen=True)
class Limits:
    """The most a subject's runs may hold at once; None: no limit on that amount."""

    gpus: int | None = None
    cpus: float | None = None
    memory_mb: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Limits:
        """Read a ``users.quota`` / ``groups.quota`` value; missing or null: no limit."""
        data = data or {}
        gpus, cpus, memory = data.get("gpus"), data.get("cpus"), data.get("memory_mb")
        return cls(
            gpus=int(gpus) if gpus is not None else None,
            cpus=float(cpus) if cpus is not None else None,
            memory_mb=int(memory) if memory is not None else None,
        )

    @property
    def unlimited(self) -> bool:
        return self.gpus is None and self.cpus is None and self.memory_mb is None


def subjects_of(owner: str, charged_group: str | None) -> tuple[Subject, ...]:
    """Whose quotas a project's runs count against: its owner's, its charged group's."""
    found: list[Subject] = []
    if owner:
        found.append(Subject("user", owner))
    if charged_group:
        found.append(Subject("group", charged_group))
    return tuple(found)


def use_by_subject(
    holdings: Iterable[tuple[str, str | None, Amounts]],
) -> dict[Subject, Amounts]:
    """Sum what runs hold per subject, from (project owner, charged group, amounts) rows."""
    use: dict[Subject, Amounts] = {}
    for owner, group, amounts in holdings:
        for subject in subjects_of(owner, group):
            use[subject] = use.get(subject, Amounts()) + amounts
    return use


def _count(value: float) -> str:
    return f"{value:g}"


def refusal(subject: Subject, limits: Limits, use: Amounts, need: Amounts) -> str | None:
    """Why a run needing ``need`` may not start while ``subject``'s runs hold ``use``;
    None when it fits under every limit. An amount the run does not ask for never holds
    it back, even where a lowered limit is already exceeded."""
    checks: tuple[tuple[float | None, float, float, Callable[[float], str], str], ...] = (
        (limits.gpus, use.gpus, need.gpus, _count, "GPUs"),
        (limits.cpus, use.cpus, need.cpus, _count, "CPUs"),
        (limits.memory_mb, use.memory_mb, need.memory_mb, format_megabytes, "memory"),
    )
    for limit, used, needed, shown, noun in checks:
        if limit is None or needed <= 0 or used + needed <= limit + CPU_SLACK:
            continue
        if needed > limit + CPU_SLACK:
            # However many of its runs end, this one never fits: say so, not "wait".
            return (
                f"{subject} may use {shown(limit)} {noun} at once and this stage needs "
                f"{shown(needed)}; an admin can raise the quota, or change the stage's "
                "requirements and resume"
            )
        return (
            f"{subject} uses {shown(used)} of {shown(limit)} {noun}; "
            f"this stage needs {shown(needed)} more"
        )
    return None


class QuotaLedger:
    """Limits and use of the subjects with a quota, for one engine round.

    ``refusal`` says whether a run may start; ``take`` counts a run that was submitted,
    so the next run of the same round sees it.
    """

    def __init__(self, limits: Mapping[Subject, Limits], use: Mapping[Subject, Amounts]) -> None:
        self.limits = {s: lim for s, lim in limits.items() if not lim.unlimited}
        self.use = dict(use)

    def refusal(self, owner: str, charged_group: str | None, need: Amounts) -> str | None:
        """Why a run of a project of ``owner`` (charged to ``charged_group``) waits; None
        when it may start. The user's quota is told first, then the group's."""
        for subject in subjects_of(owner, charged_group):
            limits = self.limits.get(subject)
            if limits is None:
                continue
            reason = refusal(subject, limits, self.use.get(subject, Amounts()), need)
            if reason is not None:
                return reason
        return None

    def take(self, owner: str, charged_group: str | None, need: Amounts) -> None:
        """Count a run just submitted against its project's subjects."""
        for subject in subjects_of(owner, charged_group):
            self.use[subject] = self.use.get(subject, Amounts()) + need


def describe_use(limits: Limits, use: Amounts) -> str:
    """What a subject's runs hold against its limits, as a person reads it: "uses 6 of 8
    GPUs, 12 CPUs, 48.0 GiB of 64.0 GiB memory" (an amount without a limit: no "of")."""
    parts = []
    for limit, used, shown, noun in (
        (limits.gpus, use.gpus, _count, "GPUs"),
        (limits.cpus, use.cpus, _count, "CPUs"),
        (limits.memory_mb, use.memory_mb, format_megabytes, "memory"),
    ):
        of = f" of {shown(limit)}" if limit is not None else ""
        parts.append(f"{shown(used)}{of} {noun}")
    return "uses " + ", ".join(parts)
