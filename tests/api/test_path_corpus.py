"""Hostile names and paths, in every slot of the API that takes one: each answer is a 4xx
(or, where the value is a fine name after all, a success that stays inside its prefix),
nothing lands in the bucket outside the known prefixes or with a segment that climbs,
and nothing is written outside the data folder.

The slots come from the live OpenAPI document: every string path parameter (project,
pipeline, stage, token and session names, upload IDs), every ``path`` query, and the
``path``, ``name``, ``pipeline`` and ``from_stage`` fields of bodies. The other
parameters of each call name real things (``tests/fixtures/seeded.py``), so a value is
judged where it is used, not refused on the way by a lookup that failed first. The live
streams are left out: they take the names the other project routes take, and one that
opened would never end.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.seeded import (
    POOL_UPLOAD,
    Seeded,
    bucket_keys,
    fill,
    query_for,
)
from winslow.api.routes.triggers import TRIGGER_HEADER
from winslow.storage import keys

pytestmark = pytest.mark.slow  # each seeds a Winslow with a real stage run

MARK = "corpus-escape"
"""In every value that could make a file or an object somewhere, to find it afterwards."""

CORPUS: dict[str, str] = {
    "dot-dot": "..",
    "dot": ".",
    "up-and-out": f"../../../../../../tmp/{MARK}",
    "up-from-inside": f"videos/../../{MARK}",
    "up-at-the-end": "videos/..",
    "encoded-dot-dot": f"%2e%2e%2f%2e%2e%2f{MARK}",
    "double-encoded": f"%252e%252e%252f{MARK}",
    "absolute": f"/tmp/{MARK}",
    "root": "/",
    "backslash-up": f"..\\..\\{MARK}",
    "backslash-absolute": f"\\{MARK}",
    "unc": f"\\\\server\\share\\{MARK}",
    "nul": f"{MARK}\x00.txt",
    "nul-after-up": f"../{MARK}\x00",
    "5000-characters": "x" * 5000,
    "2500-segments": "x/" * 2500 + MARK,
    "newline": f"{MARK}\nforged.txt",
    "carriage-return": f"{MARK}\r.txt",
    "escape-sequence": f"{MARK}\x1b[2J.txt",
    "delete": f"{MARK}\x7f",
    "bidi-override": f"{MARK}\u202egpj.mp4",
    "bidi-isolate": f"{MARK}\u2066x",
    "zero-width": f"{MARK}\u200b",
    "byte-order-mark": f"\ufeff{MARK}",
    "line-separator": f"{MARK}\u2028x",
    "fullwidth-dots": f"\uff0e\uff0e/{MARK}",
    "dot-leaders": f"\u2024\u2024/{MARK}",
    "empty": "",
    "blank": "   ",
    "drive": f"C:\\{MARK}",
}
"""Hostile values by name: climbing out, encoded and absolute forms, NUL, backslashes,
5,000 characters, control, bidi and invisible characters, look-alike dots."""

SLOT_FIELDS = frozenset({"path", "name", "pipeline", "from_stage"})
"""Body fields that name a file, a folder or a thing."""

PIPELINE = "name: {name}\nstages:\n  - name: only\n    command: [true]\n"

BODIES: dict[str, dict[str, Any]] = {
    "PipelineText": {"text": PIPELINE.format(name="tiny")},
    "ProjectCreate": {"name": "fresh", "pipeline": "tiny"},
    "ProjectUpdate": {},
    "ResumeBody": {},
    "TriggerBody": {},
    "VariablesBody": {"set": {"A": "2"}},
    "ProjectTokenCreate": {"name": "fresh", "capabilities": ["trigger"]},
    "UploadCreate": {"path": "fresh.txt", "size": 1},
    "WorkspaceUploadCreate": {"path": "fresh.txt", "size": 1},
    "PartUrlsBody": {"path": POOL_UPLOAD, "part_numbers": [1]},
    "UploadComplete": {"path": POOL_UPLOAD, "size": 3, "parts": []},
    "GcBody": {},
    "BulkCommand": {"action": "pause", "projects": ["fresh"]},
    "SessionCreate": {"token": "wsl_wrong"},
    "UserCreate": {"name": "fresh", "password": "a long password"},
    "UserUpdate": {},
    "PasswordChange": {"password": "a long password"},
    "GroupCreate": {"name": "fresh"},
    "GroupUpdate": {},
    "MemberBody": {"role": "member"},
    "AccessChange": {"grants": [{"principal": "user:tester", "role": "owner"}]},
    "TokenCreate": {"name": "fresh"},
    "SubscriptionCreate": {
        "name": "fresh",
        "webhook": "http://127.0.0.1:9/hook",
        "pipeline": "tiny",
    },
}
"""A body each operation takes, naming real things, by its schema's name."""

