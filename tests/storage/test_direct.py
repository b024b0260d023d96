"""The direct PUT a forked runner stores its log with (``storage/direct.py``): what it
stores must be exactly what the boto3 client would have stored, and every way it can
fail must raise ``StorageError`` so the runner sends the log through the client."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from tests.fixtures.s3 import ANY_S3
from winslow.errors import StorageError
from winslow.storage import direct
from winslow.storage.objects import ObjectStore


@ANY_S3
@pytest.mark.parametrize(
    "key",
    [
        "logs/p1/7.log",
        "logs/ulm 0603/Müller+1 (2)/~a.log",  # spaces, non-ASCII, + and brackets: all signed
    ],
)
def test_a_direct_put_stores_the_bytes_the_client_reads_back(
    object_store: ObjectStore, key: str
) -> None:
    data = b"2026-12-04T01:00:00.000Z stdout | hello\n" * 100 + bytes(range(256))
    assert direct.can_put(object_store.cfg)
    direct.put_object(object_store.cfg, key, data)
    assert object_store.get_bytes(key) == data
    direct.put_object(object_store.cfg, key, b"")  # an empty log replaces it whole
    assert object_store.get_bytes(key) == b""


def test_wrong_keys_are_refused_and_nothing_is_stored(object_store: ObjectStore) -> None:
    # SeaweedFS checks signatures (moto does not), so this one runs on SeaweedFS only.
    wrong = dataclasses.replace(object_store.cfg, secret_key="not-the-secret")
    with pytest.raises(StorageError, match="answered 403"):
        direct.put_object(wrong, "logs/p1/8.log", b"x")
    assert not object_store.exists("logs/p1/8.log")


def test_storage_that_does_not_answer_raises_storage_error(object_store: ObjectStore) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    nobody = dataclasses.replace(object_store.cfg, endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(StorageError, match="Could not store"):
        direct.put_object(nobody, "logs/p1/9.log", b"x")


def test_https_endpoints_are_left_to_the_client(object_store: ObjectStore) -> None:
    tls = dataclasses.replace(object_store.cfg, endpoint_url="https://s3.example.org")
    assert not direct.can_put(tls)
    with pytest.raises(StorageError, match="needs an http:// endpoint"):
        direct.put_object(tls, "logs/p1/10.log", b"x")
