"""Files in object storage: the resource pool (browse, upload, download, delete) and
each run's workspace (browse, download).

Bytes never pass through the server: uploads are S3 multipart uploads whose parts the
client sends to presigned URLs, downloads are presigned (ranged, resumable) GETs. So the
server's memory stays flat whatever the file size.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import RedirectResponse

from winslow import defaults, metrics
from winslow.api.access import ResourceWriter, SignedIn
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import (
    CompletedPart,
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
from winslow.api.routes import API_V1
from winslow.core.paths import clean_relative_path
from winslow.errors import NotFoundError, StorageError, ValidationError
from winslow.storage.keys import check_new_path, describe_key, resource_key, resource_prefix
from winslow.storage.objects import ObjectEntry, ObjectStore, UploadedPart, choose_part_size

log = logging.getLogger(__name__)

router = APIRouter(prefix=API_V1, tags=["files"])

MAX_UPLOAD_BYTES = 5 * 1024**4
"""Largest file one upload takes, bytes: S3's limit on an object (5 TiB)."""

_UPLOAD_ID = re.compile(r"[A-Za-z0-9._~+=-]{1,1024}")
"""Upload IDs are S3's, opaque: letters, digits and ``. _ ~ + = -`` as every S3 server makes
them (SeaweedFS ``<hex>_<hex>``, AWS and MinIO base64, Ceph ``2~...``); never a backslash,
and with at least one letter or digit, so never ``.`` or ``..``."""

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


REDIRECT_ANSWER: dict[int | str, dict[str, Any]] = {
    307: {"description": "`redirect=true`: to the file's presigned URL in object storage."}
}
"""The ``responses`` of a download route that redirects on request."""


def _download(
    context: AppContext, key: str, path: str, redirect: bool
) -> Response | DownloadPublic:
    entry = context.objects.head(key)
    name = path.rsplit("/", 1)[-1]
    url = context.objects.presign_get(key, filename=name)
    if redirect:
        return RedirectResponse(url, status_code=307)
    return DownloadPublic(
        url=url, size=entry.size, name=name, version=entry.etag or "", modified=entry.modified
    )


# -- multipart uploads, for any key ------------------------------------------------------
#
# The resource pool routes below and the workspace upload routes share these: each takes
# the object key the upload writes (the route derives it from the person's cleaned path)
# and the S3 upload ID, which is opaque. The flow, for a browser or the CLI:
#
#   begin_upload          → upload_id, part_size, part_count
#   presign_upload_parts  → a PUT URL per part; send Content-MD5 with each PUT
#   list_upload_parts     → what is stored already (resume after a reload or a crash)
#   finish_upload         → every part's MD5 and size and the total checked, then complete
#   cancel_upload         → drop the parts
#
# The bytes never pass through this server.


def begin_upload(objects: ObjectStore, key: str, path: str, size: int) -> UploadPublic:
    """CreateMultipartUpload at ``key`` for a file of ``size`` bytes; ``path`` is echoed.

    Parts are ``choose_part_size(size)`` bytes, so up to 10,000 parts hold the file (1 TiB
    in parts of 105 MiB). Files over ``MAX_UPLOAD_BYTES`` are refused with ``ValidationError``.
    """
    if size > MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"'{path}' is {size} bytes; object storage takes files of at most "
            f"{MAX_UPLOAD_BYTES} bytes (5 TiB). Split it."
        )
    part_size = choose_part_size(size)
    upload_id = objects.create_multipart(key)
    return UploadPublic(
        upload_id=upload_id,
        path=path,
        size=size,
        part_size=part_size,
        part_count=part_count(size, part_size),
    )


