"""The stand-in's scheduler: turns evaluations into placements, or into blocked evals.

A worker thread takes pending evaluations (after their ``WaitUntil``) and reconciles the
job: a stopped or purged job has its allocations stopped; otherwise each task group
gets allocations until ``Count`` of the current version occupy their slots. Placement
follows Nomad's iterator order: nodes that are ready, eligible, in a listed datacenter
and the job's node pool are candidates; feasibility filters them (job, then group, then
task constraints, drivers, devices) and counts each refusal in ``ConstraintFiltered``
under Nomad's own words (``"${attr.kernel.name} = linux"``, ``"missing drivers"``,
``"missing devices"``), then ``distinct_hosts`` refuses a node already holding a live
allocation of the job (of the group, for a group's constraint) under ``"distinct_hosts"``;
the fit check then counts exhausted nodes per dimension
(``"cpu"``, ``"memory"``, ``"disk"``, ``"devices: no devices match request"``).
Affinities rank the feasible nodes, ties go to the fuller node (binpack).

When a group does not fit, the evaluation completes with ``FailedTGAllocs`` and a
``blocked`` evaluation takes over; capacity changes (a node added or coming back, an
allocation ending) put blocked evaluations back to ``pending``.
"""

from __future__ import annotations

import copy
import heapq
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .shapes import alloc_metric, new_id
from .state import State, alloc_terminal, now_ns

if TYPE_CHECKING:
    from .shapes import NodeSpec

__all__ = [
    "Scheduler",
    "check_constraint",
    "keeps_unknown_on_down_node",
    "new_eval",
    "refresh_job_status",
]

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
TERMINAL_EVAL_STATUSES = frozenset({"complete", "failed", "canceled"})
ALLOC_NOT_NEEDED = "alloc not needed due to job update"
ALLOC_LOST = "alloc is lost since its node is down"
ALLOC_UNKNOWN = "alloc is unknown since its node is disconnected"
ALLOC_RESCHEDULED = "alloc was rescheduled because it failed"

# --- evaluations and job status -----------------------------------------------------------


def new_eval(job: JsonDict, triggered_by: str, index: int, **fields: Any) -> JsonDict:
    """A ``structs.Evaluation`` for ``job`` in status pending."""
    now = now_ns()
    ev = {
        "ID": new_id(),
        "Namespace": job["Namespace"],
        "Priority": job["Priority"],
        "Type": job["Type"],
        "TriggeredBy": triggered_by,
        "JobID": job["ID"],
        "JobModifyIndex": job["JobModifyIndex"],
        "NodeID": "",
        "NodeModifyIndex": 0,
        "DeploymentID": "",
        "Status": "pending",
        "StatusDescription": "",
        "Wait": 0,
        "WaitUntil": None,
        "NextEval": "",
        "PreviousEval": "",
        "BlockedEval": "",
        "RelatedEvals": None,
        "FailedTGAllocs": None,
        "ClassEligibility": None,
        "QuotaLimitReached": "",
        "EscapedComputedClass": False,
        "AnnotatePlan": False,
        "QueuedAllocations": None,
        "SnapshotIndex": 0,
        "CreateIndex": index,
        "ModifyIndex": index,
        "CreateTime": now,
        "ModifyTime": now,
    }
    ev.update(fields)
    return ev


def eval_stub(ev: JsonDict) -> JsonDict:
    """An ``EvaluationStub``, as ``RelatedEvals`` lists them."""
    keys = (
        "BlockedEval",
        "CreateIndex",
        "CreateTime",
        "DeploymentID",
        "ID",
        "JobID",
        "ModifyIndex",
        "ModifyTime",
        "Namespace",
        "NextEval",
        "NodeID",
        "PreviousEval",
        "Priority",
        "Status",
        "StatusDescription",
        "TriggeredBy",
        "Type",
        "WaitUntil",
    )
    return {key: ev[key] for key in keys}


def put_eval(state: State, ev: JsonDict) -> None:
    """Insert or update ``ev`` inside the open transaction, with its event."""
    index = state.touch(
        "evals",
        "Evaluation",
        ev["ID"],
        None,
        namespace=ev["Namespace"],
        filter_keys=[ev["JobID"], ev["DeploymentID"]],
    )
    if ev["ID"] in state.evals:
        ev["ModifyIndex"] = index
        ev["ModifyTime"] = now_ns()
    state.put_eval(ev)
    state.set_payload("Evaluation", ev["ID"], ev)
    refresh_job_status(state, ev["Namespace"], ev["JobID"])


def put_alloc(state: State, alloc: JsonDict) -> None:
    """Insert or update ``alloc`` inside the open transaction, with its event."""
    index = state.touch(
        "allocs",
        "Allocation",
        alloc["ID"],
        None,
        namespace=alloc["Namespace"],
        filter_keys=[alloc["JobID"], alloc["DeploymentID"]],
    )
    if alloc["ID"] not in state.allocs:
        alloc["CreateIndex"] = index
        alloc["AllocModifyIndex"] = index
    alloc["ModifyIndex"] = index
    alloc["ModifyTime"] = now_ns()
    state.put_alloc(alloc)
    event_alloc = copy.deepcopy(alloc)
    event_alloc["Job"] = None  # Nomad strips the job from allocation events to keep them small
    state.set_payload("Allocation", alloc["ID"], event_alloc)
    refresh_job_status(state, alloc["Namespace"], alloc["JobID"])


