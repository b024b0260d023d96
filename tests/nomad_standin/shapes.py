"""The JSON objects the stand-in answers with, built in Nomad's documented shapes.

A real server encodes its ``nomad/structs`` types, so every field is present whether
set or not: nil pointers, maps and slices come out as ``null``. The builders here do
the same, with the defaults Nomad's canonicalization fills in (``api/jobs.go``,
``api/tasks.go`` ``Canonicalize``): a batch group restarts 3 times in 24 h with 15 s
delay and reschedules once after 5 s; a service group restarts twice in 30 min and
reschedules without limit; tasks get 100 MHz, 300 MB, a 5 s kill timeout and 10 log
files of 10 MB. Key sets follow ``/work/shared/nomad-api/samples``.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ZERO_TIME",
    "NodeSpec",
    "alloc_metric",
    "alloc_resource_usage",
    "canonical_job",
    "gpu_group_stats",
    "host_stats",
    "job_stub",
    "new_task_state",
    "omit_empty",
    "resource_usage",
    "rfc3339",
    "task_event",
    "task_resource_usage",
]

JsonDict = dict[str, Any]
SECOND = 1_000_000_000
HOUR = 3600 * SECOND
ZERO_TIME = "0001-01-01T00:00:00Z"
WORKLOAD_IDENTITY_DEFAULT = "default"
WORKLOAD_IDENTITY_DEFAULT_AUDIENCE = "nomadproject.io"
NOMAD_VERSION = "1.10.5"


def rfc3339(ns: int) -> str:
    """Go's ``time.Time`` JSON form (RFC 3339 with trailing-zero-trimmed nanoseconds)."""
    seconds, nanos = divmod(ns, SECOND)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{frac}Z" if frac else f"{stamp}Z"


def new_id() -> str:
    return str(uuid.uuid4())


def omit_empty(obj: JsonDict, value_structs: frozenset[str] = frozenset()) -> JsonDict:
    """``obj`` as Nomad encodes a struct tagged ``_struct bool `codec:",omitempty"```
    (``structs.Allocation``, ``structs.Evaluation``, ``structs.NetworkResource``): every
    empty field is left out (go-msgpack ``codec/encode.go`` kStruct, ``isEmptyValue``).
    Empty is null, ``""``, 0, false, ``[]``, ``{}``, and for the struct-valued (not
    pointer) fields named in ``value_structs`` a value whose fields are all empty."""

    def empty(key: str, value: Any) -> bool:
        if isinstance(value, dict) and key in value_structs:
            return all(empty("", inner) for inner in value.values())
        return value is None or value in ("", 0, False) or value == [] or value == {}

    return {key: value for key, value in obj.items() if not empty(key, value)}


# --- jobs ---------------------------------------------------------------------------------

_RESTART_DEFAULTS = {
    "batch": {"Attempts": 3, "Interval": 24 * HOUR, "Delay": 15 * SECOND, "Mode": "fail"},
    "service": {"Attempts": 2, "Interval": 1800 * SECOND, "Delay": 15 * SECOND, "Mode": "fail"},
}
_RESCHEDULE_DEFAULTS = {
    "batch": {
        "Attempts": 1,
        "Interval": 24 * HOUR,
        "Delay": 5 * SECOND,
        "DelayFunction": "constant",
        "MaxDelay": 0,
        "Unlimited": False,
    },
    "service": {
        "Attempts": 0,
        "Interval": 0,
        "Delay": 30 * SECOND,
        "DelayFunction": "exponential",
        "MaxDelay": HOUR,
        "Unlimited": True,
    },
}


def _pick(raw: JsonDict | None, defaults: JsonDict) -> JsonDict:
    """The struct's full key set: ``raw``'s value where given, else the default."""
    raw = raw or {}
    return {key: copy.deepcopy(raw.get(key, default)) for key, default in defaults.items()}


def _update_strategy(raw: JsonDict | None) -> JsonDict:
    return _pick(
        raw,
        {
            "Stagger": 30 * SECOND,
            "MaxParallel": 1,
            "HealthCheck": "",
            "MinHealthyTime": 0,
            "HealthyDeadline": 0,
            "ProgressDeadline": 0,
            "AutoRevert": False,
            "AutoPromote": False,
            "Canary": 0,
        },
    )


