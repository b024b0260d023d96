"""A real Prometheus scrapes a real `winslow up` and answers a query with what the store holds.

Prometheus is Debian's ``prometheus`` package (``make test`` installs it); without
/usr/bin/prometheus the test skips and says so. It runs on a free port of 127.0.0.1 with
its data in the test's folder, scrapes ``/metrics`` every second with an admin token as
its bearer token, and is stopped in ``finally``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.ports import pick_ports
from tests.fixtures.server import Server

PROMETHEUS = Path("/usr/bin/prometheus")

PIPELINE = """
name: scraped
stages:
  - name: scraped-stage
    command: ["sh", "-c", "echo done"]
"""

CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: winslow
    scrape_interval: 1s
    scrape_timeout: 1s
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {token_file}
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


@pytest.fixture
def prometheus(winslow_server: Server, tmp_path: Path) -> Iterator[str]:
    """A Prometheus scraping ``winslow_server``; yields its address."""
    if not PROMETHEUS.exists():
        pytest.skip(
            "/usr/bin/prometheus is missing; `apt-get install -y prometheus` (or `make test`) "
            "installs it"
        )
    token = (winslow_server.data_dir / "admin-token").read_text().strip()
    token_file = tmp_path / "scrape-token"
    token_file.write_text(token)
    config = tmp_path / "prometheus.yml"
    config.write_text(CONFIG.format(token_file=token_file, port=winslow_server.port))
    (port,) = pick_ports(1)
    address = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not _ready(address):
            assert process.poll() is None, f"prometheus exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"prometheus never ready:\n{log_path.read_text()}"
            time.sleep(0.2)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _ready(address: str) -> bool:
    try:
        return httpx.get(f"{address}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def query(address: str, promql: str, timeout: float = 90) -> list[dict]:
    """The first non-empty result of an instant query, asked until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{address}/api/v1/query", params={"query": promql}, timeout=5)
        assert answer.status_code == 200, answer.text
        result: list[dict] = answer.json()["data"]["result"]
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_prometheus_scrapes_the_runs_the_store_holds(
    winslow_server: Server, prometheus: str, tmp_path: Path
) -> None:
    server = winslow_server
    (tmp_path / "scraped.yaml").write_text(PIPELINE)
    server.cli("pipeline", "apply", str(tmp_path / "scraped.yaml"))
    server.cli("project", "create", "p", "--pipeline", "scraped", "--start")
    done = server.wait_for("p", {"succeeded", "failed"})
    succeeded = sum(run["state"] == "succeeded" for run in done["runs"])
    assert succeeded == 1, done

    # The value of a scrape taken after the run ended; earlier scrapes may show 0.
    deadline = time.monotonic() + 90
    while True:
        result = query(prometheus, 'winslow_runs{job="winslow",state="succeeded"}')
        assert result, "Prometheus has no winslow_runs series; see its targets page"
        if float(result[0]["value"][1]) == succeeded or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert float(result[0]["value"][1]) == succeeded
    assert result[0]["metric"]["instance"] == f"127.0.0.1:{server.port}"
    up = query(prometheus, 'up{job="winslow"}')
    assert float(up[0]["value"][1]) == 1
    s3_up = query(prometheus, 'winslow_s3_up{job="winslow"}')
    assert float(s3_up[0]["value"][1]) == 1