def put_job(state: State, job: JsonDict, *, deleted: bool = False) -> int:
    """Write (or delete) ``job`` in the open transaction; return the index."""
    index = state.touch("jobs", "Job", job["ID"], copy.deepcopy(job), namespace=job["Namespace"])
    if deleted:
        state.jobs.pop((job["Namespace"], job["ID"]), None)
    else:
        job["ModifyIndex"] = index
        state.jobs[(job["Namespace"], job["ID"])] = job
        state.set_payload("Job", job["ID"], job)
    return index


def refresh_job_status(state: State, namespace: str, job_id: str) -> None:
    """Nomad's ``getJobStatus``: running with a live alloc, pending with a live eval."""
    job = state.job(namespace, job_id)
    if job is None:
        return
    if job["Periodic"] is not None or job["ParameterizedJob"] is not None:
        status = "dead" if job["Stop"] else "running"
    else:
        allocs = state.job_allocs(namespace, job_id)
        evals = state.job_evals(namespace, job_id)
        if any(not alloc_terminal(a) for a in allocs):
            status = "running"
        elif any(e["Status"] not in TERMINAL_EVAL_STATUSES for e in evals):
            status = "pending"
        elif job["Stop"] or allocs or evals:
            status = "dead"
        else:
            status = "pending"
    if status != job["Status"]:
        job["Status"] = status
        put_job(state, job)


# --- constraints ---------------------------------------------------------------------------

_UNITS: dict[str, tuple[str, float]] = {
    "B": ("bytes", 1),
    "KB": ("bytes", 1e3),
    "KiB": ("bytes", 1024),
    "MB": ("bytes", 1e6),
    "MiB": ("bytes", 1024**2),
    "GB": ("bytes", 1e9),
    "GiB": ("bytes", 1024**3),
    "TB": ("bytes", 1e12),
    "TiB": ("bytes", 1024**4),
    "PB": ("bytes", 1e15),
    "PiB": ("bytes", 1024**5),
    "Hz": ("hertz", 1),
    "KHz": ("hertz", 1e3),
    "kHz": ("hertz", 1e3),
    "MHz": ("hertz", 1e6),
    "GHz": ("hertz", 1e9),
    "mW": ("watts", 1e-3),
    "W": ("watts", 1),
    "kW": ("watts", 1e3),
    "MW": ("watts", 1e6),
}
_WITH_UNIT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")


def _as_number(value: Any) -> float | None:
    if isinstance(value, tuple):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _with_unit(value: Any) -> tuple[str, float] | None:
    """(dimension, value in base units) for "10 GiB" or a device attribute tuple."""
    if isinstance(value, tuple):
        number, unit = value
    else:
        match = _WITH_UNIT.match(str(value))
        if not match:
            return None
        number, unit = float(match.group(1)), match.group(2)
    if unit not in _UNITS:
        return None
    dimension, scale = _UNITS[unit]
    return dimension, float(number) * scale


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("-")[0])[:3])


def _check_version(lval: str, spec: str) -> bool:
    have = _version(lval)
    for clause in spec.split(","):
        match = re.match(r"\s*(>=|<=|!=|~>|=|>|<)?\s*(\S+)", clause)
        if not match:
            return False
        op, want = match.group(1) or "=", _version(match.group(2))
        ok = {
            "=": have == want,
            "!=": have != want,
            ">": have > want,
            "<": have < want,
            ">=": have >= want,
            "<=": have <= want,
            "~>": have >= want and have[: max(len(want) - 1, 1)] == want[: max(len(want) - 1, 1)],
        }[op]
        if not ok:
            return False
    return True


def check_constraint(lval: Any, operand: str, rval: Any) -> bool:
    """Nomad's ``checkConstraint``; ``None`` means the attribute is not set."""
    operand = operand or "="
    if operand == "is_set":
        return lval is not None
    if operand == "is_not_set":
        return lval is None
    if operand in ("distinct_hosts", "distinct_property"):
        return True
    if lval is None or rval is None:
        return False
    if operand in ("=", "==", "is"):
        return str(_plain(lval)) == str(_plain(rval))
    if operand in ("!=", "not"):
        return str(_plain(lval)) != str(_plain(rval))
    if operand in ("<", "<=", ">", ">="):
        left_unit, right_unit = _with_unit(lval), _with_unit(rval)
        if left_unit and right_unit and left_unit[0] == right_unit[0]:
            a, b = left_unit[1], right_unit[1]
        elif _as_number(_plain(lval)) is not None and _as_number(_plain(rval)) is not None:
            a, b = float(_plain(lval)), float(_plain(rval))
        else:
            return _compare(operand, str(_plain(lval)), str(_plain(rval)))
        return _compare(operand, a, b)
    if operand == "regexp":
        try:
            return re.search(str(rval), str(_plain(lval))) is not None
        except re.error:
            return False
    if operand in ("set_contains", "set_contains_all"):
        have = {part.strip() for part in str(_plain(lval)).split(",")}
        return all(part.strip() in have for part in str(rval).split(","))
    if operand == "set_contains_any":
        have = {part.strip() for part in str(_plain(lval)).split(",")}
        return any(part.strip() in have for part in str(rval).split(","))
    if operand in ("version", "semver"):
        return _check_version(str(_plain(lval)), str(rval))
    return False


