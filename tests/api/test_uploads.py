"""Presigned multipart uploads through the API: resume, checksums, sizes, paths, downloads.

The API runs in the test process (``winslow`` fixture), object storage is a real
SeaweedFS (and moto's S3 server for the tests marked ``ANY_S3``), and the parts go to it
over HTTP as a browser or the CLI sends them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import tracemalloc
import unicodedata
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.s3 import ANY_S3
from tests.fixtures.winslow import Harness
from winslow.cli import transfer
from winslow.cli.client import ApiClient, CommandError
from winslow.cli.transfer import upload_file
from winslow.settings import ClientSettings

MIB = 1024 * 1024
PART = 16 * MIB  # the part size of every file under 160 GiB


@pytest.fixture
def cli_api(winslow: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The CLI's ``ApiClient``, talking to the in-process API; its cache in ``tmp_path``."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    api = ApiClient(ClientSettings(addr="http://testserver", token=winslow.token))
    api.http.close()
    api.http = TestClient(
        winslow.api.app,
        base_url="http://testserver/api/v1",
        headers={"Authorization": f"Bearer {winslow.token}"},
    )
    yield api
    api.close()


@pytest.fixture
def puts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Part numbers of every PUT sent to object storage through an ``httpx.Client``."""
    sent: list[int] = []
    real_put = httpx.Client.put

    def counting_put(self, url, *args, **kwargs):
        sent.append(int(parse_qs(urlparse(str(url)).query)["partNumber"][0]))
        return real_put(self, url, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "put", counting_put)
    return sent


def begin(winslow: Harness, path: str, size: int) -> dict:
    response = winslow.api.post("/api/v1/resources/uploads", json={"path": path, "size": size})
    assert response.status_code == 201, response.text
    return response.json()


def part_url(winslow: Harness, upload: dict, number: int) -> str:
    response = winslow.api.post(
        f"/api/v1/resources/uploads/{upload['upload_id']}/urls",
        json={"path": upload["path"], "part_numbers": [number]},
    )
    assert response.status_code == 200, response.text
    return response.json()["urls"][str(number)]


