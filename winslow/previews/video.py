"""Frames of a video at chosen times, with the boxes of a detections file drawn on them.

The video is opened by OpenCV (FFmpeg) from a source the route gives: a presigned URL, so
FFmpeg reads only the byte ranges it needs of a file of any size, or a local file. Frames
are numbered from 0 in decoding order, as a stage that reads the video frame by frame counts
them (the traffic example's ``detect`` does); a detections file names boxes by that number.

A detections file is CSV with a header, or JSON. CSV: one box a row, columns ``frame`` and
either ``x, y, w, h`` (top-left corner and size in pixels) or ``x1, y1, x2, y2`` (corners),
optionally ``label`` (or ``class``, ``track``, ``id``) written beside the box; other columns
are ignored. JSON: a list of such objects, or an object mapping a frame number to its boxes
(``[x, y, w, h]`` or objects as above), possibly under a key ``frames`` or ``detections``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from winslow.previews import PreviewError
from winslow.previews.images import Box, draw_boxes, jpeg_url, opencv, scaled
from winslow.previews.models import VideoFrame, VideoPreview

MAX_FRAMES = 12
"""Frames one video preview may show."""

OPEN_TIMEOUT_MS = 15_000
"""How long FFmpeg may take to open the video (connect and read its header)."""

READ_TIMEOUT_MS = 30_000
"""How long FFmpeg may wait for the bytes of one read."""

LABEL_COLUMNS = ("label", "class", "track", "id")
"""Columns whose value is written beside a box, the first one present."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def pick_frames(info: VideoInfo, times: Sequence[float], count: int) -> list[int]:
    """Return the frame numbers to show: those at ``times`` (seconds), else ``count`` evenly
    spaced ones (the middle of each of ``count`` equal parts of the video).

    Times past the end show the last frame; a repeated frame shows once. Raises
    ``PreviewError`` for a negative time, or for more than ``MAX_FRAMES`` frames.
    """
    if len(times) > MAX_FRAMES or count > MAX_FRAMES:
        raise PreviewError(f"A preview shows at most {MAX_FRAMES} frames; ask for fewer.")
    if any(t < 0 for t in times):
        raise PreviewError("Times are seconds from the start of the video, 0 or more.")
    last = info.frame_count - 1
    if times:
        fps = info.fps if info.fps > 0 else 1.0
        wanted = [round(t * fps) for t in times]
    elif info.frame_count > 0:
        wanted = [int((i + 0.5) * info.frame_count / count) for i in range(max(1, count))]
    else:
        wanted = [0]
    chosen: list[int] = []
    for index in wanted:
        index = min(index, last) if last >= 0 else index
        if index not in chosen:
            chosen.append(index)
    return chosen


# -- detections ---------------------------------------------------------------------------


def _float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _box(fields: Mapping[str, Any]) -> Box | None:
    """A box from an object or a CSV row (keys in lower case), or None if it lacks one."""
    label = next((str(fields[k]) for k in LABEL_COLUMNS if fields.get(k) not in (None, "")), "")
    x, y, w, h = (_float(fields.get(k)) for k in ("x", "y", "w", "h"))
    if x is not None and y is not None and w is not None and h is not None:
        return Box(x, y, w, h, label)
    x1, y1, x2, y2 = (_float(fields.get(k)) for k in ("x1", "y1", "x2", "y2"))
    if x1 is not None and y1 is not None and x2 is not None and y2 is not None:
        return Box(x1, y1, x2 - x1, y2 - y1, label)
    return None


def _frame_of(value: object) -> int | None:
    number = _float(value)
    return int(number) if number is not None and number == int(number) else None


def _collect(
    pairs: Iterable[tuple[int | None, Box | None]], wanted: set[int]
) -> dict[int, list[Box]]:
    found: dict[int, list[Box]] = {}
    for frame, box in pairs:
        if frame is not None and box is not None and frame in wanted:
            found.setdefault(frame, []).append(box)
    return found