def _compare(operand: str, a: Any, b: Any) -> bool:
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[operand])


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        number = value[0]
        return int(number) if float(number).is_integer() else number
    return value


def _resolve(target: str, lookup: Callable[[str], Any]) -> Any:
    if target.startswith("${") and target.endswith("}"):
        return lookup(target[2:-1])
    return target


def _node_lookup(node: NodeSpec) -> Callable[[str], Any]:
    attrs = node.node_attrs()
    return attrs.get


def constraint_ok(constraint: JsonDict, node: NodeSpec) -> bool:
    lookup = _node_lookup(node)
    return check_constraint(
        _resolve(constraint.get("LTarget", ""), lookup),
        constraint.get("Operand", "="),
        _resolve(constraint.get("RTarget", ""), lookup),
    )


def constraint_string(constraint: JsonDict) -> str:
    """``structs.Constraint.String()``, the key of ``ConstraintFiltered``."""
    parts = (
        constraint.get("LTarget", ""),
        constraint.get("Operand", "="),
        constraint.get("RTarget", ""),
    )
    return " ".join(parts)


# --- devices -------------------------------------------------------------------------------


def _device_matches_name(request: str, model: str) -> bool:
    parts = request.split("/", 2)
    if len(parts) == 1:
        return parts[0] == "gpu"
    if len(parts) == 2:
        return parts == ["nvidia", "gpu"]
    return parts[:2] == ["nvidia", "gpu"] and parts[2] == model


def _group_satisfies(request: JsonDict, model: str, memory_mib: int) -> bool:
    """Nomad's ``nodeDeviceMatches`` (scheduler/feasible.go): the name, then each
    constraint with both targets typed (``resolveDeviceTarget``)."""
    if not _device_matches_name(request.get("Name", ""), model):
        return False
    attributes = {
        "memory": Attribute(integer=memory_mib, unit="MiB"),
        "driver_version": Attribute(text="550.54.15"),
    }
    for constraint in request.get("Constraints") or []:
        left = resolve_device_target(constraint.get("LTarget", ""), model, attributes)
        right = resolve_device_target(constraint.get("RTarget", ""), model, attributes)
        if not check_attribute_constraint(constraint.get("Operand", "="), left, right):
            return False
    return True


# --- typed attributes (device constraints) --------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    """plugins/shared/structs/attribute.go ``Attribute``: exactly one of an integer, a
    float, a string or a bool; numbers may carry a unit."""

    integer: int | None = None
    number: float | None = None
    text: str | None = None
    flag: bool | None = None
    unit: str = ""


# plugins/shared/structs/units.go: name → (base unit, multiplier); ``mW`` divides.
ATTRIBUTE_UNITS: dict[str, tuple[str, float]] = {
    **{u: ("byte", 1024**i) for i, u in enumerate(("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"), 1)},
    **{u: ("byte", 1000**i) for i, u in enumerate(("kB", "MB", "GB", "TB", "PB", "EB"), 1)},
    "KB": ("byte", 1000),
    **{
        u: ("byte/s", 1024**i)
        for i, u in enumerate(("KiB/s", "MiB/s", "GiB/s", "TiB/s", "PiB/s", "EiB/s"), 1)
    },
    **{
        u: ("byte/s", 1000**i)
        for i, u in enumerate(("kB/s", "MB/s", "GB/s", "TB/s", "PB/s", "EB/s"), 1)
    },
    "KB/s": ("byte/s", 1000),
    "MHz": ("hertz", 1000**2),
    "GHz": ("hertz", 1000**3),
    "mW": ("watt", 1 / 1000),
    "W": ("watt", 1),
    "kW": ("watt", 1000),
    "MW": ("watt", 1000**2),
    "GW": ("watt", 1000**3),
}
_UNITS_LONGEST_FIRST = sorted(ATTRIBUTE_UNITS, key=len, reverse=True)
_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GO_HEX = re.compile(r"[+-]?0[xX][0-9a-fA-F_]*\.?[0-9a-fA-F_]*[pP][+-]?[0-9]+")
_GO_SPECIAL = re.compile(r"[+-]?(?:inf|infinity)|nan", re.IGNORECASE)
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True}
_GO_BOOLS |= {"0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def parse_attribute(text: str) -> Attribute:
    """``ParseAttribute``: a known unit suffix comes off a number; then an int
    (``strconv.ParseInt`` base 10, int64), a float (``strconv.ParseFloat``), a bool
    (``strconv.ParseBool``), else the string itself."""
    if not text:
        return Attribute(text=text)
    unit, numeric = "", text
    if text[-1].isalpha():
        unit = next((u for u in _UNITS_LONGEST_FIRST if text.endswith(u)), "")
        if unit:
            numeric = text.removesuffix(unit).strip()
    if _GO_INT.fullmatch(numeric) and -(2**63) <= int(numeric) < 2**63:
        return Attribute(integer=int(numeric), unit=unit)
    if _GO_DECIMAL.fullmatch(numeric) or _GO_SPECIAL.fullmatch(numeric):
        return Attribute(number=float(numeric), unit=unit)
    if _GO_HEX.fullmatch(numeric) and "_" not in numeric:
        return Attribute(number=float.fromhex(numeric), unit=unit)
    if text in _GO_BOOLS:
        return Attribute(flag=_GO_BOOLS[text])
    return Attribute(text=text)


def resolve_device_target(
    target: str, model: str, attributes: dict[str, Attribute]
) -> Attribute | None:
    """``resolveDeviceTarget``: a literal is parsed (so ``"4090"`` is an integer); the
    device's model, vendor and type are strings; ``${device.attr.X}`` is as fingerprinted."""
    if not target.startswith("${"):
        return parse_attribute(target)
    names = {"${device.model}": model, "${device.vendor}": "nvidia", "${device.type}": "gpu"}
    if target in names:
        return Attribute(text=names[target])
    if target.startswith("${device.attr.") and target.endswith("}"):
        return attributes.get(target[len("${device.attr.") : -1])
    return None


