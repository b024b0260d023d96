"""The shapes of the JSON Nomad's HTTP API sends us, as ``TypedDict``s named after Nomad's types.

We read these but do not own them, so every one is ``total=False``: an older or newer
agent may leave a key out, and readers use ``.get``. Names and keys follow Nomad's Go
structs (hashicorp/nomad ``api/*.go``, ``nomad/structs``) and the documented samples in
``shared/nomad-api/samples``; only the keys Winslow reads are listed. Nomad's words stay
in ``backends/nomad``: ``status.py`` translates them into ``JobStatus``.
"""

from __future__ import annotations

from typing import Any, TypedDict


class NomadTaskEvent(TypedDict, total=False):
    """``api.TaskEvent``: one thing that happened to a task (``Type`` says what)."""

    Type: str
    Time: int
    """Unix time in nanoseconds."""
    FailsTask: bool
    Message: str
    DisplayMessage: str
    Details: dict[str, str] | None
    """``exit_code``, ``signal``, ``oom_killed``, ``driver_error``, ... as strings."""
    ExitCode: int
    Signal: int
    DriverError: str
    SetupError: str
    ValidationError: str
    DownloadError: str
    KillError: str
    KillReason: str
    RestartReason: str
    FailedSibling: str
    TaskSignal: str


class NomadTaskState(TypedDict, total=False):
    """``api.TaskState``: where one task of an allocation is, with its event history."""

    State: str
    """``pending``, ``running`` or ``dead``."""
    Failed: bool
    Restarts: int
    StartedAt: str | None
    """RFC 3339; ``0001-01-01T00:00:00Z`` (Go's zero time) until it started."""
    FinishedAt: str | None
    LastRestart: str | None
    Events: list[NomadTaskEvent] | None


class NomadAllocationMetric(TypedDict, total=False):
    """``api.AllocationMetric``: why the scheduler could or could not place a task group."""

    NodesEvaluated: int
    NodesFiltered: int
    NodesInPool: int
    NodesAvailable: dict[str, int] | None
    """Ready nodes per datacenter."""
    ClassFiltered: dict[str, int] | None
    ConstraintFiltered: dict[str, int] | None
    """Nodes filtered out, per constraint (``${attr.kernel.name} = linux``, ``missing devices``)."""
    NodesExhausted: int
    ClassExhausted: dict[str, int] | None
    DimensionExhausted: dict[str, int] | None
    """Nodes that fit but were full, per dimension (``memory``, ``devices: ...``)."""
    QuotaExhausted: list[str] | None
    ResourcesExhausted: dict[str, Any] | None
    CoalescedFailures: int


class NomadRescheduleEvent(TypedDict, total=False):
    """``api.RescheduleEvent``: an earlier allocation this one replaces."""

    PrevAllocID: str
    PrevNodeID: str
    RescheduleTime: int


class NomadRescheduleTracker(TypedDict, total=False):
    """``api.RescheduleTracker``."""

    Events: list[NomadRescheduleEvent] | None


class NomadAllocationStub(TypedDict, total=False):
    """``api.AllocationListStub``: an allocation as list endpoints return it."""

    ID: str
    EvalID: str
    Name: str
    Namespace: str
    NodeID: str
    NodeName: str
    JobID: str
    JobVersion: int
    TaskGroup: str
    DesiredStatus: str
    """``run``, ``stop`` or ``evict``: what the servers want."""
    DesiredDescription: str
    ClientStatus: str
    """``pending``, ``running``, ``complete``, ``failed``, ``lost`` or ``unknown``."""
    ClientDescription: str
    TaskStates: dict[str, NomadTaskState] | None
    FollowupEvalID: str
    PreviousAllocation: str
    NextAllocation: str
    RescheduleTracker: NomadRescheduleTracker | None
    CreateIndex: int
    ModifyIndex: int
    CreateTime: int
    """Unix time in nanoseconds."""
    ModifyTime: int


class NomadJob(TypedDict, total=False):
    """``api.Job``, as ``GET /v1/job/:id`` returns it (the parts we read)."""

    ID: str
    Name: str
    Namespace: str
    Region: str
    Type: str
    Status: str
    """``pending``, ``running`` or ``dead``."""
    StatusDescription: str
    Stop: bool
    """True once the job was deregistered without purge (``nomad job stop``)."""
    Meta: dict[str, str] | None
    Datacenters: list[str]
    TaskGroups: list[dict[str, Any]] | None
    Version: int
    SubmitTime: int
    CreateIndex: int
    ModifyIndex: int
    JobModifyIndex: int


class NomadAllocation(NomadAllocationStub, total=False):
    """``api.Allocation``: one allocation in full, as ``GET /v1/allocation/:id`` returns it."""

    Job: NomadJob | None
    Metrics: NomadAllocationMetric | None