def _resources(raw: JsonDict | None) -> JsonDict:
    res = _pick(
        raw,
        {
            "CPU": 100,
            "Cores": 0,
            "MemoryMB": 300,
            "MemoryMaxMB": 0,
            "DiskMB": 0,
            "IOPS": 0,
            "Networks": None,
            "Devices": None,
            "NUMA": None,
            "SecretsMB": 0,
        },
    )
    if (raw or {}).get("Cores") and (raw or {}).get("CPU") is None:
        # api/resources.go Resources.Canonicalize: with cores set, cpu defaults to 0.
        res["CPU"] = 0
    if res["Devices"]:
        res["Devices"] = [
            _pick(dev, {"Name": "", "Count": 1, "Constraints": None, "Affinities": None})
            for dev in res["Devices"]
        ]
    return res


def _template(raw: JsonDict) -> JsonDict:
    return _pick(
        raw,
        {
            "SourcePath": "",
            "DestPath": "",
            "EmbeddedTmpl": "",
            "ChangeMode": "restart",
            "ChangeSignal": "",
            "ChangeScript": None,
            "Splay": 5 * SECOND,
            "Perms": "0644",
            "Uid": None,
            "Gid": None,
            "LeftDelim": "{{",
            "RightDelim": "}}",
            "Envvars": False,
            "VaultGrace": 0,
            "Wait": None,
            "ErrMissingKey": False,
            "Once": False,
        },
    )


def _task(raw: JsonDict, restart: JsonDict) -> JsonDict:
    task = _pick(
        raw,
        {
            "Name": "",
            "Driver": "",
            "User": "",
            "Config": {},
            "Env": None,
            "Services": None,
            "Vault": None,
            "Consul": None,
            "Templates": None,
            "Constraints": None,
            "Affinities": None,
            "Resources": None,
            "RestartPolicy": None,
            "DispatchPayload": None,
            "Lifecycle": None,
            "Meta": None,
            "KillTimeout": 5 * SECOND,
            "LogConfig": None,
            "Artifacts": None,
            "Leader": False,
            "ShutdownDelay": 0,
            "VolumeMounts": None,
            "ScalingPolicies": None,
            "KillSignal": "",
            "Kind": "",
            "CSIPluginConfig": None,
            "Identity": None,
            "Identities": None,
            "Actions": None,
            "Schedule": None,
        },
    )
    task["Identity"], task["Identities"] = _identities(raw.get("Identities"))
    task["Resources"] = _resources(raw.get("Resources"))
    # Nomad copies the group's restart policy onto each task, task values winning.
    task["RestartPolicy"] = {**restart, **(raw.get("RestartPolicy") or {})}
    task["LogConfig"] = _pick(
        raw.get("LogConfig"), {"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": False}
    )
    if raw.get("Lifecycle"):
        task["Lifecycle"] = _pick(raw["Lifecycle"], {"Hook": "", "Sidecar": False})
    if raw.get("Templates"):
        task["Templates"] = [_template(t) for t in raw["Templates"]]
    return task


def _identity(raw: JsonDict) -> JsonDict:
    """A canonical ``structs.WorkloadIdentity`` (``WorkloadIdentity.Canonicalize``)."""
    wid = _pick(
        raw,
        {
            "Name": "",
            "Audience": None,
            "ChangeMode": "",
            "ChangeSignal": "",
            "Env": False,
            "File": False,
            "Filepath": "",
            "ServiceName": "",
            "TTL": 0,
        },
    )
    wid["Name"] = wid["Name"] or WORKLOAD_IDENTITY_DEFAULT
    if wid["Name"] == WORKLOAD_IDENTITY_DEFAULT:
        wid["Audience"] = [WORKLOAD_IDENTITY_DEFAULT_AUDIENCE]
    wid["ChangeSignal"] = wid["ChangeSignal"].upper()
    return wid


def _identities(raw: list[JsonDict] | None) -> tuple[JsonDict, list[JsonDict] | None]:
    """The task's ``Identity`` and ``Identities`` as ``Task.Canonicalize`` leaves them: an
    identity named "default" moves to ``Identity``, which exists always."""
    default = None
    others = []
    for item in raw or []:
        wid = _identity(item)
        if wid["Name"] == WORKLOAD_IDENTITY_DEFAULT:
            default = wid
        else:
            others.append(wid)
    return default or _identity({}), None if raw is None else others


