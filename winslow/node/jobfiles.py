"""The on-disk record of local jobs: the job directory's layout and its JSON files.

A local job is a directory, not a row: ``<data_dir>/jobs/<job_id>/``. The server writes
``spec.json``; the detached runner writes ``runner.json`` when it starts, ``stage.json``
when the stage's process starts, and ``status.json`` when all is over. Each file is written
once, atomically (temp file, fsync, ``os.replace``), so a reader sees it whole or not at
all, whichever process dies when. That makes the directory the truth a restarted server
adopts: the backend and the runner share this module and nothing else, the storage
handover included: the S3 credentials go to the runner on its stdin, never in its
environment or a file, where a host stage of the same user could read them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from winslow.atomic import fsync_dir, write_text_atomic
from winslow.backends.base import RunSpec
from winslow.core.resources import GpuRequest, ResourceRequest
from winslow.defaults import TRANSFER_RETRY_DELAYS

if TYPE_CHECKING:
    from winslow.storage.s3 import S3Config

JOB_FILE_VERSION = 1
"""Version of the ``spec.json`` layout; a runner refuses a version it does not know."""

STORAGE_ENV = {
    "endpoint_url": "WINSLOW_S3_ENDPOINT",
    "access_key": "WINSLOW_S3_ACCESS_KEY",
    "secret_key": "WINSLOW_S3_SECRET_KEY",
    "bucket": "WINSLOW_S3_BUCKET",
    "region": "WINSLOW_S3_REGION",
}
"""S3Config field → the ``WINSLOW_S3_*`` variable carrying it (to a Nomad task, or in the
runner's storage handover)."""

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+=-]{0,199}")


class RunnerRecord(TypedDict):
    """``runner.json``: who runs the job, and how to recognise that process later."""

    pid: int
    pgid: int
    create_time: float
    """psutil's create time of ``pid``: a reused pid has another, so it is not taken for ours."""
    boot_time: float
    started_at: str


class StageRecord(TypedDict):
    """``stage.json``: the stage's own process (or docker client), for cleanup after a crash."""

    pid: int
    pgid: int
    create_time: float
    container: str | None


class StatusRecord(TypedDict):
    """``status.json``: how the job ended; its presence makes the job terminal."""

    state: str
    exit_code: int | None
    started_at: str | None
    ended_at: str
    reason: str | None
    results_left: NotRequired[bool | None]
    """Whether the stage left a ``results.json`` (``runner.Outcome.results_left``);
    absent in records of runners older than it."""


@dataclass(frozen=True)
class JobSpec:
    """``spec.json``: the run to execute plus what the runner must know of this node.

    S3 credentials are deliberately absent; the runner reads them on its stdin
    (``storage_handover``).
    """

    spec: RunSpec
    node: str
    container_engine: bool
    cache_dir: str
    kill_grace_seconds: float
    cache_max_bytes: int = 0
    """Size cap of the node cache in ``cache_dir``; 0: no cap."""
    retry_delays: tuple[float, ...] = TRANSFER_RETRY_DELAYS
    """Seconds before each new attempt of a workspace upload that failed."""


@dataclass(frozen=True)
class JobPaths:
    """The files of one job directory."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def runner(self) -> Path:
        return self.root / "runner.json"

    @property
    def stage(self) -> Path:
        return self.root / "stage.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def launch_lock(self) -> Path:
        """Stamped just before the server launches the runner, and before ``spec.json``.

        Its age tells a launch still under way from one that died with its server; it is
        no mutex (``runner_lock`` is).
        """
        return self.root / "launch.lock"

    @property
    def runner_lock(self) -> Path:
        """``flock``-ed by the runner for its whole life, so a second runner backs off."""
        return self.root / "runner.lock"

    @property
    def cancel_request(self) -> Path:
        """Left by ``cancel`` for a runner that has not started yet."""
        return self.root / "cancel.requested"

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def runner_output(self) -> Path:
        """The runner's own stdout and stderr: tracebacks of the runner, not of the stage."""
        return self.root / "runner.out"

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"


def free_inputs(paths: JobPaths) -> bool:
    """Remove an ended job's ``inputs/``; return whether it was there to remove.

    Its files are hard links into the node cache (or copies of pool files), so nothing is
    lost; left alone, they would keep an entry the cache evicted on disk, outside its cap.
    Only once ``status.json`` says the job is over: no stage reads them any more.
    """
    if not paths.status.is_file() or not paths.inputs.is_dir():
        return False
    shutil.rmtree(paths.inputs, ignore_errors=True)
    return True


def is_valid_job_id(job_id: str) -> bool:
    """Return True when ``job_id`` can name a directory (and, cleaned, a container)."""
    return _JOB_ID.fullmatch(job_id) is not None and job_id not in (".", "..")