def presign_upload_parts(
    objects: ObjectStore, key: str, upload_id: str, part_numbers: list[int]
) -> PartUrlsPublic:
    """Presigned PUT URLs for ``part_numbers`` (1 to 10,000) of the upload at ``key``.

    The URLs are not signed with a Content-MD5, yet object storage checks one that comes
    with the PUT: SeaweedFS (4.x) answers 400 BadDigest when the body does not match it,
    as AWS S3 does. Clients should send it.
    """
    _check_upload_id(upload_id)
    limit = defaults.MULTIPART_MAX_PARTS
    bad = [n for n in part_numbers if not 1 <= n <= limit]
    if bad:
        raise ValidationError(f"Part numbers run from 1 to {limit}; got {bad[:5]}.")
    return PartUrlsPublic(
        urls={n: objects.presign_part(key, upload_id, n) for n in dict.fromkeys(part_numbers)}
    )


def list_upload_parts(objects: ObjectStore, key: str, upload_id: str) -> StoredPartsPublic:
    """The parts object storage holds for the upload at ``key`` (``NotFoundError`` once it
    was completed or aborted). A part sent twice may be listed twice; see ``StoredPart``."""
    _check_upload_id(upload_id)
    return StoredPartsPublic(
        parts=[
            StoredPart(part_number=p["PartNumber"], etag=_bare_etag(p["ETag"]), size=p["Size"])
            for p in objects.list_parts(key, upload_id)
        ]
    )


def finish_upload(
    objects: ObjectStore, key: str, upload_id: str, size: int, parts: list[CompletedPart]
) -> ObjectEntry:
    """Verify the upload at ``key``, complete it, and return the new object's entry.

    Before anything becomes visible, the stored parts (ListParts) are checked against what
    the client says it sent: every part 1 to ``part_count`` is listed once, a stored part's
    ETag (its MD5 in S3 and SeaweedFS) equals the client's ``md5``, the parts together
    hold ``size`` bytes, and each holds what ``size`` and ``choose_part_size(size)`` imply.
    Any mismatch raises ``ValidationError`` (422) naming the parts and what to do; the
    upload stays open and an object already at ``key`` stays as it was.

    After completion the object's size is read back (HEAD); should object storage have
    made it another size, the object is deleted and ``StorageError`` raised.
    """
    _check_upload_id(upload_id)
    part_size = choose_part_size(size)
    count = part_count(size, part_size)
    given = _given_parts(parts, count)
    missing = [n for n in range(1, count + 1) if n not in given]
    if missing:
        raise ValidationError(
            f"A file of {size} bytes is {count} parts of {part_size} bytes; "
            f"{_numbers('part', missing)} not listed. List every part with its md5."
        )
    by_number: dict[int, list[UploadedPart]] = {}
    try:
        stored_parts = objects.list_parts(key, upload_id)
    except NotFoundError as gone:
        return _completed_already(objects, key, size, given, gone)
    for stored in stored_parts:
        by_number.setdefault(stored["PartNumber"], []).append(stored)

    chosen: dict[int, UploadedPart] = {}
    problems: list[str] = []
    for number, part in sorted(given.items()):
        candidates = by_number.get(number, [])
        match = next((c for c in candidates if _bare_etag(c["ETag"]) == part.md5), None)
        if match is not None:
            chosen[number] = match
        elif not candidates:
            problems.append(f"part {number} was never stored; upload it")
        else:
            held = ", ".join(_bare_etag(c["ETag"]) for c in candidates)
            problems.append(
                f"part {number} does not match what was sent (checksum {part.md5}, object "
                f"storage holds {held}); upload that part again"
            )
    if problems:
        raise ValidationError(_sentence(problems, "The upload is not complete: "))

    total = sum(p["Size"] for p in chosen.values())
    if total != size:
        raise ValidationError(
            f"The stored parts hold {total} bytes, but the file is {size} bytes; complete "
            "with the size given when the upload began."
        )
    wrong = [
        f"part {n} holds {p['Size']} bytes where {part_length(n, part_size, size)} belong"
        for n, p in sorted(chosen.items())
        if p["Size"] != part_length(n, part_size, size)
    ]
    if wrong:
        raise ValidationError(
            _sentence(wrong, "The parts are cut wrong: ")
            + f" Parts are {part_size} bytes, the last one the rest; upload them again."
        )

    objects.complete_multipart(key, upload_id, [(n, p["ETag"]) for n, p in chosen.items()])
    entry = objects.head(key)
    if entry.size != size:
        objects.delete(key)
        raise StorageError(
            f"Object storage made {describe_key(key)} {entry.size} bytes instead of {size}; "
            "it was removed. Upload the file again."
        )
    log.info("upload %s: completed, %d bytes in %d parts", key, size, count)
    metrics.observe_upload(size)
    return entry


