"""``POST /v1/job/:id/plan``: what registering a job would change, without changing it.

The answer is ``structs.JobPlanResponse``: ``Diff`` (with ``"Diff": true`` in the body)
in the shape of nomad/structs/diff.go (``JobDiff`` → ``TaskGroupDiff`` → ``TaskDiff``,
each with ``Fields`` (``FieldDiff``: ``Type``, ``Name``, ``Old``, ``New``,
``Annotations``) and ``Objects`` (``ObjectDiff``)), where ``Type`` is ``Added``,
``Deleted``, ``Edited`` or ``None`` and values are strings as Go's ``fmt`` prints them;
``Annotations.DesiredTGUpdates`` counts what the scheduler would do per group
(``Place``, ``Stop``, ``Ignore``, ``InPlaceUpdate``, ``DestructiveUpdate``, ...), and each
``TaskGroupDiff.Updates`` says the same in the words ``nomad job plan`` prints
(``create``, ``destroy``, ``ignore``, ``in-place update``, ``create/destroy update``).
``JobModifyIndex`` is the registered job's, the ``-check-index`` of ``nomad job run``.

Simplified: the diff compares the two jobs as the stand-in canonicalizes them and leaves
out unchanged fields (Nomad's non-contextual diff); lists of named blocks pair by name,
other lists by position, where Nomad's diff.go pairs some (constraints) by content. Any
change to a group other than ``Count`` and ``Update`` is destructive, as a task change is
in Nomad (``tasksUpdated``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .shapes import ZERO_TIME, canonical_job, job_spec_key
from .state import alloc_terminal, now_ns

if TYPE_CHECKING:
    from .state import State

__all__ = ["plan_job"]

JsonDict = dict[str, Any]
_SKIP = {
    "Status",
    "StatusDescription",
    "Stable",
    "Version",
    "SubmitTime",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "NomadTokenID",
    "TaskGroups",
    "Tasks",
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field(name: str, old: Any, new: Any) -> JsonDict | None:
    if old == new:
        return None
    kind = "Added" if old is None else "Deleted" if new is None else "Edited"
    return {"Annotations": None, "Name": name, "New": _text(new), "Old": _text(old), "Type": kind}


def _diff_type(old: Any, new: Any) -> str:
    if old is None:
        return "Added"
    if new is None:
        return "Deleted"
    return "Edited" if old != new else "None"


def _fields_objects(
    old: JsonDict | None, new: JsonDict | None
) -> tuple[list[JsonDict], list[JsonDict]]:
    """The ``Fields`` and ``Objects`` of two structs, unchanged parts left out."""
    old, new = old or {}, new or {}
    fields: list[JsonDict] = []
    objects: list[JsonDict] = []
    for key in sorted(set(old) | set(new)):
        if key in _SKIP:
            continue
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) or isinstance(b, dict):
            objects.append(_object(key, a, b))
        elif isinstance(a, list) or isinstance(b, list):
            objects += _list(key, a or [], b or [])
        else:
            change = _field(key, a, b)
            if change is not None:
                fields.append(change)
    return fields, objects


def _object(name: str, old: Any, new: Any) -> JsonDict:
    old = old if isinstance(old, dict) else None
    new = new if isinstance(new, dict) else None
    fields, objects = _fields_objects(old, new)
    return {"Fields": fields, "Name": name, "Objects": objects, "Type": _diff_type(old, new)}


def _list(name: str, old: list[Any], new: list[Any]) -> list[JsonDict]:
    if all(not isinstance(v, dict) for v in old + new):
        fields = [f for f in (_field(name, v, None) for v in old if v not in new) if f]
        fields += [f for f in (_field(name, None, v) for v in new if v not in old) if f]
        return [{"Fields": fields, "Name": name, "Objects": None, "Type": "Edited"}]
    named = all(isinstance(v, dict) and "Name" in v for v in old + new)
    pairs: list[tuple[Any, Any]]
    if named:
        by_old = {v["Name"]: v for v in old}
        by_new = {v["Name"]: v for v in new}
        pairs = [(by_old.get(n), by_new.get(n)) for n in sorted(set(by_old) | set(by_new))]
    else:
        pairs = [
            (old[i] if i < len(old) else None, new[i] if i < len(new) else None)
            for i in range(max(len(old), len(new)))
        ]
    return [_object(name, a, b) for a, b in pairs if a != b]


def _group_diff(old: JsonDict | None, new: JsonDict | None, updates: JsonDict) -> JsonDict:
    fields, objects = _fields_objects(old, new)
    tasks = []
    old_tasks = {t["Name"]: t for t in (old or {}).get("Tasks") or []}
    new_tasks = {t["Name"]: t for t in (new or {}).get("Tasks") or []}
    for name in sorted(set(old_tasks) | set(new_tasks)):
        a, b = old_tasks.get(name), new_tasks.get(name)
        task_fields, task_objects = _fields_objects(a, b)
        tasks.append(
            {
                "Annotations": None,
                "Fields": task_fields,
                "Name": name,
                "Objects": task_objects,
                "Type": _diff_type(a, b),
            }
        )
    return {
        "Fields": fields,
        "Name": (new or old or {})["Name"],
        "Objects": objects,
        "Tasks": tasks,
        "Type": _diff_type(old, new),
        "Updates": updates,
    }


def _desired(
    state: State, existing: JsonDict | None, old: JsonDict | None, new: JsonDict | None
) -> JsonDict:
    counts = {
        "Canary": 0,
        "DestructiveUpdate": 0,
        "Ignore": 0,
        "InPlaceUpdate": 0,
        "Migrate": 0,
        "Place": 0,
        "Preemptions": 0,
        "Stop": 0,
    }
    running = 0
    if existing is not None and old is not None:
        running = sum(
            1
            for a in state.job_allocs(existing["Namespace"], existing["ID"])
            if a["TaskGroup"] == old["Name"] and not alloc_terminal(a)
        )
    want = (new or {}).get("Count", 0)
    if new is None:
        counts["Stop"] = running
        return counts

    def body(group: JsonDict | None) -> str:
        return json.dumps(
            {k: v for k, v in (group or {}).items() if k not in ("Count", "Update")}, sort_keys=True
        )

    keep = min(running, want)
    if old is not None and body(old) != body(new):
        counts["DestructiveUpdate"] = keep
    elif old is not None and old != new:
        counts["InPlaceUpdate"] = keep
    else:
        counts["Ignore"] = keep
    counts["Place"] = max(want - running, 0)
    counts["Stop"] = max(running - want, 0)
    return counts


_WORDS = {
    "Place": "create",
    "Stop": "destroy",
    "Ignore": "ignore",
    "InPlaceUpdate": "in-place update",
    "DestructiveUpdate": "create/destroy update",
    "Migrate": "migrate",
    "Canary": "canary",
}


def plan_job(state: State, raw: JsonDict, namespace: str, with_diff: bool) -> JsonDict:
    """The plan of registering ``raw`` in ``namespace``; the caller holds ``state.lock``."""
    existing = state.job(namespace, raw["ID"])
    new = canonical_job(raw, namespace, now_ns())
    old_groups = {g["Name"]: g for g in (existing or {}).get("TaskGroups") or []}
    new_groups = {g["Name"]: g for g in new["TaskGroups"]}
    desired = {}
    group_diffs = []
    for name in sorted(set(old_groups) | set(new_groups)):
        counts = _desired(state, existing, old_groups.get(name), new_groups.get(name))
        desired[name] = counts
        updates = {_WORDS[k]: v for k, v in counts.items() if v and k in _WORDS}
        group_diffs.append(_group_diff(old_groups.get(name), new_groups.get(name), updates or None))
    job_fields, job_objects = _fields_objects(existing, new)
    changed = existing is None or job_spec_key(existing) != job_spec_key(new)
    diff = {
        "Fields": job_fields,
        "ID": raw["ID"],
        "Objects": job_objects,
        "TaskGroups": group_diffs,
        "Type": "Added" if existing is None else ("Edited" if changed else "None"),
    }
    return {
        "Annotations": {"DesiredTGUpdates": desired, "PreemptedAllocs": None},
        "CreatedEvals": None,
        "Diff": diff if with_diff else None,
        "FailedTGAllocs": None,
        "Index": existing["JobModifyIndex"] if existing else 0,
        "JobModifyIndex": existing["JobModifyIndex"] if existing else 0,
        "NextPeriodicLaunch": ZERO_TIME,
        "Warnings": "",
    }
