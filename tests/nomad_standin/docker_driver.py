"""The stand-in's docker driver: runs ``docker`` tasks in the local docker daemon.

Written from Nomad's driver (hashicorp/nomad v1.10.5 ``drivers/docker``: ``config.go``
``taskConfigSpec``, ``driver.go`` ``StartTask``, ``createImage``, ``containerBinds`` and
``createContainerConfig``, ``coordinator.go`` ``pullImageImpl``, ``handle.go`` ``Kill``
and ``run``), driving the ``docker`` command line instead of the Engine API. The plugin
configuration is Nomad's default: ``volumes { enabled = false }``, privileged containers
refused, runtimes ``runc`` and ``nvidia`` allowed, a 5 min image pull timeout.

A task runs the way Nomad runs it. The driver config is checked against the driver's
schema (``validate_config``: a missing ``image``, an unknown key). Starting it asks the
daemon for its info (``failed to fetch docker daemon info: ...`` when it does not
answer; the daemon is the one ``DOCKER_HOST`` names, as Nomad's ``FromEnv`` client
finds it), uses the local image unless its tag is ``latest`` or ``force_pull`` is set,
else pulls it (a ``Driver`` event "Downloading image"; ``Failed to pull `<image>`: ...``),
creates the container ``<task>-<alloc ID>`` with the allocation folder bound at
``/alloc`` and the task's ``local/`` and ``secrets/`` at ``/local`` and ``/secrets``, the
task's environment only, memory and CPU shares from its resources, the NVIDIA runtime
and ``NVIDIA_VISIBLE_DEVICES`` for its GPUs, and starts it. Every failure before the
container runs raises ``DriverStartError`` with Nomad's text and recoverability; the
client turns it into a ``Driver Failure`` event and applies the restart policy.

Supported config keys: ``image``, ``command``, ``args``, ``entrypoint``, ``work_dir``,
``volumes`` (inside the allocation folder; host paths are refused as Nomad refuses
them with volumes disabled), ``devices``, ``runtime``, ``force_pull``,
``image_pull_timeout``, ``labels``, ``hostname``, ``init``, ``network_mode`` and
``privileged`` (always refused: Nomad's default ``allow_privileged = false``). Any other
key of Nomad's schema fails the task with a ``Driver Failure`` saying the stand-in does
not support it, so a test never passes on a setting that was silently ignored.

While the container runs its output goes to the task's log files through ``docker
logs --follow`` (Nomad's docker logger also reads the daemon's log stream, so nothing
the container wrote is lost); signals go to it with ``docker kill --signal``; its exit
code is the container's, with signal 0 and the message ``Docker container exited with
non-zero exit code: N`` (``handle.go`` run). The container is removed once it ended.
Statistics measure the container's processes as seen from the host, not docker's
cgroup figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .templates import go_quote

__all__ = [
    "CONTAINER_ALLOC_DIR",
    "CONTAINER_LOCAL_DIR",
    "CONTAINER_SECRETS_DIR",
    "ConfigValidationError",
    "DockerContainer",
    "DockerTask",
    "DriverStartError",
    "start",
    "validate_config",
    "wait_until_gone",
]

CONTAINER_ALLOC_DIR = "/alloc"
CONTAINER_LOCAL_DIR = "/local"
CONTAINER_SECRETS_DIR = "/secrets"
"""Where Nomad mounts the allocation folder and the task's folders (``taskenv``)."""

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
IMAGE_PULL_TIMEOUT_SECONDS = 300.0
"""The plugin's default ``image_pull_timeout`` (5m)."""
DOCKER_CALL_SECONDS = 60.0
"""Bound on one ``docker`` command that is not a pull."""
ALLOWED_RUNTIMES = ("runc", "nvidia")
GPU_RUNTIME = "nvidia"
ALLOC_ID_LABEL = "com.hashicorp.nomad.alloc_id"
NVIDIA_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
MIN_CPU_SHARES = 2