def _completed_already(
    objects: ObjectStore,
    key: str,
    size: int,
    given: dict[int, CompletedPart],
    gone: NotFoundError,
) -> ObjectEntry:
    """The object an earlier ``complete`` of this very upload made; else raise ``gone``.

    Completing twice must succeed: the client's first try may have been done before its
    answer was lost (a server restart). The upload is gone by then, but the object at
    ``key`` shows it: S3 and SeaweedFS give a completed upload the ETag
    ``md5(part MD5s, concatenated)-<part count>``, which only these parts produce, so a
    file someone else put there, or an aborted upload, is still a 404.
    """
    try:
        entry = objects.head(key)
    except NotFoundError:
        raise gone from None
    digests = b"".join(bytes.fromhex(given[n].md5) for n in sorted(given))
    expected = f"{hashlib.md5(digests).hexdigest()}-{len(given)}"
    if entry.size != size or _bare_etag(entry.etag or "") != expected:
        raise gone
    log.info("upload %s: completed already, answered again", key)
    return entry


def cancel_upload(objects: ObjectStore, key: str, upload_id: str) -> None:
    """AbortMultipartUpload: drop the parts; an object already at ``key`` is untouched."""
    _check_upload_id(upload_id)
    objects.abort_multipart(key, upload_id)


