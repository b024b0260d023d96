"""Searching a run's whole log through the API: the archived log in real SeaweedFS, read in
ranges, and the live log of a running run; hits streamed with line numbers, pages, and a
bad pattern refused."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest

from tests.fixtures.winslow import Harness
from winslow.api.routes.logsearch import SEARCH_CHUNK_BYTES
from winslow.storage.keys import log_key

pytestmark = pytest.mark.slow

# 600 lines of about 3 KiB (1.8 MiB, more than one search chunk), each ending in a word:
# one of them crosses the chunk border with its match after it.
WIDE = f"""
name: wide
stages:
  - name: talk
    command:
      - {sys.executable}
      - -c
      - |
        for i in range(1, 601):
            word = "Needle" if i % 3 == 0 else "hay"
            print(f"row {{i}} " + "x" * 3000 + f" {{word}} end-of-row")
"""

NEEDLE = "needle end-of-row"
"""Only the stage's output: its command line (in the log too) has none of it."""


def search(winslow: Harness, project: str, run: dict, **params: Any) -> list[dict[str, Any]]:
    with winslow.api.stream(
        "GET", f"/api/v1/projects/{project}/runs/{run['id']}/logs/search", params=params
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.iter_lines() if line]


def hits(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "hit"]


def lines_of(whole: bytes) -> list[tuple[int, int, str]]:
    """(number, byte offset, text) of every line of ``whole``."""
    found, offset = [], 0
    for number, line in enumerate(whole.split(b"\n"), start=1):
        found.append((number, offset, line.decode()))
        offset += len(line) + 1
    return found


@pytest.fixture
def archived(winslow: Harness) -> dict[str, Any]:
    winslow.apply_pipeline(WIDE)
    winslow.create("wide", "wide", start=True)
    winslow.engine.run_until_idle()
    run = winslow.show("wide")["runs"][0]
    assert run["state"] == "succeeded"
    key = log_key(winslow.show("wide")["id"], run["id"])
    deadline = time.monotonic() + 30
    while not winslow.context.objects.exists(key):
        assert time.monotonic() < deadline, "the log was never archived"
        time.sleep(0.1)
    return run


def test_archived_log_is_searched_whole_with_line_numbers(winslow: Harness, archived) -> None:
    key = log_key(winslow.show("wide")["id"], archived["id"])
    whole = winslow.context.objects.get_bytes(key)
    assert len(whole) > SEARCH_CHUNK_BYTES  # more than one ranged read
    expected = [(n, at) for n, at, text in lines_of(whole) if "needle end-of-row" in text.lower()]
    assert len(expected) == 200

    records = search(winslow, "wide", archived, q=NEEDLE, limit=1000)
    found = hits(records)
    assert [(h["line"], h["offset"]) for h in found] == expected
    assert records[-1] == {
        "type": "end",
        "reason": "end",
        "hits": 200,
        "next": None,
        "detail": None,
    }
    assert any(r["type"] == "progress" for r in records)
    # Each hit's offset is the start of its line in the log, its text the line around the match.
    for hit in found:
        line = whole[hit["offset"] :].split(b"\n", 1)[0].decode()
        assert line[hit["start"] :].startswith(hit["text"])
        a, b = hit["spans"][0]
        assert hit["text"][a:b] == "Needle end-of-row"
    # The line that crosses the chunk border (read in two pieces) is found whole.
    border = [n for n, at, t in lines_of(whole) if at < SEARCH_CHUNK_BYTES <= at + len(t)]
    assert len(border) == 1
    rows = hits(
        search(winslow, "wide", archived, q="(needle|hay) end-of-row", regex="true", limit=1000)
    )
    assert len(rows) == 600
    crossing = next(h for h in rows if h["line"] == border[0])
    assert crossing["text"].endswith("end-of-row")


def test_case_and_regex_options(winslow: Harness, archived) -> None:
    assert len(hits(search(winslow, "wide", archived, q="Needle end", case="true"))) == 200
    assert hits(search(winslow, "wide", archived, q="NEEDLE end", case="true")) == []
    pattern = r"^\S+ stdout \| row 1\d x"  # rows 10 to 19 only
    found = hits(search(winslow, "wide", archived, q=pattern, regex="true"))
    assert [h["text"].split()[4] for h in found] == [str(n) for n in range(10, 20)]
    # As plain text the same characters are looked for literally: nowhere.
    assert hits(search(winslow, "wide", archived, q=pattern)) == []


def test_pages_go_on_where_the_last_one_stopped(winslow: Harness, archived) -> None:
    everything = hits(search(winslow, "wide", archived, q=NEEDLE, limit=1000))
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"q": NEEDLE, "limit": 70}
    for _ in range(5):
        records = search(winslow, "wide", archived, **params)
        end = records[-1]
        pages += hits(records)
        if end["next"] is None:
            break
        assert end["reason"] == "limit" and end["hits"] == 70
        params.update(end["next"])
    assert [h["line"] for h in pages] == [h["line"] for h in everything]
    assert end["reason"] == "end" and end["hits"] == 200 - 2 * 70


def test_bad_regex_is_a_400_with_the_regex_error(winslow: Harness, archived) -> None:
    response = winslow.api.get(
        f"/api/v1/projects/wide/runs/{archived['id']}/logs/search",
        params={"q": "row (1", "regex": "true"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_pattern"
    assert body["detail"].startswith("'row (1' is not a regular expression: missing )")
    empty = winslow.api.get(
        f"/api/v1/projects/wide/runs/{archived['id']}/logs/search", params={"q": ""}
    )
    assert empty.status_code == 422


def test_live_log_of_a_running_run(winslow: Harness) -> None:
    winslow.apply_pipeline(
        """
name: live
stages:
  - name: talk
    command: ["sh", "-c", "for i in $(seq 1 2000); do echo line $i; done; echo LIVE-MARK; sleep 30"]
"""
    )
    winslow.create("live", "live", start=True)
    run = winslow.wait_until_running("live")
    deadline = time.monotonic() + 30
    while "stdout | LIVE-MARK" not in winslow.log("live", run["id"]):
        assert time.monotonic() < deadline, "the stage never printed its mark"
        time.sleep(0.2)
    assert winslow.show("live")["runs"][0]["state"] == "running"
    whole = winslow.api.get(f"/api/v1/projects/live/runs/{run['id']}/logs").content
    expected = [(n, at) for n, at, text in lines_of(whole) if text.endswith("line 1999")]

    found = hits(search(winslow, "live", run, q="line 1999"))
    assert [(h["line"], h["offset"]) for h in found] == expected
    marks = hits(search(winslow, "live", run, q=r"stdout \| live-mark$", regex="true"))
    assert len(marks) == 1 and marks[0]["line"] == lines_of(whole)[-2][0]
    winslow.command("live", "kill")
    winslow.engine.run_until_idle()