# Every key of the driver's task config schema (config.go taskConfigSpec).
SCHEMA_KEYS = frozenset(
    {
        "image",
        "advertise_ipv6_address",
        "args",
        "auth",
        "auth_soft_fail",
        "cap_add",
        "cap_drop",
        "cgroupns",
        "command",
        "cpuset_cpus",
        "cpu_hard_limit",
        "cpu_cfs_period",
        "container_exists_attempts",
        "devices",
        "dns_search_domains",
        "dns_options",
        "dns_servers",
        "entrypoint",
        "extra_hosts",
        "force_pull",
        "group_add",
        "healthchecks",
        "hostname",
        "init",
        "interactive",
        "ipc_mode",
        "ipv4_address",
        "ipv6_address",
        "isolation",
        "labels",
        "load",
        "logging",
        "mac_address",
        "memory_hard_limit",
        "mount",
        "mounts",
        "network_aliases",
        "network_mode",
        "oom_score_adj",
        "runtime",
        "pids_limit",
        "pid_mode",
        "ports",
        "port_map",
        "privileged",
        "image_pull_timeout",
        "readonly_rootfs",
        "security_opt",
        "shm_size",
        "storage_opt",
        "sysctl",
        "tty",
        "ulimit",
        "uts_mode",
        "userns_mode",
        "volumes",
        "volume_driver",
        "work_dir",
    }
)
SUPPORTED_KEYS = frozenset(
    {
        "image",
        "command",
        "args",
        "entrypoint",
        "work_dir",
        "volumes",
        "devices",
        "runtime",
        "force_pull",
        "image_pull_timeout",
        "labels",
        "hostname",
        "init",
        "network_mode",
        "privileged",
    }
)
_IMAGE_NOT_FOUND = re.compile(r"Error: image .+ not found")
_CGROUP_PERMISSIONS = re.compile(r"[rwm]{1,3}")

JsonDict = dict[str, Any]
MessageFn = Callable[[str, dict[str, str]], None]


