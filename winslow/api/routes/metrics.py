"""``GET /metrics``: Winslow's metrics in Prometheus's text format, for a scraper.

It sits at the root, where Prometheus looks by default, outside ``/api/v1/`` and the
OpenAPI document (it answers text, not JSON). A scraper has no console session, so it
shows an admin API token as a bearer token (Prometheus's ``authorization`` block); with
``WINSLOW_METRICS_PUBLIC=true`` anybody may read it, for a scraper on a trusted network.
The counts by state are read from the store at each scrape; see ``winslow/metrics.py``.
"""

from __future__ import annotations

import weakref

from fastapi import APIRouter, Request, Response

from winslow import metrics
from winslow.api.deps import ContextDep, authenticate
from winslow.core.states import ProjectState, StageRunState
from winslow.errors import ForbiddenError
from winslow.storage.objects import ObjectStore

router = APIRouter(include_in_schema=False)

_probes: weakref.WeakKeyDictionary[ObjectStore, metrics.CachedProbe] = weakref.WeakKeyDictionary()
"""The cached ``answers()`` of each object store, for a server that set no probe."""


@router.get("/metrics")
def scrape(request: Request, context: ContextDep) -> Response:
    """Every metric, as ``text/plain; version=0.0.4``; 401 without an admin token (unless
    public), 403 with another token."""
    if not context.settings.metrics_public:
        caller = authenticate(request, context.store)
        if not caller.principal.acts_as_admin:
            raise ForbiddenError(
                f"'{caller.name}' may not read /metrics with these credentials; use an admin "
                "token (`winslow token create NAME --scope admin`), or set "
                "WINSLOW_METRICS_PUBLIC=true."
            )
    runs = context.store.run_counts()
    projects = context.store.project_counts()
    metrics.set_counts(
        {state.value: runs.get(state.value, 0) for state in StageRunState},
        {state.value: projects.get(state.value, 0) for state in ProjectState},
    )
    probe = _probes.get(context.objects)
    if probe is None:
        probe = _probes.setdefault(context.objects, metrics.CachedProbe(context.objects.answers))
    return Response(metrics.exposition(s3_up=probe), media_type=metrics.CONTENT_TYPE)