def _group(raw: JsonDict, job_type: str) -> JsonDict:
    kind = "batch" if job_type in ("batch", "sysbatch") else "service"
    restart = {**_RESTART_DEFAULTS[kind], **(raw.get("RestartPolicy") or {})}
    restart.setdefault("RenderTemplates", False)
    group = _pick(
        raw,
        {
            "Name": "",
            "Count": 1,
            "Update": None,
            "Migrate": None,
            "Constraints": None,
            "Scaling": None,
            "RestartPolicy": None,
            "Disconnect": None,
            "Tasks": [],
            "EphemeralDisk": None,
            "Meta": None,
            "ReschedulePolicy": None,
            "Affinities": None,
            "Spreads": None,
            "Networks": None,
            "Consul": None,
            "Services": None,
            "Volumes": None,
            "ShutdownDelay": None,
            "StopAfterClientDisconnect": None,
            "MaxClientDisconnect": None,
            "PreventRescheduleOnLost": False,
        },
    )
    group["RestartPolicy"] = restart
    group["ReschedulePolicy"] = {
        **_RESCHEDULE_DEFAULTS[kind],
        **(raw.get("ReschedulePolicy") or {}),
    }
    group["EphemeralDisk"] = _pick(
        raw.get("EphemeralDisk"), {"Sticky": False, "SizeMB": 300, "Migrate": False}
    )
    if kind == "service":
        group["Update"] = _update_strategy(raw.get("Update"))
    group["Tasks"] = [_task(t, restart) for t in raw.get("Tasks") or []]
    return group


def canonical_job(raw: JsonDict, namespace: str, now: int) -> JsonDict:
    """The job as ``GET /v1/job/:id`` returns it, before indexes and status are set."""
    job_type = raw.get("Type") or "service"
    job = _pick(
        raw,
        {
            "Region": "global",
            "Namespace": namespace,
            "ID": "",
            "ParentID": "",
            "Name": raw.get("ID", ""),
            "Type": job_type,
            "Priority": 50,
            "AllAtOnce": False,
            "Datacenters": ["*"],
            "NodePool": "default",
            "Constraints": None,
            "Affinities": None,
            "Spreads": None,
            "TaskGroups": [],
            "Update": None,
            "Multiregion": None,
            "Periodic": None,
            "ParameterizedJob": None,
            "Dispatched": False,
            "DispatchIdempotencyToken": "",
            "Payload": None,
            "Meta": None,
            "ConsulNamespace": "",
            "VaultNamespace": "",
            "NomadTokenID": "",
            "Stop": False,
            "UI": None,
            "VersionTag": None,
        },
    )
    job["Namespace"] = namespace
    job["Name"] = job["Name"] or job["ID"]
    job["Datacenters"] = job["Datacenters"] or ["*"]
    job["Update"] = _update_strategy(raw.get("Update") if job_type == "service" else None)
    if job_type != "service":
        # Nomad zeroes the job-level update block of batch jobs.
        job["Update"] = {key: type(value)() for key, value in job["Update"].items()}
    job["TaskGroups"] = [_group(g, job_type) for g in raw.get("TaskGroups") or []]
    job.update(
        Status="pending",
        StatusDescription="",
        Stable=False,
        Version=0,
        SubmitTime=now,
        CreateIndex=0,
        ModifyIndex=0,
        JobModifyIndex=0,
    )
    return job


def job_spec_key(job: JsonDict) -> JsonDict:
    """The parts of a job that make a re-register a change (Nomad's ``Job.SpecChanged``)."""
    skip = {
        "Status",
        "StatusDescription",
        "Stable",
        "Version",
        "SubmitTime",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
        "NomadTokenID",
    }
    return {key: value for key, value in job.items() if key not in skip}