class DriverStartError(Exception):
    """``StartTask`` failed: the text of Nomad's error, and whether a restart may help
    (``structs.RecoverableError``)."""

    def __init__(self, message: str, *, recoverable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.recoverable = recoverable


class ConfigValidationError(Exception):
    """The task's driver config does not decode against the driver's schema: the text
    of the task runner's ``Failed Validation`` event."""


@dataclass(frozen=True)
class DockerTask:
    """What the client hands the driver to start one task (``drivers.TaskConfig``)."""

    alloc_id: str
    name: str
    config: JsonDict
    """The driver config, interpolated."""
    env: dict[str, str]
    user: str
    alloc_root: Path
    """The allocation's folder on the host (``alloc/``, ``<task>/`` inside)."""
    memory_mb: int
    memory_max_mb: int
    cpu_mhz: int
    gpu_ids: tuple[str, ...] = ()
    on_message: MessageFn = field(default=lambda _message, _details: None)
    """Called with a driver message (``Downloading image``) and its annotations."""

    @property
    def container_name(self) -> str:
        return f"{self.name.replace('/', '_')}-{self.alloc_id}"


def validate_config(config: JsonDict) -> None:
    """Decode ``config`` against the driver's schema, as the task runner does before
    starting it (``runDriver``, ``hclutils.ParseHclInterface``); raise
    ``ConfigValidationError`` with the runner's multierror text."""
    problems = []
    if "image" not in config:
        problems.append(
            'Missing required argument: The argument "image" is required, but no '
            "definition was found."
        )
    for key in sorted(config):
        if key not in SCHEMA_KEYS:
            hint = _suggestion(key, sorted(SCHEMA_KEYS))
            problems.append(
                f"Invalid label: No argument or block type is named {go_quote(key)}.{hint}"
            )
    if problems:
        errors = ["failed to parse config: ", *problems]
        points = "\n\t".join(f"* {e}" for e in errors)
        raise ConfigValidationError(f"{len(errors)} errors occurred:\n\t{points}\n\n")


def start(task: DockerTask) -> DockerContainer:
    """Create and start the task's container; raise ``DriverStartError`` as Nomad's
    ``StartTask`` fails."""
    config = task.config
    image = str(config.get("image") or "")
    if not image:
        raise DriverStartError("image name required for docker driver")
    image = image.removeprefix("https://")
    unsupported = sorted(set(config) - SUPPORTED_KEYS)
    if unsupported:
        raise DriverStartError(
            f"the Nomad stand-in's docker driver does not support {', '.join(unsupported)}; "
            "a real Nomad agent would honour it"
        )
    runtimes = _daemon_runtimes()
    image_id = _create_image(task, image)
    try:
        argv = _create_argv(task, image, runtimes)
    except DriverStartError as exc:
        raise DriverStartError(
            f"Failed to create container configuration for image {go_quote(image)} "
            f"({go_quote(image_id)}): {exc.message}"
        ) from None
    name = task.container_name
    _docker("rm", "--force", name)  # a container left from an earlier attempt
    created = _docker(*argv)
    if created.returncode != 0:
        raise DriverStartError(f"failed to create container: {_error_text(created)}")
    container_id = created.stdout.strip()
    started = _docker("start", name)
    if started.returncode != 0:
        _docker("rm", "--force", name)
        raise DriverStartError(f"Failed to start container {container_id}: {_error_text(started)}")
    return DockerContainer(name, container_id)


def _daemon_runtimes() -> set[str]:
    """The daemon's runtimes; raise Nomad's error when it does not answer."""
    info = _docker("info", "--format", "{{json .Runtimes}}")
    if info.returncode != 0:
        raise DriverStartError(f"failed to fetch docker daemon info: {_error_text(info)}")
    try:
        return set(json.loads(info.stdout or "{}"))
    except ValueError:
        return set()


def _create_image(task: DockerTask, image: str) -> str:
    """The image's ID: the local image, or a pulled one (``createImage``)."""
    ref = _image_ref(image)
    if not task.config.get("force_pull") and not ref.endswith(":latest"):
        present = _docker("image", "inspect", "--format", "{{.Id}}", image)
        if present.returncode == 0:
            return present.stdout.strip()
    task.on_message("Downloading image", {"image": ref})
    timeout = IMAGE_PULL_TIMEOUT_SECONDS
    if task.config.get("image_pull_timeout"):
        timeout = _go_seconds(str(task.config["image_pull_timeout"]))
    try:
        pulled = _docker("pull", ref, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DriverStartError(
            f"Failed to pull `{image}`: context deadline exceeded", recoverable=True
        ) from None
    if pulled.returncode != 0:
        error = _error_text(pulled)
        # Only an image the registry does not have is worth no retry (recoverablePullError).
        recoverable = not _IMAGE_NOT_FOUND.search(error)
        raise DriverStartError(f"Failed to pull `{image}`: {error}", recoverable=recoverable)
    present = _docker("image", "inspect", "--format", "{{.Id}}", image)
    if present.returncode != 0:
        raise DriverStartError(_error_text(present), recoverable=True)
    return present.stdout.strip()


def _create_argv(task: DockerTask, image: str, runtimes: set[str]) -> list[str]:
    """``docker create`` arguments for the task (``createContainerConfig``)."""
    config = task.config
    argv = ["create", "--name", task.container_name, "--label", f"{ALLOC_ID_LABEL}={task.alloc_id}"]
    for bind in _binds(task):
        argv += ["--volume", bind]
    runtime = str(config.get("runtime") or "")
    if task.gpu_ids:
        if GPU_RUNTIME not in runtimes:
            raise DriverStartError(
                f"requested docker runtime {go_quote(GPU_RUNTIME)} was not found"
            )
        if runtime and runtime != GPU_RUNTIME:
            raise DriverStartError(
                f"conflicting runtime requests: gpu runtime {go_quote(GPU_RUNTIME)} conflicts "
                f"with task runtime {go_quote(runtime)}"
            )
        runtime = GPU_RUNTIME
    if runtime and runtime not in ALLOWED_RUNTIMES:
        raise DriverStartError(f"requested runtime {go_quote(runtime)} is not allowed")
    if runtime:
        argv += ["--runtime", runtime]
    if config.get("privileged"):
        raise DriverStartError("Docker privileged mode is disabled on this Nomad agent")
    hard, soft = task.memory_max_mb, task.memory_mb
    if hard > 0:
        argv += ["--memory", f"{hard}m", "--memory-reservation", f"{soft}m"]
        argv += ["--memory-swap", f"{hard}m"]
    else:
        argv += ["--memory", f"{soft}m", "--memory-swap", f"{soft}m"]
    argv += ["--cpu-shares", str(max(task.cpu_mhz, MIN_CPU_SHARES))]
    for device in config.get("devices") or []:
        argv += ["--device", _device(device)]
    if config.get("work_dir"):
        argv += ["--workdir", str(config["work_dir"])]
    if task.user:
        argv += ["--user", task.user]
    if config.get("hostname"):
        argv += ["--hostname", str(config["hostname"])]
    if config.get("init"):
        argv.append("--init")
    argv += ["--network", str(config.get("network_mode") or "default")]
    for labels in config.get("labels") or []:
        for key, value in labels.items():
            if key != ALLOC_ID_LABEL:
                argv += ["--label", f"{key}={value}"]
    for key, value in sorted(task.env.items()):
        argv += ["--env", f"{key}={value}"]
    entrypoint = [str(part) for part in config.get("entrypoint") or []]
    if entrypoint:
        argv += ["--entrypoint", entrypoint[0]]
    argv.append(image)
    argv += entrypoint[1:]
    command = config.get("command")
    args = [str(arg) for arg in config.get("args") or []]
    if command:
        command = str(command)
        if not command.strip():
            raise DriverStartError(f"command empty: {go_quote(command)}")
        if command.strip() != command:
            raise DriverStartError(f"command contains extra white space: {go_quote(command)}")
        argv += [command, *args]
    else:
        argv += args
    return argv


def _binds(task: DockerTask) -> list[str]:
    """The built-in binds, then the task's ``volumes`` (``containerBinds``)."""
    task_dir = task.alloc_root / task.name
    binds = [
        f"{task.alloc_root / 'alloc'}:{CONTAINER_ALLOC_DIR}",
        f"{task_dir / 'local'}:{CONTAINER_LOCAL_DIR}",
        f"{task_dir / 'secrets'}:{CONTAINER_SECRETS_DIR}",
    ]
    for spec in task.config.get("volumes") or []:
        parts = str(spec).split(":")
        if len(parts) < 2:
            raise DriverStartError(
                f"invalid docker volume {go_quote(str(spec))}: not <src>:<destination> format"
            )
        source = os.path.normpath(os.path.join(task_dir, parts[0]))
        if os.path.relpath(source, task.alloc_root).startswith(".."):
            # volumes { enabled = false } is the plugin's default.
            raise DriverStartError(
                f"volumes are not enabled; cannot mount host paths: {go_quote(str(spec))}"
            )
        binds.append(":".join([source, *parts[1:3]]))  # source:destination[:mode]
    return binds


def _device(device: JsonDict) -> str:
    """A ``devices`` entry as ``--device`` takes it (``DockerDevice.toDockerDevice``)."""
    host = str(device.get("host_path") or "")
    if not host:
        raise DriverStartError("host path must be set in configuration for devices")
    container = str(device.get("container_path") or host)
    permissions = str(device.get("cgroup_permissions") or "rwm")
    if not _CGROUP_PERMISSIONS.fullmatch(permissions) or len(set(permissions)) != len(permissions):
        raise DriverStartError(f"invalid cgroup permission string: {go_quote(permissions)}")
    return f"{host}:{container}:{permissions}"


class DockerContainer:
    """A started container, seen by the client as it sees a task's process.

    ``pid`` is the container's first process on the host (what statistics measure);
    ``poll``/``wait`` follow it through its log stream, which ends when it does;
    ``send_signal`` is ``docker kill --signal``; ``returncode`` is the container's exit
    code, set once it ended and was removed.
    """

    def __init__(self, name: str, container_id: str) -> None:
        self.name = name
        self.container_id = container_id
        self.returncode: int | None = None
        self._lock = threading.Lock()
        self._logs: subprocess.Popen[bytes] | None = None
        state = _docker("inspect", "--format", "{{.State.Pid}}", name)
        self.pid = int(state.stdout.strip() or 0) if state.returncode == 0 else 0

    def follow_logs(self, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        """Copy everything the container writes into the task's log files."""
        self._logs = subprocess.Popen(
            [_docker_binary(), "logs", "--follow", self.name],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=_docker_env(),
            start_new_session=True,
        )
        if not self.pid:
            self.pid = self._logs.pid  # it ended before it could be looked at

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if self._logs is not None and self._logs.poll() is None:
            return None
        return self._finish()

    def wait(self, timeout: float | None = None) -> int:
        if self._logs is not None and self.returncode is None:
            self._logs.wait(timeout)  # raises TimeoutExpired, as Popen.wait does
        return self._finish()

    def send_signal(self, sig: int) -> None:
        """``docker kill --signal``: the container's first process gets ``sig``."""
        if self.returncode is None:
            _docker("kill", "--signal", signal.Signals(sig).name, self.name)

    def exit_message(self) -> str:
        """The exit result's error text (``handle.go`` run)."""
        if not self.returncode:
            return ""
        return f"Docker container exited with non-zero exit code: {self.returncode}"

    def _finish(self) -> int:
        """Wait for the container's end, read its exit code and remove it."""
        with self._lock:
            if self.returncode is None:
                waited = _docker("wait", self.name, timeout=None)
                code = waited.stdout.strip()
                self.returncode = int(code) if code.lstrip("-").isdigit() else 137
                if self._logs is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._logs.wait(5)
                _docker("rm", "--force", self.name)
            return self.returncode


# --- the docker command line ------------------------------------------------------------


def _docker_binary() -> str:
    return shutil.which("docker") or "docker"


def _docker_env() -> dict[str, str]:
    return dict(os.environ)


def _docker(
    *args: str, timeout: float | None = DOCKER_CALL_SECONDS
) -> subprocess.CompletedProcess[str]:
    """Run one ``docker`` command; a missing binary answers like an absent daemon."""
    binary = shutil.which("docker")
    if binary is None:
        host = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        message = f"Cannot connect to the Docker daemon at {host}. Is the docker daemon running?"
        return subprocess.CompletedProcess(["docker", *args], 1, "", message)
    return subprocess.run(
        [binary, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_docker_env(),
        stdin=subprocess.DEVNULL,
    )


def _error_text(result: subprocess.CompletedProcess[str]) -> str:
    """The daemon's error as the Go client words it: the command's last error line."""
    lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
    text = lines[-1] if lines else f"docker {result.args[1]} exited with {result.returncode}"
    return text.removeprefix("Error: ").removeprefix("error: ")


def _image_ref(image: str) -> str:
    """``dockerImageRef(parseDockerImage(image))``: a tag defaults to ``latest``."""
    if "@" in image:
        return image
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last else f"{image}:latest"


def _suggestion(given: str, names: list[str]) -> str:
    """hcl's ``nameSuggestion``: the first name within Levenshtein distance 2."""
    for name in names:
        if _levenshtein(given, name) < 3:
            return f" Did you mean {json.dumps(name)}?"
    return ""


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def _go_seconds(text: str) -> float:
    """Seconds of a Go duration such as ``5m`` or ``90s`` (the pull timeout)."""
    scale = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts:
        return IMAGE_PULL_TIMEOUT_SECONDS
    return sum(float(number) * scale[unit] for number, unit in parts)


def wait_until_gone(name: str, timeout: float = 10.0) -> bool:
    """Whether the container ``name`` is gone within ``timeout`` (for tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _docker("container", "inspect", name).returncode != 0:
            return True
        time.sleep(0.1)
    return False
