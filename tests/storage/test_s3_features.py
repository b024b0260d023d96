"""What Winslow needs of an S3 server, and what it does with one that lacks it.

Conditional writes are probed at start (``check_features``): without them two writers
could overwrite each other's workspace versions unnoticed, so such a server is refused
with the feature's name. Bucket CORS is not refused: MinIO's community edition answers
PutBucketCors with 501 and sets CORS server-wide instead. The servers that lack a feature
are real ones made to: moto behind a forwarder that drops the If-None-Match header (as a
server ignoring it would), or a botocore ``before-send`` hook that answers one request
with the exact reply MinIO gives, in place of the network.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from botocore.awsrequest import AWSResponse

from tests.fixtures.s3 import ANY_S3, TcpForwarder
from winslow import server
from winslow.settings import Settings
from winslow.storage.features import PROBE_PREFIX, MissingS3FeatureError, check_features
from winslow.storage.objects import ObjectStore
from winslow.storage.s3 import S3Config, S3RequestError

MINIO_NOT_IMPLEMENTED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code><Message>A '
    b"header you provided implies functionality that is not implemented</Message>"
    b"<Resource>/winslow</Resource><RequestId>1803C2B5E5A1A2F4</RequestId></Error>"
)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def answer(status: int, body: bytes) -> Callable[..., AWSResponse]:
    """A ``before-send`` handler: the request never leaves, this is the server's reply."""

    def handler(request: Any, **_: Any) -> AWSResponse:
        headers = {"Content-Type": "application/xml", "Content-Length": str(len(body))}
        return AWSResponse(request.url, status, headers, _Body(body))

    return handler


def drop_if_none_match(chunk: bytes) -> bytes:
    return re.sub(rb"(?im)^if-none-match:[^\r\n]*\r\n", b"", chunk)


@pytest.fixture
def forgetful_s3(moto_s3: S3Config, forwarder: Callable[..., TcpForwarder]) -> S3Config:
    """moto as a server that ignores If-None-Match: the header never reaches it."""
    proxy = forwarder(moto_s3.endpoint_url, rewrite=drop_if_none_match)
    return dataclasses.replace(moto_s3, endpoint_url=proxy.url, bucket="forgetful")


@ANY_S3
def test_a_server_with_conditional_writes_passes_and_keeps_no_probe(object_store):
    check_features(object_store)

    assert [e for e in object_store.list(PROBE_PREFIX, recursive=True) if not e.is_dir] == []


def test_a_server_that_ignores_if_none_match_is_refused_naming_the_feature(forgetful_s3):
    store = ObjectStore(forgetful_s3)
    store.ensure_bucket()

    with pytest.raises(MissingS3FeatureError, match="ignores conditional writes") as caught:
        check_features(store)

    assert caught.value.feature == "conditional writes (PutObject with If-None-Match: *)"
    assert "overwrote the first instead of answering 412" in caught.value.message
    assert [e for e in store.list(PROBE_PREFIX, recursive=True) if not e.is_dir] == []


def test_a_server_that_refuses_the_header_is_refused_naming_the_feature(object_store):
    object_store.client.meta.events.register(
        "before-send.s3.PutObject", answer(501, MINIO_NOT_IMPLEMENTED)
    )

    with pytest.raises(MissingS3FeatureError, match=r"refuses conditional writes .*NotImplemented"):
        check_features(object_store)


def test_winslow_does_not_start_on_a_server_without_conditional_writes(forgetful_s3, tmp_path):
    settings = Settings(
        data_dir=tmp_path / "data",
        s3_endpoint=forgetful_s3.endpoint_url,
        s3_access_key=forgetful_s3.access_key,
        s3_secret_key=forgetful_s3.secret_key,
        s3_bucket="refused",
        telemetry_seconds=0,
    )

    with pytest.raises(MissingS3FeatureError, match=r"^Object storage at http://\S+ ignores "):
        server.start_services(settings)

    assert not (tmp_path / "data" / "admin-token").exists()  # stopped before anything


def test_a_server_without_bucket_cors_is_used_with_a_warning(object_store, caplog):
    """MinIO's community edition: PutBucketCors is 501 NotImplemented, CORS is
    server-wide (MINIO_API_CORS_ALLOW_ORIGIN)."""
    object_store.client.meta.events.register(
        "before-send.s3.PutBucketCors", answer(501, MINIO_NOT_IMPLEMENTED)
    )

    with caplog.at_level(logging.WARNING, logger="winslow.storage.objects"):
        object_store.ensure_bucket()

    assert "has no bucket CORS (PutBucketCors: NotImplemented)" in caplog.text
    assert "expose ETag" in caplog.text


def test_a_bucket_cors_refusal_for_another_reason_still_stops_the_start(object_store):
    denied = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        b"<Message>Access Denied.</Message></Error>"
    )
    object_store.client.meta.events.register("before-send.s3.PutBucketCors", answer(403, denied))

    with pytest.raises(S3RequestError, match="AccessDenied"):
        object_store.ensure_bucket()


@pytest.mark.parametrize("s3_kind", ["moto"])
def test_damaged_part_on_a_server_that_skips_content_md5_fails_at_completion(winslow):
    """moto stores a part whatever its Content-MD5 says (SeaweedFS and S3 answer 400
    BadDigest); Winslow's own check of every part's MD5 at completion still refuses it."""
    data = os.urandom(1000)
    api = winslow.api
    upload = api.post("/api/v1/resources/uploads", json={"path": "d.bin", "size": len(data)})
    upload_id = upload.json()["upload_id"]
    url = api.post(
        f"/api/v1/resources/uploads/{upload_id}/urls",
        json={"path": "d.bin", "part_numbers": [1]},
    ).json()["urls"]["1"]
    damaged = bytes([data[0] ^ 0xFF]) + data[1:]
    md5 = hashlib.md5(data)

    stored = httpx.put(
        url, content=damaged, headers={"Content-MD5": base64.b64encode(md5.digest()).decode()}
    )
    done = api.post(
        f"/api/v1/resources/uploads/{upload_id}/complete",
        json={
            "path": "d.bin",
            "size": len(data),
            "parts": [{"part_number": 1, "md5": md5.hexdigest()}],
        },
    )

    assert stored.status_code == 200
    assert done.status_code == 422
    assert "part 1 does not match what was sent" in done.json()["detail"].lower()
    assert api.get("/api/v1/resources").json()["data"] == []
