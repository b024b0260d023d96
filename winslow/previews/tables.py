"""Tables and JSON documents read from their first bytes: first rows, column stats, shapes.

A workspace's CSV may be tens of gigabytes, so the route hands over at most a capped prefix
of the file and says whether the file goes on (``truncated``). Then the last, probably cut
line is dropped and everything shown is about the rows read: the statistics say so, and the
console writes "of the first N rows". Values are text as in the file; a column is numeric when
every value present parses as a finite number.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from winslow.previews import PreviewError
from winslow.previews.models import ColumnStats, JsonPreview, KeyInfo, TablePreview

DISTINCT_CAP = 1000
"""Different values counted per text column; past it the count reads "1000+"."""

MAX_COLUMNS = 200
"""Columns a table preview keeps; a wider file shows its first ones."""

MAX_STRING = 300
"""Characters of a JSON string shown before it is cut."""

MAX_KEYS = 100
"""Keys of one JSON object shown before the rest are summed up."""

MAX_DEPTH = 8
"""Levels of nesting shown in a JSON preview."""

SNIFF_BYTES = 64 * 1024
"""Text the delimiter of a .csv is guessed from."""


class _Column:
    """Running statistics of one column."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.empty = 0
        self.numbers = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf
        self.values: set[str] = set()

    def add(self, value: str | None) -> None:
        if value is None or not value.strip():
            self.empty += 1
            return
        self.count += 1
        if len(self.values) < DISTINCT_CAP:
            self.values.add(value)
        number = _number(value)
        if number is not None:
            self.numbers += 1
            self.total += number
            self.low = min(self.low, number)
            self.high = max(self.high, number)

    def stats(self) -> ColumnStats:
        numeric = self.count > 0 and self.numbers == self.count
        if numeric:
            return ColumnStats(
                name=self.name,
                count=self.count,
                empty=self.empty,
                numeric=True,
                min=self.low,
                max=self.high,
                mean=self.total / self.numbers,
            )
        return ColumnStats(
            name=self.name,
            count=self.count,
            empty=self.empty,
            numeric=False,
            distinct=len(self.values),
            distinct_capped=len(self.values) >= DISTINCT_CAP,
        )


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def complete_lines(data: bytes, truncated: bool) -> bytes:
    """Drop the last line of a cut prefix: it is most likely cut in the middle."""
    if not truncated:
        return data
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else data


def summarize_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[str | None]],
    *,
    max_rows: int,
    bytes_read: int,
    truncated: bool,
    delimiter: str = ",",
) -> TablePreview:
    """Return the first ``max_rows`` rows and statistics over all of ``rows``.

    A row longer than the header gets columns named "column N"; a shorter one is empty in
    the columns it lacks. At most ``MAX_COLUMNS`` columns are kept.
    """
    names = list(columns[:MAX_COLUMNS])
    stats = [_Column(name) for name in names]
    shown: list[list[str]] = []
    read = 0
    for row in rows:
        read += 1
        while len(stats) < min(len(row), MAX_COLUMNS):
            name = f"column {len(stats) + 1}"
            # Earlier rows lacked this column: they count as empty in it.
            added = _Column(name)
            added.empty = read - 1
            names.append(name)
            stats.append(added)
        for index, column in enumerate(stats):
            column.add(row[index] if index < len(row) else None)
        if len(shown) < max_rows:
            shown.append([(row[i] or "") if i < len(row) else "" for i in range(len(names))])
    width = len(names)
    return TablePreview(
        columns=names,
        rows=[row + [""] * (width - len(row)) for row in shown],
        stats=[column.stats() for column in stats],
        rows_read=read,
        bytes_read=bytes_read,
        truncated=truncated,
        delimiter=delimiter,
    )