FINE_NAMES = frozenset(
    {"encoded-dot-dot", "double-encoded", "fullwidth-dots", "dot-leaders", "blank", "drive"}
)
"""Values that are fine file paths after all: ``%`` and look-alike dots are characters of
a name like any other (nothing decodes or folds them later), three spaces are a name, and
a backslash is a folder separator (``C:\\x`` is the relative path ``C:/x``)."""

READABLE = frozenset(
    (
        "dot",
        "empty",
        "bidi-override",
        "bidi-isolate",
        "zero-width",
        "byte-order-mark",
        "line-separator",
    )
)
"""Values a read may take besides: ``.`` and nothing name the top folder, and a name no new
file may have (it could spoof a listing) may still be looked up (it finds nothing)."""

ROOTS = frozenset({"empty", "root"})
"""Values a URL cannot carry as a path segment: the router sees the collection's path."""


def allowed(method: str, where: str, name: str, label: str) -> bool:
    """Whether ``label``'s value may succeed in the slot."""
    if where == "path" or name != "path":
        return False
    return label in FINE_NAMES or (method == "get" and label in READABLE)


def encode(value: str) -> str:
    """``value`` as one URL path segment that reaches the route exactly so: every byte but
    letters and digits percent-encoded, dots too (a client would resolve a bare ``..``)."""
    return quote(value, safe="").replace(".", "%2E")


def slots(document: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any] | None]]:
    """(method, path, where, name, body) of every slot: ``where`` is path, query or body."""
    schemas = document["components"]["schemas"]
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.endswith(("/events", "/logs/stream")):
                continue
            for param in operation.get("parameters", []):
                kind = param["schema"].get("type")
                if param["in"] == "path" and kind == "string":
                    found.append((method, path, "path", param["name"], None))
                elif param["in"] == "query" and param["name"] == "path":
                    found.append((method, path, "query", "path", None))
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema", {})
            # An optional body is documented as anyOf: [the body, null].
            ref = next((s["$ref"] for s in [schema, *schema.get("anyOf", [])] if "$ref" in s), "")
            schema_name = ref.rsplit("/", 1)[-1]
            if not schema_name:
                continue
            assert schema_name in BODIES, f"give BODIES a body for {schema_name}"
            fields = set(schemas[schema_name].get("properties", {})) & SLOT_FIELDS
            for field in sorted(fields):
                found.append((method, path, "body", field, BODIES[schema_name]))
    return found


def send(api: TestClient, seeded: Seeded, slot: tuple[str, str, str, str, Any], value: str) -> Any:
    method, path, where, name, body = slot
    query = query_for(path)
    headers = {TRIGGER_HEADER: seeded.trigger_token} if path.endswith("/trigger") else {}
    if where == "path":
        url = fill(path, seeded, **{name: encode(value)})
        if path == "/api/v1/pipelines/{name}" and body is not None:
            body = {"text": PIPELINE.format(name=json.dumps(value))}
    else:
        url = fill(path, seeded)
    if where == "query":
        query = {"path": value}
    if where == "body":
        body = {**body, name: value}
    return api.request(method, url, params=query, json=body, headers=headers)


