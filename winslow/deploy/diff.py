"""A job plan's diff in words, the way ``nomad job plan`` prints it.

Nomad's plan answer carries a ``JobDiff`` (nomad/structs/diff.go): the job, its task
groups and their tasks, each with ``Fields`` (``Name``, ``Old``, ``New``) and nested
``Objects``, each marked ``Added``, ``Deleted``, ``Edited`` or ``None``; and per group
the updates the scheduler would make. ``plan_lines`` writes that as indented lines with
``+``, ``-`` and ``+/-`` markers (command/job_plan.go ``formatJobDiff``), leaving out
what did not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["has_changes", "plan_lines"]

MARKERS = {"Added": "+", "Deleted": "-", "Edited": "+/-", "None": ""}

JsonDict = Mapping[str, Any]


def has_changes(plan: JsonDict) -> bool:
    """True when registering the job would change it."""
    diff = plan.get("Diff") or {}
    return str(diff.get("Type", "None")) != "None"


def plan_lines(job_id: str, plan: JsonDict) -> list[str]:
    """The plan of ``job_id`` as lines for a person; one line when nothing changes."""
    diff = plan.get("Diff") or {}
    kind = str(diff.get("Type", "None"))
    if kind == "None":
        return [f'Job: "{job_id}" (no changes)']
    lines = [f'{MARKERS[kind]} Job: "{job_id}"']
    lines += _body(diff, 1)
    for group in diff.get("TaskGroups") or []:
        updates = ", ".join(f"{n} {w}" for w, n in sorted((group.get("Updates") or {}).items()))
        marker = MARKERS.get(str(group.get("Type")), "")
        suffix = f" ({updates})" if updates else ""
        if marker or updates:
            lines.append(
                f'{_pad(1)}{marker or " "} Task Group: "{group.get("Name")}"{suffix}'.rstrip()
            )
        lines += _body(group, 2)
        for task in group.get("Tasks") or []:
            task_marker = MARKERS.get(str(task.get("Type")), "")
            if not task_marker:
                continue
            lines.append(f'{_pad(2)}{task_marker} Task: "{task.get("Name")}"')
            lines += _body(task, 3)
    return lines


def _pad(depth: int) -> str:
    return "  " * depth


def _body(diff: JsonDict, depth: int) -> list[str]:
    lines = []
    for field in diff.get("Fields") or []:
        marker = MARKERS.get(str(field.get("Type")), "")
        if not marker:
            continue
        old, new = field.get("Old", ""), field.get("New", "")
        if marker == "+":
            change = f'"{new}"'
        elif marker == "-":
            change = f'"{old}"'
        else:
            change = f'"{old}" => "{new}"'
        lines.append(f"{_pad(depth)}{marker} {field.get('Name')}: {change}")
    for obj in diff.get("Objects") or []:
        marker = MARKERS.get(str(obj.get("Type")), "")
        if not marker:
            continue
        lines.append(f"{_pad(depth)}{marker} {obj.get('Name')} {{")
        lines += _body(obj, depth + 1)
        lines.append(f"{_pad(depth)}}}")
    return lines
