"""Run a stage's ``image:`` through docker: find the engine, and build its command line.

``docker_run_command`` is pure: it turns one stage execution into the ``docker run`` argv
plus the environment the docker client needs, so the mapping (mounts, GPUs, limits,
variables) is tested without a daemon. Variable values travel in the client's environment
and the argv names only their keys (``-e KEY``), so no value shows in ``ps``.
``detect_container_engine`` is the one impure call: does ``docker info`` answer?
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DOCKER_INFO_TIMEOUT_SECONDS = 10.0
"""How long ``docker info`` may take before the engine counts as absent, seconds."""

CONTAINER_WORKSPACE = "/workspace"
"""Where the workspace is mounted inside a stage's container."""

CONTAINER_INPUTS = "/inputs"
"""Where the inputs are mounted, read-only, inside a stage's container."""

CONTAINER_STAGE_CACHE = "/winslow/cache"
"""Where the node's stage cache (``WINSLOW_CACHE_DIR``) is mounted inside a stage's container."""

_NAME_FORBIDDEN = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class DockerRun:
    """The ``docker run`` argv and the variables its client process must carry."""

    argv: tuple[str, ...]
    env: dict[str, str]


def container_name(job_id: str) -> str:
    """Return the container name for ``job_id``: docker allows ``[A-Za-z0-9][A-Za-z0-9_.-]*``."""
    name = _NAME_FORBIDDEN.sub("-", job_id)
    if not name or not name[0].isalnum():
        name = "w" + name
    return name


def docker_run_command(
    *,
    job_id: str,
    image: str,
    command: Sequence[str],
    env: Mapping[str, str],
    workspace: Path,
    inputs: Path,
    cpus: float,
    memory_mb: int,
    gpu_indices: Sequence[int],
    docker: str = "docker",
    stage_cache: Path | None = None,
) -> DockerRun:
    """Return the ``docker run`` invocation of one stage.

    ``env`` is the stage's own environment (project variables, stage env, ``WINSLOW_*``);
    ``WINSLOW_WORKSPACE`` and ``WINSLOW_INPUTS`` are set to the container's mount points,
    and ``WINSLOW_CACHE_DIR`` to that of ``stage_cache``, the node's folder that outlives
    the run (mounted read-write, where given).
    With GPUs the container sees exactly ``gpu_indices`` (renumbered from 0 inside, so
    ``CUDA_VISIBLE_DEVICES`` is left to the runtime); without, ``NVIDIA_VISIBLE_DEVICES=void``
    keeps an image that sets ``NVIDIA_VISIBLE_DEVICES=all`` from taking every GPU when the
    daemon's default runtime is nvidia.
    """
    stage_env = {
        k: v
        for k, v in env.items()
        if k not in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
    }
    stage_env["WINSLOW_WORKSPACE"] = CONTAINER_WORKSPACE
    stage_env["WINSLOW_INPUTS"] = CONTAINER_INPUTS
    if stage_cache is not None:
        stage_env["WINSLOW_CACHE_DIR"] = CONTAINER_STAGE_CACHE
    if not gpu_indices:
        stage_env["NVIDIA_VISIBLE_DEVICES"] = "void"
        stage_env["CUDA_VISIBLE_DEVICES"] = ""
    argv: list[str] = [
        docker,
        "run",
        "--rm",
        # --init reaps zombies and forwards SIGTERM: a process running as PID 1 ignores
        # SIGTERM unless it installs a handler, which would turn every cancel into a kill.
        "--init",
        "--name",
        container_name(job_id),
        "-v",
        f"{workspace.resolve()}:{CONTAINER_WORKSPACE}",
        "-v",
        f"{inputs.resolve()}:{CONTAINER_INPUTS}:ro",
        *(("-v", f"{stage_cache.resolve()}:{CONTAINER_STAGE_CACHE}") if stage_cache else ()),
        "-w",
        CONTAINER_WORKSPACE,
        "--cpus",
        _format_cpus(cpus),
        "--memory",
        f"{int(memory_mb)}m",
    ]
    if gpu_indices:
        # The quotes are part of the value: docker parses --gpus as CSV, and without them
        # "device=0,1" would split into "device=0" and an unknown option "1".
        argv += ["--gpus", '"device=' + ",".join(str(i) for i in gpu_indices) + '"']
    for key in sorted(stage_env):
        argv += ["-e", key]
    argv.append(image)
    argv += list(command)
    return DockerRun(argv=tuple(argv), env=stage_env)


def docker_kill_command(job_id: str, docker: str = "docker") -> tuple[str, ...]:
    """Return the argv that kills the stage's container, for when its client is already gone."""
    return (docker, "kill", container_name(job_id))


def detect_container_engine() -> bool:
    """Return True when ``docker`` is on PATH and its daemon answers ``docker info``."""
    return probe_container_engine() is None


def probe_container_engine() -> str | None:
    """Ask ``docker info``; return None when the daemon answers, else why it does not."""
    binary = shutil.which("docker")
    if binary is None:
        problem = "docker is not installed (not on PATH)"
        log.info("container engine: %s; stages with image: will be refused", problem)
        return problem
    try:
        done = subprocess.run(
            [binary, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_INFO_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = f"docker info failed: {exc}"
        log.warning("container engine: %s; stages with image: will be refused", problem)
        return problem
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        problem = f"docker info exited with {done.returncode}" + (
            f": {said[-1][:300]}" if said else ""
        )
        log.info("container engine: %s; stages with image: will be refused", problem)
        return problem
    log.info("container engine: docker %s answers", done.stdout.strip()[:50])
    return None


def _format_cpus(cpus: float) -> str:
    """docker reads ``--cpus 1.5``; trim ``2.0`` to ``2`` for a tidier command line."""
    return f"{cpus:g}" if cpus > 0 else "1"
