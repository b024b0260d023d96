"""Each run's workspace: browse any version, download a file or a whole folder, upload a fix.

A workspace is a manifest (see ``winslow.storage.manifest``); listing it reads one small
object, a file download is a presigned, ranged URL of the file's content with the file's
own name, and a folder comes as a zip archive streamed through the server piece by
piece, so its memory stays flat whatever the folder holds.

A person may upload a file into the workspace of an ended run while nothing of the
project runs (a fix before resuming). The bytes go to object storage through the same
checked multipart flow as the resource pool; completing it publishes a new workspace
version (the earlier ones stay) and records it in the project's history.
"""

from __future__ import annotations

import secrets
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from winslow.api.access import ProjectReader, ProjectSteerer
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import (
    DownloadPublic,
    FileEntry,
    PartUrlsBody,
    PartUrlsPublic,
    RunIdPath,
    RunIdQuery,
    StoredPartsPublic,
    UploadComplete,
    UploadPublic,
    WorkspaceFilePublic,
    WorkspacePublic,
    WorkspaceUploadCreate,
)
from winslow.api.routes import API_V1
from winslow.api.routes.files import (
    REDIRECT_ANSWER,
    begin_upload,
    cancel_upload,
    finish_upload,
    list_upload_parts,
    presign_upload_parts,
)
from winslow.core.models import Run
from winslow.core.paths import clean_relative_path
from winslow.errors import ConflictError, NotFoundError, ValidationError
from winslow.storage import keys, workspaces
from winslow.storage.manifest import DEFAULT_FILE_MODE, FileRecord, Manifest, parse_time
from winslow.storage.objects import ObjectEntry, ObjectStore, content_disposition
from winslow.units import format_bytes

router = APIRouter(prefix=API_V1, tags=["workspaces"])

PathQuery = Annotated[str, Query(description="Path relative to the workspace")]
VersionQuery = Annotated[
    int | None, Query(ge=1, description="Workspace version; default: the latest")
]

ARCHIVE_CHUNK_BYTES = 1024 * 1024
"""Bytes read from storage per step while streaming an archive."""


def pick_run(context: AppContext, ref: str, run_id: int | None) -> tuple[str, Run]:
    """Return the project's ID and the run meant: ``run_id``, or the latest ended run."""
    project = context.store.get_project(ref)
    if run_id is not None:
        return project.id, context.store.get_run(project.id, run_id)
    ended = [
        run for run in context.store.runs(project.id) if not run.active and not run.workspace_pruned
    ]
    if not ended:
        raise NotFoundError(
            f"Project '{project.name}' has no ended run yet, so no workspace to show."
        )
    return project.id, ended[-1]


def read_workspace(
    objects: ObjectStore, run: Run, version: int | None
) -> tuple[int, list[int], Manifest]:
    """Return the version shown, every version there is, and that version's manifest.

    A run that wrote nothing has no version; it shows as version 0 and empty. A run
    whose workspace the retention policy pruned raises ``NotFoundError`` saying so.
    """
    if run.workspace_pruned:
        raise NotFoundError(
            f"Run {run.id}'s workspace was pruned by the retention policy; the stage's "
            "current and latest runs keep theirs (`winslow project show` lists the runs)."
        )
    if not run.workspace_prefix:
        return 0, [], Manifest()
    numbers = workspaces.version_numbers(objects, run.workspace_prefix)
    if version is not None and version not in numbers:
        have = ", ".join(map(str, numbers)) or "none"
        raise NotFoundError(f"Run {run.id} has no workspace version {version}; it has: {have}.")
    if not numbers:
        return 0, [], Manifest()
    shown = version or numbers[-1]
    found = workspaces.read_version(objects, run.workspace_prefix, shown)
    assert found is not None
    return shown, numbers, found.manifest


def _entry(record: FileRecord, manifest: Manifest) -> FileEntry:
    return FileEntry(
        path=record.path,
        name=record.path.rsplit("/", 1)[-1],
        size=record.size,
        is_dir=False,
        modified=parse_time(record.modified or manifest.created),
        link=record.link,
    )