def part_count(size: int, part_size: int) -> int:
    """Parts of ``part_size`` bytes that hold ``size`` bytes; an empty file has one part."""
    return max(1, -(-size // part_size))


def part_length(number: int, part_size: int, size: int) -> int:
    """Bytes in part ``number`` (from 1) of a ``size``-byte file cut into ``part_size``."""
    return max(0, min(part_size, size - (number - 1) * part_size))


def _given_parts(parts: list[CompletedPart], count: int) -> dict[int, CompletedPart]:
    given: dict[int, CompletedPart] = {}
    twice: list[int] = []
    for part in parts:
        if part.part_number in given:
            twice.append(part.part_number)
        given[part.part_number] = part.model_copy(update={"md5": part.md5.lower()})
    if twice:
        raise ValidationError(f"{_numbers('part', sorted(set(twice)))} listed twice.")
    beyond = sorted(n for n in given if not 1 <= n <= count)
    if beyond:
        raise ValidationError(
            f"The file has parts 1 to {count}; {_numbers('part', beyond)} outside that."
        )
    for number, part in sorted(given.items()):
        if part.etag is not None and _bare_etag(part.etag) != part.md5:
            raise ValidationError(
                f"Part {number}: object storage answered ETag {_bare_etag(part.etag)} to its "
                f"PUT, but the MD5 of the bytes sent is {part.md5}; upload that part again."
            )
    return given


def _check_upload_id(upload_id: str) -> None:
    if not _UPLOAD_ID.fullmatch(upload_id) or not any(c.isalnum() for c in upload_id):
        raise ValidationError(
            f"{upload_id[:80]!r} is not an upload ID; use the upload_id the upload began with."
        )


def _bare_etag(etag: str) -> str:
    return etag.strip('"').lower()


def _numbers(word: str, numbers: list[int], shown: int = 10) -> str:
    listed = ", ".join(str(n) for n in numbers[:shown])
    more = f" and {len(numbers) - shown} more" if len(numbers) > shown else ""
    return f"{word}s {listed}{more} are" if len(numbers) > 1 else f"{word} {listed} is"


def _sentence(problems: list[str], lead: str, shown: int = 5) -> str:
    text = "; ".join(problems[:shown])
    if len(problems) > shown:
        text += f"; and {len(problems) - shown} more parts"
    return lead + text[0].upper() + text[1:] + "."


# -- resource pool ------------------------------------------------------------------------


@router.get("/resources", response_model=FilesPublic)
def list_resources(
    context: ContextDep,
    _user: CurrentUser,
    path: PathQuery = "",
    recursive: bool = False,
    *,
    _access: SignedIn,
) -> FilesPublic:
    return _listing(context, resource_prefix(), path, recursive)


@router.get("/resources/download", response_model=DownloadPublic, responses=REDIRECT_ANSWER)
def download_resource(
    _access: SignedIn,
    path: PathQuery,
    context: ContextDep,
    _user: CurrentUser,
    redirect: bool = False,
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
    _access: ResourceWriter,
    path: PathQuery,
    context: ContextDep,
    _user: CurrentUser,
    recursive: bool = False,
) -> Response:
    clean = clean_relative_path(path)
    key = resource_key(clean)
    if recursive:
        # An emptied folder may still be listed (SeaweedFS keeps it); deleting it counts.
        parent, _, leaf = clean.rpartition("/")
        listed = any(
            entry.is_dir and entry.path.rstrip("/") == leaf
            for entry in context.objects.list(resource_prefix(parent))
        )
        removed = context.objects.delete_prefix(key + "/") + int(listed)
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
def create_upload(
    _access: ResourceWriter, body: UploadCreate, context: ContextDep, _user: CurrentUser
) -> UploadPublic:
    """Begin a multipart upload; the file appears only once it is completed."""
    clean = check_new_path(clean_relative_path(body.path))
    return begin_upload(context.objects, resource_key(clean), clean, body.size)


@router.post("/resources/uploads/{upload_id}/urls", response_model=PartUrlsPublic)
def part_urls(
    _access: ResourceWriter,
    upload_id: str,
    body: PartUrlsBody,
    context: ContextDep,
    _user: CurrentUser,
) -> PartUrlsPublic:
    """Presigned URLs to PUT the given parts to (numbers 1 to 10,000)."""
    key = resource_key(check_new_path(clean_relative_path(body.path)))
    return presign_upload_parts(context.objects, key, upload_id, body.part_numbers)


@router.get("/resources/uploads/{upload_id}/parts", response_model=StoredPartsPublic)
def stored_parts(
    _access: ResourceWriter,
    upload_id: str,
    path: PathQuery,
    context: ContextDep,
    _user: CurrentUser,
) -> StoredPartsPublic:
    """The parts already stored, so an interrupted upload goes on where it stopped."""
    key = resource_key(clean_relative_path(path))
    return list_upload_parts(context.objects, key, upload_id)


@router.post("/resources/uploads/{upload_id}/complete", response_model=FileEntry)
def complete_upload(
    _access: ResourceWriter,
    upload_id: str,
    body: UploadComplete,
    context: ContextDep,
    _user: CurrentUser,
) -> FileEntry:
    """Check every part's MD5 and size and the total size, then make the file appear.

    A mismatch is a 422 naming the part; the upload stays open (send that part again and
    complete again) and a file already at the path is left as it was.
    """
    clean = check_new_path(clean_relative_path(body.path))
    entry = finish_upload(context.objects, resource_key(clean), upload_id, body.size, body.parts)
    return FileEntry(
        path=clean,
        name=clean.rsplit("/", 1)[-1],
        size=entry.size,
        is_dir=False,
        modified=entry.modified,
    )


@router.delete("/resources/uploads/{upload_id}", status_code=204)
def abort_upload(
    _access: ResourceWriter,
    upload_id: str,
    path: PathQuery,
    context: ContextDep,
    _user: CurrentUser,
) -> Response:
    """Drop the upload and the parts stored so far; a file already at the path stays."""
    cancel_upload(context.objects, resource_key(clean_relative_path(path)), upload_id)
    return Response(status_code=204)
