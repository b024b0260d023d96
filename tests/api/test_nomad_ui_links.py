"""``GET /projects/{ref}/runs/{id}/nomad``: where the Nomad UI shows a run's job and
allocation; the browser follows them in tests/ui/test_nomad_link.py."""

from __future__ import annotations

from tests.fixtures.winslow import Harness
from winslow.api.routes.nomad_ui import allocation_url, job_url

PIPELINE = """
name: quick
stages:
  - name: detect
    command: ["sh", "-c", "echo hi"]
"""


def test_urls_are_the_nomad_uis_own() -> None:
    base = "https://nomad.example/ui"
    assert job_url(base, "winslow-a-run-1", "vision") == f"{base}/jobs/winslow-a-run-1@vision"
    assert job_url(base, "a b/c", "default") == f"{base}/jobs/a%20b%2Fc@default"
    assert allocation_url(base, "5a2c-77") == f"{base}/allocations/5a2c-77"


def test_off_nomad_there_is_nothing_to_link(winslow: Harness) -> None:
    winslow.apply_pipeline(PIPELINE)
    winslow.create("local", "quick", start=True)
    winslow.engine.run_until_idle(timeout=60)
    (run,) = winslow.show("local")["runs"]
    answer = winslow.api.get(f"/api/v1/projects/local/runs/{run['id']}/nomad")
    assert answer.status_code == 200
    assert answer.json() == {"job": None, "allocation": None}