@router.get("/projects/{ref}/workspace", response_model=WorkspacePublic)
def list_workspace(
    _access: ProjectReader,
    ref: str,
    context: ContextDep,
    _user: CurrentUser,
    run: RunIdQuery = None,
    version: VersionQuery = None,
    path: PathQuery = "",
    recursive: bool = False,
) -> WorkspacePublic:
    """Files of a run's workspace (default: the latest ended run, its latest version)."""
    _, chosen = pick_run(context, ref, run)
    folder = clean_relative_path(path, allow_empty=True)
    shown, numbers, manifest = read_workspace(context.objects, chosen, version)
    if folder and folder in manifest.files:
        raise NotFoundError(
            f"'{folder}' is a file, not a folder, in the workspace of run {chosen.id}."
        )
    if recursive:
        entries = [_entry(r, manifest) for r in manifest.below(folder)]
    else:
        files, folders = manifest.folder(folder)
        entries = [
            FileEntry(
                path=name,
                name=name.rsplit("/", 1)[-1],
                size=sum(r.size for r in manifest.below(name)),
                is_dir=True,
                modified=None,
            )
            for name in folders
        ] + [_entry(r, manifest) for r in files]
    if folder and not entries:
        raise NotFoundError(f"No folder '{folder}' in the workspace of run {chosen.id}.")
    return WorkspacePublic(
        run=chosen.id,
        stage=chosen.stage,
        version=shown,
        versions=numbers,
        origin=manifest.origin if shown else "",
        note=manifest.note,
        path=folder,
        data=entries,
    )


@router.get(
    "/projects/{ref}/workspace/download", response_model=DownloadPublic, responses=REDIRECT_ANSWER
)
def download_workspace_file(
    _access: ProjectReader,
    ref: str,
    path: PathQuery,
    context: ContextDep,
    _user: CurrentUser,
    run: RunIdQuery = None,
    version: VersionQuery = None,
    redirect: bool = False,
) -> Response | DownloadPublic:
    """A presigned URL of one file (``redirect=true``: a 307 to it); Range requests work."""
    _, chosen = pick_run(context, ref, run)
    clean = clean_relative_path(path)
    _, _, manifest = read_workspace(context.objects, chosen, version)
    record = manifest.files.get(clean)
    if record is None or record.link is not None:
        hint = (
            " It is a folder: download it as an archive (/workspace/archive)."
            if manifest.below(clean)
            else ""
        )
        raise NotFoundError(f"No file '{clean}' in the workspace of run {chosen.id}.{hint}")
    name = clean.rsplit("/", 1)[-1]
    url = context.objects.presign_get(record.blob, filename=name)
    if redirect:
        return RedirectResponse(url, status_code=307)
    # A blob's key names its content (a hash, or one upload's own key): it never changes.
    return DownloadPublic(
        url=url,
        size=record.size,
        name=name,
        version=record.blob,
        modified=_entry(record, manifest).modified,
    )


@router.get(
    "/projects/{ref}/workspace/archive",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "A zip archive."}},
)
def download_workspace_archive(
    _access: ProjectReader,
    ref: str,
    context: ContextDep,
    _user: CurrentUser,
    run: RunIdQuery = None,
    version: VersionQuery = None,
    path: PathQuery = "",
) -> StreamingResponse:
    """A zip archive of a folder of the workspace ("" for all of it), streamed."""
    project_id, chosen = pick_run(context, ref, run)
    folder = clean_relative_path(path, allow_empty=True)
    _, _, manifest = read_workspace(context.objects, chosen, version)
    records = manifest.below(folder)
    if folder and not records:
        raise NotFoundError(f"No folder '{folder}' in the workspace of run {chosen.id}.")
    base = folder.rsplit("/", 1)[0] + "/" if "/" in folder else ""
    leaf = folder.rsplit("/", 1)[-1] if folder else "workspace"
    name = f"{project_id}-run{chosen.id}-{leaf}.zip"
    stamp = parse_time(manifest.created) or datetime.now(UTC)
    return StreamingResponse(
        _zip_stream(context.objects, records, base, stamp),
        media_type="application/zip",
        headers={"Content-Disposition": content_disposition(name)},
    )


class _Sink:
    """Where ``zipfile`` writes; the stream takes what piled up after each step.

    It has no ``tell`` or ``seek``, so ``zipfile`` writes sizes after each entry (data
    descriptors) instead of going back, which a stream cannot do.
    """

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.pieces)
        self.pieces.clear()
        return data


