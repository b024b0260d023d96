"""ObjectStore against a real SeaweedFS: what lands in the bucket, and what is refused.

The tests marked ``ANY_S3`` are the storage contract: they run on moto's S3 server too.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import threading

import httpx
import pytest
from botocore.exceptions import EndpointConnectionError

from tests.fixtures.ports import pick_ports
from tests.fixtures.s3 import ANY_S3
from winslow import defaults
from winslow.errors import ConflictError, NotFoundError, StorageError, ValidationError
from winslow.storage import keys
from winslow.storage.objects import ObjectStore, choose_part_size, content_disposition
from winslow.storage.s3 import S3RequestError, map_client_error
from winslow.storage.seaweed import CREDENTIALS_FILE, SeaweedServer

MIB = 1024 * 1024


class ProgressTotal:
    """Sums progress callbacks, which s3transfer makes from several threads."""

    def __init__(self):
        self.total = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, count):
        with self._lock:
            self.total += count
            self.calls += 1


# Small objects -----------------------------------------------------------------------


@ANY_S3
def test_put_then_get_head_and_range_round_trip(object_store):
    key = keys.resource_key("videos/ulm/cam1.txt")
    etag = object_store.put_bytes(key, b"0123456789")

    assert object_store.get_bytes(key) == b"0123456789"
    entry = object_store.head(key)
    assert (entry.path, entry.size, entry.is_dir, entry.etag) == (key, 10, False, etag)
    assert entry.modified is not None
    assert object_store.get_range(key, 2, 5) == b"2345"  # end is inclusive, as in HTTP
    assert object_store.get_range(key, 7, None) == b"789"
    assert object_store.get_range(key, 10, None) == b""  # nothing new in a log
    assert object_store.exists(key)
    assert not object_store.exists(keys.resource_key("videos/ulm/cam2.txt"))


@ANY_S3
def test_iter_chunks_streams_from_an_offset(object_store):
    key = keys.log_key("ulm", 3)
    data = bytes(range(256)) * 1000
    object_store.put_bytes(key, data)

    chunks = list(object_store.iter_chunks(key, chunk_size=10_000))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= 10_000
    assert b"".join(object_store.iter_chunks(key, start=255_000)) == data[255_000:]
    assert list(object_store.iter_chunks(key, start=len(data))) == []


@ANY_S3
def test_missing_key_is_not_found_with_the_things_name(object_store):
    key = keys.resource_key("missing.txt")
    message = "No file 'missing.txt' in the resource pool."

    with pytest.raises(NotFoundError) as get_error:
        object_store.get_bytes(key)
    assert get_error.value.message == message
    with pytest.raises(NotFoundError, match=re.escape(message)):
        object_store.head(key)
    with pytest.raises(NotFoundError, match="No log of run 7 of project 'ulm'"):
        object_store.iter_chunks(keys.log_key("ulm", 7))  # raised before the first chunk
    with pytest.raises(NotFoundError):
        object_store.get_range(key, 0, 10)


@ANY_S3
def test_conditional_put_refuses_to_overwrite(object_store):
    key = keys.workspace_key("ulm", 1, "result.json")
    object_store.put_bytes(key, b"first", if_none_match=True)

    with pytest.raises(ConflictError, match=r"^File 'result\.json' in run 1 of project 'ulm'"):
        object_store.put_bytes(key, b"second", if_none_match=True)
    assert object_store.get_bytes(key) == b"first"  # the first write is untouched
    object_store.put_bytes(key, b"third")  # an unconditional write still overwrites
    assert object_store.get_bytes(key) == b"third"


# Listing and deleting ---------------------------------------------------------------


@ANY_S3
def test_list_shows_files_and_folders_of_one_level(object_store):
    for path in ["a.txt", "sub/b.txt", "sub/deeper/c.txt", "zeta/d.txt"]:
        object_store.put_bytes(keys.resource_key(path), path.encode())
    object_store.put_bytes(keys.workspace_key("ulm", 1, "elsewhere.txt"), b"x")

    top = object_store.list(keys.resource_prefix())
    assert [(e.path, e.is_dir) for e in top] == [
        ("a.txt", False),
        ("sub", True),
        ("zeta", True),
    ]
    assert top[0].size == 5
    assert top[1].size == 0 and top[1].modified is None and top[1].etag is None

    sub = object_store.list(keys.resource_prefix("sub"))
    assert [(e.path, e.is_dir) for e in sub] == [("b.txt", False), ("deeper", True)]

    everything = object_store.list(keys.resource_prefix(), recursive=True)
    assert [e.path for e in everything] == [
        "a.txt",
        "sub/b.txt",
        "sub/deeper/c.txt",
        "zeta/d.txt",
    ]
    assert object_store.list(keys.resource_prefix("nothing-here")) == []


@ANY_S3
def test_list_pages_past_one_thousand_keys(object_store):
    # Each page holds at most 1000 keys; the paginator must follow the continuation.
    count = 1005
    prefix = keys.workspace_prefix("many", 1)
    for i in range(count):
        object_store.put_bytes(f"{prefix}f{i:05d}", b"")

    entries = object_store.list(prefix)
    assert len(entries) == count
    assert entries[-1].path == f"f{count - 1:05d}"
    assert object_store.delete_prefix(prefix) == count


@ANY_S3
def test_delete_prefix_deletes_one_folder_only(object_store):
    for i in range(5):
        object_store.put_bytes(keys.workspace_key("ulm", 1, f"out/{i}.json"), b"{}")
    object_store.put_bytes(keys.log_key("ulm", 1), b"log")
    object_store.put_bytes(keys.workspace_key("ulm-2", 1, "keep.json"), b"{}")

    deleted = sum(object_store.delete_prefix(p) for p in keys.project_prefixes("ulm"))

    assert deleted == 6
    assert object_store.list(keys.workspace_prefix("ulm", 1), recursive=True) == []
    assert object_store.get_bytes(keys.workspace_key("ulm-2", 1, "keep.json")) == b"{}"
    assert object_store.delete_prefix(keys.workspace_prefix("ulm", 1)) == 0


@ANY_S3
def test_a_deleted_folder_leaves_no_empty_folder_inside_it_listed(object_store):
    """Found by trying it: after `resources rm -r survey` on SeaweedFS, listing `survey`
    still showed `day1/`, empty, and the console with it."""
    for key in ("pool/survey/day1/a.mp4", "pool/survey/day1/cam/b.mp4", "pool/survey/c.mp4"):
        object_store.put_bytes(key, b"x")
    object_store.put_bytes("pool/kept/d.mp4", b"x")

    assert object_store.delete_prefix("pool/survey/") == 3

    assert object_store.list("pool/survey/") == []
    assert [e.path for e in object_store.list("pool/")] == ["kept"]


def test_delete_prefix_refuses_the_whole_bucket(object_store):
    object_store.put_bytes(keys.resource_key("a.txt"), b"a")
    with pytest.raises(ValidationError, match="Refusing to delete every object"):
        object_store.delete_prefix("")
    assert object_store.exists(keys.resource_key("a.txt"))


@ANY_S3
def test_delete_of_missing_key_is_quiet(object_store):
    key = keys.resource_key("a.txt")
    object_store.put_bytes(key, b"a")
    object_store.delete(key)
    object_store.delete(key)
    assert not object_store.exists(key)


# Files and folders --------------------------------------------------------------------


@ANY_S3
def test_multipart_upload_reports_progress_and_round_trips(object_store, tmp_path, monkeypatch):
    monkeypatch.setattr(defaults, "MULTIPART_CHUNK_BYTES", 5 * MIB)  # S3's smallest part
    size = 12 * MIB + 123  # three parts
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(size))
    key = keys.resource_key("big.bin")

    uploaded = ProgressTotal()
    object_store.upload_file(source, key, progress=uploaded)

    assert uploaded.total == size
    entry = object_store.head(key)
    assert entry.size == size
    assert entry.etag is not None and entry.etag.endswith("-3")  # three parts, not one PUT

    downloaded = ProgressTotal()
    target = tmp_path / "copy" / "big.bin"
    object_store.download_file(key, target, progress=downloaded)
    assert downloaded.total == size
    assert target.read_bytes() == source.read_bytes()


@ANY_S3
def test_failed_download_leaves_the_old_file_and_no_temp_file(object_store, tmp_path):
    target = tmp_path / "frame.png"
    target.write_bytes(b"old content")

    with pytest.raises(NotFoundError, match=r"^No file 'gone\.png' in the resource pool\.$"):
        object_store.download_file(keys.resource_key("gone.png"), target)

    assert target.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.png"]


@ANY_S3
def test_download_replaces_the_old_file_when_complete(object_store, tmp_path):
    key = keys.resource_key("frame.png")
    object_store.put_bytes(key, b"new content")
    target = tmp_path / "frame.png"
    target.write_bytes(b"old content")

    object_store.download_file(key, target)

    assert target.read_bytes() == b"new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.png"]


@ANY_S3
def test_upload_dir_keeps_paths_and_skips_links_outside(object_store, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("do not upload")
    root = tmp_path / "run"
    (root / "frames" / "deep").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "frames" / "deep" / "b.txt").write_text("b")
    (root / "link-inside.txt").symlink_to(root / "a.txt")
    (root / "link-outside.txt").symlink_to(outside)
    (root / "dir-outside").symlink_to(tmp_path, target_is_directory=True)
    (root / "frames" / "loop").symlink_to(root, target_is_directory=True)
    prefix = keys.workspace_prefix("ulm", 2)

    count = object_store.upload_dir(root, prefix)

    paths = [e.path for e in object_store.list(prefix, recursive=True)]
    assert paths == ["a.txt", "frames/deep/b.txt", "link-inside.txt"]
    assert count == 3
    assert object_store.get_bytes(prefix + "link-inside.txt") == b"a"


@ANY_S3
def test_download_prefix_round_trips_a_folder(object_store, tmp_path):
    prefix = keys.workspace_prefix("ulm", 3)
    object_store.put_bytes(prefix + "a.txt", b"a")
    object_store.put_bytes(prefix + "sub/b.txt", b"b")
    object_store.put_bytes(keys.workspace_key("ulm", 30, "other.txt"), b"not mine")

    count = object_store.download_prefix(prefix, tmp_path / "out")

    assert count == 2
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"a"
    assert (tmp_path / "out" / "sub" / "b.txt").read_bytes() == b"b"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "sub"]


@ANY_S3
def test_download_prefix_refuses_unsafe_keys_and_writes_nothing(object_store, tmp_path):
    # SeaweedFS refuses '..' segments and turns '\\' into '/', so a control character is
    # the unsafe name it stores as given; AWS S3 would also store '../../x'.
    bad_name = "\x01control.txt"
    prefix = keys.workspace_prefix("ulm", 4)
    object_store.put_bytes(prefix + "a-fine.txt", b"fine")
    object_store.put_bytes(prefix + bad_name, b"bad")
    assert bad_name in [e.path for e in object_store.list(prefix)]  # stored as given

    with pytest.raises(ValidationError) as refused:
        object_store.download_prefix(prefix, tmp_path / "out")
    assert refused.value.message.startswith(
        "Refusing to download '\\x01control.txt' from workspace of run 4 of project 'ulm': "
    )

    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_choose_part_size_fits_one_tebibyte_in_max_parts():
    size = 1024**4
    part = choose_part_size(size)
    assert part * defaults.MULTIPART_MAX_PARTS >= size
    assert part % MIB == 0
    assert part > defaults.MULTIPART_CHUNK_BYTES


def test_choose_part_size_of_small_files_is_the_default_chunk():
    assert choose_part_size(0) == defaults.MULTIPART_CHUNK_BYTES
    assert choose_part_size(3 * MIB) == defaults.MULTIPART_CHUNK_BYTES
    limit = defaults.MULTIPART_CHUNK_BYTES * defaults.MULTIPART_MAX_PARTS
    assert choose_part_size(limit) == defaults.MULTIPART_CHUNK_BYTES
    assert choose_part_size(limit + 1) == defaults.MULTIPART_CHUNK_BYTES + MIB


# Presigned URLs ------------------------------------------------------------------------


@ANY_S3
def test_presigned_multipart_upload_by_a_client(object_store):
    key = keys.resource_key("uploads/video.bin")
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"]
    upload_id = object_store.create_multipart(key)

    sent: list[tuple[int, str]] = []
    with httpx.Client(timeout=30) as http:
        for number, data in enumerate(parts_data, start=1):
            url = object_store.presign_part(key, upload_id, number)
            response = http.put(url, content=data)
            assert response.status_code == 200, response.text
            sent.append((number, response.headers["ETag"]))

    listed = object_store.list_parts(key, upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [
        (n, etag, len(d)) for (n, etag), d in zip(sent, parts_data, strict=True)
    ]
    assert not object_store.exists(key)  # nothing visible before completion
    with pytest.raises(ValidationError, match="Cannot complete the upload"):
        object_store.complete_multipart(key, upload_id, [(1, sent[1][1]), *sent[1:]])

    object_store.complete_multipart(key, upload_id, list(reversed(sent)))

    assert object_store.get_bytes(key) == b"".join(parts_data)
    with pytest.raises(NotFoundError, match="No upload in progress"):
        object_store.list_parts(key, upload_id)


@ANY_S3
def test_aborted_multipart_upload_leaves_nothing(object_store, s3_kind):
    key = keys.resource_key("uploads/abandoned.bin")
    upload_id = object_store.create_multipart(key)
    with httpx.Client(timeout=30) as http:
        http.put(object_store.presign_part(key, upload_id, 1), content=b"part").raise_for_status()

    object_store.abort_multipart(key, upload_id)

    assert not object_store.exists(key)
    assert object_store.multipart_uploads() == []
    with pytest.raises(NotFoundError, match="No upload in progress"):
        object_store.list_parts(key, upload_id)
    if s3_kind == "moto":
        # moto 5 answers CompleteMultipartUpload of an unknown upload with 500 (a KeyError
        # inside it) where S3 says 404 NoSuchUpload: Winslow then reports a failed request.
        with pytest.raises(S3RequestError, match="HTTP 500"):
            object_store.complete_multipart(key, upload_id, [(1, "whatever")])
    else:
        with pytest.raises(NotFoundError):
            object_store.complete_multipart(key, upload_id, [(1, "whatever")])


@ANY_S3
def test_bucket_cors_lets_browsers_read_the_part_etag(object_store):
    url = f"{object_store.cfg.endpoint_url}/{object_store.bucket}/x"
    response = httpx.options(
        url,
        headers={"Origin": "http://app.example", "Access-Control-Request-Method": "PUT"},
    )
    assert response.status_code == 200
    assert "PUT" in response.headers["Access-Control-Allow-Methods"]
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]


@ANY_S3
def test_presign_get_serves_ranges_and_names_the_download(object_store):
    key = keys.workspace_key("ulm", 5, "report.txt")
    object_store.put_bytes(key, b"0123456789")

    url = object_store.presign_get(key, filename="Prüfung 1.txt")
    response = httpx.get(url, headers={"Range": "bytes=2-5"})

    assert response.status_code == 206
    assert response.content == b"2345"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''Pr%C3%BCfung%201.txt" in disposition
    assert httpx.get(object_store.presign_get(key)).content == b"0123456789"


def test_content_disposition_of_plain_and_unicode_names():
    assert content_disposition("a/b/frame 1.png") == 'attachment; filename="frame 1.png"'
    assert content_disposition('we"ird.txt') == (
        "attachment; filename=\"we_ird.txt\"; filename*=UTF-8''we%22ird.txt"
    )
    assert content_disposition("Übersicht.pdf") == (
        "attachment; filename=\"_bersicht.pdf\"; filename*=UTF-8''%C3%9Cbersicht.pdf"
    )


# Errors and the server -------------------------------------------------------------------


def test_unreachable_endpoint_says_what_to_check():
    exc = EndpointConnectionError(endpoint_url="http://127.0.0.1:1/bucket/some/key")
    error = map_client_error(exc, "file 'a' in the resource pool")
    assert isinstance(error, StorageError)
    assert error.message == (
        "Object storage at http://127.0.0.1:1 does not answer; is `winslow up` running, "
        "and is WINSLOW_S3_ENDPOINT right?"
    )


@ANY_S3
def test_ensure_bucket_is_repeatable(object_store):
    object_store.put_bytes(keys.resource_key("a.txt"), b"a")
    object_store.ensure_bucket()
    assert object_store.get_bytes(keys.resource_key("a.txt")) == b"a"


def test_second_server_runs_beside_the_first_and_restarts_with_its_keys_and_data(
    s3_server, tmp_path
):
    data_dir = tmp_path / "s3"
    with SeaweedServer(data_dir, bucket="second") as server:
        first = server.config
        assert first.endpoint_url != s3_server.endpoint_url
        store = ObjectStore(first)
        store.ensure_bucket()
        store.put_bytes(keys.resource_key("kept.txt"), b"kept")
    assert stat.S_IMODE((data_dir / CREDENTIALS_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "s3.json").stat().st_mode) == 0o600
    assert first.secret_key not in repr(first)

    with SeaweedServer(data_dir, bucket="second") as server:
        again = server.config
        assert (again.access_key, again.secret_key) == (first.access_key, first.secret_key)
        assert ObjectStore(again).get_bytes(keys.resource_key("kept.txt")) == b"kept"
    assert not server.is_running()


def test_answers_only_where_storage_accepts_the_keys(object_store, s3_server):
    assert object_store.answers()
    wrong_keys = dataclasses.replace(s3_server, secret_key="not-the-secret")
    assert not ObjectStore(wrong_keys).answers()
    port = pick_ports(1)[0]  # nothing listens there
    nobody = dataclasses.replace(s3_server, endpoint_url=f"http://127.0.0.1:{port}")
    assert not ObjectStore(nobody).answers(timeout=0.5)


def test_server_on_a_busy_port_says_so(s3_server, tmp_path):
    busy = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    server = SeaweedServer(tmp_path / "s3", s3_port=busy)
    with pytest.raises(StorageError, match=f"Port {busy} on 127.0.0.1 is in use"):
        server.start()
    assert not server.is_running()


def test_a_deleted_folder_leaves_no_empty_entry_in_its_parent(object_store):
    object_store.put_bytes("resources/clips/fresh/a.bin", b"a")
    object_store.put_bytes("resources/clips/keep.bin", b"k")
    object_store.delete("resources/clips/fresh/a.bin")  # SeaweedFS keeps 'fresh/' listed
    assert object_store.delete_prefix("resources/clips/fresh/") == 0
    assert [e.path for e in object_store.list("resources/clips/")] == ["keep.bin"]
