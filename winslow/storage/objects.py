"""The object store: every read and write Winslow makes to its bucket goes through here.

``ObjectStore`` wraps one boto3 client (built once, by ``s3.make_client``) with one
method per thing Winslow does: list a folder, read or write a small object, stream a
log, move whole files and folders with multipart transfers, and hand browsers presigned
URLs so that large uploads and downloads bypass the API server. Keys are full bucket keys
(see ``keys``); a prefix names a folder and always ends in ``/``. Every failure leaves as
a ``WinslowError`` (``NotFoundError``, ``ConflictError``, ``StorageError``), named after
the thing in the key (``keys.describe_key``). Presigned URLs and credentials are never
logged.
"""

from __future__ import annotations

import builtins
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError

from winslow import defaults
from winslow.core.paths import clean_relative_path
from winslow.errors import StorageError, ValidationError, WinslowError
from winslow.storage.keys import describe_key
from winslow.storage.s3 import S3Config, client_error_code, make_client, map_client_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

MIB = 1024 * 1024

DELETE_BATCH = 1000
"""Keys per DeleteObjects request; S3's limit."""

LIST_PAGE = 1000
"""Keys per ListObjectsV2 or ListParts page; S3's limit."""

STREAM_CHUNK_BYTES = 64 * 1024
"""Default chunk size of ``ObjectStore.iter_chunks``, bytes."""

CORS_MAX_AGE_SECONDS = 3600
"""How long browsers may cache the bucket's CORS preflight answer, seconds."""

Progress = Callable[[int], None]
"""Called with the number of bytes moved since the last call; may run on transfer threads."""

_TRANSFER_ERRORS = (ClientError, BotoCoreError)
_BAD_PARTS_CODES = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})


@dataclass(frozen=True)
class ObjectEntry:
    """One object or folder in a listing.

    ``path`` is relative to the listed prefix (a folder's has no trailing ``/``); for
    ``head`` it is the full key. Folders have ``size`` 0, no ``modified`` and no ``etag``.
    ``etag`` is without quotes; a multipart object's ends in ``-<parts>``.
    """

    path: str
    size: int
    modified: datetime | None
    is_dir: bool
    etag: str | None


class UploadedPart(TypedDict):
    """One part of a multipart upload, as S3's ListParts reports it."""

    PartNumber: int
    ETag: str
    Size: int
    LastModified: datetime | None


@dataclass(frozen=True)
class MultipartUpload:
    """A multipart upload begun and neither completed nor aborted (ListMultipartUploads)."""

    key: str
    upload_id: str
    initiated: datetime | None