def _compare_attributes(left: Attribute, right: Attribute) -> int | None:
    """``Attribute.Compare``: -1, 0 or 1, or None where the two are not comparable
    (different kinds, or units of different bases)."""
    left_unit, right_unit = ATTRIBUTE_UNITS.get(left.unit), ATTRIBUTE_UNITS.get(right.unit)
    if (left_unit is None) != (right_unit is None):
        return None
    if left_unit is not None and right_unit is not None and left_unit[0] != right_unit[0]:
        return None
    if left.text is not None or right.text is not None:
        if left.text is None or right.text is None:
            return None
        return (left.text > right.text) - (left.text < right.text)
    if left.flag is not None or right.flag is not None:
        if left.flag is None or right.flag is None:
            return None
        return 0 if left.flag == right.flag else 1
    a = (left.integer if left.integer is not None else left.number) or 0
    b = (right.integer if right.integer is not None else right.number) or 0
    a, b = a * (left_unit or ("", 1))[1], b * (right_unit or ("", 1))[1]
    return (a > b) - (a < b)


def check_attribute_constraint(
    operand: str, left: Attribute | None, right: Attribute | None
) -> bool:
    """scheduler/feasible.go ``checkAttributeConstraint``; ``regexp`` and the set operators
    need two strings, so a pattern that parsed as a number never matches."""
    operand = operand or "="
    if operand in ("distinct_hosts", "distinct_property"):
        return True
    if operand == "is_set":
        return left is not None
    if operand == "is_not_set":
        return left is None
    if operand in ("!=", "not"):
        if left is None or right is None:
            return (left is None) != (right is None)
        order = _compare_attributes(left, right)
        return order is not None and order != 0
    if left is None or right is None:
        return False
    if operand in ("=", "==", "is", "<", "<=", ">", ">="):
        order = _compare_attributes(left, right)
        if order is None:
            return False
        return {
            "=": order == 0,
            "==": order == 0,
            "is": order == 0,
            "<": order == -1,
            "<=": order != 1,
            ">": order == 1,
            ">=": order != -1,
        }[operand]
    if operand in ("version", "semver"):
        have = left.text if left.text is not None else left.integer
        if have is None or right.text is None:
            return False
        return _check_version(str(have), right.text)
    if left.text is None or right.text is None:
        return False
    return check_constraint(left.text, operand, right.text)


# --- placement -----------------------------------------------------------------------------


@dataclass
class _Usage:
    cpu: int = 0
    memory: int = 0
    disk: int = 0
    devices: set[str] = field(default_factory=set)
    cores: set[int] = field(default_factory=set)


@dataclass
class Placement:
    """A node chosen for one allocation and what it hands over."""

    node: NodeSpec
    task_devices: dict[str, list[JsonDict]]
    metric: JsonDict
    task_cores: dict[str, list[int]] = field(default_factory=dict)
    """Cores reserved for each task that asked for ``Cores``."""

    @property
    def cores_mhz(self) -> int:
        """What the reserved cores are worth in MHz (Nomad's ``coreSelector.Select``)."""
        return sum(len(ids) for ids in self.task_cores.values()) * core_mhz(self.node)


def core_mhz(node: NodeSpec) -> int:
    """One core's MHz on ``node``: ``cpu.totalcompute`` over ``cpu.numcores``."""
    return node.cpu_mhz // max(int(node.attributes["cpu.numcores"]), 1)


def _select_cores(group: JsonDict, node: NodeSpec, used: set[int]) -> dict[str, list[int]] | None:
    """Whole cores for each task with ``Cores`` > 0, none shared (scheduler/rank.go
    BinPackIterator: the node's usable cores less those its allocations reserved); None
    when too few are free, which Nomad counts as the node exhausted on "cores"."""
    free = [c for c in range(int(node.attributes["cpu.numcores"])) if c not in used]
    chosen: dict[str, list[int]] = {}
    for task in group["Tasks"]:
        wanted = int(task["Resources"].get("Cores") or 0)
        if wanted <= 0:
            continue
        if len(free) < wanted:
            return None
        chosen[task["Name"]], free = free[:wanted], free[wanted:]
    return chosen


def _group_asks(group: JsonDict) -> tuple[int, int, int]:
    cpu = sum(t["Resources"]["CPU"] for t in group["Tasks"])
    memory = sum(t["Resources"]["MemoryMB"] for t in group["Tasks"])
    return cpu, memory, group["EphemeralDisk"]["SizeMB"]


