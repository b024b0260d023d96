"""Where Nomad's own web UI shows a run: its job and the allocation that ran it.

The console links a run to its job from the page's data (``console_project.nomad_links``);
the allocation is known only to Nomad, so it is asked for here when a person looks at one
run, never for every run of a page. Paths are the UI's own: ``/ui/jobs/<id>@<namespace>``
and ``/ui/allocations/<id>``.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import APIRouter
from pydantic import BaseModel

from winslow.api.access import ProjectReader
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import RunIdPath
from winslow.api.routes import API_V1
from winslow.api.routes.console_project import nomad_links
from winslow.errors import BackendError

log = logging.getLogger(__name__)

router = APIRouter(prefix=f"{API_V1}/projects", tags=["projects"])


class NomadLinksPublic(BaseModel):
    job: str | None
    """The run's job in the Nomad UI; None off Nomad, or before the run has a job."""
    allocation: str | None
    """The allocation that runs (or ran) it; None before Nomad placed one, or when Nomad
    does not answer now."""


def job_url(base: str, job_id: str, namespace: str) -> str:
    """The Nomad UI's page of a job (the UI names a job ``<id>@<namespace>``)."""
    return f"{base}/jobs/{quote(job_id, safe='')}@{quote(namespace, safe='')}"


def allocation_url(base: str, alloc_id: str) -> str:
    return f"{base}/allocations/{quote(alloc_id, safe='')}"


@router.get("/{ref}/runs/{run_id}/nomad", response_model=NomadLinksPublic)
def run_nomad_links(
    _access: ProjectReader, ref: str, run_id: RunIdPath, context: ContextDep, _user: CurrentUser
) -> NomadLinksPublic:
    """Links to the run's job and allocation in the Nomad UI; none off Nomad."""
    project = context.store.get_project(ref)
    run = context.store.get_run(project.id, run_id)
    links = nomad_links(context)
    if links is None or context.backend.name != "nomad" or not run.job_id:
        return NomadLinksPublic(job=None, allocation=None)
    # Here, not at the top: a server on the local backend never loads Nomad's modules.
    from winslow.backends.nomad.backend import NomadBackend
    from winslow.backends.nomad.status import latest_allocation

    backend = context.backend
    if not isinstance(backend, NomadBackend):
        return NomadLinksPublic(job=None, allocation=None)
    base = links["base"]
    allocation = None
    try:
        allocs, _index = backend.client.jobs.allocations(run.job_id)
        latest = latest_allocation(allocs)
        if latest is not None and latest.get("ID"):
            allocation = allocation_url(base, latest["ID"])
    except BackendError as error:
        # The job link still helps; the allocation is looked up again on the next view.
        log.info("allocations of job %s: %s", run.job_id, error)
    return NomadLinksPublic(
        job=job_url(base, run.job_id, links["namespace"]), allocation=allocation
    )