def format_timestamp(moment: datetime) -> str:
    """Return ``2026-11-25T08:12:03.123Z``: UTC, milliseconds, the form every log line uses."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(text: str | None) -> datetime | None:
    """Return the moment ``format_timestamp`` wrote, or None for None."""
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now_timestamp() -> str:
    return format_timestamp(datetime.now(UTC))


def write_json_atomic(path: Path, data: Any, mode: int = 0o644, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one.

    The temp file is fsync-ed before the rename and the directory after it, so after a
    power cut the name never points at an empty file; ``durable=False`` skips that for
    a record only a running process needs.
    """
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_text_atomic(path, text, mode, durable=durable)


def write_json_exclusive(path: Path, data: Any, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` only if no file is there; return whether it was written.

    The content goes to a temp file that is then hard-linked to ``path``: ``link`` fails
    when the name exists, so a record written meanwhile by someone else is never replaced.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp)
    fsync_dir(path.parent)
    return True


def read_json(path: Path) -> Any | None:
    """Return the JSON in ``path``, or None when the file does not exist (yet)."""
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def job_spec_to_json(job: JobSpec) -> dict[str, Any]:
    """Return ``spec.json``'s content for ``job``."""
    return {
        "version": JOB_FILE_VERSION,
        "spec": asdict(job.spec),
        "node": job.node,
        "container_engine": job.container_engine,
        "cache_dir": job.cache_dir,
        "kill_grace_seconds": job.kill_grace_seconds,
        "cache_max_bytes": job.cache_max_bytes,
        "retry_delays": list(job.retry_delays),
    }


def job_spec_from_json(data: dict[str, Any]) -> JobSpec:
    """Return the ``JobSpec`` that ``job_spec_to_json`` wrote; raises ValueError otherwise."""
    if data.get("version") != JOB_FILE_VERSION:
        raise ValueError(
            f"spec.json has version {data.get('version')!r}; this runner reads {JOB_FILE_VERSION}"
        )
    raw = dict(data["spec"])
    resources = dict(raw.pop("resources"))
    gpu = GpuRequest(**resources.pop("gpu"))
    spec = RunSpec(
        **{
            **raw,
            "command": tuple(raw["command"]),
            "env": dict(raw["env"]),
            "inputs": tuple(raw["inputs"]),
            "workspace_sources": tuple(raw["workspace_sources"]),
            "gpu_indices": tuple(raw["gpu_indices"]),
            "resume_from": tuple(raw.get("resume_from", ())),
            "resources": ResourceRequest(**resources, gpu=gpu),
        }
    )
    return JobSpec(
        spec=spec,
        node=str(data["node"]),
        container_engine=bool(data["container_engine"]),
        cache_dir=str(data["cache_dir"]),
        kill_grace_seconds=float(data["kill_grace_seconds"]),
        cache_max_bytes=int(data.get("cache_max_bytes", 0)),
        retry_delays=tuple(float(d) for d in data.get("retry_delays", TRANSFER_RETRY_DELAYS)),
    )


def storage_env(cfg: S3Config) -> dict[str, str]:
    """Return the ``WINSLOW_S3_*`` variables that describe ``cfg``."""
    return {var: str(getattr(cfg, field)) for field, var in STORAGE_ENV.items()}


def storage_handover(cfg: S3Config) -> bytes:
    """Return what the backend writes on a runner's stdin: ``storage_env(cfg)`` as JSON.

    A pipe, not the environment: any process of the same user, a host stage included,
    can read ``/proc/<runner pid>/environ`` for as long as the runner lives.
    """
    return json.dumps(storage_env(cfg)).encode() + b"\n"


def read_storage_handover(data: bytes) -> S3Config | None:
    """Return the S3Config that ``storage_handover`` encoded; None for anything else."""
    try:
        values = json.loads(data)
    except ValueError:
        return None
    if not isinstance(values, dict):
        return None
    return storage_config_from_env({str(k): str(v) for k, v in values.items()})


def storage_config_from_env(env: Mapping[str, str]) -> S3Config | None:
    """Return the S3Config that ``storage_env`` encoded, or None when it is incomplete."""
    from winslow.storage.s3 import S3Config

    values = {field: env.get(var) for field, var in STORAGE_ENV.items()}
    if not all(values[f] for f in ("endpoint_url", "access_key", "secret_key", "bucket")):
        return None
    return S3Config(
        endpoint_url=str(values["endpoint_url"]),
        access_key=str(values["access_key"]),
        secret_key=str(values["secret_key"]),
        bucket=str(values["bucket"]),
        region=values["region"] or "us-east-1",
    )


EVENTS_SOCKET = "events.sock"
"""Unix datagram socket in the backend's data folder; runners send their job ID to it."""

UNIX_SOCKET_PATH_MAX = 100
"""Longest socket path we bind; the kernel's limit is 108 bytes on Linux."""


def events_socket(data_dir: Path) -> Path:
    return data_dir / EVENTS_SOCKET


def notify(data_dir: Path, job_id: str) -> None:
    """Tell a listening backend that ``job_id`` changed; nobody listening is fine.

    The datagram only wakes the backend sooner: the files stay the truth, and a backend
    that was down reads them when it starts.
    """
    path = events_socket(data_dir)
    if len(str(path)) > UNIX_SOCKET_PATH_MAX:
        return
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(job_id.encode(), str(path))