class NomadJobListStub(TypedDict, total=False):
    """``api.JobListStub``: a job as ``GET /v1/jobs`` lists it."""

    ID: str
    ParentID: str
    Name: str
    Namespace: str
    Type: str
    Status: str
    Stop: bool
    Meta: dict[str, str] | None
    """Only with ``?meta=true`` (Nomad 1.6 and later)."""
    CreateIndex: int
    ModifyIndex: int
    JobModifyIndex: int
    SubmitTime: int


class NomadJobRegisterResponse(TypedDict, total=False):
    """``api.JobRegisterResponse``."""

    EvalID: str
    EvalCreateIndex: int
    JobModifyIndex: int
    Warnings: str
    Index: int


class NomadJobDeregisterResponse(TypedDict, total=False):
    """``api.JobDeregisterResponse``."""

    EvalID: str
    EvalCreateIndex: int
    JobModifyIndex: int
    Index: int


class NomadEvaluation(TypedDict, total=False):
    """``api.Evaluation``: one scheduling pass over a job."""

    ID: str
    JobID: str
    Namespace: str
    Priority: int
    Type: str
    TriggeredBy: str
    Status: str
    """``pending``, ``blocked``, ``complete``, ``failed`` or ``canceled``."""
    StatusDescription: str
    NodeID: str
    BlockedEval: str
    """ID of the blocked evaluation this one created to place what it could not."""
    PreviousEval: str
    NextEval: str
    FailedTGAllocs: dict[str, NomadAllocationMetric] | None
    """Task groups the scheduler could not place, with why."""
    QueuedAllocations: dict[str, int] | None
    CreateIndex: int
    ModifyIndex: int
    CreateTime: int
    ModifyTime: int


class NomadNodeStub(TypedDict, total=False):
    """``api.NodeListStub``: a node as ``GET /v1/nodes`` lists it."""

    ID: str
    Name: str
    Datacenter: str
    NodeClass: str
    NodePool: str
    Address: str
    Version: str
    Status: str
    """``initializing``, ``ready``, ``down`` or ``disconnected``."""
    StatusDescription: str
    SchedulingEligibility: str
    """``eligible`` or ``ineligible``."""
    Drain: bool
    """Added to encoded nodes for older clients (``nodeExt``): DrainStrategy is set."""
    CreateIndex: int
    ModifyIndex: int


class NomadDrainStrategy(TypedDict, total=False):
    """``structs.DrainStrategy`` with its embedded ``DrainSpec`` inlined, as encoded.

    ``Deadline`` (ns): below 0 forces the drain now, 0 waits for ever, above 0 forces it
    at ``ForceDeadline`` (``DrainStrategy.DeadlineTime``)."""

    Deadline: int
    IgnoreSystemJobs: bool
    ForceDeadline: str
    StartedAt: str


class NomadAttribute(TypedDict, total=False):
    """``structs.Attribute``: a typed device attribute with an optional unit."""

    Int: int
    Float: float
    String: str
    Bool: bool
    Unit: str


class NomadNodeDevice(TypedDict, total=False):
    """``api.NodeDevice``: one instance of a device (one GPU)."""

    ID: str
    Healthy: bool
    HealthDescription: str
    Locality: dict[str, Any] | None


class NomadNodeDeviceResource(TypedDict, total=False):
    """``api.NodeDeviceResource``: a group of identical devices (``nvidia/gpu/Tesla T4``)."""

    Vendor: str
    Type: str
    Name: str
    Instances: list[NomadNodeDevice] | None
    Attributes: dict[str, NomadAttribute] | None


class NomadNodeCpuResources(TypedDict, total=False):
    """``api.NodeCpuResources``."""

    CpuShares: int
    """Total compute in MHz."""
    TotalCpuCores: int
    ReservableCpuCores: list[int] | None


class NomadNodeMemoryResources(TypedDict, total=False):
    """``api.NodeMemoryResources``."""

    MemoryMB: int


class NomadNodeResources(TypedDict, total=False):
    """``api.NodeResources``: what a node has in all."""

    Cpu: NomadNodeCpuResources
    Memory: NomadNodeMemoryResources
    Disk: dict[str, int]
    Devices: list[NomadNodeDeviceResource] | None


class NomadDriverInfo(TypedDict, total=False):
    """``api.DriverInfo``: one task driver as the node fingerprinted it."""

    Attributes: dict[str, str] | None
    Detected: bool
    Healthy: bool
    HealthDescription: str


class NomadNode(TypedDict, total=False):
    """``api.Node``: a client node in full, as ``GET /v1/node/:id`` returns it."""

    ID: str
    Name: str
    Datacenter: str
    NodeClass: str
    NodePool: str
    HTTPAddr: str
    Status: str
    StatusDescription: str
    SchedulingEligibility: str
    Drain: bool
    DrainStrategy: NomadDrainStrategy | None
    """Set while the node drains (``nomad node drain -enable``), null otherwise."""
    Attributes: dict[str, str] | None
    Meta: dict[str, str] | None
    NodeResources: NomadNodeResources | None
    Drivers: dict[str, NomadDriverInfo] | None
    CreateIndex: int
    ModifyIndex: int