def job_stub(job: JsonDict, summary: JsonDict, with_meta: bool) -> JsonDict:
    """One entry of ``GET /v1/jobs`` (``structs.JobListStub``)."""
    stub = {
        "ID": job["ID"],
        "ParentID": job["ParentID"],
        "Name": job["Name"],
        "Namespace": job["Namespace"],
        "Datacenters": job["Datacenters"],
        "NodePool": job["NodePool"],
        "Multiregion": job["Multiregion"],
        "Type": job["Type"],
        "Priority": job["Priority"],
        "Periodic": job["Periodic"] is not None,
        "ParameterizedJob": job["ParameterizedJob"] is not None,
        "Stop": job["Stop"],
        "Status": job["Status"],
        "StatusDescription": job["StatusDescription"],
        "JobSummary": summary,
        "CreateIndex": job["CreateIndex"],
        "ModifyIndex": job["ModifyIndex"],
        "JobModifyIndex": job["JobModifyIndex"],
        "SubmitTime": job["SubmitTime"],
    }
    if with_meta and job["Meta"]:
        stub["Meta"] = job["Meta"]  # `json:",omitempty"`: an empty Meta is left out
    return stub


# --- tasks and allocations ------------------------------------------------------------

_EVENT_DEFAULTS: JsonDict = {
    "Type": "",
    "Time": 0,
    "Message": "",
    "DisplayMessage": "",
    "Details": {},
    "FailsTask": False,
    "RestartReason": "",
    "SetupError": "",
    "DriverError": "",
    "ExitCode": 0,
    "Signal": 0,
    "KillTimeout": 0,
    "KillError": "",
    "KillReason": "",
    "StartDelay": 0,
    "DownloadError": "",
    "ValidationError": "",
    "DiskLimit": 0,
    "FailedSibling": "",
    "VaultError": "",
    "TaskSignalReason": "",
    "TaskSignal": "",
    "DriverMessage": "",
    "GenericSource": "",
}


def task_event(event_type: str, now: int, **fields: Any) -> JsonDict:
    """A ``structs.TaskEvent`` with every field; ``Details`` mirrors the set ones."""
    event = copy.deepcopy(_EVENT_DEFAULTS)
    event.update(Type=event_type, Time=now, **fields)
    details = dict(fields.pop("Details", None) or {})
    # Nomad fills Details from the typed fields (structs.TaskEvent.PopulateEventDisplayMessage).
    for name, key in (
        ("ExitCode", "exit_code"),
        ("Signal", "signal"),
        ("DriverError", "driver_error"),
        ("ValidationError", "validation_error"),
        ("RestartReason", "restart_reason"),
        ("FailedSibling", "failed_sibling"),
        ("KillReason", "kill_reason"),
        ("SetupError", "setup_error"),
        ("StartDelay", "start_delay"),
        ("KillTimeout", "kill_timeout"),
    ):
        if name in fields:
            details[key] = str(fields[name])
    if fields.get("FailsTask"):
        details["fails_task"] = "true"
    event["Details"] = details
    if not event["DisplayMessage"]:
        # structs.TaskEvent.PopulateEventDisplayMessage: the field that says it, per type.
        shown = _DISPLAY_FIELDS.get(event_type)
        event["DisplayMessage"] = (event[shown[0]] or shown[1]) if shown else event["Message"]
    return event


_DISPLAY_FIELDS = {
    "Driver Failure": ("DriverError", "Failed to start task"),
    "Failed Validation": ("ValidationError", "Validation of task failed"),
    "Setup Failure": ("SetupError", "Task setup failed"),
    "Driver": ("DriverMessage", ""),
    "Not Restarting": ("RestartReason", "Task exceeded restart policy"),
}


def new_task_state() -> JsonDict:
    """A task that the client has not started yet."""
    return {
        "State": "pending",
        "Failed": False,
        "Restarts": 0,
        "LastRestart": ZERO_TIME,
        "StartedAt": ZERO_TIME,
        "FinishedAt": ZERO_TIME,
        "Events": [],
        "Paused": "",
    }


def alloc_metric(
    nodes_available: dict[str, int], nodes_in_pool: int, node_pool: str = "default"
) -> JsonDict:
    """An empty ``structs.AllocMetric``; the scheduler fills the counters in.

    ``NodePool`` is the job's node pool (``scheduler/generic_sched.go`` sets
    ``Metrics().NodePool = job.NodePool``)."""
    return {
        "NodesEvaluated": 0,
        "NodesFiltered": 0,
        "NodesInPool": nodes_in_pool,
        "NodePool": node_pool,
        "NodesAvailable": dict(nodes_available),
        "ClassFiltered": None,
        "ConstraintFiltered": None,
        "NodesExhausted": 0,
        "ClassExhausted": None,
        "DimensionExhausted": None,
        "QuotaExhausted": None,
        "ResourcesExhausted": None,
        "Scores": None,
        "ScoreMetaData": None,
        "AllocationTime": 0,
        "CoalescedFailures": 0,
    }


