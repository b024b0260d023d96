"""The nodes stages run on, with their GPUs and the runs on each."""

from __future__ import annotations

from fastapi import APIRouter

from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import GpuPublic, NodePublic, NodesPublic

router = APIRouter(tags=["nodes"])


@router.get("/nodes", response_model=NodesPublic)
def list_nodes(context: ContextDep, _user: CurrentUser) -> NodesPublic:
    active = context.store.active_runs()
    return NodesPublic(
        data=[
            NodePublic(
                name=node.name,
                status=node.status,
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
