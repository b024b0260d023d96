"""The nodes page's live figures: per node and per GPU, what Winslow's stages hold, what is
free, what the node uses now (its latest telemetry sample), and which run of which project
runs where. The page renders them at first paint and asks ``GET /api/v1/nodes/live``
every few seconds after (``core/node_load.py`` computes them).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from fastapi import APIRouter
from pydantic import BaseModel

from winslow.api.access import SignedIn
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.routes import API_V1
from winslow.core.node_load import GpuLoad, NodeLoad, node_loads
from winslow.core.telemetry import NodeSample
from winslow.store.rows import now
from winslow.store.telemetry import latest_sample

router = APIRouter(prefix=API_V1, tags=["nodes"])

FRESH_SAMPLE = timedelta(seconds=60)
"""A sample older than this says nothing of now: the node shows no measured figures."""


class GpuLivePublic(BaseModel):
    index: int
    name: str
    memory_mb: int
    healthy: bool
    runs: list[int]
    """IDs of the active runs that hold this GPU; empty when it is free."""
    free: bool
    """Healthy and held by no run known to hold it (see the node's ``gpus_unnamed``)."""
    utilization_percent: float | None
    memory_used_mb: float | None
    temperature_c: float | None
    power_w: float | None


class RunHerePublic(BaseModel):
    """One active run on a node, named for a person, with a link to it."""

    id: int
    project: str
    stage: str
    state: str
    gpus: list[int]
    """The GPUs' indices on the node; empty where the scheduler picked them (Nomad)."""
    gpu_count: int
    cpus: float
    memory_mb: int
    started_at: datetime | None
    link: str
    """The run on its project's page."""


class NodeLivePublic(BaseModel):
    name: str
    status: str
    eligible: bool
    drain: str | None
    """How the node is drained, in words; None when it is not."""
    cpus: float
    memory_mb: int
    cpus_held: float
    """CPUs that the stages on this node asked for."""
    cpus_free: float
    memory_held_mb: int
    memory_free_mb: int
    gpus_total: int
    gpus_held: int
    gpus_free: int
    """Healthy GPUs that no stage holds."""
    gpus_unnamed: int
    """GPUs held by runs whose devices the scheduler picked (Nomad): counted as held, but
    which ones is not known."""
    measured_at: datetime | None
    """When the figures below were sampled; None when no recent sample exists."""
    cpu_percent: float | None
    """Mean busy share of all cores, 0 to 100."""
    memory_used_mb: float | None
    memory_total_mb: float | None
    disk_used_bytes: float | None
    disk_total_bytes: float | None
    gpus: list[GpuLivePublic]
    runs: list[RunHerePublic]


class NodesLivePublic(BaseModel):
    data: list[NodeLivePublic]
    gpus_total: int
    gpus_free: int
    runs: int
    """Active runs placed on a node, of all nodes."""


def nodes_live(context: AppContext) -> NodesLivePublic:
    """Every node's live figures, from the backend, the active runs and the telemetry."""
    nodes = context.backend.nodes()
    since = now() - FRESH_SAMPLE
    samples: dict[str, NodeSample] = {}
    for node in nodes:
        sample = latest_sample(context.store, node.name, since)
        if sample is not None:
            samples[node.name] = sample
    names = {p.id: p.name for p in context.store.kept_projects()}
    loads = node_loads(nodes, context.store.active_runs(), samples)
    data = [_node_public(load, names) for load in loads]
    return NodesLivePublic(
        data=data,
        gpus_total=sum(n.gpus_total for n in data),
        gpus_free=sum(n.gpus_free for n in data),
        runs=sum(len(n.runs) for n in data),
    )


@router.get("/nodes/live", response_model=NodesLivePublic)
def live_nodes(_access: SignedIn, context: ContextDep, _user: CurrentUser) -> NodesLivePublic:
    """Per node and GPU: what the stages hold, what is free, what is used now (the latest
    telemetry sample, when one is at most a minute old), and the runs on it."""
    return nodes_live(context)


def _node_public(load: NodeLoad, names: dict[str, str]) -> NodeLivePublic:
    node, sample = load.node, load.sample
    return NodeLivePublic(
        name=node.name,
        status=node.status,
        eligible=node.eligible,
        drain=node.drain.describe() if node.drain is not None else None,
        cpus=node.cpus,
        memory_mb=node.memory_mb,
        cpus_held=load.cpus_held,
        cpus_free=load.cpus_free,
        memory_held_mb=load.memory_held_mb,
        memory_free_mb=load.memory_free_mb,
        gpus_total=len(load.gpus),
        gpus_held=load.gpus_held,
        gpus_free=load.gpus_free,
        gpus_unnamed=load.gpus_unnamed,
        measured_at=sample.at if sample else None,
        cpu_percent=sample.cpu_mean if sample else None,
        memory_used_mb=sample.memory_used_mb if sample else None,
        memory_total_mb=sample.memory_total_mb if sample else None,
        disk_used_bytes=sample.disk_used_bytes if sample else None,
        disk_total_bytes=sample.disk_total_bytes if sample else None,
        gpus=[_gpu_public(g) for g in load.gpus],
        runs=[
            RunHerePublic(
                id=run.id,
                project=names.get(run.project_id, run.project_id),
                stage=run.stage,
                state=run.state.value,
                gpus=list(run.gpu_indices),
                gpu_count=len(run.gpu_indices) or run.gpus,
                cpus=run.cpus,
                memory_mb=run.memory_mb,
                started_at=run.started_at,
                link=f"/projects/{quote(names.get(run.project_id, run.project_id))}#run-{run.id}",
            )
            for run in load.runs
        ],
    )


def _gpu_public(load: GpuLoad) -> GpuLivePublic:
    gpu, sample = load.gpu, load.sample
    return GpuLivePublic(
        index=gpu.index,
        name=gpu.name,
        memory_mb=gpu.memory_mb,
        healthy=gpu.healthy,
        runs=list(load.runs),
        free=load.free,
        utilization_percent=sample.utilization_percent if sample else None,
        memory_used_mb=sample.memory_used_mb if sample else None,
        temperature_c=sample.temperature_c if sample else None,
        power_w=sample.power_w if sample else None,
    )