class NomadEvent(TypedDict, total=False):
    """``api.Event``: one change in Nomad's state, as the event stream sends it."""

    Topic: str
    """``Job``, ``Allocation``, ``Evaluation``, ``Node``, ..."""
    Type: str
    """``JobRegistered``, ``AllocationUpdated``, ``EvaluationUpdated``, ..."""
    Key: str
    """The ID of the changed object (job ID, allocation ID, ...)."""
    FilterKeys: list[str] | None
    """Further keys a topic filter matches: the job ID for allocations and evaluations."""
    Namespace: str
    Index: int
    Payload: dict[str, Any]
    """``{"Job": {...}}``, ``{"Allocation": {...}}``, ``{"Evaluation": {...}}``, ..."""


class NomadEventFrame(TypedDict, total=False):
    """``api.Events``: one ndjson line of ``/v1/event/stream``, the events of one raft index."""

    Index: int
    Events: list[NomadEvent]


class NomadStreamFrame(TypedDict, total=False):
    """``api.StreamFrame``: one frame of ``/v1/client/fs/logs``; ``Data`` is base64."""

    Offset: int
    Data: str
    File: str
    FileEvent: str


class NomadVariable(TypedDict, total=False):
    """``api.Variable``: a Nomad Variable with its items."""

    Namespace: str
    Path: str
    Items: dict[str, str]
    CreateIndex: int
    ModifyIndex: int


class NomadStatValue(TypedDict, total=False):
    """``api.StatValue``: one device statistic; only the ``*Val`` keys that apply are sent."""

    FloatNumeratorVal: float
    FloatDenominatorVal: float
    IntNumeratorVal: int
    IntDenominatorVal: int
    StringVal: str
    """``N/A`` (the nvidia plugin's word) when the device cannot say."""
    BoolVal: bool
    Unit: str
    Desc: str


class NomadStatObject(TypedDict, total=False):
    """``api.StatObject``: named statistics, possibly nested."""

    Nested: dict[str, NomadStatObject] | None
    Attributes: dict[str, NomadStatValue] | None
    """The nvidia plugin's: ``GPU utilization`` (%), ``Memory state`` (used / total MiB), ..."""


class NomadDeviceStats(TypedDict, total=False):
    """``api.DeviceStats``: one device instance's statistics."""

    Summary: NomadStatValue | None
    """The nvidia plugin's summary is its ``Memory state``."""
    Stats: NomadStatObject | None
    Timestamp: str


class NomadDeviceGroupStats(TypedDict, total=False):
    """``api.DeviceGroupStats``: the statistics of a task's devices of one kind."""

    Vendor: str
    Type: str
    """``gpu`` for GPUs."""
    Name: str
    InstanceStats: dict[str, NomadDeviceStats] | None
    """Device instance ID (a GPU's UUID) → its statistics."""


class NomadMemoryStats(TypedDict, total=False):
    """``api.MemoryStats``, in bytes; ``Measured`` names the keys the driver really measured."""

    RSS: int
    Cache: int
    Swap: int
    MappedFile: int
    Usage: int
    MaxUsage: int
    KernelUsage: int
    KernelMaxUsage: int
    Measured: list[str] | None


class NomadCpuStats(TypedDict, total=False):
    """``api.CpuStats``; ``Percent`` is of one core, since the client's previous look."""

    SystemMode: float
    UserMode: float
    TotalTicks: float
    ThrottledPeriods: int
    ThrottledTime: int
    Percent: float
    Measured: list[str] | None


class NomadResourceUsage(TypedDict, total=False):
    """``api.ResourceUsage``: what a task (or a whole allocation) uses."""

    MemoryStats: NomadMemoryStats | None
    CpuStats: NomadCpuStats | None
    DeviceStats: list[NomadDeviceGroupStats] | None


class NomadTaskResourceUsage(TypedDict, total=False):
    """``api.TaskResourceUsage``: one task's use, with its processes' where measured."""

    ResourceUsage: NomadResourceUsage | None
    Timestamp: int
    """Unix time in nanoseconds."""
    Pids: dict[str, NomadResourceUsage] | None


class NomadAllocResourceUsage(TypedDict, total=False):
    """``api.AllocResourceUsage``: ``GET /v1/client/allocation/:id/stats``. ``Tasks`` lists
    the tasks the client has figures for; ``ResourceUsage`` is their sum."""

    ResourceUsage: NomadResourceUsage | None
    Tasks: dict[str, NomadTaskResourceUsage] | None
    Timestamp: int
