"""What a preview holds, as the API answers it (``GET /projects/{ref}/workspace/preview``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from winslow.previews import PreviewKind


class ColumnStats(BaseModel):
    """One column of the rows read: how full it is, and its range or its variety."""

    name: str
    count: int = Field(description="Rows with a value in this column")
    empty: int = Field(description="Rows where it is empty or missing")
    numeric: bool = Field(description="Every value present is a number")
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    distinct: int | None = Field(default=None, description="Different values (text columns)")
    distinct_capped: bool = Field(default=False, description="There are at least `distinct` values")


class TablePreview(BaseModel):
    columns: list[str]
    rows: list[list[str]] = Field(description="The first rows, as text")
    stats: list[ColumnStats] = Field(description="Over every row read, not only those shown")
    rows_read: int
    bytes_read: int
    truncated: bool = Field(description="The file goes on past the bytes a preview reads")
    delimiter: str = ","


class KeyInfo(BaseModel):
    """A key of the JSON objects read (the document, or the items of its top list)."""

    name: str
    types: list[str] = Field(description="JSON types seen: object, array, string, number...")
    count: int = Field(description="Objects that have it")


class JsonPreview(BaseModel):
    format: Literal["json", "jsonl"]
    text: str = Field(description="Pretty JSON, long lists and strings cut short")
    type: str = Field(description="JSON type of the document (jsonl: 'array' of its lines)")
    length: int | None = Field(
        default=None, description="Items of the top array or keys of the object"
    )
    keys: list[KeyInfo]
    items_read: int
    bytes_read: int
    truncated: bool = Field(description="The file goes on past the bytes a preview reads")
    table: TablePreview | None = Field(
        default=None, description="A list of flat objects, as a table"
    )


class ImagePreview(BaseModel):
    url: str = Field(description="The thumbnail as a data: URL (JPEG)")
    width: int
    height: int
    original_width: int
    original_height: int


class VideoFrame(BaseModel):
    index: int = Field(description="Frame number from 0, as a stage counts frames")
    time: float = Field(description="Seconds from the start")
    url: str = Field(description="The frame as a data: URL (JPEG), scaled down")
    width: int
    height: int
    boxes: int = Field(default=0, description="Detections drawn on it")


class VideoPreview(BaseModel):
    fps: float
    frame_count: int
    duration: float
    width: int
    height: int
    frames: list[VideoFrame]
    detections: str | None = Field(default=None, description="Workspace path of the boxes drawn")
    note: str = ""


class PreviewPublic(BaseModel):
    kind: PreviewKind
    path: str
    source: Literal["workspace", "pool"]
    size: int
    run: int | None = None
    version: int | None = None
    image: ImagePreview | None = None
    table: TablePreview | None = None
    document: JsonPreview | None = None
    video: VideoPreview | None = None