def put_part(winslow: Harness, upload: dict, number: int, data: bytes, **headers: str) -> str:
    response = httpx.put(part_url(winslow, upload, number), content=data, headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["ETag"].strip('"')


def complete(winslow: Harness, upload: dict, parts: list[bytes], size: int | None = None):
    return winslow.api.post(
        f"/api/v1/resources/uploads/{upload['upload_id']}/complete",
        json={
            "path": upload["path"],
            "size": upload["size"] if size is None else size,
            "parts": [
                {"part_number": n, "md5": hashlib.md5(data).hexdigest()}
                for n, data in enumerate(parts, start=1)
            ],
        },
    )


def download(winslow: Harness, path: str, **headers: str) -> httpx.Response:
    info = winslow.api.get("/api/v1/resources/download", params={"path": path})
    assert info.status_code == 200, info.text
    return httpx.get(info.json()["url"], headers=headers, timeout=60)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def upload_whole(winslow: Harness, path: str, data: bytes) -> None:
    """Put ``data`` at ``path`` through the presigned path, the way a browser would."""
    upload = begin(winslow, path, len(data))
    parts = [data[i : i + PART] for i in range(0, len(data), PART)] or [b""]
    for number, chunk in enumerate(parts, start=1):
        put_part(winslow, upload, number, chunk)
    response = complete(winslow, upload, parts)
    assert response.status_code == 200, response.text


# -- resume ---------------------------------------------------------------------------------


@ANY_S3
def test_interrupted_upload_resumes_sending_only_what_is_missing(
    winslow: Harness, cli_api: ApiClient, puts: list[int], tmp_path: Path
) -> None:
    data = os.urandom(40 * MIB + 123)  # parts of 16, 16 and 8 MiB
    local = tmp_path / "video.mp4"
    local.write_bytes(data)

    def drop_after_first_part(moved: int) -> None:
        raise ConnectionError("network dropped")

    with pytest.raises(ConnectionError):
        upload_file(cli_api, local, "videos/v.mp4", drop_after_first_part, threads=1)
    assert puts == [1]
    assert winslow.api.get("/api/v1/resources").json()["data"] == []

    # Part 2 got stored from bytes that are not this file's (right size, wrong content):
    # the rerun must notice by hashing its own bytes, and send it again.
    state = json.loads(next((tmp_path / "cache" / "winslow" / "uploads").iterdir()).read_text())
    put_part(winslow, state, 2, os.urandom(PART))
    puts.clear()

    moved: list[int] = []
    result = upload_file(cli_api, local, "videos/v.mp4", moved.append, threads=1)

    assert sorted(puts) == [2, 3]
    assert moved == [PART, PART, 8 * MIB + 123]  # what was kept, then each part sent
    assert result["path"] == "videos/v.mp4" and result["size"] == len(data)
    assert sha256(download(winslow, "videos/v.mp4").content) == sha256(data)
    assert list((tmp_path / "cache" / "winslow" / "uploads").iterdir()) == []


@ANY_S3
def test_rerun_after_the_upload_was_aborted_begins_again(
    winslow: Harness, cli_api: ApiClient, puts: list[int], tmp_path: Path
) -> None:
    data = os.urandom(PART + 10)
    local = tmp_path / "a.bin"
    local.write_bytes(data)

    def drop(_moved: int) -> None:
        raise ConnectionError("network dropped")

    with pytest.raises(ConnectionError):
        upload_file(cli_api, local, "a.bin", drop, threads=1)
    state = json.loads(next((tmp_path / "cache" / "winslow" / "uploads").iterdir()).read_text())
    aborted = winslow.api.delete(
        f"/api/v1/resources/uploads/{state['upload_id']}", params={"path": "a.bin"}
    )
    assert aborted.status_code == 204
    puts.clear()

    result = upload_file(cli_api, local, "a.bin", threads=2)

    assert sorted(puts) == [1, 2]
    assert result["size"] == len(data)
    assert download(winslow, "a.bin").content == data


@ANY_S3
def test_parallel_cli_upload_with_extra_fields_and_an_empty_file(
    winslow: Harness, cli_api: ApiClient, tmp_path: Path
) -> None:
    data = os.urandom(3 * PART + 5)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    result = upload_file(cli_api, local, "x/big.bin", threads=4, extra={"note": "ignored"})
    assert result["size"] == len(data)
    assert sha256(download(winslow, "x/big.bin").content) == sha256(data)

    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert upload_file(cli_api, empty, "x/empty")["size"] == 0
    assert download(winslow, "x/empty").content == b""


def test_cli_upload_streams_its_parts_instead_of_holding_them(
    winslow: Harness, cli_api: ApiClient, tmp_path: Path
) -> None:
    """Four parts go at once, yet the upload holds far less than two of them (about 10
    MiB here): each part is hashed and then sent from the file in pieces. Reading parts
    whole held four and their copies on the way to the socket (113 MiB here; issue 17:
    480 MB for 1 GiB)."""
    local = tmp_path / "big.bin"
    with local.open("wb") as handle:
        for _ in range(6):
            handle.write(os.urandom(PART))
    tracemalloc.start()
    try:
        result = upload_file(cli_api, local, "big.bin", threads=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["size"] == 6 * PART
    assert peak < 2 * PART, f"{peak / MIB:.1f} MiB allocated at the peak"


def test_next_part_is_hashed_while_a_part_is_sent(
    winslow: Harness, cli_api: ApiClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PUT needs its part's MD5 first; hashing it in the sender, after the part before
    had gone, left every sender idle while it hashed (issue 17: hashing on the critical
    path). Even with one thread, part 2 is hashed while part 1 is on its way."""
    data = os.urandom(2 * PART + 1)
    local = tmp_path / "f.bin"
    local.write_bytes(data)
    hashing = {n: threading.Event() for n in (1, 2, 3)}
    real_md5 = transfer._md5_of_part

    def watched_md5(path: Path, number: int, part_size: int, size: int) -> bytes:
        hashing[number].set()
        return real_md5(path, number, part_size, size)

    real_put = httpx.Client.put
    next_hashed: list[bool] = []

    def put_once_the_next_part_is_hashing(self, url, *args, **kwargs):
        number = int(parse_qs(urlparse(str(url)).query)["partNumber"][0])
        if number < 3:
            next_hashed.append(hashing[number + 1].wait(timeout=10))
        return real_put(self, url, *args, **kwargs)

    monkeypatch.setattr(transfer, "_md5_of_part", watched_md5)
    monkeypatch.setattr(httpx.Client, "put", put_once_the_next_part_is_hashing)
    assert upload_file(cli_api, local, "f.bin", threads=1)["size"] == len(data)
    assert next_hashed == [True, True]
    assert sha256(download(winslow, "f.bin").content) == sha256(data)


def test_a_file_cut_short_while_it_uploads_stops_the_upload(
    winslow: Harness, cli_api: ApiClient, tmp_path: Path
) -> None:
    """Parts are read from the file as they go, so a file that shrinks meanwhile is
    noticed (short read) and the upload stops rather than storing a mix."""
    local = tmp_path / "f.bin"
    local.write_bytes(os.urandom(3 * PART))

    def truncate(_moved: int) -> None:
        with local.open("r+b") as handle:
            handle.truncate(PART + 10)

    with pytest.raises(CommandError, match="changed while it was uploaded"):
        upload_file(cli_api, local, "f.bin", truncate, threads=1)
    assert winslow.api.get("/api/v1/resources").json()["data"] == []


# -- checksums and sizes --------------------------------------------------------------------


def test_corrupted_part_is_rejected_and_the_good_file_stays(winslow: Harness) -> None:
    good = os.urandom(1000)
    upload_whole(winslow, "videos/v.bin", good)

    new = os.urandom(PART + 1000)
    parts = [new[:PART], new[PART:]]
    upload = begin(winslow, "videos/v.bin", len(new))
    put_part(winslow, upload, 1, parts[0])
    damaged = bytearray(parts[1])
    damaged[17] ^= 0xFF
    # With its Content-MD5, object storage itself refuses the damaged bytes...
    refused = httpx.put(
        part_url(winslow, upload, 2),
        content=bytes(damaged),
        headers={"Content-MD5": content_md5(parts[1])},
    )
    assert refused.status_code == 400 and "BadDigest" in refused.text
    # ...without it they are stored, and completion refuses them.
    put_part(winslow, upload, 2, bytes(damaged))

    response = complete(winslow, upload, parts)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "part 2 does not match what was sent" in detail.lower()
    assert hashlib.md5(parts[1]).hexdigest() in detail
    assert "upload that part again" in detail
    assert "part 1" not in detail.lower()
    assert download(winslow, "videos/v.bin").content == good

    # Sending that part again and completing again works; the upload stayed open.
    put_part(winslow, upload, 2, parts[1], **{"Content-MD5": content_md5(parts[1])})
    done = complete(winslow, upload, parts)
    assert done.status_code == 200, done.text
    assert done.json()["size"] == len(new)
    assert sha256(download(winslow, "videos/v.bin").content) == sha256(new)


def test_wrong_total_size_or_missing_part_is_rejected_and_nothing_overwritten(
    winslow: Harness,
) -> None:
    good = b"the good file"
    upload_whole(winslow, "data.bin", good)
    new = os.urandom(PART + 2000)
    parts = [new[:PART], new[PART:]]
    upload = begin(winslow, "data.bin", len(new))
    for number, chunk in enumerate(parts, start=1):
        put_part(winslow, upload, number, chunk)

    for size in (len(new) + 1, len(new) - 1):
        response = complete(winslow, upload, parts, size=size)
        assert response.status_code == 422
        assert response.json()["detail"] == (
            f"The stored parts hold {len(new)} bytes, but the file is {size} bytes; "
            "complete with the size given when the upload began."
        )
    only_first = complete(winslow, upload, parts[:1])
    assert only_first.status_code == 422
    assert "part 2 is not listed" in only_first.json()["detail"]
    too_many = complete(winslow, upload, [*parts, b"x"])
    assert too_many.status_code == 422
    assert "part 3 is outside that" in too_many.json()["detail"]
    never_sent = complete(winslow, upload, parts, size=2 * PART + 1)
    assert never_sent.status_code == 422
    assert "part 3 is not listed" in never_sent.json()["detail"]
    assert download(winslow, "data.bin").content == good

    assert complete(winslow, upload, parts).status_code == 200
    assert sha256(download(winslow, "data.bin").content) == sha256(new)


def test_parts_cut_to_another_size_are_rejected(winslow: Harness) -> None:
    data = os.urandom(PART + 6 * MIB)
    parts = [data[: 6 * MIB], data[6 * MIB :]]  # the right total, the wrong cut
    upload = begin(winslow, "cut.bin", len(data))
    for number, chunk in enumerate(parts, start=1):
        put_part(winslow, upload, number, chunk)
    response = complete(winslow, upload, parts)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(
        f"The parts are cut wrong: Part 1 holds {6 * MIB} bytes where {PART} belong"
    )


def test_completion_body_is_checked(winslow: Harness) -> None:
    upload = begin(winslow, "b.bin", 3)
    put_part(winslow, upload, 1, b"abc")
    url = f"/api/v1/resources/uploads/{upload['upload_id']}/complete"
    md5 = hashlib.md5(b"abc").hexdigest()
    cases = [
        ({"path": "b.bin", "size": 3, "parts": [{"part_number": 1}]}, "md5"),
        ({"path": "b.bin", "size": 3, "parts": [{"part_number": 1, "md5": "xyz"}]}, "md5"),
        ({"path": "b.bin", "parts": [{"part_number": 1, "md5": md5}]}, "size"),
        (
            {"path": "b.bin", "size": 3, "parts": [{"part_number": 1, "md5": md5}] * 2},
            "part 1 is listed twice",
        ),
        (
            {"path": "b.bin", "size": 3, "parts": [{"part_number": 1, "md5": md5, "etag": "0"}]},
            "answered ETag 0",
        ),
    ]
    for body, words in cases:
        response = winslow.api.post(url, json=body)
        assert response.status_code == 422, body
        assert words in response.json()["detail"], response.json()
    upper = {"path": "b.bin", "size": 3, "parts": [{"part_number": 1, "md5": md5.upper()}]}
    assert winslow.api.post(url, json=upper).json()["size"] == 3


@ANY_S3
def test_abort_drops_the_parts_and_keeps_the_file(winslow: Harness) -> None:
    upload_whole(winslow, "keep.txt", b"keep me")
    upload = begin(winslow, "keep.txt", 4)
    put_part(winslow, upload, 1, b"new!")
    base = f"/api/v1/resources/uploads/{upload['upload_id']}"
    assert winslow.api.delete(base, params={"path": "keep.txt"}).status_code == 204
    gone = winslow.api.get(base + "/parts", params={"path": "keep.txt"})
    assert gone.status_code == 404
    assert "Start the upload again" in gone.json()["detail"]
    assert complete(winslow, upload, [b"new!"]).status_code == 404
    assert download(winslow, "keep.txt").content == b"keep me"


@ANY_S3
def test_stored_parts_list_each_part_with_its_md5(winslow: Harness) -> None:
    upload = begin(winslow, "p.bin", PART + 1)
    put_part(winslow, upload, 2, b"z")
    listed = winslow.api.get(
        f"/api/v1/resources/uploads/{upload['upload_id']}/parts", params={"path": "p.bin"}
    ).json()["parts"]
    assert listed == [{"part_number": 2, "etag": hashlib.md5(b"z").hexdigest(), "size": 1}]


# -- paths ----------------------------------------------------------------------------------

BAD_PATHS = [
    ("../x", "contains '..'"),
    ("a/../../x", "contains '..'"),
    ("/etc/passwd", "is absolute"),
    ("\\..\\x", "is absolute"),
    ("a\\..\\..\\x", "contains '..'"),
    ("a\x00b", "control character"),
    ("a\nb", "control character"),
    ("x" * 2000, "characters long"),
    ("", "empty"),
]


@pytest.mark.parametrize(("path", "reason"), BAD_PATHS)
def test_bad_paths_are_refused_with_the_reason(winslow: Harness, path: str, reason: str) -> None:
    upload_id = "2f1c0aa0-upload"
    calls = [
        ("POST", "/api/v1/resources/uploads", {"json": {"path": path, "size": 1}}),
        (
            "POST",
            f"/api/v1/resources/uploads/{upload_id}/urls",
            {"json": {"path": path, "part_numbers": [1]}},
        ),
        ("GET", f"/api/v1/resources/uploads/{upload_id}/parts", {"params": {"path": path}}),
        (
            "POST",
            f"/api/v1/resources/uploads/{upload_id}/complete",
            {"json": {"path": path, "size": 1, "parts": []}},
        ),
        ("DELETE", f"/api/v1/resources/uploads/{upload_id}", {"params": {"path": path}}),
        ("GET", "/api/v1/resources/download", {"params": {"path": path}}),
        ("DELETE", "/api/v1/resources", {"params": {"path": path}}),
    ]
    for method, url, kwargs in calls:
        response = winslow.api.request(method, url, **kwargs)
        assert response.status_code == 422, (method, url, response.text)
        body = response.json()
        assert body["code"] == "invalid_input", (method, url, body)
        assert reason in body["detail"], (method, url, body)


def test_unicode_names_are_kept_as_given(
    winslow: Harness, cli_api: ApiClient, tmp_path: Path
) -> None:
    composed = "Ulm/Kreuzung Ä 🚗.mp4"
    decomposed = unicodedata.normalize("NFD", composed)  # another name, kept apart
    assert composed != decomposed
    local = tmp_path / "clip.mp4"
    local.write_bytes(b"frames")
    for name in (composed, decomposed):
        assert upload_file(cli_api, local, name)["path"] == name

    listing = winslow.api.get("/api/v1/resources", params={"path": "Ulm"}).json()["data"]
    assert sorted(f["name"] for f in listing) == sorted(
        name.split("/")[1] for name in (composed, decomposed)
    )
    assert {f["path"] for f in listing} == {composed, decomposed}
    response = download(winslow, composed)
    assert response.content == b"frames"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert f"filename*=UTF-8''{quote('Kreuzung Ä 🚗.mp4', safe='')}" in disposition


def test_an_upload_id_that_is_not_one_is_refused(winslow: Harness) -> None:
    response = winslow.api.get("/api/v1/resources/uploads/a b/parts", params={"path": "x.bin"})
    assert response.status_code == 422
    assert "is not an upload ID" in response.json()["detail"]
    missing = winslow.api.get(
        "/api/v1/resources/uploads/no-such-upload/parts", params={"path": "x.bin"}
    )
    assert missing.status_code == 404


def test_huge_files_are_refused_before_anything_starts(winslow: Harness) -> None:
    response = winslow.api.post(
        "/api/v1/resources/uploads", json={"path": "huge.bin", "size": 5 * 1024**4 + 1}
    )
    assert response.status_code == 422
    assert "at most" in response.json()["detail"]
    tebibyte = begin(winslow, "tib.bin", 1024**4)
    assert tebibyte["part_count"] <= 10_000
    assert tebibyte["part_size"] * tebibyte["part_count"] >= 1024**4


# -- downloads ------------------------------------------------------------------------------


def test_presigned_download_serves_ranges_under_the_files_name(winslow: Harness) -> None:
    data = os.urandom(PART + 4096)
    upload_whole(winslow, "reports/Woche 12.bin", data)
    response = download(winslow, "reports/Woche 12.bin", Range="bytes=100-199")
    assert response.status_code == 206
    assert response.content == data[100:200]
    assert response.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert response.headers["content-disposition"] == 'attachment; filename="Woche 12.bin"'
    tail = download(winslow, "reports/Woche 12.bin", Range=f"bytes={PART}-")
    assert tail.status_code == 206 and tail.content == data[PART:]

    redirect = winslow.api.get(
        "/api/v1/resources/download",
        params={"path": "reports/Woche 12.bin", "redirect": "true"},
        follow_redirects=False,
    )
    assert redirect.status_code == 307
    assert httpx.get(redirect.headers["location"]).content == data


def test_cli_error_names_the_part_when_completion_is_refused(
    winslow: Harness, cli_api: ApiClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should object storage store other bytes than the CLI sent (it answers the ETag of
    what it stored), the CLI stops and says so; a rerun sends that part again."""
    data = os.urandom(PART + 7)
    local = tmp_path / "f.bin"
    local.write_bytes(data)
    real_put = httpx.Client.put

    def tampering_put(self, url, *args, content=b"", headers=None, **kwargs):
        if "partNumber=2" in str(url):
            content = b"Y" * len(content)
            headers = {}  # no Content-MD5: object storage takes the other bytes
        return real_put(self, url, *args, content=content, headers=headers, **kwargs)

    monkeypatch.setattr(httpx.Client, "put", tampering_put)
    with pytest.raises(CommandError, match=r"stored part 2 of .* with checksum"):
        upload_file(cli_api, local, "f.bin", threads=1)
    monkeypatch.setattr(httpx.Client, "put", real_put)
    assert upload_file(cli_api, local, "f.bin")["size"] == len(data)
    assert download(winslow, "f.bin").content == data