def node_usage(state: State, node: NodeSpec) -> _Usage:
    """What live allocations on ``node`` hold."""
    usage = _Usage()
    for alloc in state.allocs.values():
        if alloc["NodeID"] != node.id or alloc_terminal(alloc):
            continue
        for task in alloc["AllocatedResources"]["Tasks"].values():
            usage.cpu += task["Cpu"]["CpuShares"]
            usage.cores.update(task["Cpu"].get("ReservedCores") or [])
            usage.memory += task["Memory"]["MemoryMB"]
            for device in task["Devices"] or []:
                usage.devices.update(device["DeviceIDs"])
        usage.disk += alloc["AllocatedResources"]["Shared"]["DiskMB"]
    return usage


def _assign_devices(
    group: JsonDict, node: NodeSpec, used: set[str]
) -> dict[str, list[JsonDict]] | None:
    taken = set(used)
    out: dict[str, list[JsonDict]] = {}
    for task in group["Tasks"]:
        for request in task["Resources"]["Devices"] or []:
            chosen = None
            for gpu in node.gpus:
                if not _group_satisfies(request, gpu.model, gpu.memory_mib):
                    continue
                free = [i for i in gpu.instance_ids if i not in taken and gpu.healthy.get(i, True)]
                if len(free) >= request["Count"]:
                    chosen = (gpu, free[: request["Count"]])
                    break
            if chosen is None:
                return None
            gpu, ids = chosen
            taken.update(ids)
            out.setdefault(task["Name"], []).append(
                {"Vendor": "nvidia", "Type": "gpu", "Name": gpu.model, "DeviceIDs": ids}
            )
    return out


def _has_devices(group: JsonDict, node: NodeSpec) -> bool:
    for task in group["Tasks"]:
        for request in task["Resources"]["Devices"] or []:
            if not any(
                _group_satisfies(request, gpu.model, gpu.memory_mib)
                and sum(gpu.healthy.get(i, True) for i in gpu.instance_ids) >= request["Count"]
                for gpu in node.gpus
            ):
                return False
    return True


def _affinity_score(job: JsonDict, group: JsonDict, node: NodeSpec) -> float:
    affinities = list(job["Affinities"] or []) + list(group["Affinities"] or [])
    for task in group["Tasks"]:
        affinities += task["Affinities"] or []
    total = sum(abs(a.get("Weight", 50)) for a in affinities)
    if not total:
        return 0.0
    score = sum(a.get("Weight", 50) for a in affinities if constraint_ok(a, node))
    return float(score / total)


def select_node(
    state: State,
    job: JsonDict,
    group: JsonDict,
    penalized: frozenset[str] = frozenset(),
) -> tuple[Placement | None, JsonDict]:
    """Pick a node for one allocation of ``group``; return it (or None) and the metrics.

    ``penalized`` nodes rank last, as Nomad's reschedule penalty ranks the node a
    replaced allocation failed on; they are not excluded.
    """
    started = time.perf_counter_ns()
    datacenters = job["Datacenters"]
    pool = [
        n
        for n in state.nodes.values()
        if n.node_pool == job["NodePool"] or job["NodePool"] == "all"
    ]
    ready = [
        n
        for n in pool
        if n.status == "ready"
        and n.eligibility == "eligible"
        and any(_glob(dc, n.datacenter) for dc in datacenters)
    ]
    available = Counter(n.datacenter for n in ready)
    # NodesInPool counts the nodes readyNodesInDCsAndPool (scheduler/util.go) returned, and
    # NodePool is the job's (generic_sched.go computePlacements).
    metric = alloc_metric(dict(available), len(ready), job["NodePool"])
    filtered: Counter[str] = Counter()
    exhausted: Counter[str] = Counter()
    candidates: list[tuple[tuple[float, float, str], Placement]] = []
    cpu, memory, disk = _group_asks(group)
    taken = _distinct_hosts_taken(state, job, group)
    for node in sorted(ready, key=lambda n: n.name):
        metric["NodesEvaluated"] += 1
        reason = _infeasible(job, group, node)
        if reason is None and node.id in taken:
            reason = "distinct_hosts"
        if reason is not None:
            metric["NodesFiltered"] += 1
            filtered[reason] += 1
            continue
        # The allocations this evaluation placed already are in the state: counted once, as
        # Nomad's ProposedAllocs counts the plan's own (scheduler/context.go).
        usage = node_usage(state, node)
        dimension = None
        # Cores come first, per task, before the allocation's fit (rank.go SELECTCORES).
        task_cores = _select_cores(group, node, usage.cores)
        cores_cpu = sum(map(len, (task_cores or {}).values())) * core_mhz(node)
        if task_cores is None:
            dimension = "cores"
        elif usage.cpu + cpu + cores_cpu > node.cpu_mhz:
            dimension = "cpu"
        elif usage.memory + memory > node.memory_mb:
            dimension = "memory"
        elif usage.disk + disk > node.disk_mb:
            dimension = "disk"
        devices = None
        if dimension is None:
            devices = _assign_devices(group, node, usage.devices)
            if devices is None:
                dimension = "devices: no devices match request"
        if dimension is not None:
            metric["NodesExhausted"] += 1
            exhausted[dimension] += 1
            continue
        binpack = (usage.cpu + cpu + cores_cpu) / max(node.cpu_mhz, 1)
        binpack += (usage.memory + memory) / max(node.memory_mb, 1)
        affinity = _affinity_score(job, group, node)
        placement = Placement(node, devices or {}, metric, task_cores or {})
        penalty = 1.0 if node.id in penalized else 0.0
        candidates.append(((affinity - penalty, binpack / 2, node.name), placement))
    metric["ConstraintFiltered"] = dict(filtered) or None
    metric["DimensionExhausted"] = dict(exhausted) or None
    metric["AllocationTime"] = time.perf_counter_ns() - started
    if not candidates:
        return None, metric
    # Highest affinity first, then the fuller node (binpack); the name breaks ties.
    candidates.sort(key=lambda c: (-c[0][0], -c[0][1], c[0][2]))
    (affinity, binpack, _name), best = candidates[0]
    metric["Scores"] = {f"{best.node.id}.binpack": binpack}
    metric["ScoreMetaData"] = [
        {
            "NodeID": placement.node.id,
            "Scores": {"binpack": score[1], "node-affinity": score[0]},
            "NormScore": (score[0] + score[1]) / 2,
        }
        for score, placement in candidates[:5]
    ]
    return best, metric


