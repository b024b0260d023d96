"""Presigned URLs for a browser on another machine (``WINSLOW_S3_PUBLIC_ENDPOINT``).

SeaweedFS listens on 127.0.0.1; a ``TcpForwarder`` on 127.0.0.2 stands in for the address
other machines reach it at (a load balancer, a NAT, a DNS name). SigV4 signs the Host
header, so the API must sign its URLs for that address: these tests upload through it as
the CLI and a browser do, and show that a URL signed for the internal address does not
work there. SeaweedFS checks signatures; moto does not, so these run on SeaweedFS.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.ports import pick_ports
from tests.fixtures.s3 import TcpForwarder
from tests.fixtures.server import Server, _kill_leftovers
from tests.fixtures.winslow import Harness, _serve, build_context
from winslow import server
from winslow.cli.client import ApiClient
from winslow.cli.transfer import upload_file
from winslow.settings import ClientSettings, Settings
from winslow.storage import keys
from winslow.storage.objects import ObjectStore

MIB = 1024 * 1024
CONSOLE_ORIGIN = "http://winslow.lab:8080"


@pytest.fixture
def public(object_store: ObjectStore, forwarder: Callable[..., TcpForwarder]) -> TcpForwarder:
    """The address other machines reach object storage at."""
    return forwarder(object_store.cfg.endpoint_url)


@pytest.fixture
def remote_winslow(
    tmp_path: Path, object_store: ObjectStore, public: TcpForwarder
) -> Iterator[Harness]:
    """A Winslow whose object storage is known to browsers as ``public.url``."""
    cfg = dataclasses.replace(object_store.cfg, public_endpoint_url=public.url)
    yield from _serve(build_context(tmp_path / "winslow", ObjectStore(cfg)), tmp_path)


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_the_cli_uploads_through_the_public_endpoint(
    remote_winslow: Harness, public: TcpForwarder, object_store: ObjectStore, tmp_path: Path
) -> None:
    data = os.urandom(20 * MIB + 7)  # two parts: 16 MiB and the rest
    local = tmp_path / "clip.mp4"
    local.write_bytes(data)
    api = ApiClient(ClientSettings(addr="http://testserver", token=remote_winslow.token))
    api.http.close()
    api.http = TestClient(
        remote_winslow.api.app,
        base_url="http://testserver/api/v1",
        headers={"Authorization": f"Bearer {remote_winslow.token}"},
    )
    try:
        entry = upload_file(api, local, "videos/clip.mp4", threads=2)
    finally:
        api.close()

    assert entry["size"] == len(data)
    assert public.received > len(data)  # every part went through the public address
    assert object_store.get_bytes(keys.resource_key("videos/clip.mp4")) == data


def test_a_browser_elsewhere_uploads_and_downloads_with_the_urls_the_api_hands_out(
    remote_winslow: Harness, public: TcpForwarder, object_store: ObjectStore
) -> None:
    api = remote_winslow.api
    data = os.urandom(MIB)
    upload = api.post("/api/v1/resources/uploads", json={"path": "a/b.bin", "size": len(data)})
    assert upload.status_code == 201, upload.text
    upload_id = upload.json()["upload_id"]
    urls = api.post(
        f"/api/v1/resources/uploads/{upload_id}/urls",
        json={"path": "a/b.bin", "part_numbers": [1]},
    ).json()["urls"]
    url = urls["1"]
    assert urlsplit(url).netloc == urlsplit(public.url).netloc
    assert urlsplit(url).netloc != urlsplit(object_store.cfg.endpoint_url).netloc

    # What the console's page does: a CORS preflight, then the PUT from its own origin.
    preflight = httpx.options(
        url,
        headers={
            "Origin": CONSOLE_ORIGIN,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-md5",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] in ("*", CONSOLE_ORIGIN)
    put = httpx.put(
        url, content=data, headers={"Origin": CONSOLE_ORIGIN, "Content-MD5": content_md5(data)}
    )
    assert put.status_code == 200, put.text
    assert "etag" in put.headers.get("Access-Control-Expose-Headers", "").lower()
    done = api.post(
        f"/api/v1/resources/uploads/{upload_id}/complete",
        json={
            "path": "a/b.bin",
            "size": len(data),
            "parts": [{"part_number": 1, "md5": hashlib.md5(data).hexdigest()}],
        },
    )
    assert done.status_code == 200, done.text

    link = api.get("/api/v1/resources/download", params={"path": "a/b.bin"}).json()["url"]
    assert urlsplit(link).netloc == urlsplit(public.url).netloc
    assert httpx.get(link, headers={"Range": "bytes=10-19"}).content == data[10:20]
    assert object_store.get_bytes(keys.resource_key("a/b.bin")) == data


def test_a_url_signed_for_the_internal_endpoint_is_refused_at_the_public_one(
    object_store: ObjectStore, public: TcpForwarder
) -> None:
    """Why a second signer: rewriting the host of an internal URL breaks its signature."""
    key = keys.resource_key("x.bin")
    object_store.put_bytes(key, b"hello")
    internal = urlsplit(object_store.presign_get(key))
    moved = internal._replace(netloc=urlsplit(public.url).netloc).geturl()

    response = httpx.get(moved)

    assert response.status_code == 403
    assert "SignatureDoesNotMatch" in response.text
    assert httpx.get(internal.geturl()).content == b"hello"  # fine where it was signed


def test_without_a_public_endpoint_urls_name_the_internal_one(winslow: Harness) -> None:
    upload = winslow.api.post("/api/v1/resources/uploads", json={"path": "c.bin", "size": 3})
    urls = winslow.api.post(
        f"/api/v1/resources/uploads/{upload.json()['upload_id']}/urls",
        json={"path": "c.bin", "part_numbers": [1]},
    ).json()["urls"]

    endpoint = winslow.context.objects.cfg.endpoint_url
    assert urlsplit(urls["1"]).netloc == urlsplit(endpoint).netloc


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("https://s3.lab:9000", "https://s3.lab:9000"),
        ("https://s3.lab:9000/", "https://s3.lab:9000"),
        ("", None),
    ],
)
def test_the_public_endpoint_setting_keeps_scheme_and_host(value: str, kept: str | None) -> None:
    assert Settings(s3_public_endpoint=value).s3_public_endpoint == kept


@pytest.mark.parametrize("value", ["s3.lab:9000", "ftp://s3.lab", "https://s3.lab/winslow"])
def test_a_public_endpoint_that_no_browser_could_use_is_a_bad_setting(value: str) -> None:
    with pytest.raises(
        server.StartupError, match=r"WINSLOW_S3_PUBLIC_ENDPOINT=.*scheme, host and port only"
    ):
        server.load_settings(s3_public_endpoint=value)


def test_the_server_signs_for_the_public_endpoint_of_its_settings(moto_s3, tmp_path: Path) -> None:
    """``start_services`` on a second S3 server (moto), as with WINSLOW_S3_ENDPOINT:
    storage is checked, and presigned URLs name WINSLOW_S3_PUBLIC_ENDPOINT."""
    settings = Settings(
        data_dir=tmp_path / "data",
        s3_endpoint=moto_s3.endpoint_url,
        s3_access_key=moto_s3.access_key,
        s3_secret_key=moto_s3.secret_key,
        s3_bucket="public-endpoint",
        s3_public_endpoint="https://s3.lab:9000",
        telemetry_seconds=0,
    )
    running = server.start_services(settings)
    try:
        url = running.context.objects.presign_part("resources/a", "upload-1", 1)
        assert url.startswith("https://s3.lab:9000/public-endpoint/resources/a?")
        assert running.context.objects.cfg.endpoint_url == moto_s3.endpoint_url
    finally:
        server.stop_services(running)


@dataclasses.dataclass
class PublicServer(Server):
    public_endpoint: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "WINSLOW_S3_PUBLIC_ENDPOINT": self.public_endpoint}


def test_winslow_up_hands_the_cli_urls_of_its_public_endpoint(
    tmp_path: Path, forwarder: Callable[..., TcpForwarder]
) -> None:
    """A real `winslow up` with its own SeaweedFS, WINSLOW_S3_PUBLIC_ENDPOINT set: the CLI's
    upload and download both go through the public address."""
    port, s3_port = pick_ports(2)
    public = forwarder(f"http://127.0.0.1:{s3_port}")
    up = PublicServer(tmp_path / "data", port, s3_port, public_endpoint=public.url)
    data = os.urandom(MIB + 3)
    (tmp_path / "v.bin").write_bytes(data)
    up.start()
    try:
        uploaded = json.loads(
            up.cli("resources", "upload", str(tmp_path / "v.bin"), "--json").stdout
        )
        sent = public.received
        up.cli("resources", "download", "v.bin", str(tmp_path / "back.bin"))
    finally:
        up.stop(discard_storage=True)
        _kill_leftovers(up.data_dir)

    assert uploaded["size"] == len(data)
    assert sent > len(data)
    assert public.received > sent  # the download's GET went through it too
    assert (tmp_path / "back.bin").read_bytes() == data