# --- resource usage -------------------------------------------------------------------

# What Nomad's basic executor (raw_exec, exec without cgroups) measures of each process
# (drivers/shared/executor/procstats ``ExecutorBasicMeasured*Stats``).
MEASURED_MEMORY = ["RSS", "Swap"]
MEASURED_CPU = ["System Mode", "User Mode", "Percent"]
# The nvidia device plugin's statistic names and units (nomad-device-nvidia stats.go).
GPU_UTILIZATION = (
    "GPU utilization",
    "%",
    "Percent of time over the past sample period "
    "during which one or more kernels were executing on the GPU.",
)
GPU_MEMORY_STATE = ("Memory state", "MiB", "UsedMemory / TotalMemory")
GPU_TEMPERATURE = ("Temperature", "C", "Temperature of the Unit")
GPU_POWER = ("Power usage", "W", "Power usage for this GPU in watts / Maximum GPU Power")
GPU_POWER_LIMIT_W = 300
"""The power limit the stand-in's GPUs report beside their draw."""


def resource_usage(
    *,
    rss: int,
    swap: int,
    percent: float,
    user_percent: float,
    system_percent: float,
    ticks: float,
    device_stats: list[JsonDict] | None = None,
) -> JsonDict:
    """A ``structs.ResourceUsage`` (memory in bytes, CPU percent of one core).

    Besides the sample's keys, ``MemoryStats`` carries ``MappedFile`` and ``Usage`` and
    the usage ``DeviceStats``, as the current ``client/structs`` types encode them.
    """
    return {
        "CpuStats": {
            "Measured": list(MEASURED_CPU),
            "Percent": percent,
            "SystemMode": system_percent,
            "ThrottledPeriods": 0,
            "ThrottledTime": 0,
            "TotalTicks": ticks,
            "UserMode": user_percent,
        },
        "MemoryStats": {
            "Cache": 0,
            "KernelMaxUsage": 0,
            "KernelUsage": 0,
            "MappedFile": 0,
            "MaxUsage": 0,
            "Measured": list(MEASURED_MEMORY),
            "RSS": rss,
            "Swap": swap,
            "Usage": 0,
        },
        "DeviceStats": device_stats,
    }


GpuFigures = tuple[int, int, int, int | None, int | None]
"""(utilisation %, used MiB, total MiB, temperature °C, power W); a sensor the GPU does not
report is None, and the plugin then leaves its statistic out."""


def gpu_group_stats(name: str, instances: dict[str, GpuFigures], now: int) -> JsonDict:
    """A ``DeviceGroupStats`` as the nvidia plugin reports a task's GPUs of one model,
    by instance ID."""

    def stat(spec: tuple[str, str, str], numerator: int, denominator: int | None) -> JsonDict:
        value: JsonDict = {"Desc": spec[2], "IntNumeratorVal": numerator, "Unit": spec[1]}
        if denominator is not None:
            value["IntDenominatorVal"] = denominator
        return value

    stats = {}
    for instance_id, (busy, used, total, celsius, watts) in instances.items():
        memory = stat(GPU_MEMORY_STATE, used, total)
        attributes = {
            GPU_UTILIZATION[0]: stat(GPU_UTILIZATION, busy, None),
            GPU_MEMORY_STATE[0]: memory,
        }
        if celsius is not None:
            attributes[GPU_TEMPERATURE[0]] = stat(GPU_TEMPERATURE, celsius, None)
        if watts is not None:
            attributes[GPU_POWER[0]] = stat(GPU_POWER, watts, GPU_POWER_LIMIT_W)
        stats[instance_id] = {
            "Stats": {"Attributes": attributes, "Nested": {}},
            "Summary": dict(memory),
            "Timestamp": rfc3339(now),
        }
    return {"InstanceStats": stats, "Name": name, "Type": "gpu", "Vendor": "nvidia"}