def _zip_time(record: FileRecord, stamp: datetime) -> tuple[int, int, int, int, int, int]:
    """The file's own time for its zip entry (its version's where the manifest has none);
    a zip cannot say a time before 1980."""
    written = parse_time(record.modified) if record.modified else None
    moment = max(written or stamp, datetime(1980, 1, 1, tzinfo=UTC))
    year, month, day, hour, minute, second = moment.timetuple()[:6]
    return year, month, day, hour, minute, second


def _zip_stream(
    objects: ObjectStore, records: list[FileRecord], base: str, stamp: datetime
) -> Iterator[bytes]:
    sink = _Sink()
    # Stored, not deflated: videos and model weights do not shrink, and a stream must
    # not wait on compression.
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[call-overload]
        for record in records:
            info = zipfile.ZipInfo(record.path[len(base) :], date_time=_zip_time(record, stamp))
            if record.link is not None:
                info.external_attr = 0o120777 << 16
                archive.writestr(info, record.link)
                yield sink.take()
                continue
            info.external_attr = (0o100000 | record.mode) << 16
            with archive.open(info, mode="w", force_zip64=record.size >= 2**31) as entry:
                for chunk in objects.iter_chunks(record.blob, ARCHIVE_CHUNK_BYTES):
                    entry.write(chunk)
                    if sum(len(p) for p in sink.pieces) >= ARCHIVE_CHUNK_BYTES:
                        yield sink.take()
            yield sink.take()
    yield sink.take()


# -- uploading a fix ---------------------------------------------------------------------

UploadsPrefix = "/projects/{ref}/runs/{run_id}/workspace/uploads"


def _writable_run(context: AppContext, ref: str, run_id: int) -> tuple[str, Run]:
    """Return the project ID and run whose workspace may take a file now, or raise 409."""
    project = context.store.get_project(ref)
    run = context.store.get_run(project.id, run_id)
    _refuse_while_running(project.name, context.store.runs(project.id), run_id)
    if not run.workspace_prefix:
        raise ConflictError(f"Run {run_id} has no workspace (it never started).")
    return project.id, run


def _refuse_while_running(name: str, runs: list[Run], run_id: int) -> None:
    active = [run for run in runs if run.active]
    if not active:
        return
    doing = ", ".join(f"'{run.stage}' (run {run.id})" for run in active)
    raise ConflictError(
        f"Project '{name}' has {doing} running; a workspace may change only while nothing "
        f"of the project runs. Pause the project and wait for it to stop, then upload into "
        f"run {run_id}'s workspace."
    )


def _new_file_path(project_id: str, run_id: int, path: str) -> str:
    """``path`` cleaned, if a person may create a file there: its key would fit object
    storage (stages copy workspaces file by file) and no invisible character is in it."""
    clean = keys.check_new_path(clean_relative_path(path))
    keys.workspace_key(project_id, run_id, clean)
    return clean


def _split_upload_id(upload_id: str) -> tuple[str, str]:
    """Our upload ID is ``<token>.<S3's upload ID>``; the token names the content's key."""
    token, dot, s3_id = upload_id.partition(".")
    if not dot or not token.isalnum() or not s3_id:
        raise ValidationError(
            f"{upload_id[:80]!r} is not a workspace upload ID; use the one the upload began with."
        )
    return keys.upload_blob_key(token), s3_id


def _upload_of_run(context: AppContext, ref: str, run_id: int, upload_id: str) -> tuple[str, str]:
    """Return the upload's key and S3 upload ID, once the run is known to exist (else 404);
    for the calls that only read or drop an upload, which may go on while stages run."""
    key, s3_id = _split_upload_id(upload_id)
    context.store.get_run(context.store.get_project(ref).id, run_id)
    return key, s3_id


@router.post(UploadsPrefix, response_model=UploadPublic, status_code=201)
def create_workspace_upload(
    _access: ProjectSteerer,
    ref: str,
    run_id: RunIdPath,
    body: WorkspaceUploadCreate,
    context: ContextDep,
    _user: CurrentUser,
) -> UploadPublic:
    """Begin uploading a file into a run's workspace (refused while the project runs)."""
    project_id, run = _writable_run(context, ref, run_id)
    clean = _new_file_path(project_id, run_id, body.path)
    _, _, manifest = read_workspace(context.objects, run, None)
    manifest.with_file(FileRecord(path=clean), created="", origin="upload", note="")  # path check
    token = secrets.token_hex(16)
    upload = begin_upload(context.objects, keys.upload_blob_key(token), clean, body.size)
    return upload.model_copy(update={"upload_id": f"{token}.{upload.upload_id}"})