def guess_delimiter(text: str, tsv: bool) -> str:
    """Tab for a .tsv; for a .csv whichever of , ; tab | the sniffer finds, else a comma."""
    if tsv:
        return "\t"
    try:
        return csv.Sniffer().sniff(text[:SNIFF_BYTES], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_table(data: bytes, *, truncated: bool, tsv: bool, max_rows: int) -> TablePreview:
    """Preview a CSV (or TSV) from its first bytes; the first row names the columns.

    Raises ``PreviewError`` when the text is not CSV the ``csv`` module can read.
    """
    usable = complete_lines(data, truncated)
    text = usable.decode("utf-8-sig", errors="replace")
    delimiter = guess_delimiter(text, tsv)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, [])
        return summarize_rows(
            header,
            reader,
            max_rows=max_rows,
            bytes_read=len(data),
            truncated=truncated,
            delimiter=delimiter,
        )
    except csv.Error as exc:
        raise PreviewError(
            f"Line {reader.line_num} is not CSV the preview can read: {exc}."
        ) from exc


# -- JSON ---------------------------------------------------------------------------------


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def bounded(value: Any, max_items: int, depth: int = 0) -> Any:
    """``value`` with long lists, objects and strings cut short, saying how much is left out."""
    if depth >= MAX_DEPTH and isinstance(value, list | dict) and value:
        return f"… ({json_type(value)} nested too deep to show)"
    if isinstance(value, list):
        kept = [bounded(item, max_items, depth + 1) for item in value[:max_items]]
        if len(value) > max_items:
            kept.append(f"… {len(value) - max_items} more items")
        return kept
    if isinstance(value, dict):
        items = list(value.items())
        shown = {str(k): bounded(v, max_items, depth + 1) for k, v in items[:MAX_KEYS]}
        if len(items) > MAX_KEYS:
            shown["…"] = f"{len(items) - MAX_KEYS} more keys"
        return shown
    if isinstance(value, str) and len(value) > MAX_STRING:
        return value[:MAX_STRING] + f"… ({len(value)} characters)"
    return value


def key_summary(objects: Iterable[object]) -> list[KeyInfo]:
    """The keys of the objects among ``objects``, in order of first sight, with their types."""
    found: dict[str, tuple[list[str], int]] = {}
    for item in objects:
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            types, count = found.get(str(key), ([], 0))
            kind = json_type(value)
            if kind not in types:
                types.append(kind)
            found[str(key)] = (types, count + 1)
    return [KeyInfo(name=k, types=t, count=c) for k, (t, c) in list(found.items())[:MAX_KEYS]]


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def records_table(
    items: list[Any], *, max_rows: int, bytes_read: int, truncated: bool
) -> TablePreview | None:
    """A list of flat objects (no nested arrays or objects) as a table, else None."""
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    columns: dict[str, None] = {}
    for item in items:
        for key, value in item.items():
            if isinstance(value, list | dict):
                return None
            columns.setdefault(str(key), None)
    names = list(columns)
    rows = ([_cell(item.get(name)) for name in names] for item in items)
    return summarize_rows(
        names, rows, max_rows=max_rows, bytes_read=bytes_read, truncated=truncated
    )


def read_json(data: bytes, *, truncated: bool, lines: bool, max_items: int) -> JsonPreview:
    """Preview a JSON document, or JSON Lines (one document a line) from its first bytes.

    A JSON document must be whole (the route refuses one larger than its cap); JSON Lines
    are read line by line up to the cut. Raises ``PreviewError`` naming the line that is
    not JSON.
    """
    text = complete_lines(data, truncated and lines).decode("utf-8-sig", errors="replace")
    form: Literal["json", "jsonl"] = "jsonl" if lines else "json"
    if lines:
        items: list[Any] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise PreviewError(f"Line {number} is not JSON: {exc.msg}.") from exc
        document: Any = items
    else:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PreviewError(
                f"The file is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from exc
        items = document if isinstance(document, list) else [document]
    length = len(document) if isinstance(document, list | dict) else None
    return JsonPreview(
        format=form,
        text=json.dumps(bounded(document, max_items), indent=2, ensure_ascii=False),
        type=json_type(document),
        length=length,
        keys=key_summary(items),
        items_read=len(items),
        bytes_read=len(data),
        truncated=truncated and lines,
        table=records_table(items, max_rows=max_items, bytes_read=len(data), truncated=truncated),
    )
