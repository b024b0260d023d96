"""`winslow resources download` and `workspace download` continue an interrupted download
with a Range request: real SeaweedFS behind presigned URLs, the API in this process.

Found by trying it: a resource replaced between an interrupted download and its rerun
came out as the old file's first megabytes followed by the rest of the new one, with no
word said (same size, so nothing noticed).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.winslow import Harness
from winslow.cli.transfer import download
from winslow.storage.keys import resource_key

SIZE = 3_000_000
CUT_AFTER = 1_000_000


class Interrupted(Exception):
    """The connection dropped, as far as the download can tell."""


def cut_after(limit: int) -> Any:
    got = 0

    def progress(amount: int) -> None:
        nonlocal got
        got += amount
        if got >= limit:
            raise Interrupted

    return progress


def resource_info(winslow: Harness, path: str) -> dict[str, Any]:
    answer = winslow.api.get("/api/v1/resources/download", params={"path": path})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_a_file_replaced_between_two_attempts_is_downloaded_whole_from_the_start(
    winslow: Harness, tmp_path: Path
) -> None:
    objects, here = winslow.context.objects, tmp_path / "here"
    old, new = b"o" * SIZE, b"n" * SIZE
    objects.put_bytes(resource_key("videos/v.bin"), old)
    first = resource_info(winslow, "videos/v.bin")
    with pytest.raises(Interrupted):
        download(first, here / "v.bin", cut_after(CUT_AFTER))
    assert not (here / "v.bin").exists()

    objects.put_bytes(resource_key("videos/v.bin"), new)
    second = resource_info(winslow, "videos/v.bin")
    assert second["version"] != first["version"]
    download(second, here / "v.bin")
    got = (here / "v.bin").read_bytes()
    assert got == new, f"{got.count(b'o')} bytes of the old file in the download"
    assert [p.name for p in here.iterdir()] == ["v.bin"]  # no partial left


def test_an_unchanged_file_continues_where_it_stopped(winslow: Harness, tmp_path: Path) -> None:
    data = bytes(range(256)) * (SIZE // 256)
    winslow.context.objects.put_bytes(resource_key("v.bin"), data)
    info = resource_info(winslow, "v.bin")
    with pytest.raises(Interrupted):
        download(info, tmp_path / "v.bin", cut_after(CUT_AFTER))

    again = resource_info(winslow, "v.bin")
    assert again["version"] == info["version"]
    steps: list[int] = []
    download(again, tmp_path / "v.bin", steps.append)
    assert (tmp_path / "v.bin").read_bytes() == data
    kept = steps[0]  # what was there before is counted first, then what came
    assert kept >= CUT_AFTER and sum(steps) == len(data)


def test_a_workspace_file_is_versioned_by_its_content(winslow: Harness, tmp_path: Path) -> None:
    winslow.apply_pipeline(
        "name: writes\nstages:\n  - name: a\n    command: "
        '["sh", "-c", "echo first > \\"$WINSLOW_WORKSPACE/out.txt\\""]\n'
        "  - name: b\n    command: "
        '["sh", "-c", "echo second > \\"$WINSLOW_WORKSPACE/out.txt\\""]\n'
    )
    winslow.create("w", "writes", start=True)
    winslow.engine.run_until_idle()
    runs = [r["id"] for r in winslow.show("w")["runs"]]

    def info(run: int) -> dict[str, Any]:
        answer = winslow.api.get(
            "/api/v1/projects/w/workspace/download", params={"path": "out.txt", "run": run}
        )
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    first, second = info(runs[0]), info(runs[1])
    assert first["version"] and first["version"] == info(runs[0])["version"]
    assert second["version"] != first["version"]
    got = download(second, tmp_path / "here" / "out.txt")
    assert got.read_text() == "second\n"
    # The copy is as old as the file the stage wrote, as the listing shows it.
    listed = winslow.api.get("/api/v1/projects/w/workspace", params={"run": runs[1]}).json()
    [entry] = [e for e in listed["data"] if e["path"] == "out.txt"]
    written = datetime.fromisoformat(entry["modified"]).timestamp()
    assert got.stat().st_mtime == pytest.approx(written, abs=0.001)


def test_a_downloaded_resource_keeps_the_time_it_was_stored(
    winslow: Harness, tmp_path: Path
) -> None:
    winslow.context.objects.put_bytes(resource_key("old.csv"), b"a,b\n")
    stored = winslow.context.objects.head(resource_key("old.csv")).modified
    assert stored is not None
    time.sleep(1.1)  # S3 keeps whole seconds: the download's own time differs by more
    got = download(resource_info(winslow, "old.csv"), tmp_path / "here" / "old.csv")
    assert got.stat().st_mtime == pytest.approx(stored.timestamp(), abs=0.001)