@router.post(UploadsPrefix + "/{upload_id}/urls", response_model=PartUrlsPublic)
def workspace_part_urls(
    _access: ProjectSteerer,
    ref: str,
    run_id: RunIdPath,
    upload_id: str,
    body: PartUrlsBody,
    context: ContextDep,
    _user: CurrentUser,
) -> PartUrlsPublic:
    key, s3_id = _split_upload_id(upload_id)
    project_id, _ = _writable_run(context, ref, run_id)
    # The key comes from the upload ID; a path no upload could have begun with is still
    # the client's mistake, answered as when the upload began.
    _new_file_path(project_id, run_id, body.path)
    return presign_upload_parts(context.objects, key, s3_id, body.part_numbers)


@router.get(UploadsPrefix + "/{upload_id}/parts", response_model=StoredPartsPublic)
def workspace_stored_parts(
    _access: ProjectSteerer,
    ref: str,
    run_id: RunIdPath,
    upload_id: str,
    context: ContextDep,
    _user: CurrentUser,
) -> StoredPartsPublic:
    key, s3_id = _upload_of_run(context, ref, run_id, upload_id)
    return list_upload_parts(context.objects, key, s3_id)


@router.post(UploadsPrefix + "/{upload_id}/complete", response_model=WorkspaceFilePublic)
def complete_workspace_upload(
    _access: ProjectSteerer,
    ref: str,
    run_id: RunIdPath,
    upload_id: str,
    body: UploadComplete,
    context: ContextDep,
    user: CurrentUser,
) -> WorkspaceFilePublic:
    """Check the parts, then publish the workspace's next version with the file in it."""
    key, s3_id = _split_upload_id(upload_id)
    project_id, _ = _writable_run(context, ref, run_id)
    clean = _new_file_path(project_id, run_id, body.path)
    entry = finish_upload(context.objects, key, s3_id, body.size, body.parts)
    # Under the project's lock: no stage of it can start between the check and the new
    # version, so a stage never starts from a workspace that changes under it.
    with context.store.project_transaction(ref) as tx:
        runs = tx.runs()
        _refuse_while_running(tx.project.name, runs, run_id)
        run = next(r for r in runs if r.id == run_id)
        shown, _, manifest = read_workspace(context.objects, run, None)
        replaced = manifest.files.get(clean)
        if replaced is not None and replaced.blob == key:
            # A repeated complete (its first answer was lost): that version is published.
            return _uploaded(clean, entry, run_id, shown)
        created = workspaces.now_iso()
        record = FileRecord(
            path=clean,
            size=entry.size,
            mode=replaced.mode
            if replaced is not None and not replaced.is_link
            else DEFAULT_FILE_MODE,
            blob=key,
            modified=created,
        )
        what = "replaced" if replaced is not None else "added"
        note = body.note or f"{what} '{clean}' ({format_bytes(entry.size)})"
        updated = manifest.with_file(record, created=created, origin="upload", note=note)
        number = workspaces.publish(context.objects, run.workspace_prefix, updated)
        tx.add_event(
            user,
            "workspace-upload",
            f"{what} '{clean}' ({format_bytes(entry.size)}) in the workspace of run {run_id} "
            f"('{run.stage}'): version {number}",
            {"run": run_id, "path": clean, "size": entry.size, "version": number},
        )
    return _uploaded(clean, entry, run_id, number)


def _uploaded(path: str, entry: ObjectEntry, run_id: int, version: int) -> WorkspaceFilePublic:
    return WorkspaceFilePublic(
        path=path,
        name=path.rsplit("/", 1)[-1],
        size=entry.size,
        is_dir=False,
        modified=entry.modified,
        run=run_id,
        version=version,
    )


@router.delete(UploadsPrefix + "/{upload_id}", status_code=204)
def abort_workspace_upload(
    _access: ProjectSteerer,
    ref: str,
    run_id: RunIdPath,
    upload_id: str,
    context: ContextDep,
    _user: CurrentUser,
) -> Response:
    key, s3_id = _upload_of_run(context, ref, run_id, upload_id)
    cancel_upload(context.objects, key, s3_id)
    return Response(status_code=204)