def _glob(pattern: str, value: str) -> bool:
    regex = "^" + re.escape(pattern).replace("\\*", ".*") + "$"
    return re.match(regex, value) is not None


def _wants_distinct_hosts(constraints: list[JsonDict] | None) -> bool:
    """scheduler/feasible.go ``hasDistinctHostsConstraint``: an empty ``RTarget`` means
    true, and so does one ``strconv.ParseBool`` cannot read."""
    for constraint in constraints or []:
        if constraint.get("Operand") == "distinct_hosts":
            target = str(constraint.get("RTarget") or "")
            return target not in ("0", "f", "F", "FALSE", "false", "False")
    return False


def _distinct_hosts_taken(state: State, job: JsonDict, group: JsonDict) -> set[str]:
    """The nodes ``distinct_hosts`` keeps ``group`` off (feasible.go
    ``DistinctHostsIterator``): those with a live allocation of the job, for the job's
    constraint, or of the same group, for the group's. Placements of this evaluation are
    in the state already."""
    whole_job = _wants_distinct_hosts(job["Constraints"])
    if not (whole_job or _wants_distinct_hosts(group["Constraints"])):
        return set()
    return {
        alloc["NodeID"]
        for alloc in state.job_allocs(job["Namespace"], job["ID"])
        if not alloc_terminal(alloc) and (whole_job or alloc["TaskGroup"] == group["Name"])
    }


def _infeasible(job: JsonDict, group: JsonDict, node: NodeSpec) -> str | None:
    for constraint in job["Constraints"] or []:
        if not constraint_ok(constraint, node):
            return constraint_string(constraint)
    drivers = {task["Driver"] for task in group["Tasks"]}
    if not drivers <= set(node.drivers):
        return "missing drivers"
    for volume in (group.get("Volumes") or {}).values():
        # scheduler/feasible.go HostVolumeChecker: the node must offer the host volume.
        if volume.get("Type") == "host" and volume.get("Source") not in node.host_volumes:
            return "missing compatible host volumes"
    for constraint in group["Constraints"] or []:
        if not constraint_ok(constraint, node):
            return constraint_string(constraint)
    for task in group["Tasks"]:
        for constraint in task["Constraints"] or []:
            if not constraint_ok(constraint, node):
                return constraint_string(constraint)
    if not _has_devices(group, node):
        return "missing devices"
    return None


# --- allocations ---------------------------------------------------------------------------


def new_alloc(
    job: JsonDict, group: JsonDict, name: str, eval_id: str, placement: Placement, **fields: Any
) -> JsonDict:
    """A ``structs.Allocation`` placed by the scheduler (client status pending)."""
    node = placement.node
    tasks: JsonDict = {}
    task_resources: JsonDict = {}
    for task in group["Tasks"]:
        res = task["Resources"]
        cores = placement.task_cores.get(task["Name"], [])
        cpu_shares = len(cores) * core_mhz(node) if cores else res["CPU"]
        tasks[task["Name"]] = {
            "Cpu": {"CpuShares": cpu_shares, "ReservedCores": cores or None},
            "Memory": {"MemoryMB": res["MemoryMB"], "MemoryMaxMB": res["MemoryMaxMB"]},
            "Networks": None,
            "Devices": placement.task_devices.get(task["Name"]),
        }
        task_resources[task["Name"]] = {
            "CPU": cpu_shares,
            "MemoryMB": res["MemoryMB"],
            "DiskMB": 0,
            "Networks": None,
        }
    cpu, memory, disk = _group_asks(group)
    now = now_ns()
    alloc = {
        "ID": new_id(),
        "Namespace": job["Namespace"],
        "EvalID": eval_id,
        "Name": name,
        "NodeID": node.id,
        "NodeName": node.name,
        "JobID": job["ID"],
        "Job": copy.deepcopy(job),
        "TaskGroup": group["Name"],
        "Resources": {"CPU": cpu, "MemoryMB": memory, "DiskMB": disk, "Networks": None},
        "SharedResources": {"CPU": 0, "MemoryMB": 0, "DiskMB": disk, "Networks": None},
        "TaskResources": task_resources,
        "AllocatedResources": {
            "Tasks": tasks,
            "TaskLifecycles": {t["Name"]: t["Lifecycle"] for t in group["Tasks"]},
            "Shared": {"DiskMB": disk, "Networks": None, "Ports": None},
        },
        "Metrics": placement.metric,
        "DesiredStatus": "run",
        "DesiredDescription": "",
        "DesiredTransition": {
            "Migrate": None,
            "Reschedule": None,
            "ForceReschedule": None,
            "NoShutdownDelay": None,
        },
        "ClientStatus": "pending",
        "ClientDescription": "",
        "TaskStates": None,
        "DeploymentID": "",
        "DeploymentStatus": None,
        "FollowupEvalID": "",
        "PreviousAllocation": "",
        "NextAllocation": "",
        "RescheduleTracker": None,
        "NetworkStatus": None,
        "PreemptedAllocations": None,
        "PreemptedByAllocation": "",
        "CreateIndex": 0,
        "ModifyIndex": 0,
        "AllocModifyIndex": 0,
        "CreateTime": now,
        "ModifyTime": now,
    }
    alloc.update(fields)
    return alloc


