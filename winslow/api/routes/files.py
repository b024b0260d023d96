"""Files in object storage: the resource pool (browse, upload, download, delete) and
each run's workspace (browse, download).

Bytes never pass through the server: uploads are S3 multipart uploads whose parts the
client sends to presigned URLs, downloads are presigned (ranged, resumable) GETs. So the
server's memory stays flat whatever the file size.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import RedirectResponse

from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import (
    DownloadPublic,
    FileEntry,
    FilesPublic,
    PartUrlsBody,
    PartUrlsPublic,
    StoredPart,
    StoredPartsPublic,
    UploadComplete,
    UploadCreate,
    UploadPublic,
)
from winslow.core.paths import clean_relative_path
from winslow.errors import NotFoundError, ValidationError
from winslow.storage.keys import resource_key, resource_prefix
from winslow.storage.objects import choose_part_size

router = APIRouter(tags=["files"])

PathQuery = Annotated[str, Query(description="Path relative to the pool or workspace")]


def _listing(context: AppContext, prefix: str, path: str, recursive: bool) -> FilesPublic:
    folder = clean_relative_path(path, allow_empty=True)
    base = prefix + (folder + "/" if folder else "")
    entries = context.objects.list(base, recursive=recursive)
    return FilesPublic(
        path=folder,
        data=[
            FileEntry(
                path=(folder + "/" if folder else "") + entry.path.rstrip("/"),
                name=entry.path.rstrip("/").rsplit("/", 1)[-1],
                size=entry.size,
                is_dir=entry.is_dir,
                modified=entry.modified,
            )
            for entry in entries
        ],
    )


def _download(
    context: AppContext, key: str, path: str, redirect: bool
) -> Response | DownloadPublic:
    entry = context.objects.head(key)
    name = path.rsplit("/", 1)[-1]
    url = context.objects.presign_get(key, filename=name)
    if redirect:
        return RedirectResponse(url, status_code=307)
    return DownloadPublic(url=url, size=entry.size, name=name)


# -- resource pool ------------------------------------------------------------------------


@router.get("/resources", response_model=FilesPublic)
def list_resources(
    context: ContextDep, _user: CurrentUser, path: PathQuery = "", recursive: bool = False
) -> FilesPublic:
    return _listing(context, resource_prefix(), path, recursive)


@router.get("/resources/download", response_model=DownloadPublic)
def download_resource(
    path: PathQuery, context: ContextDep, _user: CurrentUser, redirect: bool = False
) -> Response | DownloadPublic:
    """A presigned URL of the file (``redirect=true``: a 307 to it). Range requests work."""
    clean = clean_relative_path(path)
    try:
        return _download(context, resource_key(clean), clean, redirect)
    except NotFoundError:
        raise NotFoundError(
            f"No file '{clean}' in the resource pool; `winslow resources ls` shows what is there."
        ) from None


@router.delete("/resources", status_code=204)
def delete_resource(
    path: PathQuery, context: ContextDep, _user: CurrentUser, recursive: bool = False
) -> Response:
    clean = clean_relative_path(path)
    key = resource_key(clean)
    if recursive:
        removed = context.objects.delete_prefix(key + "/")
        try:
            context.objects.head(key)
            context.objects.delete(key)
            removed += 1
        except NotFoundError:
            pass
        if not removed:
            raise NotFoundError(f"Nothing at '{clean}' in the resource pool.")
        return Response(status_code=204)
    try:
        context.objects.head(key)
    except NotFoundError:
        hint = (
            " It is a folder; delete it with recursive=true."
            if context.objects.list(key + "/")
            else ""
        )
        raise NotFoundError(f"No file '{clean}' in the resource pool.{hint}") from None
    context.objects.delete(key)
    return Response(status_code=204)


@router.post("/resources/uploads", response_model=UploadPublic, status_code=201)
def create_upload(body: UploadCreate, context: ContextDep, _user: CurrentUser) -> UploadPublic:
    """Begin a multipart upload; the file appears only once it is completed."""
    clean = clean_relative_path(body.path)
    part_size = choose_part_size(body.size)
    upload_id = context.objects.create_multipart(resource_key(clean))
    count = max(1, -(-body.size // part_size))
    return UploadPublic(
        upload_id=upload_id, path=clean, size=body.size, part_size=part_size, part_count=count
    )


@router.post("/resources/uploads/{upload_id}/urls", response_model=PartUrlsPublic)
def part_urls(
    upload_id: str, body: PartUrlsBody, context: ContextDep, _user: CurrentUser
) -> PartUrlsPublic:
    """Presigned URLs to PUT the given parts to (numbers 1 to 10,000)."""
    clean = clean_relative_path(body.path)
    bad = [n for n in body.part_numbers if not 1 <= n <= 10_000]
    if bad:
        raise ValidationError(f"Part numbers run from 1 to 10000; got {bad[:5]}.")
    key = resource_key(clean)
    return PartUrlsPublic(
        urls={n: context.objects.presign_part(key, upload_id, n) for n in body.part_numbers}
    )


@router.get("/resources/uploads/{upload_id}/parts", response_model=StoredPartsPublic)
def stored_parts(
    upload_id: str, path: PathQuery, context: ContextDep, _user: CurrentUser
) -> StoredPartsPublic:
    """The parts already stored, so an interrupted upload goes on where it stopped."""
    key = resource_key(clean_relative_path(path))
    return StoredPartsPublic(
        parts=[
            StoredPart(part_number=p["PartNumber"], etag=p["ETag"], size=p["Size"])
            for p in context.objects.list_parts(key, upload_id)
        ]
    )


@router.post("/resources/uploads/{upload_id}/complete", response_model=FileEntry)
def complete_upload(
    upload_id: str, body: UploadComplete, context: ContextDep, _user: CurrentUser
) -> FileEntry:
    clean = clean_relative_path(body.path)
    key = resource_key(clean)
    context.objects.complete_multipart(
        key, upload_id, [(p.part_number, p.etag) for p in body.parts]
    )
    entry = context.objects.head(key)
    return FileEntry(
        path=clean,
        name=clean.rsplit("/", 1)[-1],
        size=entry.size,
        is_dir=False,
        modified=entry.modified,
    )


@router.delete("/resources/uploads/{upload_id}", status_code=204)
def abort_upload(
    upload_id: str, path: PathQuery, context: ContextDep, _user: CurrentUser
) -> Response:
    context.objects.abort_multipart(resource_key(clean_relative_path(path)), upload_id)
    return Response(status_code=204)


# -- workspaces ---------------------------------------------------------------------------


def _workspace_prefix(context: AppContext, ref: str, run_id: int | None) -> tuple[str, int]:
    project = context.store.get_project(ref)
    runs = context.store.runs(project.id)
    if run_id is None:
        ended = [run for run in runs if not run.active]
        if not ended:
            raise NotFoundError(
                f"Project '{project.name}' has no finished run yet, so no workspace to show."
            )
        run = ended[-1]
    else:
        run = context.store.get_run(project.id, run_id)
    return run.workspace_prefix, run.id


@router.get("/projects/{ref}/workspace", response_model=FilesPublic)
def list_workspace(
    ref: str,
    context: ContextDep,
    _user: CurrentUser,
    run: int | None = None,
    path: PathQuery = "",
    recursive: bool = False,
) -> FilesPublic:
    """Files of a run's workspace (default: the latest finished run)."""
    prefix, _ = _workspace_prefix(context, ref, run)
    return _listing(context, prefix, path, recursive)


@router.get("/projects/{ref}/workspace/download", response_model=DownloadPublic)
def download_workspace_file(
    ref: str,
    path: PathQuery,
    context: ContextDep,
    _user: CurrentUser,
    run: int | None = None,
    redirect: bool = False,
) -> Response | DownloadPublic:
    prefix, run_id = _workspace_prefix(context, ref, run)
    clean = clean_relative_path(path)
    try:
        return _download(context, prefix + clean, clean, redirect)
    except NotFoundError:
        raise NotFoundError(f"No file '{clean}' in the workspace of run {run_id}.") from None
