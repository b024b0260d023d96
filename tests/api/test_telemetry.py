"""``GET /api/v1/nodes/{node}/telemetry``: a node's sampled history over the console's
ranges, on the local backend and on Nomad, and the collector that keeps it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psutil
import pytest

from tests.fixtures.winslow import Harness
from winslow.engine.telemetry import TelemetryCollector


def test_a_sampled_node_shows_its_live_points_with_every_core(winslow: Harness) -> None:
    collector = winslow.context.engine.telemetry
    assert collector.sample_once() == 1
    assert collector.sample_once() == 1

    response = winslow.api.get("/api/v1/nodes/local/telemetry", params={"range": "live"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["node"], body["range"], body["step_seconds"]) == ("local", "live", 5)
    assert body["source_step_seconds"] == 0
    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    assert end - start == timedelta(minutes=30)
    assert 1 <= len(body["samples"]) <= 2  # two samples, in one or two 5-second steps
    last = body["samples"][-1]
    assert len(last["cpu_percent"]) == psutil.cpu_count()
    assert last["memory_total_mb"] > 0
    assert last["net_rx_bps"] is not None  # the second sample has rates


def test_every_range_answers_and_a_young_server_draws_from_its_raw_samples(
    winslow: Harness,
) -> None:
    winslow.context.engine.telemetry.sample_once()
    for name in ("live", "6h", "24h", "7d", "31d"):
        response = winslow.api.get(f"/api/v1/nodes/local/telemetry?range={name}")
        assert response.status_code == 200, response.text
        assert response.json()["range"] == name
        assert len(response.json()["samples"]) == 1
    assert (
        winslow.api.get("/api/v1/nodes/local/telemetry?range=6h").json()["source_step_seconds"] == 0
    )


def test_a_node_without_samples_yet_has_none_and_an_unknown_node_is_a_404(
    winslow: Harness,
) -> None:
    fresh = winslow.api.get("/api/v1/nodes/local/telemetry")
    assert (fresh.status_code, fresh.json()["samples"]) == (200, [])
    unknown = winslow.api.get("/api/v1/nodes/nowhere/telemetry")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "detail": "No node 'nowhere'; GET /api/v1/nodes lists them.",
        "code": "not_found",
    }


def test_a_range_the_console_does_not_offer_is_refused(winslow: Harness) -> None:
    response = winslow.api.get("/api/v1/nodes/local/telemetry?range=2h")
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_the_collector_samples_in_its_thread(winslow: Harness) -> None:
    context = winslow.context
    collector = TelemetryCollector(context.store, context.backend, 0.2, rollup_seconds=0.2)
    collector.start()
    try:
        deadline = datetime.now() + timedelta(seconds=30)
        while datetime.now() < deadline:
            body = winslow.api.get("/api/v1/nodes/local/telemetry").json()
            if len(body["samples"]) >= 2:
                break
            time.sleep(0.1)
        assert len(body["samples"]) >= 2
    finally:
        collector.stop()


def test_the_collector_is_off_at_zero_seconds(winslow: Harness) -> None:
    collector = TelemetryCollector(winslow.context.store, winslow.context.backend, 0)
    collector.start()
    assert collector._thread is None


@pytest.mark.slow
def test_nomad_nodes_have_telemetry_without_network_figures(
    winslow_on_nomad: Harness, nomad_standin
) -> None:
    nomad_standin.add_node("gpu-1", cpu_mhz=4000, gpus=[("Tesla V100", 16384)])
    assert winslow_on_nomad.context.engine.telemetry.sample_once() == 2  # standin-1 and gpu-1
    body = winslow_on_nomad.api.get("/api/v1/nodes/gpu-1/telemetry").json()
    [point] = body["samples"]
    assert len(point["cpu_percent"]) == 4
    assert [g["index"] for g in point["gpus"]] == [0]
    assert (point["net_rx_bps"], point["disk_read_bps"]) == (None, None)