def keeps_unknown_on_down_node(group: JsonDict) -> bool:
    """Whether Nomad leaves the group's running allocations ``unknown`` on a down node
    rather than losing and replacing them: ``disconnect.replace = false`` (1.8+; ``Replace``
    defaults to true, structs.go TaskGroup.Replace), or ``prevent_reschedule_on_lost`` before
    1.10 (structs.go PreventRescheduleOnDisconnect at v1.8.0/v1.9.0)."""
    disconnect = group.get("Disconnect") or {}
    return disconnect.get("Replace") is False or bool(group.get("PreventRescheduleOnLost"))


def reschedule_delay(group: JsonDict, alloc: JsonDict, now: int) -> int | None:
    """Nanoseconds until a failed or lost ``alloc`` may be replaced; None: never."""
    policy = group["ReschedulePolicy"]
    events = (alloc.get("RescheduleTracker") or {}).get("Events") or []
    interval = policy.get("Interval") or 0
    recent = [e for e in events if not interval or now - e["RescheduleTime"] < interval]
    if not policy.get("Unlimited") and len(recent) >= policy.get("Attempts", 0):
        return None
    delay = int(policy.get("Delay") or 0)
    if policy.get("DelayFunction") in ("exponential", "fibonacci") and events:
        delay = int(events[-1].get("Delay") or delay) * 2
    if policy.get("MaxDelay"):
        delay = min(delay, int(policy["MaxDelay"]))
    return delay


