"""Previews of a run's workspace files, so a person judges a stage's output without
downloading it: ``GET /projects/{ref}/workspace/preview``.

The file is found as the workspace routes find it (the run, its version, the manifest) and
read only as far as its kind needs: a capped prefix of a table, a whole image up to a limit,
a few frames of a video that FFmpeg reads by range through a presigned URL. The preview
itself is made by ``winslow.previews``; this route fetches and answers. A video may also come
from the resource pool (``source=pool``: the traffic example's detections are in the
workspace, its video in the pool); its boxes then come from the run's workspace.

Detections drawn on a video's frames come from the file ``detections`` names (a workspace
path of the same run; ``none`` for no boxes), else from the first of these beside the video
that exists: ``<stem>.detections.csv``, ``<stem>.detections.json``, ``detections.csv``,
``detections.json`` (for a pool video: at the top of the run's workspace).
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from winslow import previews
from winslow.api.access import ProjectReader
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import RunIdQuery
from winslow.api.routes import API_V1
from winslow.api.routes.workspaces import PathQuery, VersionQuery, pick_run, read_workspace
from winslow.core.models import Run
from winslow.core.paths import clean_relative_path
from winslow.errors import NotFoundError, ValidationError
from winslow.previews import PreviewError, PreviewKind, PreviewTooLargeError, images, tables, video
from winslow.previews.models import (
    ImagePreview,
    JsonPreview,
    PreviewPublic,
    TablePreview,
    VideoPreview,
)
from winslow.storage import keys
from winslow.storage.manifest import Manifest
from winslow.units import format_bytes

router = APIRouter(prefix=API_V1, tags=["workspaces"])

THUMBNAIL_CACHE_SIZE = 256
"""Thumbnails kept in memory, by blob and size; a blob's content never changes."""

PRESIGN_SECONDS = 600
"""How long the URL FFmpeg reads a video through stays valid."""

_thumbnails: OrderedDict[tuple[str, int], ImagePreview] = OrderedDict()
_thumbnails_lock = threading.Lock()

Source = Literal["workspace", "pool"]


@dataclass(frozen=True)
class _Target:
    """The file previewed: its object key, size and name, and the workspace it sits beside."""

    key: str
    size: int
    path: str
    manifest: Manifest


@router.get(
    "/projects/{ref}/workspace/preview",
    response_model=PreviewPublic,
    responses={
        413: {"description": "The file is larger than a preview of its kind reads."},
        501: {"description": "The server lacks OpenCV, which image and video previews need."},
    },
)
def preview_workspace_file(
    _access: ProjectReader,
    ref: str,
    path: PathQuery,
    context: ContextDep,
    _user: CurrentUser,
    run: RunIdQuery = None,
    version: VersionQuery = None,
    kind: Annotated[
        PreviewKind | None, Query(description="Default: from the file's suffix")
    ] = None,
    source: Annotated[
        Source, Query(description="'pool': `path` is in the resource pool (videos only)")
    ] = "workspace",
    rows: Annotated[int, Query(ge=1, le=500, description="Table rows shown")] = 50,
    size: Annotated[
        int | None, Query(ge=32, le=1920, description="Longest side of images in pixels")
    ] = None,
    times: Annotated[str, Query(description="Video: seconds, comma-separated")] = "",
    frames: Annotated[
        int, Query(ge=1, le=video.MAX_FRAMES, description="Video: evenly spaced frames")
    ] = 4,
    detections: Annotated[
        str, Query(description="Video: workspace path of its detections; 'none': no boxes")
    ] = "",
) -> PreviewPublic:
    """A preview of one file: thumbnail, table with column stats, JSON, or video frames."""
    clean = clean_relative_path(path)
    chosen, shown, manifest = _workspace(context, ref, run, version, required=source != "pool")
    found = previews.preview_kind(clean)
    what = kind or found
    if what is None:
        raise ValidationError(
            f"'{clean}' has no preview: previews exist for images (.png, .jpg, .webp...), "
            "tables (.csv, .tsv), JSON (.json, .jsonl) and videos (.mp4, .avi, .mkv...). "
            "Download it instead, or name a kind (kind=table)."
        )
    if source == "pool" and what != "video":
        raise ValidationError("Only videos are previewed from the resource pool (kind=video).")
    target = _find(context, source, clean, manifest, chosen)
    answer = PreviewPublic(
        kind=what,
        path=clean,
        source=source,
        size=target.size,
        run=chosen.id if chosen else None,
        version=shown or None,
    )
    try:
        if what == "table":
            answer.table = _table(context, target, rows)
        elif what == "json":
            answer.document = _document(context, target, rows)
        elif what == "image":
            answer.image = _image(context, target, size or 320)
        else:
            answer.video = _video(context, target, times, frames, detections, size or 640)
    except PreviewError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    return answer


def _workspace(
    context: AppContext, ref: str, run: int | None, version: int | None, *, required: bool
) -> tuple[Run | None, int, Manifest]:
    """The run meant, its workspace version shown and manifest; for a pool video without
    any ended run yet, none (its frames show without boxes)."""
    try:
        _, chosen = pick_run(context, ref, run)
    except NotFoundError:
        if required or run is not None:
            raise
        return None, 0, Manifest()
    shown, _, manifest = read_workspace(context.objects, chosen, version)
    return chosen, shown, manifest


def _find(
    context: AppContext, source: Source, clean: str, manifest: Manifest, run: Run | None
) -> _Target:
    if source == "pool":
        entry = context.objects.head(keys.resource_key(clean))
        return _Target(entry.path, entry.size, clean, manifest)
    record = manifest.files.get(clean)
    if record is None or record.link is not None:
        number = run.id if run else "?"
        raise NotFoundError(f"No file '{clean}' in the workspace of run {number}.")
    return _Target(record.blob, record.size, clean, manifest)


