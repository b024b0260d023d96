"""Keeping object storage tidy: garbage collection of contents no manifest needs."""

from __future__ import annotations

from fastapi import APIRouter

from winslow.api.access import AdminCaller
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import GcBody, GcPublic
from winslow.api.routes import API_V1
from winslow.storage.gc import collect

router = APIRouter(prefix=API_V1, tags=["admin"])


@router.post("/gc", response_model=GcPublic)
def garbage_collect(
    _access: AdminCaller, body: GcBody, context: ContextDep, _user: CurrentUser
) -> GcPublic:
    """Remove contents no workspace version references any more (``dry_run``: only say which).

    Contents younger than ``grace_seconds`` stay, as does whatever a stage-out in flight
    is about to reference. Pending records of stage-outs whose retry published go, and
    unfinished uploads with no new part for ``multipart_grace_seconds`` are aborted.
    """
    report = collect(
        context.objects,
        dry_run=body.dry_run,
        grace_seconds=body.grace_seconds,
        multipart_grace_seconds=body.multipart_grace_seconds,
    )
    return GcPublic(
        dry_run=report.dry_run,
        manifests=report.manifests,
        referenced=report.referenced,
        blobs=report.blobs,
        blob_bytes=report.blob_bytes,
        kept_young=report.kept_young,
        removable=[key for key, _ in report.removable],
        removable_bytes=report.removable_bytes,
        removed=report.removed,
        removed_bytes=report.removed_bytes,
        stale_pending=report.stale_pending,
        finished_pending=report.finished_pending,
        uploads_active=report.uploads_active,
        uploads_abandoned=[key for key, _ in report.uploads_abandoned],
        uploads_aborted=report.uploads_aborted,
    )