class Scheduler:
    """Processes evaluations on a worker thread, as a Nomad server's scheduler does."""

    def __init__(
        self,
        state: State,
        on_placed: Callable[[list[str]], None],
        on_stopped: Callable[[list[str]], None],
    ) -> None:
        self.state = state
        self._on_placed = on_placed
        self._on_stopped = on_stopped
        self._queue: list[tuple[int, int, str]] = []
        self._cond = threading.Condition()
        self._seq = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="standin-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def enqueue(self, eval_id: str, not_before_ns: int = 0) -> None:
        """Process ``eval_id`` once ``not_before_ns`` (Unix ns) has passed."""
        with self._cond:
            self._seq += 1
            heapq.heappush(self._queue, (not_before_ns, self._seq, eval_id))
            self._cond.notify_all()

    def unblock(self) -> None:
        """Capacity changed: put every blocked evaluation back to pending and run it."""
        with self.state.lock:
            blocked = [e for e in self.state.evals.values() if e["Status"] == "blocked"]
            if not blocked:
                return
            with self.state.txn("EvaluationUpdated"):
                for ev in blocked:
                    ev["Status"] = "pending"
                    put_eval(self.state, ev)
        for ev in blocked:
            self.enqueue(ev["ID"])

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or self._queue[0][0] > now_ns()):
                    timeout = None
                    if self._queue:
                        timeout = max((self._queue[0][0] - now_ns()) / 1e9, 0.001)
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                _, _, eval_id = heapq.heappop(self._queue)
            try:
                self.process(eval_id)
            except Exception:  # a scheduler bug must not stop later evaluations
                log.exception("stand-in scheduler: evaluation %s failed", eval_id)

    def process(self, eval_id: str) -> None:
        """Reconcile the evaluation's job: stop what is not needed, place what is missing."""
        state = self.state
        placed: list[str] = []
        stopped: list[str] = []
        with state.lock:
            ev = state.evals.get(eval_id)
            if ev is None or ev["Status"] != "pending":
                return
            job = state.job(ev["Namespace"], ev["JobID"])
            failures: dict[str, JsonDict] = {}
            queued: dict[str, int] = {}
            with state.txn("PlanResult"):
                if job is None or job["Stop"]:
                    from .services import cancel_deployments  # services imports us

                    cancel_deployments(state, ev["Namespace"], ev["JobID"])
                    for alloc in state.job_allocs(ev["Namespace"], ev["JobID"]):
                        if alloc["DesiredStatus"] == "run":
                            alloc["DesiredStatus"] = "stop"
                            alloc["DesiredDescription"] = ALLOC_NOT_NEEDED
                            put_alloc(state, alloc)
                            stopped.append(alloc["ID"])
                else:
                    stopped += self._stop_old_versions(job)
                    for group in job["TaskGroups"]:
                        missing, failure = self._place_group(job, group, ev, placed)
                        queued[group["Name"]] = missing
                        if failure is not None:
                            failures[group["Name"]] = failure
            with state.txn("EvaluationUpdated"):
                ev["SnapshotIndex"] = state.index
                ev["QueuedAllocations"] = queued or None
                if failures and ev["TriggeredBy"] == "queued-allocs" and ev["PreviousEval"]:
                    # Still no room: Nomad re-blocks the same evaluation.
                    ev["Status"] = "blocked"
                    ev["FailedTGAllocs"] = failures
                    put_eval(state, ev)
                else:
                    ev["Status"] = "complete"
                    ev["FailedTGAllocs"] = failures or None
                    if failures:
                        for other in state.job_evals(ev["Namespace"], ev["JobID"]):
                            if other["Status"] == "blocked":
                                # One blocked evaluation per job: the newer one replaces it.
                                other["Status"] = "canceled"
                                put_eval(state, other)
                        blocked = new_eval(
                            job or {},
                            "queued-allocs",
                            state.index,
                            Status="blocked",
                            StatusDescription="created to place remaining allocations",
                            PreviousEval=ev["ID"],
                            FailedTGAllocs=copy.deepcopy(failures),
                            SnapshotIndex=state.index,
                        )
                        ev["BlockedEval"] = blocked["ID"]
                        put_eval(state, blocked)
                    put_eval(state, ev)
        if stopped:
            self._on_stopped(stopped)
        if placed:
            self._on_placed(placed)

    def _stop_old_versions(self, job: JsonDict) -> list[str]:
        stopped = []
        for alloc in self.state.job_allocs(job["Namespace"], job["ID"]):
            if (
                alloc["Job"]["Version"] != job["Version"]
                and alloc["DesiredStatus"] == "run"
                and (not alloc_terminal(alloc))
            ):
                alloc["DesiredStatus"] = "stop"
                alloc["DesiredDescription"] = ALLOC_NOT_NEEDED
                put_alloc(self.state, alloc)
                stopped.append(alloc["ID"])
        return stopped

    def _place_group(
        self, job: JsonDict, group: JsonDict, ev: JsonDict, placed: list[str]
    ) -> tuple[int, JsonDict | None]:
        state = self.state
        now = now_ns()
        allocs = [
            a
            for a in state.job_allocs(job["Namespace"], job["ID"])
            if a["TaskGroup"] == group["Name"]
        ]
        current = [a for a in allocs if a["Job"]["Version"] == job["Version"]]

        # Replacements first: lost allocations, and failed ones whose reschedule policy
        # allows another try.
        def replaceable(alloc: JsonDict) -> bool:
            if alloc["NextAllocation"] or alloc["ClientStatus"] not in ("failed", "lost"):
                return False
            if alloc["ClientStatus"] == "lost":
                # The reconciler replaces lost allocations up to Count whatever the
                # reschedule policy says (scheduler/reconcile.go computePlacements).
                return not group["PreventRescheduleOnLost"]
            if reschedule_delay(group, alloc, now) is None:
                return False
            # A failed alloc waits for its own follow-up evaluation (the reschedule delay).
            return bool(alloc["FollowupEvalID"] == ev["ID"])

        replace = [a for a in current if replaceable(a)]
        replace_ids = {a["ID"] for a in replace}
        # Every other allocation of this version keeps its slot, done or lost ones too:
        # a batch job does not rerun what completed, nor what may not be rescheduled.
        occupying = [
            a
            for a in current
            if not a["NextAllocation"]
            and a["ID"] not in replace_ids
            and (a["DesiredStatus"] == "run" or a["ClientStatus"] == "lost")
        ]
        used_names = {a["Name"] for a in occupying}
        wanted: list[tuple[str, JsonDict | None]] = [(a["Name"], a) for a in replace]
        index = 0
        while len(occupying) + len(wanted) < group["Count"]:
            name = f"{job['ID']}.{group['Name']}[{index}]"
            index += 1
            if name not in used_names and name not in {w[0] for w in wanted}:
                wanted.append((name, None))
        failure: JsonDict | None = None
        missing = 0
        for name, previous in wanted:
            penalized = frozenset({previous["NodeID"]}) if previous is not None else frozenset()
            placement, metric = select_node(state, job, group, penalized)
            if placement is None:
                missing += 1
                if failure is None:
                    failure = metric
                else:
                    failure["CoalescedFailures"] += 1
                continue
            fields: JsonDict = {}
            if previous is not None and previous["ClientStatus"] == "lost":
                # A lost replacement is no reschedule, so it gets no RescheduleTracker
                # (generic_sched.go computePlacements: only when IsRescheduling).
                fields = {"PreviousAllocation": previous["ID"]}
            elif previous is not None:
                tracker = copy.deepcopy(previous.get("RescheduleTracker") or {"Events": []})
                delay = reschedule_delay(group, previous, now) or 0
                tracker["Events"] = (tracker.get("Events") or []) + [
                    {
                        "PrevAllocID": previous["ID"],
                        "PrevNodeID": previous["NodeID"],
                        "RescheduleTime": now,
                        "Delay": delay,
                    }
                ]
                fields = {"PreviousAllocation": previous["ID"], "RescheduleTracker": tracker}
            alloc = new_alloc(job, group, name, ev["ID"], placement, **fields)
            from .services import assign_ports, attach_deployment  # services imports us

            assign_ports(alloc, group)
            attach_deployment(state, job, alloc)
            put_alloc(state, alloc)
            placed.append(alloc["ID"])
            if previous is not None:
                previous["NextAllocation"] = alloc["ID"]
                if previous["ClientStatus"] == "failed":
                    previous["DesiredStatus"] = "stop"
                    previous["DesiredDescription"] = ALLOC_RESCHEDULED
                put_alloc(state, previous)
        return missing, failure
