"""One small PutObject sent without the boto3 client's per-call machinery.

A runner forked by the warm runner stores one object, its log, and exits. Through the
boto3 client that one call costs a fresh child about 9 ms of CPU (the endpoint rules,
the event hooks, the copy-on-write of every object they touch, the answer parsed into a
model), more than the rest of the runner for a short stage. Signed by botocore's own
SigV4 signer and sent with ``http.client`` it costs under 2 ms.

Plain ``http://`` endpoints only (the embedded storage, a cluster's storage on its
private network): over TLS the handshake outweighs what this saves, and certificate
settings stay with the client. One attempt and no retries: a caller whose put fails
here sends it again through ``ObjectStore.put_bytes``, which retries.
"""

from __future__ import annotations

import http.client
import time
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from winslow import metrics
from winslow.errors import StorageError
from winslow.storage.keys import describe_key
from winslow.storage.s3 import BODY_EXCERPT_CHARS, CONNECT_TIMEOUT_SECONDS, S3Config

TIMEOUT_SECONDS = CONNECT_TIMEOUT_SECONDS
"""Seconds to wait for the connection and then for each answer: a small put that takes
longer goes through the client instead, with its retries."""


def can_put(cfg: S3Config) -> bool:
    """True when ``put_object`` can reach ``cfg``'s endpoint (plain http)."""
    return urlsplit(cfg.endpoint_url).scheme == "http"


def put_object(cfg: S3Config, key: str, data: bytes) -> None:
    """Store ``data`` at ``key`` in ``cfg``'s bucket with one signed, path-style PUT.

    Raises ``StorageError`` when storage does not answer 200, cannot be reached, or the
    endpoint is not plain http (``can_put``).
    """
    endpoint = urlsplit(cfg.endpoint_url)
    if endpoint.scheme != "http" or not endpoint.hostname:
        raise StorageError(f"a direct put needs an http:// endpoint, not {cfg.endpoint_url!r}")
    path = f"{endpoint.path.rstrip('/')}/{quote(cfg.bucket, safe='')}/{quote(key, safe='/~')}"
    request = AWSRequest(method="PUT", url=f"http://{endpoint.netloc}{path}", data=data)
    S3SigV4Auth(Credentials(cfg.access_key, cfg.secret_key), "s3", cfg.region).add_auth(request)
    what = describe_key(key)
    started = time.monotonic()
    status: int | None = None
    connection = http.client.HTTPConnection(
        endpoint.hostname, endpoint.port or 80, timeout=TIMEOUT_SECONDS
    )
    try:
        connection.request("PUT", path, body=data, headers=dict(request.headers.items()))
        response = connection.getresponse()
        status = response.status
        answer = response.read(BODY_EXCERPT_CHARS * 4)
    except (OSError, http.client.HTTPException) as exc:
        raise StorageError(f"Could not store {what}: {type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()
        metrics.observe_s3("PutObject", time.monotonic() - started, status)
    if status != 200:
        excerpt = answer.decode("utf-8", errors="replace")[:BODY_EXCERPT_CHARS]
        raise StorageError(
            f"Could not store {what}: the object storage answered {status}: {excerpt}"
        )
