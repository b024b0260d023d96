"""The embedded SeaweedFS lets in nobody but S3 clients holding Winslow's keys.

``weed mini`` serves a master, a volume server, a filer, S3 and an admin server, each on
an HTTP and a gRPC port of 127.0.0.1. Out of the box every one but S3 answers anyone on
the machine: the filer's HTTP API lists, reads, writes and deletes objects, the master's
hands out file ids (and deletes whole collections, which are S3 buckets), and the filer's
gRPC API deletes any file (``weed shell``'s ``fs.rm`` did). Each test here asks one of
those doors, without credentials, to do what it did, and checks the answer and the data.

What the tests rely on, from SeaweedFS's source (github.com/seaweedfs/seaweedfs) and
``weed scaffold -config=security``:

- weed/server/master_server.go and filer_server.go register their HTTP API only without
  ``-disableHttp`` (the master keeps its status page, ``/cluster/status`` and static files);
- weed/server/volume_server.go and weed/security/guard.go: with ``[jwt.signing]`` and
  ``[jwt.signing.read]`` the volume server wants the master's JWT for every file read,
  write and delete ("wrong jwt", 401); ``/status`` stays open;
- weed/security/tls.go ``LoadServerTLS``: with ``[grpc.<component>]`` cert and key, every
  gRPC server demands a client certificate signed by ``[grpc].ca``; with a file it cannot
  load it falls back to plaintext, which ``SeaweedServer.start`` checks for;
- weed/admin/handlers/admin_handlers.go: with ``-admin.ui=false`` the admin server serves
  only ``/health``, ``/metrics`` and ``/static``;
- weed/command/mini.go puts the gRPC Unix sockets in ``/tmp`` under fixed names;
  weed/glog writes its files to the temp folder unless ``-logtostderr``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
import ssl
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fixtures.ports import pick_ports
from winslow.errors import StorageError
from winslow.server import s3_config
from winslow.settings import Settings
from winslow.storage.objects import ObjectStore
from winslow.storage.seaweed import HOST, LOG_FILE, SeaweedServer, find_weed
from winslow.storage.weedsecurity import (
    GRPC_CERT_FILE,
    GRPC_KEY_FILE,
    SECURITY_FILE,
    self_signed_certificate,
)

BUCKET = "locked"
KEY = "resources/videos/ulm-2019-06-03.mp4"
SECRET = b"what only S3 clients with the keys may read"
REFUSED = {401, 403, 404}
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
GRPC_FLAGS = (
    "master.port.grpc",
    "volume.port.grpc",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port.grpc",
)


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """One locked weed holding one object, started on a folder left open by an older start."""
    try:
        find_weed()
    except StorageError as exc:
        pytest.skip(str(exc))
    folder = tmp_path_factory.mktemp("weed")
    folder.chmod(0o755)
    (folder / LOG_FILE).write_text("from an earlier start\n")
    (folder / LOG_FILE).chmod(0o644)
    server = SeaweedServer(folder, bucket=BUCKET)
    server.start()
    try:
        store = ObjectStore(server.config)
        store.ensure_bucket()
        store.put_bytes(KEY, SECRET)
        yield server
    finally:
        server.stop()


def assert_untouched(server: SeaweedServer) -> None:
    store = ObjectStore(server.config)
    assert store.get_bytes(KEY) == SECRET
    assert [e.path for e in store.list("resources/", recursive=True)] == [KEY.split("/", 1)[1]]


def refused(answers: list[tuple[str, httpx.Response]]) -> list[str]:
    """The requests that were not refused, or whose answer quoted the object."""
    return [
        f"{what} -> {response.status_code} {response.text[:120]!r}"
        for what, response in answers
        if response.status_code not in REFUSED or SECRET in response.content
    ]


def test_s3_answers_with_the_keys_and_refuses_without(weed):
    assert ObjectStore(weed.config).get_bytes(KEY) == SECRET
    anonymous = httpx.get(f"{weed.config.endpoint_url}/{BUCKET}/{KEY}", timeout=5)
    assert anonymous.status_code == 403
    assert SECRET not in anonymous.content
    assert not ObjectStore(dataclasses.replace(weed.config, secret_key="not-it")).answers()


def _filer_attempts(client: httpx.Client, where: str) -> list[tuple[str, httpx.Response]]:
    folder, path = f"/buckets/{BUCKET}/resources/videos/", f"/buckets/{BUCKET}/{KEY}"
    attempts = [
        ("GET", folder, {"headers": {"Accept": "application/json"}}),
        ("GET", path, {}),
        ("POST", f"/buckets/{BUCKET}/resources/planted.txt", {"files": {"file": b"x"}}),
        ("PUT", path, {"content": b"overwritten"}),
        ("DELETE", path, {}),
        ("DELETE", f"/buckets/{BUCKET}/resources/?recursive=true", {}),
    ]
    return [
        (f"{method} {where}{url}", client.request(method, url, **kw))
        for method, url, kw in attempts
    ]


def test_filer_http_lists_reads_writes_and_deletes_nothing(weed):
    port = weed.ports["filer.port"]
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=5) as client:
        answers = _filer_attempts(client, f"filer:{port}")
    # The same API on the filer's Unix socket, inside the data folder.
    filer_socket = weed.data_dir / "data" / "filer.sock"
    assert filer_socket.is_socket()
    transport = httpx.HTTPTransport(uds=str(filer_socket))
    with httpx.Client(transport=transport, base_url="http://filer", timeout=5) as client:
        answers += _filer_attempts(client, "filer.sock:")
    assert refused(answers) == []
    assert_untouched(weed)


def test_master_http_hands_out_no_file_ids_and_deletes_no_bucket(weed):
    port = weed.ports["master.port"]
    attempts = [
        ("GET", "/dir/assign"),
        ("POST", "/dir/assign"),
        ("GET", "/dir/lookup?volumeId=1"),
        ("GET", "/dir/lookup?fileId=1,01"),
        ("GET", "/dir/status"),
        ("GET", "/vol/status"),
        ("GET", "/vol/grow?count=1"),
        ("GET", "/vol/vacuum"),
        ("GET", f"/collection/info?collection={BUCKET}"),
        ("GET", f"/col/delete?collection={BUCKET}"),
        ("POST", "/submit"),
        ("GET", "/1,01"),
    ]
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=5) as client:
        answers = [(f"{m} master{u}", client.request(m, u)) for m, u in attempts]
        # What stays open shows the topology, not what is stored.
        for page in ("/", "/cluster/status"):
            assert KEY.split("/")[-1] not in client.get(page).text
    assert refused(answers) == []
    assert_untouched(weed)


def _file_id(server: SeaweedServer, key: str) -> str:
    """The volume file id of ``key``'s first chunk, asked over gRPC with Winslow's certificate."""
    ports = server.ports
    master = f"{HOST}:{ports['master.port']}.{ports['master.port.grpc']}"
    filer = f"{HOST}:{ports['filer.port']}.{ports['filer.port.grpc']}"
    result = subprocess.run(
        [
            find_weed(),
            f"-config_dir={server.data_dir}",
            "-logtostderr",  # no log file in /tmp
            "shell",
            f"-master={master}",
            f"-filer={filer}",
        ],
        input=f"fs.meta.cat /buckets/{BUCKET}/{key}\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tempfile.gettempdir(),
    )
    found = re.search(r'"fileId":\s*"(\d+,[0-9a-f]+)"', result.stdout)
    assert found, result.stdout + result.stderr
    return found.group(1)


def test_volume_server_reads_writes_and_deletes_nothing_without_a_jwt(weed):
    fid = _file_id(weed, KEY)
    port = weed.ports["volume.port"]
    attempts = [
        ("GET", f"/{fid}", {}),
        ("HEAD", f"/{fid}", {}),
        ("GET", f"/{fid}?readDeleted=true", {}),
        ("POST", f"/{fid}", {"files": {"file": b"overwritten"}}),
        ("PUT", f"/{fid}", {"content": b"overwritten"}),
        ("DELETE", f"/{fid}", {}),
        ("GET", "/ui/index.html", {}),
    ]
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=5) as client:
        answers = [(f"{m} volume{u}", client.request(m, u, **kw)) for m, u, kw in attempts]
    assert [response.status_code for _, response in answers] == [401] * len(attempts)
    assert refused(answers) == []
    assert_untouched(weed)


def test_admin_http_serves_no_console_and_no_api(weed):
    port = weed.ports["admin.port"]
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=5) as client:
        answers = [
            (f"GET admin{path}", client.get(path))
            for path in ("/", "/admin", "/files", "/object-store/buckets", "/api/s3/buckets")
        ]
    assert refused(answers) == []


def _first_frame(connect: Callable[[], socket.socket], tls: ssl.SSLContext | None) -> bytes:
    """What the server sends back to a gRPC client's first bytes; b"" when it hangs up."""
    try:
        with connect() as raw:
            sock = tls.wrap_socket(raw) if tls is not None else raw
            with sock:
                sock.sendall(PREFACE)
                return sock.recv(9)
    except OSError:  # ssl.SSLError included: the server refused the handshake
        return b""