def stays_inside(answer: Any) -> list[str]:
    """The ``path`` values of a JSON answer that are not clean relative paths."""
    if "json" not in answer.headers.get("content-type", ""):
        return []
    wrong = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "path" and isinstance(item, str) and not is_clean(item):
                    wrong.append(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(answer.json())
    return wrong


def is_clean(path: str) -> bool:
    """Whether ``path`` is relative and climbs nowhere: no empty, ``.`` or ``..`` segment, no
    backslash, no control character ("" is the top folder)."""
    return path == "" or (
        all(segment not in ("", ".", "..") for segment in path.split("/"))
        and "\\" not in path
        and not any(unicodedata.category(char) == "Cc" for char in path)
    )


def is_visible(path: str) -> bool:
    """Whether ``path`` holds no invisible or direction-changing character."""
    return not any(unicodedata.category(char) in ("Cf", "Zl", "Zp") for char in path)


PREFIXES = (keys.RESOURCES, keys.WORKSPACES, keys.LOGS, keys.BLOBS, keys.PENDING)


def misplaced(bucket: list[str]) -> list[str]:
    """Keys (and keys of uploads in progress) outside Winslow's prefixes, or unclean."""
    wrong = []
    for listed in bucket:
        key = listed.removeprefix("(upload) ")
        prefix = next((prefix for prefix in PREFIXES if key.startswith(prefix)), None)
        rest = key[len(prefix or "") :]
        if prefix is None or not is_clean(rest) or not is_visible(rest):
            wrong.append(listed)
    return wrong


def files_outside(root: Path, data_dir: Path) -> set[str]:
    """Everything below ``root`` but the data folder, and the test's SQLite database beside
    it (with its ``-wal`` and ``-shm``, which SQLite makes and removes as it goes)."""
    return {
        str(path)
        for path in root.rglob("*")
        if not path.is_relative_to(data_dir) and not path.name.startswith("winslow.db")
    }


def marked(below: list[Path], at: list[Path]) -> list[str]:
    """Files and folders whose name has ``MARK``: anywhere below the folders ``below``, and
    right in the folders ``at``."""
    found = [str(path) for folder in at for path in folder.iterdir() if MARK in path.name]
    for root in below:
        for folder, dirs, files in os.walk(root):
            found += [os.path.join(folder, name) for name in dirs + files if MARK in name]
    return found


def test_hostile_paths_and_names_are_refused_everywhere(seeded: Seeded, tmp_path: Path) -> None:
    api = seeded.winslow.api
    document = api.get("/api/v1/openapi.json").json()
    found = slots(document)
    kinds = {(where, name) for _, _, where, name, _ in found}
    assert kinds >= {("path", n) for n in ("ref", "name", "upload_id", "stage", "handle")}
    assert kinds >= {("query", "path")} | {("body", n) for n in SLOT_FIELDS}
    outside = files_outside(tmp_path, seeded.data_dir)
    pipelines_dir = seeded.winslow.context.settings.resolved_pipelines_dir()
    pipelines = sorted(p.name for p in pipelines_dir.iterdir())
    wrong: dict[str, list[str]] = {}

    for slot in found:
        method, path, where, name, _ = slot
        for label, value in CORPUS.items():
            if where == "path" and label in ROOTS:
                continue
            answer = send(api, seeded, slot, value)
            status = answer.status_code
            if 400 <= status < 500 or (status < 300 and allowed(method, where, name, label)):
                problem = stays_inside(answer) or None
            else:
                problem = status
            if problem:
                wrong.setdefault(f"{method.upper()} {path} {where}:{name}", []).append(
                    f"{label}: {problem}"
                )

    assert wrong == {}
    assert misplaced(bucket_keys(seeded)) == []
    assert files_outside(tmp_path, seeded.data_dir) == outside
    assert sorted(p.name for p in pipelines_dir.iterdir()) == pipelines
    # The test's own temporary folders and the data folder whole; /tmp, /, and the
    # server's working folder at their top, where an absolute or climbing path would land.
    assert marked([tmp_path.parent, seeded.data_dir], [Path("/tmp"), Path("/"), Path.cwd()]) == []