def _csv_boxes(text: str, wanted: set[int]) -> dict[int, list[Box]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "frame" not in header:
        raise PreviewError(
            "The detections file has no 'frame' column; it needs frame and x, y, w, h "
            "(or x1, y1, x2, y2) columns."
        )
    reader.fieldnames = header
    try:
        return _collect(((_frame_of(row.get("frame")), _box(row)) for row in reader), wanted)
    except csv.Error as exc:
        raise PreviewError(f"The detections file is not CSV: {exc}.") from exc


def _json_pairs(document: Any) -> Iterable[tuple[int | None, Box | None]]:
    if isinstance(document, dict):
        inner = document.get("frames", document.get("detections"))
        if inner is not None:
            yield from _json_pairs(inner)
            return
        for frame, boxes in document.items():
            for item in boxes if isinstance(boxes, list) else []:
                yield _frame_of(frame), _json_box(item)
    elif isinstance(document, list):
        for item in document:
            if isinstance(item, dict):
                yield _frame_of(item.get("frame")), _json_box(item)


def _json_box(item: object) -> Box | None:
    if isinstance(item, list) and len(item) >= 4:
        values = [_float(v) for v in item[:4]]
        if all(v is not None for v in values):
            x, y, w, h = (float(v) for v in values if v is not None)
            return Box(x, y, w, h)
        return None
    if isinstance(item, dict):
        return _box({str(k).lower(): v for k, v in item.items()})
    return None


def read_detections(data: bytes, name: str, wanted: set[int]) -> dict[int, list[Box]]:
    """Return the boxes of the frames in ``wanted`` from a detections file (CSV or JSON).

    ``name`` (the file's name) says which; the bytes may be a prefix of a longer file whose
    last line is already dropped. Raises ``PreviewError`` when the file is neither.
    """
    text = data.decode("utf-8-sig", errors="replace")
    if name.lower().endswith(".csv"):
        return _csv_boxes(text, wanted)
    try:
        if name.lower().endswith((".jsonl", ".ndjson")):
            document: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PreviewError(f"The detections file is not JSON: {exc.msg}.") from exc
    return _collect(_json_pairs(document), wanted)


# -- frames -------------------------------------------------------------------------------


def open_video(source: str) -> tuple[Any, VideoInfo]:
    """Open ``source`` (a URL or a file) with OpenCV; return the capture and what it holds.

    Raises ``PreviewError`` when OpenCV cannot open it as a video.
    """
    cv2 = opencv()
    capture = cv2.VideoCapture(
        source,
        cv2.CAP_FFMPEG,
        [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            READ_TIMEOUT_MS,
        ],
    )
    if not capture.isOpened():
        capture.release()
        raise PreviewError("OpenCV cannot open this file as a video; download it instead.")
    info = VideoInfo(
        fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
        frame_count=max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)),
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
    )
    return capture, info


def grab_frames(
    capture: Any,
    info: VideoInfo,
    indices: Sequence[int],
    boxes: Mapping[int, Sequence[Box]],
    max_side: int,
) -> tuple[list[VideoFrame], list[int]]:
    """Return the frames at ``indices``, scaled and with their ``boxes`` drawn, and the
    indices that could not be decoded. The capture is released."""
    cv2 = opencv()
    frames: list[VideoFrame] = []
    missing: list[int] = []
    try:
        for index in indices:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, image = capture.read()
            if not ok or image is None:
                missing.append(index)
                continue
            small, factor = scaled(image, max_side)
            drawn = boxes.get(index, ())
            draw_boxes(small, drawn, factor)
            frames.append(
                VideoFrame(
                    index=index,
                    time=round(index / info.fps, 3) if info.fps > 0 else 0.0,
                    url=jpeg_url(small),
                    width=small.shape[1],
                    height=small.shape[0],
                    boxes=len(drawn),
                )
            )
    finally:
        capture.release()
    return frames, missing


def video_preview(
    info: VideoInfo, frames: list[VideoFrame], missing: list[int], detections: str | None
) -> VideoPreview:
    """The answer for a video: what it holds, the frames, and a note on what is missing."""
    notes = []
    if missing:
        notes.append(f"Frames {', '.join(map(str, missing))} could not be decoded.")
    if detections is None:
        notes.append("No detections file: frames show without boxes.")
    return VideoPreview(
        fps=info.fps,
        frame_count=info.frame_count,
        duration=round(info.duration, 3),
        width=info.width,
        height=info.height,
        frames=frames,
        detections=detections,
        note=" ".join(notes),
    )