def _prefix(context: AppContext, target: _Target, cap: int) -> tuple[bytes, bool]:
    """The first ``cap`` bytes of the file, and whether it goes on past them."""
    if target.size == 0:
        return b"", False
    return context.objects.get_range(target.key, 0, min(target.size, cap) - 1), target.size > cap


def _table(context: AppContext, target: _Target, rows: int) -> TablePreview:
    data, truncated = _prefix(context, target, previews.TABLE_MAX_BYTES)
    tsv = target.path.lower().endswith(".tsv")
    return tables.read_table(data, truncated=truncated, tsv=tsv, max_rows=rows)


def _document(context: AppContext, target: _Target, rows: int) -> JsonPreview:
    lines = target.path.lower().endswith((".jsonl", ".ndjson"))
    if not lines and target.size > previews.JSON_MAX_BYTES:
        raise PreviewTooLargeError(
            f"'{target.path}' is {format_bytes(target.size)}; a JSON document is previewed up "
            f"to {format_bytes(previews.JSON_MAX_BYTES)} (it is read whole). Download it."
        )
    data, truncated = _prefix(context, target, previews.TABLE_MAX_BYTES if lines else target.size)
    return tables.read_json(data, truncated=truncated, lines=lines, max_items=rows)


def _image(context: AppContext, target: _Target, side: int) -> ImagePreview:
    if target.size > previews.IMAGE_MAX_BYTES:
        raise PreviewTooLargeError(
            f"'{target.path}' is {format_bytes(target.size)}; thumbnails are made of images "
            f"up to {format_bytes(previews.IMAGE_MAX_BYTES)}. Download it."
        )
    with _thumbnails_lock:
        cached = _thumbnails.get((target.key, side))
        if cached is not None:
            _thumbnails.move_to_end((target.key, side))
            return cached
    made = images.thumbnail(context.objects.get_bytes(target.key), side)
    with _thumbnails_lock:
        _thumbnails[(target.key, side)] = made
        while len(_thumbnails) > THUMBNAIL_CACHE_SIZE:
            _thumbnails.popitem(last=False)
    return made


def _parse_times(times: str) -> list[float]:
    try:
        return [float(t) for t in times.replace(" ", "").split(",") if t]
    except ValueError:
        raise PreviewError(
            f"times={times[:80]!r} is not a list of seconds; write e.g. times=0,12.5,60."
        ) from None


def _video(
    context: AppContext, target: _Target, times: str, count: int, detections: str, side: int
) -> VideoPreview:
    chosen_times = _parse_times(times)
    boxes_path = _detections_path(target, detections)
    with tempfile.TemporaryDirectory(prefix="winslow-preview-") as tmp:
        capture, info = _open_video(context, target, Path(tmp))
        try:
            indices = video.pick_frames(info, chosen_times, count)
            boxes, cut = _boxes(context, target.manifest, boxes_path, set(indices))
        except BaseException:
            capture.release()
            raise
        shown, missing = video.grab_frames(capture, info, indices, boxes, side)
    answer = video.video_preview(info, shown, missing, boxes_path)
    if cut:
        limit = format_bytes(previews.DETECTIONS_MAX_BYTES)
        answer.note = f"{answer.note} Boxes come from the first {limit} of {boxes_path}.".strip()
    return answer


def _open_video(context: AppContext, target: _Target, tmp: Path) -> tuple[Any, video.VideoInfo]:
    """Open the video by a presigned URL (FFmpeg reads the ranges it needs); where that
    fails (an S3 over TLS FFmpeg does not trust), from a temporary copy of a small file."""
    url = context.objects.client.generate_presigned_url(
        "get_object",
        Params={"Bucket": context.objects.bucket, "Key": target.key},
        ExpiresIn=PRESIGN_SECONDS,
    )
    try:
        return video.open_video(url)
    except PreviewError:
        if target.size > previews.VIDEO_DOWNLOAD_MAX_BYTES:
            raise
    local = tmp / ("video" + Path(target.path).suffix)
    context.objects.download_file(target.key, local)
    return video.open_video(str(local))


def _detections_path(target: _Target, detections: str) -> str | None:
    """The workspace path of the boxes to draw, or None (see the module's docstring)."""
    if detections.lower() == "none":
        return None
    if detections:
        clean = clean_relative_path(detections)
        if clean not in target.manifest.files:
            raise NotFoundError(f"No detections file '{clean}' in the run's workspace.")
        return clean
    folder, _, name = target.path.rpartition("/")
    stem = name.rsplit(".", 1)[0]
    where = "" if target.key.startswith(keys.RESOURCES) else (folder + "/" if folder else "")
    candidates = [f"{where}{stem}.detections.csv", f"{where}{stem}.detections.json"]
    candidates += [f"{where}detections.csv", f"{where}detections.json"]
    return next((c for c in candidates if c in target.manifest.files), None)


def _boxes(
    context: AppContext, manifest: Manifest, path: str | None, wanted: set[int]
) -> tuple[dict[int, list[images.Box]], bool]:
    """The boxes of the frames ``wanted``, and whether the file was longer than is read."""
    if path is None:
        return {}, False
    record = manifest.files[path]
    cap = previews.DETECTIONS_MAX_BYTES
    data, truncated = _prefix(context, _Target(record.blob, record.size, path, manifest), cap)
    usable = tables.complete_lines(data, truncated)
    return video.read_detections(usable, path, wanted), truncated