def choose_part_size(size: int) -> int:
    """Return the multipart part size for a file of ``size`` bytes.

    At least ``defaults.MULTIPART_CHUNK_BYTES``, grown so that the file fits in
    ``defaults.MULTIPART_MAX_PARTS`` parts, and rounded up to a whole MiB: 16 MiB up to
    160 GiB (10,000 parts of 16 MiB), 105 MiB for 1 TiB. Integer arithmetic throughout,
    so the file fits at any size.
    """
    if size < 0:
        raise ValueError(f"size must not be negative, got {size}")
    part = max(defaults.MULTIPART_CHUNK_BYTES, -(-size // defaults.MULTIPART_MAX_PARTS))
    return -(-part // MIB) * MIB


def content_disposition(filename: str) -> str:
    """Return an ``attachment`` Content-Disposition for ``filename`` (RFC 6266 / RFC 5987).

    The plain ``filename`` carries an ASCII stand-in for old clients; ``filename*``
    carries the real name, UTF-8 and percent-encoded.
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1] or "download"
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in name)
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


class ObjectStore:
    """Reads and writes Winslow's bucket through one boto3 client.

    Usage::

        store = ObjectStore(S3Config(endpoint_url, access_key, secret_key, "winslow"))
        store.ensure_bucket()
        store.put_bytes(keys.resource_key("a.txt"), b"hello")
        [entry.path for entry in store.list(keys.resource_prefix())]   # ["a.txt"]
    """

    def __init__(self, cfg: S3Config) -> None:
        self.cfg = cfg
        self.bucket = cfg.bucket
        self._client: S3Client = make_client(cfg)
        public = cfg.public_endpoint_url
        # SigV4 signs the Host header, so a URL for a browser elsewhere has to be signed
        # for the host that browser sends: rewriting an internal URL afterwards breaks it.
        self._presigner: S3Client = (
            make_client(replace(cfg, endpoint_url=public))
            if public and public != cfg.endpoint_url
            else self._client
        )

    @property
    def client(self) -> S3Client:
        """The underlying boto3 client, for what this class does not cover."""
        return self._client

    def use_credentials(self, access_key: str, secret_key: str) -> None:
        """Sign every later request with these keys (rotated ones, from Vault).

        The new clients are built whole before they replace the old: a request under way
        ends with the old keys, none is ever signed with half of each."""
        fresh = ObjectStore(replace(self.cfg, access_key=access_key, secret_key=secret_key))
        self._client, self._presigner, self.cfg = fresh._client, fresh._presigner, fresh.cfg

    # Bucket ----------------------------------------------------------------------------

    def answers(self, timeout: float = 2.0) -> bool:
        """ListBuckets once, within ``timeout`` seconds: True if storage answers and accepts
        these credentials, False otherwise (no server, wrong keys). Never raises."""
        probe = make_client(
            self.cfg,
            overrides=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"mode": "standard", "total_max_attempts": 1},
            ),
        )
        try:
            probe.list_buckets()
        except _TRANSFER_ERRORS as exc:
            log.debug("object storage at %s: no answer (%s)", self.cfg.endpoint_url, exc)
            return False
        return True

    def ensure_bucket(self) -> None:
        """HeadBucket, CreateBucket if missing, then PutBucketCors (browser uploads).

        A server without bucket CORS (MinIO's community edition answers PutBucketCors
        with 501 NotImplemented; its CORS is server-wide, ``MINIO_API_CORS_ALLOW_ORIGIN``,
        every origin by default) is logged as a warning, not refused.
        """
        what = f"bucket '{self.bucket}'"
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            _, status = client_error_code(exc)
            if status != 404:
                raise map_client_error(exc, what) from exc
            self._create_bucket()
        except BotoCoreError as exc:
            raise map_client_error(exc, what) from exc
        self._put_cors(what)

    def _put_cors(self, what: str) -> None:
        try:
            self._client.put_bucket_cors(
                Bucket=self.bucket,
                CORSConfiguration={
                    "CORSRules": [
                        {
                            "AllowedOrigins": ["*"],
                            "AllowedMethods": ["GET", "PUT", "HEAD", "POST"],
                            "AllowedHeaders": ["*"],
                            "ExposeHeaders": ["ETag"],
                            "MaxAgeSeconds": CORS_MAX_AGE_SECONDS,
                        }
                    ]
                },
            )
        except ClientError as exc:
            code, status = client_error_code(exc)
            if code != "NotImplemented" and status != 501:
                raise map_client_error(exc, what) from exc
            log.warning(
                "%s: object storage at %s has no bucket CORS (PutBucketCors: %s); the "
                "console's uploads need its server-wide CORS to allow the console's origin "
                "and expose ETag",
                what,
                self.cfg.endpoint_url,
                code,
            )
        except BotoCoreError as exc:
            raise map_client_error(exc, what) from exc

    def _create_bucket(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.cfg.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.cfg.region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            code, _ = client_error_code(exc)
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise map_client_error(exc, f"bucket '{self.bucket}'") from exc
        except BotoCoreError as exc:
            raise map_client_error(exc, f"bucket '{self.bucket}'") from exc
        else:
            log.info("bucket %s: created", self.bucket)

    # Listing and metadata --------------------------------------------------------------

    def list(self, prefix: str, recursive: bool = False) -> list[ObjectEntry]:
        """ListObjectsV2 under ``prefix``, all pages; sorted by path.

        Without ``recursive`` the folder's direct children are returned, sub-folders as
        ``is_dir`` entries; with it every object below. A missing folder lists as empty.
        """
        prefix = _as_prefix(prefix)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": LIST_PAGE}
        if not recursive:
            kwargs["Delimiter"] = "/"
        entries: dict[str, ObjectEntry] = {}
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(**kwargs):
                for common in page.get("CommonPrefixes", []):
                    path = str(common["Prefix"])[len(prefix) :].rstrip("/")
                    if path:
                        entries[path] = ObjectEntry(path, 0, None, True, None)
                for obj in page.get("Contents", []):
                    key = str(obj["Key"])
                    path = key[len(prefix) :]
                    if not path:
                        continue  # the folder's own marker object
                    if path.endswith("/"):
                        path = path.rstrip("/")
                        entries.setdefault(path, ObjectEntry(path, 0, None, True, None))
                        continue
                    entries[path] = ObjectEntry(
                        path=path,
                        size=int(obj.get("Size", 0)),
                        modified=obj.get("LastModified"),
                        is_dir=False,
                        etag=_unquote_etag(obj.get("ETag")),
                    )
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(prefix)) from exc
        return [entries[path] for path in sorted(entries)]

    def head(self, key: str) -> ObjectEntry:
        """HeadObject: the object's size, modification time and ETag; ``path`` is ``key``."""
        try:
            meta = self._client.head_object(Bucket=self.bucket, Key=key)
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        return ObjectEntry(
            path=key,
            size=int(meta.get("ContentLength", 0)),
            modified=meta.get("LastModified"),
            is_dir=False,
            etag=_unquote_etag(meta.get("ETag")),
        )

    def exists(self, key: str) -> bool:
        """HeadObject; True if the object exists."""
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            _, status = client_error_code(exc)
            if status == 404:
                return False
            raise map_client_error(exc, describe_key(key)) from exc
        except BotoCoreError as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        return True

    # Small objects ---------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes, *, if_none_match: bool = False) -> str:
        """PutObject; return the new ETag (unquoted).

        With ``if_none_match`` the write is conditional (``If-None-Match: *``) and raises
        ``ConflictError`` if the key already exists, instead of overwriting it.
        """
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data}
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        try:
            response = self._client.put_object(**kwargs)
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        log.debug("object %s: put %d bytes", key, len(data))
        return _unquote_etag(response.get("ETag")) or ""

    def get_bytes(self, key: str) -> bytes:
        """GetObject: the whole object in memory. For large objects use ``download_file``."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            with response["Body"] as body:
                data: bytes = body.read()
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        return data

    def get_range(self, key: str, start: int, end: int | None = None) -> bytes:
        """GetObject with ``Range: bytes=start-end``; ``end`` is inclusive, as in HTTP.

        ``end=None`` reads to the end. A ``start`` at or past the end of the object
        returns ``b""`` (a log with nothing new), not an error.
        """
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range {start}-{end}")
        byte_range = f"bytes={start}-{'' if end is None else end}"
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key, Range=byte_range)
            with response["Body"] as body:
                data: bytes = body.read()
        except ClientError as exc:
            code, status = client_error_code(exc)
            if status == 416 or code == "InvalidRange":
                return b""
            raise map_client_error(exc, describe_key(key)) from exc
        except BotoCoreError as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        return data

    def iter_chunks(
        self, key: str, chunk_size: int = STREAM_CHUNK_BYTES, *, start: int = 0
    ) -> Iterator[bytes]:
        """GetObject streamed in chunks of at most ``chunk_size`` bytes, from byte ``start``.

        The request is made now, so a missing key raises ``NotFoundError`` here rather
        than on the first ``next()``; the returned iterator closes the connection when
        exhausted or closed. A ``start`` past the end yields nothing.
        """
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start:
            kwargs["Range"] = f"bytes={start}-"
        try:
            response = self._client.get_object(**kwargs)
        except ClientError as exc:
            code, status = client_error_code(exc)
            if start and (status == 416 or code == "InvalidRange"):
                return iter(())
            raise map_client_error(exc, describe_key(key)) from exc
        except BotoCoreError as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        return _stream(response["Body"], chunk_size, key)

    def delete(self, key: str) -> None:
        """DeleteObject; deleting a missing key is not an error."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        log.debug("object %s: deleted", key)

    def delete_prefix(self, prefix: str) -> int:
        """ListObjectsV2 + DeleteObjects in batches of 1000: delete a folder; return the count.

        ``prefix`` is a folder (a ``/`` is added), and may not be empty: deleting the whole
        bucket this way is refused with ``ValidationError``.
        """
        prefix = _as_prefix(prefix)
        if not prefix:
            raise ValidationError("Refusing to delete every object in the bucket; name a folder.")
        deleted = 0
        batch: list[str] = []
        folders: set[str] = set()
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, MaxKeys=LIST_PAGE):
                for obj in page.get("Contents", []):
                    key = str(obj["Key"])
                    batch.append(key)
                    folders.update(_folders_between(prefix, key))
                    if len(batch) == DELETE_BATCH:
                        deleted += self._delete_batch(batch, prefix)
                        batch = []
            if batch:
                deleted += self._delete_batch(batch, prefix)
            # SeaweedFS keeps an emptied folder as an entry of its own (listed, but with
            # nothing in it) until the folder's key itself is deleted, the folders inside
            # it too, innermost first; S3 has no such keys and ignores the requests.
            for folder in sorted(folders, key=len, reverse=True):
                self._client.delete_object(Bucket=self.bucket, Key=folder)
            self._client.delete_object(Bucket=self.bucket, Key=prefix)
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(prefix)) from exc
        log.info("folder %s: deleted %d objects", prefix, deleted)
        return deleted

    def delete_keys(self, keys: builtins.list[str]) -> int:
        """DeleteObjects for exactly ``keys``, 1000 at a time; return how many were deleted."""
        deleted = 0
        try:
            for start in range(0, len(keys), DELETE_BATCH):
                deleted += self._delete_batch(keys[start : start + DELETE_BATCH], "")
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, "the objects to delete") from exc
        return deleted

    def _delete_batch(self, batch: builtins.list[str], prefix: str) -> int:
        response = self._client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"Object storage refused to delete {len(errors)} of {len(batch)} objects in "
                f"{describe_key(prefix) if prefix else 'the bucket'}, e.g. '{first.get('Key')}': "
                f"{first.get('Code')} "
                f"{str(first.get('Message', ''))[:300]}. Try again."
            )
        return len(batch)

    # Files and folders -----------------------------------------------------------------

    def upload_file(self, local: Path, key: str, progress: Progress | None = None) -> None:
        """Upload ``local`` to ``key``, multipart above one part, parts in parallel.

        Parts are ``choose_part_size(size)`` bytes, ``defaults.TRANSFER_THREADS`` at a
        time. ``progress`` gets byte counts as parts move, possibly from several threads.
        """
        size = local.stat().st_size
        part_size = choose_part_size(size)
        config = TransferConfig(
            multipart_threshold=part_size,
            multipart_chunksize=part_size,
            max_concurrency=defaults.TRANSFER_THREADS,
            use_threads=True,
        )
        try:
            self._client.upload_file(str(local), self.bucket, key, Config=config, Callback=progress)
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        except S3UploadFailedError as exc:
            raise _unwrap_transfer_error(exc, key) from exc
        log.debug("object %s: uploaded %d bytes from %s", key, size, local)

    def download_file(self, key: str, local: Path, progress: Progress | None = None) -> None:
        """Download ``key`` to ``local`` through a temporary file in the same folder.

        The temporary file replaces ``local`` only once complete (``os.replace``), so a
        failed download leaves an existing ``local`` as it was and no partial file behind.
        Missing parent folders are created.
        """
        local.parent.mkdir(parents=True, exist_ok=True)
        temp = local.with_name(f".{local.name}.{secrets.token_hex(4)}.part")
        config = TransferConfig(
            multipart_threshold=defaults.MULTIPART_CHUNK_BYTES,
            multipart_chunksize=defaults.MULTIPART_CHUNK_BYTES,
            max_concurrency=defaults.TRANSFER_THREADS,
            use_threads=True,
        )
        try:
            self._client.download_file(
                self.bucket, key, str(temp), Config=config, Callback=progress
            )
            os.replace(temp, local)
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        except RetriesExceededError as exc:
            raise _unwrap_transfer_error(exc, key) from exc
        finally:
            temp.unlink(missing_ok=True)
        log.debug("object %s: downloaded to %s", key, local)

    def upload_dir(self, local_dir: Path, prefix: str) -> int:
        """Upload each file below ``local_dir`` to ``prefix`` + its relative path; return the count.

        Symlinks are followed only where they resolve inside ``local_dir``; links that
        point outside it are skipped with a warning, and each real folder is visited once,
        so a link loop cannot recurse.
        """
        prefix = _as_prefix(prefix)
        root = local_dir.resolve()
        if not root.is_dir():
            raise NotADirectoryError(f"{local_dir} is not a folder")
        visited: set[Path] = {root}
        count = 0
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            here = Path(dirpath)
            keep: list[str] = []
            for name in sorted(dirnames):
                real = (here / name).resolve()
                if not real.is_relative_to(root):
                    log.warning("folder %s: skipped, it links outside %s", here / name, root)
                elif real not in visited:
                    visited.add(real)
                    keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                path = here / name
                real = path.resolve()
                if not real.is_relative_to(root):
                    log.warning("file %s: skipped, it links outside %s", path, root)
                    continue
                if not real.is_file():
                    continue  # a broken link, socket or FIFO
                relative = clean_relative_path(path.relative_to(root).as_posix())
                self.upload_file(path, prefix + relative)
                count += 1
        log.info("folder %s: uploaded %d files from %s", prefix, count, local_dir)
        return count

    def download_prefix(self, prefix: str, local_dir: Path) -> int:
        """Download every object below ``prefix`` into ``local_dir``; return the count.

        Every key is checked before anything is written: a relative path that
        ``clean_relative_path`` refuses or changes (``..``, control characters) raises
        ``ValidationError`` naming it, and nothing is downloaded.
        """
        prefix = _as_prefix(prefix)
        entries = [e for e in self.list(prefix, recursive=True) if not e.is_dir]
        root = local_dir.resolve()
        targets: list[tuple[str, Path]] = []
        for entry in entries:
            try:
                cleaned = clean_relative_path(entry.path)
            except ValidationError as exc:
                raise ValidationError(
                    f"Refusing to download {entry.path!r} from {describe_key(prefix)}: "
                    f"{exc.message}"
                ) from exc
            target = (root / cleaned).resolve()
            if cleaned != entry.path or not target.is_relative_to(root):
                raise ValidationError(
                    f"Refusing to download {entry.path!r} from {describe_key(prefix)}: "
                    "it is not a plain relative path; rename it in the bucket."
                )
            targets.append((prefix + entry.path, target))
        for key, target in targets:
            self.download_file(key, target)
        log.info("folder %s: downloaded %d files to %s", prefix, len(targets), local_dir)
        return len(targets)

    # Presigned multipart upload (browsers and the CLI upload parts themselves) ---------

    def create_multipart(self, key: str) -> str:
        """CreateMultipartUpload; return the upload ID."""
        try:
            response = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        upload_id: str = response["UploadId"]
        log.debug("object %s: multipart upload started", key)
        return upload_id

    def presign_part(self, key: str, upload_id: str, part_number: int, expires: int = 3600) -> str:
        """Return a presigned UploadPart URL: the client PUTs the part's bytes to it.

        The response's ``ETag`` header (exposed by the bucket's CORS rule) is the hex MD5
        of the part's bytes, and what ``complete_multipart`` needs for this part. The URL
        is not signed with a Content-MD5, but a ``Content-MD5`` header sent with the PUT
        is still checked: SeaweedFS 4.x answers 400 ``BadDigest`` when the body does not
        match it (and 400 ``InvalidDigest`` when it is not base64 of 16 bytes), as S3 does.
        """
        if not 1 <= part_number <= defaults.MULTIPART_MAX_PARTS:
            raise ValidationError(
                f"Part number {part_number} is out of range 1..{defaults.MULTIPART_MAX_PARTS}."
            )
        return self._presign(
            "upload_part",
            {"Key": key, "UploadId": upload_id, "PartNumber": part_number},
            expires,
        )

    def list_parts(self, key: str, upload_id: str) -> builtins.list[UploadedPart]:
        """ListParts, all pages: the parts uploaded so far, by part number.

        S3 keeps the last PUT of a part number; SeaweedFS keeps every PUT of it until the
        upload completes and lists each, so a number may appear more than once (each with
        its own ETag, the MD5 of its bytes). Completing with one of those ETags uses those
        bytes.
        """
        parts: list[UploadedPart] = []
        try:
            paginator = self._client.get_paginator("list_parts")
            for page in paginator.paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MaxParts=LIST_PAGE
            ):
                for part in page.get("Parts", []):
                    parts.append(
                        UploadedPart(
                            PartNumber=int(part["PartNumber"]),
                            ETag=str(part["ETag"]),
                            Size=int(part["Size"]),
                            LastModified=part.get("LastModified"),
                        )
                    )
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        return sorted(parts, key=lambda p: p["PartNumber"])

    def multipart_uploads(self) -> builtins.list[MultipartUpload]:
        """ListMultipartUploads, all pages: every unfinished upload in the bucket.

        S3 pages by key and upload ID; SeaweedFS (4.x) orders uploads by ID and sends only
        ``NextUploadIdMarker``, which then carries the listing on by itself.
        """
        uploads: dict[str, MultipartUpload] = {}
        markers: dict[str, str] = {}
        try:
            while True:
                page = self._client.list_multipart_uploads(
                    Bucket=self.bucket, MaxUploads=LIST_PAGE, **markers
                )
                before = len(uploads)
                for upload in page.get("Uploads", []):
                    found = MultipartUpload(
                        str(upload["Key"]), str(upload["UploadId"]), upload.get("Initiated")
                    )
                    uploads[found.upload_id] = found
                if not page.get("IsTruncated") or len(uploads) == before:
                    break
                markers = {
                    "KeyMarker": str(page.get("NextKeyMarker") or ""),
                    "UploadIdMarker": str(page.get("NextUploadIdMarker") or ""),
                }
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, "the bucket's unfinished uploads") from exc
        return list(uploads.values())

    def complete_multipart(
        self, key: str, upload_id: str, parts: builtins.list[tuple[int, str]]
    ) -> str:
        """CompleteMultipartUpload from ``(part_number, etag)`` pairs; return the ETag."""
        ordered = sorted(parts)
        try:
            response = self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": _quote_etag(etag)} for n, etag in ordered]
                },
            )
        except ClientError as exc:
            code, _ = client_error_code(exc)
            if code in _BAD_PARTS_CODES:
                raise ValidationError(
                    f"Cannot complete the upload of {describe_key(key)}: {code}; the part "
                    "numbers or ETags do not match the uploaded parts (or a part other than "
                    "the last is under 5 MiB). List the parts and complete again."
                ) from exc
            raise map_client_error(exc, describe_key(key)) from exc
        except BotoCoreError as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        log.debug("object %s: multipart upload completed with %d parts", key, len(ordered))
        return _unquote_etag(response.get("ETag")) or ""

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload: drop the parts uploaded so far."""
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(key)) from exc
        log.debug("object %s: multipart upload aborted", key)

    def presign_get(self, key: str, filename: str | None = None, expires: int = 3600) -> str:
        """Return a presigned GetObject URL; with ``filename`` the browser saves it as that.

        The URL honours ``Range`` requests. Existence is not checked: a missing key
        answers 404 when fetched.
        """
        params: dict[str, Any] = {"Key": key}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        return self._presign("get_object", params, expires)

    def _presign(self, operation: str, params: dict[str, Any], expires: int) -> str:
        try:
            url: str = self._presigner.generate_presigned_url(
                operation, Params={"Bucket": self.bucket, **params}, ExpiresIn=expires
            )
        except _TRANSFER_ERRORS as exc:
            raise map_client_error(exc, describe_key(str(params["Key"]))) from exc
        return url


def _stream(body: Any, chunk_size: int, key: str) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size)
    except _TRANSFER_ERRORS as exc:
        raise map_client_error(exc, describe_key(key)) from exc
    finally:
        body.close()


def _folders_between(prefix: str, key: str) -> builtins.list[str]:
    """The folders below ``prefix`` that hold ``key``: prefix ``a/`` and key ``a/b/c/d``
    give ``a/b/`` and ``a/b/c/``."""
    parts = key[len(prefix) :].split("/")[:-1]
    return [prefix + "/".join(parts[: depth + 1]) + "/" for depth in range(len(parts))]


def _as_prefix(prefix: str) -> str:
    """A folder prefix ends in ``/``; ``""`` is the bucket's root."""
    prefix = prefix.lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _unquote_etag(etag: object) -> str | None:
    return str(etag).strip('"') if etag else None


def _quote_etag(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def _unwrap_transfer_error(exc: Exception, key: str) -> WinslowError:
    """Map the botocore error inside boto3's ``S3UploadFailedError`` or s3transfer's
    ``RetriesExceededError``; local disk errors are not wrapped and pass through as-is."""
    cause = getattr(exc, "last_exception", None) or exc.__cause__ or exc.__context__
    if isinstance(cause, Exception):
        return map_client_error(cause, describe_key(key))
    return StorageError(f"Transfer of {describe_key(key)} failed: {exc}")