def host_stats(
    *,
    cores: list[float],
    memory_total: int,
    memory_used: int,
    disk_size: int,
    disk_used: int,
    devices: list[JsonDict],
    uptime: int,
    ticks: float,
    now: int,
) -> JsonDict:
    """A ``HostStats`` as ``GET /v1/client/stats`` answers it (client/structs ``HostStats``;
    the API docs' "Read Stats" sample): ``CPU`` per core in percent (``Total`` = 100 less
    ``Idle``), ``Memory`` and disks in bytes, ``Uptime`` in seconds, ``Timestamp`` in
    nanoseconds, and the device plugins' statistics of every device of the node. There
    are no network or disk I/O figures: Nomad's host stats have none."""
    disk = {
        "Available": disk_size - disk_used,
        "Device": "/dev/standin",
        "InodesUsedPercent": 0.05,
        "Mountpoint": "/",
        "Size": disk_size,
        "Used": disk_used,
        "UsedPercent": 100.0 * disk_used / disk_size if disk_size else 0.0,
    }
    return {
        "AllocDirStats": dict(disk, Device="", Mountpoint=""),
        "CPU": [
            {
                "CPU": f"cpu{index}",
                "Idle": 100.0 - busy,
                "System": busy * 0.2,
                "Total": busy,
                "User": busy * 0.8,
            }
            for index, busy in enumerate(cores)
        ],
        "CPUTicksConsumed": ticks,
        "DeviceStats": devices,
        "DiskStats": [disk],
        "Memory": {
            "Available": memory_total - memory_used,
            "Free": memory_total - memory_used,
            "Total": memory_total,
            "Used": memory_used,
        },
        "Timestamp": now,
        "Uptime": uptime,
    }


def task_resource_usage(usage: JsonDict, now: int) -> JsonDict:
    """A ``structs.TaskResourceUsage``; per-process figures are not kept (``Pids`` null)."""
    return {"Pids": None, "ResourceUsage": usage, "Timestamp": now}


def alloc_resource_usage(tasks: dict[str, JsonDict], now: int) -> JsonDict:
    """A ``structs.AllocResourceUsage``: the tasks' usage and its sum, as
    ``ResourceUsage.Add`` sums it (device statistics are listed, not added)."""
    total = resource_usage(
        rss=0, swap=0, percent=0.0, user_percent=0.0, system_percent=0.0, ticks=0.0
    )
    devices: list[JsonDict] = []
    for task in tasks.values():
        usage = task["ResourceUsage"]
        for group in ("CpuStats", "MemoryStats"):
            for key, value in usage[group].items():
                if key != "Measured":
                    total[group][key] += value
        devices.extend(usage["DeviceStats"] or [])
    total["DeviceStats"] = devices or None
    stamps = [task["Timestamp"] for task in tasks.values()]
    return {"ResourceUsage": total, "Tasks": tasks, "Timestamp": max(stamps, default=now)}


# --- nodes ----------------------------------------------------------------------------


@dataclass
class GpuGroup:
    """Identical GPUs of one node: one ``NodeDeviceResource`` with an instance each."""

    model: str
    memory_mib: int
    instance_ids: list[str]
    healthy: dict[str, bool] = field(default_factory=dict)


_BUILTIN_DRIVERS = ("docker", "exec", "java", "qemu", "raw_exec")