def _client_tls(certificate: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    if certificate is not None and key is not None:
        context.load_cert_chain(certificate, key)
    return context


def _answers(frame: bytes) -> bool:
    return len(frame) >= 4 and frame[3] == 0x04  # an HTTP/2 SETTINGS frame: gRPC talks


def _connector(port: int) -> Callable[[], socket.socket]:
    return lambda: socket.create_connection((HOST, port), timeout=5)


def _unix_connector(path: Path) -> Callable[[], socket.socket]:
    def connect() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(str(path))
        return sock

    return connect


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listens on port {port}")


@pytest.mark.parametrize("flag", GRPC_FLAGS)
def test_grpc_lets_in_only_a_client_with_winslows_certificate(weed, flag, tmp_path):
    port = weed.ports[flag]
    _wait_listening(port)  # the admin server starts last
    stranger_cert, stranger_key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_pem, key_pem = self_signed_certificate("someone-else")
    stranger_cert.write_bytes(cert_pem)
    stranger_key.write_bytes(key_pem)
    # weed's own Unix socket for the port, which it dials instead of the port.
    unix = Path("/tmp") / f"seaweedfs-{flag.split('.')[0]}-grpc-{port}.sock"
    doors = {"port": _connector(port), "socket": _unix_connector(unix)}
    for door, connect in doors.items():
        assert not _answers(_first_frame(connect, None)), f"{door}: plaintext gRPC"
        assert not _answers(_first_frame(connect, _client_tls())), f"{door}: no certificate"
        stranger = _client_tls(stranger_cert, stranger_key)
        assert not _answers(_first_frame(connect, stranger)), f"{door}: another CA's certificate"
    assert stat.S_IMODE(unix.stat().st_mode) == 0o700
    ours = _client_tls(weed.data_dir / GRPC_CERT_FILE, weed.data_dir / GRPC_KEY_FILE)
    for door, connect in doors.items():
        assert _answers(_first_frame(connect, ours)), f"{door}: weed itself must get in"


def test_weed_listens_on_loopback_only_and_only_on_the_ports_it_was_given(weed):
    process = psutil.Process(weed.pid)
    expected = set(weed.ports.values())
    deadline = time.monotonic() + 30
    while True:
        listening = {
            (c.laddr.ip, c.laddr.port)
            for c in process.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        if {port for _, port in listening} >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {ip for ip, _ in listening} == {HOST}
    assert {port for _, port in listening} == expected


def test_weed_keeps_its_logs_temp_files_and_sockets_to_itself(weed):
    folder = weed.data_dir.resolve()
    environ = Path(f"/proc/{weed.pid}/environ").read_bytes().split(b"\0")
    assert f"TMPDIR={folder / 'tmp'}".encode() in environ
    assert not [k for k in environ if k.startswith(b"WEED_")]
    # glog names its files weed.<host>.<user>.log.<LEVEL>.<time>.<pid> in the temp folder.
    for temp in {Path("/tmp"), Path(tempfile.gettempdir())}:
        assert list(temp.glob(f"weed.*.{weed.pid}")) == []
    assert b"starting weed mini" in (folder / LOG_FILE).read_bytes()
    grpc_sockets = {
        f"/tmp/seaweedfs-{flag.split('.')[0]}-grpc-{port}.sock"
        for flag, port in weed.ports.items()
        if flag.endswith(".grpc")
    }
    for connection in psutil.Process(weed.pid).net_connections(kind="unix"):
        path = connection.laddr
        if path:
            assert path in grpc_sockets or Path(path).is_relative_to(folder), path


def test_its_folder_and_files_are_the_owners_alone(weed):
    folder = weed.data_dir
    modes = {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in (folder, folder / "data", folder / "tmp")
    }
    assert modes == {folder.name: 0o700, "data": 0o700, "tmp": 0o700}  # folder was 0755
    for name in (LOG_FILE, "s3-credentials.json", "s3.json", "security.toml", GRPC_KEY_FILE):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert (folder / LOG_FILE).read_text().startswith("from an earlier start\n")


def test_winslow_warns_when_it_finds_a_seaweedfs_running_without_its_locks(tmp_path, caplog):
    """A detached weed of an older Winslow outlives an upgrade; ``winslow up`` says so."""
    port = pick_ports(1)[0]
    with SeaweedServer(tmp_path / "s3", port, bucket="winslow") as weed:
        (tmp_path / "s3" / SECURITY_FILE).unlink()  # as an older Winslow left it
        with caplog.at_level(logging.WARNING, logger="winslow.server"):
            config, started = s3_config(Settings(data_dir=tmp_path, s3_port=port))
        assert config == weed.config  # the running one, reused and owned from now on
        assert started is not None and started.adopted and started.pid == weed.pid
    assert "started by an older Winslow without its locks" in caplog.text


def test_start_refuses_a_weed_that_serves_grpc_in_plaintext(tmp_path):
    """weed falls back to plaintext gRPC when it cannot use its certificate, with only a
    warning in its log: a weed that ignored ``security.toml`` is stopped, not served."""
    elsewhere = tmp_path / "no-config"
    elsewhere.mkdir()
    ignoring = tmp_path / "weed"
    ignoring.write_text(
        "#!/bin/sh\n"
        'for arg; do shift; case "$arg" in -config_dir=*) ;; *) set -- "$@" "$arg" ;; esac; done\n'
        f'cd {elsewhere} && exec {find_weed()} -config_dir={elsewhere} "$@"\n'
    )
    ignoring.chmod(0o755)
    server = SeaweedServer(tmp_path / "s3", weed=str(ignoring))
    with pytest.raises(StorageError, match=r"serves gRPC without TLS on 127\.0\.0\.1 port"):
        server.start()
    assert not server.is_running()
