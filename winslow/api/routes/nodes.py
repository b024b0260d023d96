"""The nodes stages run on, with their GPUs and the runs on each."""

from __future__ import annotations

from fastapi import APIRouter

from winslow.api.access import SignedIn
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import GpuPublic, NodeDrainPublic, NodePublic, NodesPublic
from winslow.api.routes import API_V1

router = APIRouter(prefix=API_V1, tags=["nodes"])


@router.get("/nodes", response_model=NodesPublic)
def list_nodes(_access: SignedIn, context: ContextDep, _user: CurrentUser) -> NodesPublic:
    active = context.store.active_runs()
    return NodesPublic(
        data=[
            NodePublic(
                name=node.name,
                status=node.status,
                eligible=node.eligible,
                drain=None
                if node.drain is None
                else NodeDrainPublic(
                    started_at=node.drain.started_at,
                    deadline=node.drain.deadline,
                    forced=node.drain.forced,
                    summary=node.drain.describe(),
                ),
                cpus=node.cpus,
                memory_mb=node.memory_mb,
                gpus=[
                    GpuPublic(index=g.index, name=g.name, memory_mb=g.memory_mb, healthy=g.healthy)
                    for g in node.gpus
                ],
                runs=[run.id for run in active if run.node == node.name],
            )
            for node in context.backend.nodes()
        ]
    )