@dataclass
class NodeSpec:
    """A client node: what it offers and what the server knows of it."""

    id: str
    secret_id: str
    name: str
    cpu_mhz: int
    memory_mb: int
    disk_mb: int
    drivers: tuple[str, ...]
    gpus: list[GpuGroup]
    meta: dict[str, str]
    datacenter: str = "dc1"
    node_class: str = ""
    node_pool: str = "default"
    status: str = "ready"
    eligibility: str = "eligible"
    drain_strategy: JsonDict | None = None
    """``structs.DrainStrategy`` (DrainSpec inlined) while the node drains."""
    last_drain: JsonDict | None = None
    """``structs.DrainMetadata`` of the latest drain."""
    create_index: int = 0
    modify_index: int = 0
    status_updated_at: int = 0
    events: list[JsonDict] = field(default_factory=list)
    registered_at: str = ""
    host_volumes: dict[str, str] = field(default_factory=dict)
    """The client's ``host_volume`` blocks: name → path."""

    def host_volumes_json(self) -> JsonDict | None:
        """``Node.HostVolumes`` (``structs.ClientHostVolumeConfig`` by name); null if none."""
        return {
            name: {"Name": name, "Path": path, "ReadOnly": False}
            for name, path in sorted(self.host_volumes.items())
        } or None

    @property
    def attributes(self) -> dict[str, str]:
        attrs = {
            "cpu.arch": "amd64",
            "cpu.frequency": "1000",
            "cpu.modelname": "Winslow stand-in CPU",
            "cpu.numcores": str(self.cores),
            "cpu.totalcompute": str(self.cpu_mhz),
            "kernel.name": "linux",
            "kernel.version": "6.1.0",
            "memory.totalbytes": str(self.memory_mb * 1024 * 1024),
            "nomad.version": NOMAD_VERSION,
            "nomad.revision": "standin",
            "nomad.service_discovery": "true",
            "os.name": "debian",
            "os.version": "12",
            "os.signals": "SIGHUP,SIGINT,SIGKILL,SIGQUIT,SIGTERM,SIGUSR1,SIGUSR2",
            "unique.hostname": self.name,
            "unique.network.ip-address": "127.0.0.1",
            "unique.storage.volume": "/dev/standin",
        }
        for driver in self.drivers:
            attrs[f"driver.{driver}"] = "1"
        return attrs

    def node_attrs(self) -> dict[str, str]:
        """The names ``${...}`` may use in a task: Nomad's taskenv node attributes."""
        out = {f"attr.{key}": value for key, value in self.attributes.items()}
        out.update({f"meta.{key}": value for key, value in self.meta.items()})
        out.update(
            {
                "node.unique.id": self.id,
                "node.unique.name": self.name,
                "node.datacenter": self.datacenter,
                "node.class": self.node_class,
                "node.pool": self.node_pool,
                "node.region": "global",
            }
        )
        return out

    def devices_json(self) -> list[JsonDict] | None:
        if not self.gpus:
            return None
        return [
            {
                "Vendor": "nvidia",
                "Type": "gpu",
                "Name": group.model,
                "Attributes": {
                    "memory": {"Int": group.memory_mib, "Unit": "MiB"},
                    "driver_version": {"String": "550.54.15"},
                    "display_state": {"String": "Disabled"},
                    "persistence_mode": {"String": "Enabled"},
                },
                "Instances": [
                    {
                        "ID": instance,
                        "Healthy": group.healthy.get(instance, True),
                        "HealthDescription": "",
                        "Locality": {"PciBusID": f"00000000:{i + 1:02X}:00.0"},
                    }
                    for i, instance in enumerate(group.instance_ids)
                ],
            }
            for group in self.gpus
        ]

    def _drivers_json(self) -> JsonDict:
        drivers: JsonDict = {}
        for name in sorted({*_BUILTIN_DRIVERS, *self.drivers}):
            detected = name in self.drivers
            drivers[name] = {
                "Attributes": {f"driver.{name}": "true"} if detected else None,
                "Detected": detected,
                "Healthy": detected,
                "HealthDescription": "Healthy" if detected else "",
                "UpdateTime": self.registered_at,
            }
        return drivers

    @property
    def cores(self) -> int:
        """CPU cores, as ``cpu.numcores`` reports them (1000 MHz each)."""
        return max(self.cpu_mhz // 1000, 1)

    def _processors(self) -> JsonDict:
        """``NodeProcessorResources`` as the JSON extension writes its topology
        (``nomad/structs/extensions.go`` numaTopoExt): one NUMA node, one socket."""
        mhz = self.cpu_mhz // self.cores
        core = {"SocketID": 0, "NodeID": 0, "Grade": True, "Disable": False}
        speeds = {"BaseSpeed": mhz, "MaxSpeed": 0, "GuessSpeed": 0}
        return {
            "Topology": {
                "Nodes": [0],
                "Distances": [[10]],
                "Cores": [{**core, "ID": i, **speeds} for i in range(self.cores)],
                "OverrideTotalCompute": 0,
                "OverrideWitholdCompute": 0,
            }
        }

    def _node_resources(self) -> JsonDict:
        return {
            "Cpu": {
                "CpuShares": self.cpu_mhz,
                "TotalCpuCores": self.cores,
                "ReservableCpuCores": list(range(self.cores)),
            },
            "Processors": self._processors(),
            "Memory": {"MemoryMB": self.memory_mb},
            "Disk": {"DiskMB": self.disk_mb},
            # NetworkResource leaves out its empty fields (``_struct`` omitempty, 1.8.2+).
            "Networks": [
                {
                    "Mode": "host",
                    "Device": "lo",
                    "CIDR": "127.0.0.1/32",
                    "IP": "127.0.0.1",
                    "MBits": 1000,
                }
            ],
            "NodeNetworks": [
                {
                    "Mode": "host",
                    "Device": "lo",
                    "MacAddress": "00:00:00:00:00:00",
                    "Speed": 1000,
                    "Addresses": [
                        {
                            "Family": "ipv4",
                            "Alias": "default",
                            "Address": "127.0.0.1",
                            "ReservedPorts": "",
                            "Gateway": "",
                        }
                    ],
                }
            ],
            "Devices": self.devices_json(),
            "MinDynamicPort": 20000,
            "MaxDynamicPort": 32000,
        }

    @staticmethod
    def _reserved() -> JsonDict:
        return {
            "Cpu": {"CpuShares": 0, "ReservedCpuCores": None},
            "Memory": {"MemoryMB": 0},
            "Disk": {"DiskMB": 0},
            "Networks": {"ReservedHostPorts": ""},
        }

    def to_json(self) -> JsonDict:
        """``GET /v1/node/:id`` (``structs.Node``); SecretID is redacted as Nomad does.

        ``Drain`` is the field the JSON extension adds (``nodeExt``); ``Resources`` and
        ``Reserved`` are the legacy, zeroed ``structs.Resources`` a 1.x client registers
        with (``client/client.go`` setupNode)."""
        legacy = {
            "CPU": 0,
            "Cores": 0,
            "MemoryMB": 0,
            "MemoryMaxMB": 0,
            "DiskMB": 0,
            "IOPS": 0,
            "Networks": None,
            "Devices": None,
            "NUMA": None,
            "SecretsMB": 0,
        }
        return {
            "ID": self.id,
            "SecretID": "",
            "Datacenter": self.datacenter,
            "Name": self.name,
            "HTTPAddr": "127.0.0.1:4646",
            "TLSEnabled": False,
            "Attributes": self.attributes,
            "NodeResources": self._node_resources(),
            "ReservedResources": self._reserved(),
            "Links": {},
            "Meta": dict(self.meta),
            "NodeClass": self.node_class,
            "NodePool": self.node_pool,
            "ComputedClass": f"v1:{abs(hash((self.node_class, self.drivers))) % 10**18}",
            "Drain": self.drain_strategy is not None,
            "DrainStrategy": copy.deepcopy(self.drain_strategy),
            "SchedulingEligibility": self.eligibility,
            "Status": self.status,
            "StatusDescription": "",
            "StatusUpdatedAt": self.status_updated_at,
            "Events": copy.deepcopy(self.events),
            "Drivers": self._drivers_json(),
            "HostVolumes": self.host_volumes_json(),
            "HostNetworks": None,
            "LastDrain": copy.deepcopy(self.last_drain),
            "CSIControllerPlugins": None,
            "CSINodePlugins": None,
            "Resources": dict(legacy),
            "Reserved": dict(legacy),
            "CgroupParent": "nomad.slice",
            "GCVolumesOnNodeGC": False,
            "NodeMaxAllocs": 0,
            "LastMissedHeartbeatIndex": 0,
            "LastAllocUpdateIndex": 0,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }

    def stub(self, with_resources: bool) -> JsonDict:
        """One entry of ``GET /v1/nodes`` (``structs.NodeListStub``)."""
        stub = {
            "Address": "127.0.0.1",
            "ID": self.id,
            "Datacenter": self.datacenter,
            "Name": self.name,
            "NodeClass": self.node_class,
            "NodePool": self.node_pool,
            "Version": NOMAD_VERSION,
            "Drain": self.drain_strategy is not None,
            "SchedulingEligibility": self.eligibility,
            "Status": self.status,
            "StatusDescription": "",
            "Drivers": self._drivers_json(),
            "HostVolumes": self.host_volumes_json(),
            "LastDrain": copy.deepcopy(self.last_drain),
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }
        if with_resources:
            stub["NodeResources"] = self._node_resources()
            stub["ReservedResources"] = self._reserved()
        return stub
