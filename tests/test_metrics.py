"""``GET /metrics``: who may read it, and that each metric moves when its thing happens.

Everything real: the API in the test process over real SQLite, a real SeaweedFS (also
with wrong keys), the Nomad stand-in on a free port, and a stage run by the local backend.
Metrics live in one process-wide registry, so each test compares a value before and after
what it does, and uses label values (stage names) no other test uses.
"""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_uploads import upload_whole
from tests.fixtures.ports import pick_ports
from tests.fixtures.winslow import Harness
from winslow import metrics
from winslow.backends.nomad.client import NomadClient
from winslow.backends.nomad.config import NomadConfig
from winslow.errors import BackendUnavailableError, NotFoundError, StorageError
from winslow.storage.objects import ObjectStore


def value(name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels``, 0 while it was never observed."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def total(name: str, **labels: str) -> float:
    """The sum of every sample ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in metrics.REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def scrape(winslow: Harness, headers: dict[str, str]) -> dict[tuple[str, tuple], float]:
    response = winslow.api.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.fixture
def admin(winslow: Harness) -> dict[str, str]:
    """Headers with an admin API token, as Prometheus sends them."""
    return {"Authorization": f"Bearer {winslow.context.store.create_token('scraper', admin=True)}"}


ONE_STAGE = """
name: metered
stages:
  - name: metered-stage
    command: ["sh", "-c", "echo hello"]
"""


# -- who may read it --------------------------------------------------------------------------


def test_metrics_take_an_admin_token_and_refuse_others(
    winslow: Harness, admin: dict[str, str]
) -> None:
    anonymous = winslow.api.get("/metrics", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert "bearer token" in anonymous.json()["detail"]

    ordinary = winslow.api.get(
        "/metrics",
        headers={"Authorization": f"Bearer {winslow.context.store.create_token('ana')}"},
    )
    assert ordinary.status_code == 403
    assert ordinary.json()["detail"] == (
        "'ana' may not read /metrics with these credentials; use an admin token "
        "(`winslow token create NAME --scope admin`), or set WINSLOW_METRICS_PUBLIC=true."
    )

    samples = scrape(winslow, admin)
    assert ("winslow_runs", (("state", "succeeded"),)) in samples


def test_public_metrics_need_no_token(winslow: Harness) -> None:
    winslow.context.settings.metrics_public = True
    response = winslow.api.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert "winslow_projects" in response.text


def test_metrics_stay_out_of_the_openapi_document(winslow: Harness) -> None:
    document = winslow.api.get("/api/v1/openapi.json").json()
    assert "/metrics" not in document["paths"]


# -- runs -------------------------------------------------------------------------------------


def test_a_run_that_ends_counts_its_run_and_queue_time_by_stage(
    winslow: Harness, admin: dict[str, str]
) -> None:
    labels = {"stage": "metered-stage", "state": "succeeded"}
    ran = value("winslow_run_duration_seconds_count", **labels)
    queued = value("winslow_run_queue_seconds_count", stage="metered-stage")
    winslow.apply_pipeline(ONE_STAGE)
    winslow.create("m1", "metered", start=True)
    winslow.engine.run_until_idle()

    assert winslow.show("m1")["state"] == "succeeded"
    assert value("winslow_run_duration_seconds_count", **labels) == ran + 1
    assert value("winslow_run_queue_seconds_count", stage="metered-stage") == queued + 1
    # Nothing was observed as failed.
    assert value("winslow_run_duration_seconds_count", stage="metered-stage", state="failed") == 0

    samples = scrape(winslow, admin)
    assert samples[("winslow_runs", (("state", "succeeded"),))] == 1
    assert samples[("winslow_runs", (("state", "failed"),))] == 0
    assert samples[("winslow_projects", (("state", "succeeded"),))] == 1
    assert samples[("winslow_projects", (("state", "running"),))] == 0


def test_reconcile_rounds_and_the_lag_of_a_wake_are_measured(winslow: Harness) -> None:
    rounds = value("winslow_reconcile_rounds_total", outcome="ok")
    lags = value("winslow_reconcile_lag_seconds_count")
    winslow.engine.wake()
    winslow.engine.reconcile_once()
    assert value("winslow_reconcile_rounds_total", outcome="ok") == rounds + 1
    assert value("winslow_reconcile_lag_seconds_count") == lags + 1
    assert value("winslow_reconcile_last_success_timestamp_seconds") > 0
    # A round nobody woke ends no lag.
    winslow.engine.reconcile_once()
    assert value("winslow_reconcile_lag_seconds_count") == lags + 1


def test_a_failing_round_counts_as_an_error() -> None:
    errors = value("winslow_reconcile_rounds_total", outcome="error")
    with pytest.raises(RuntimeError), metrics.reconcile_round():
        raise RuntimeError("the store went away")
    assert value("winslow_reconcile_rounds_total", outcome="error") == errors + 1


# -- object storage ---------------------------------------------------------------------------


def test_s3_requests_are_timed_and_refusals_counted(object_store: ObjectStore) -> None:
    gets = value("winslow_s3_request_duration_seconds_count", operation="GetObject")
    errors = total("winslow_s3_request_errors_total", operation="GetObject")

    # A missing key is an answer, not a failure of storage.
    with pytest.raises(NotFoundError):
        object_store.get_bytes("nothing/here.txt")
    assert value("winslow_s3_request_duration_seconds_count", operation="GetObject") == gets + 1
    assert total("winslow_s3_request_errors_total", operation="GetObject") == errors

    wrong_keys = ObjectStore(dataclasses.replace(object_store.cfg, secret_key="not-the-secret"))
    with pytest.raises(StorageError):
        wrong_keys.get_bytes("nothing/here.txt")
    assert total("winslow_s3_request_errors_total", operation="GetObject") == errors + 1
    assert value("winslow_s3_request_duration_seconds_count", operation="GetObject") == gets + 2


def test_s3_up_follows_the_probe(winslow: Harness, admin: dict[str, str]) -> None:
    assert scrape(winslow, admin)[("winslow_s3_up", ())] == 1
    metrics.set_s3_probe(lambda: False)
    try:
        assert scrape(winslow, admin)[("winslow_s3_up", ())] == 0
    finally:
        metrics.set_s3_probe(None)


def test_a_cached_probe_asks_once_per_interval_and_takes_a_crash_for_no() -> None:
    asked: list[int] = []

    def probe() -> bool:
        asked.append(1)
        if len(asked) > 1:
            raise OSError("no route to host")
        return True

    cached = metrics.CachedProbe(probe, seconds=3600)
    assert (cached(), cached()) == (True, True)
    assert len(asked) == 1
    assert metrics.CachedProbe(probe, seconds=0)() is False


def test_completed_uploads_count_their_bytes(winslow: Harness, admin: dict[str, str]) -> None:
    before = scrape(winslow, admin)[("winslow_upload_bytes_total", ())]
    upload_whole(winslow, "videos/clip.bin", b"x" * 1000)
    assert scrape(winslow, admin)[("winslow_upload_bytes_total", ())] == before + 1000


# -- Nomad ------------------------------------------------------------------------------------


def test_nomad_requests_are_timed_by_endpoint_family(nomad_standin) -> None:
    before = value("winslow_nomad_request_duration_seconds_count", method="GET", endpoint="node")
    with NomadClient(NomadConfig(address=nomad_standin.address)) as client:
        nodes, _ = client.nodes.list()
        node, _ = client.nodes.read(nodes[0]["ID"])
        missing, _ = client.nodes.read("no-such-node")
    assert node is not None and missing is None
    after = value("winslow_nomad_request_duration_seconds_count", method="GET", endpoint="node")
    assert after == before + 2  # node IDs never become labels
    assert value("winslow_nomad_request_errors_total", method="GET", endpoint="node") == 0


def test_an_unreachable_nomad_counts_as_an_error() -> None:
    (port,) = pick_ports(1)
    config = NomadConfig(address=f"http://127.0.0.1:{port}")
    labels = {"method": "GET", "endpoint": "nodes", "reason": "unreachable"}
    before = value("winslow_nomad_request_errors_total", **labels)
    with NomadClient(config, retry_schedule=()) as client, pytest.raises(BackendUnavailableError):
        client.nodes.list()
    assert value("winslow_nomad_request_errors_total", **labels) == before + 1


@pytest.mark.parametrize(
    ("path", "family"),
    [
        ("/v1/job/winslow-p-1/allocations", "job"),
        ("/v1/jobs", "jobs"),
        ("/v1/client/fs/logs/abc", "client"),
        ("/v1/var/nomad/jobs", "var"),
        ("/", "/"),
    ],
)
def test_nomad_endpoint_family(path: str, family: str) -> None:
    assert metrics.nomad_endpoint(path) == family


@pytest.mark.parametrize(
    ("status", "failed"),
    [(None, True), (200, False), (404, False), (409, False), (412, False), (403, True),
     (429, True), (500, True), (503, True)],
)  # fmt: skip
def test_which_answers_count_as_failures(status: int | None, failed: bool) -> None:
    assert metrics.request_failed(status) is failed


def test_metric_names_are_what_the_readme_alerts_use(
    winslow: Harness, admin: dict[str, str]
) -> None:
    names = {name for name, _ in scrape(winslow, admin)}
    assert {
        "winslow_runs",
        "winslow_projects",
        "winslow_s3_up",
        "winslow_upload_bytes_total",
        "winslow_reconcile_last_success_timestamp_seconds",
        "process_resident_memory_bytes",
    } <= names
