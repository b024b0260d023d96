"""The nodes page charts each node's telemetry, live and over the longer ranges, in a real
browser against a real ``winslow up`` (which samples its node every 5 seconds), and a
Nomad node's, GPUs included, against the Nomad stand-in."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from tests.ui import test_nomad_link
from tests.ui.conftest import VIEWPORT, admin_token, screenshot
from winslow.core.telemetry import RAW_STEP_SECONDS
from winslow.store.rows import now
from winslow.store.telemetry import add_samples

pytestmark = [pytest.mark.browser, pytest.mark.slow]

served_on_nomad = test_nomad_link.served_on_nomad
"""The Winslow on the Nomad stand-in, behind a real server (a fixture)."""


def test_the_nodes_page_draws_live_charts_and_switches_range(page, console) -> None:
    check = pytest.importorskip("playwright.sync_api").expect
    page.goto("/nodes")
    telemetry = page.locator('.node-telemetry[data-node="local"]')
    cpu = telemetry.locator('figure[data-chart="CPU"] svg.chart')
    # The server's first sample comes within 5 s; the live range is fetched every 5 s.
    check(cpu).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"), timeout=45_000)
    check(cpu.locator("circle.series-point").first).to_be_attached()
    check(telemetry.locator('figure[data-chart="Memory used"] svg.chart')).to_have_attribute(
        "data-points", re.compile(r"^[1-9]\d*$")
    )
    check(telemetry.locator(".telemetry-note")).to_contain_text("one per 5 s")
    # The axis reads clock times over the live window's 30 minutes (it read time since
    # the window's start, "10 min 00 s"), and the note names the first point's time, not
    # the window's start, which the node's sampling may not reach back to.
    labels = cpu.locator(".chart-x-label").all_text_contents()
    assert len(labels) >= 3 and all(re.fullmatch(r"\d\d:\d\d", label) for label in labels), labels
    first = page.evaluate(
        "async () => { const r = await fetch('/api/v1/nodes/local/telemetry?range=live');"
        " const b = await r.json(); return new Date(b.samples[0].at).toLocaleString(); }"
    )
    check(telemetry.locator(".telemetry-note")).to_contain_text(f"since {first}.")
    screenshot(page, "nodes-telemetry-live")

    telemetry.get_by_role("button", name="6 h").click()
    check(telemetry).to_have_attribute("data-shown-range", "6h")
    check(telemetry.get_by_role("button", name="6 h")).to_have_attribute("aria-pressed", "true")
    check(telemetry.get_by_role("button", name="Live")).to_have_attribute("aria-pressed", "false")
    check(telemetry.locator(".telemetry-note")).to_contain_text("one per 1 min")
    check(cpu).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    telemetry.get_by_role("button", name="31 d").click()
    check(telemetry).to_have_attribute("data-shown-range", "31d")
    check(telemetry.locator(".telemetry-note")).to_contain_text("one per 90 min")

    # What the charts drew is what the API serves.
    session = httpx.post(console.addr + "/api/v1/session", json={"token": admin_token(console)})
    body = httpx.get(
        console.addr + "/api/v1/nodes/local/telemetry?range=31d",
        cookies={"winslow_session": session.cookies["winslow_session"]},
    ).json()
    assert body["range"] == "31d" and body["samples"]


def test_a_nomad_node_with_gpus_gets_gpu_charts_and_no_network_or_disk_io_charts(
    browser, served_on_nomad: str, winslow_on_nomad, nomad_standin
) -> None:
    """Nomad's host statistics carry each GPU's figures but no network or disk I/O: the
    page draws a chart per GPU figure, a line per GPU, and names the charts it cannot
    draw instead of drawing them empty."""
    check = pytest.importorskip("playwright.sync_api").expect
    node_id = nomad_standin.add_node("gpu-1", gpus=[("Tesla V100", 16384), ("Tesla V100", 16384)])
    node = httpx.get(f"{nomad_standin.address}/v1/node/{node_id}").json()
    [devices] = node["NodeResources"]["Devices"]
    gpus = [instance["ID"] for instance in devices["Instances"]]
    # Two samples one raw step apart: two points on the live range, as the server's own
    # sampling would leave after 5 s.
    telemetry = winslow_on_nomad.context.engine.telemetry
    later = now()
    for at, busy, used_mib, celsius, watts in (
        (later - timedelta(seconds=RAW_STEP_SECONDS), 20, 1024, 41, 60),
        (later, 87, 3072, 68, 245),
    ):
        for index, gpu in enumerate(gpus):
            nomad_standin.set_gpu_usage(
                gpu,
                busy + index,
                used_mib * (index + 1),
                celsius=celsius + index,
                watts=watts + index,
            )
        assert add_samples(telemetry.store, telemetry.backend.node_stats(at)) == 2

    context = browser.new_context(base_url=served_on_nomad, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto("/signin")
        page.get_by_label("Token").fill(winslow_on_nomad.token)
        page.get_by_role("button", name="Sign in with token").click()
        page.wait_for_url(served_on_nomad + "/")
        page.goto("/nodes")
        telemetry_of_gpu_1 = page.locator('.node-telemetry[data-node="gpu-1"]')
        points = str(2 * len(gpus))  # two samples, a line per GPU
        expected = {
            "GPU utilisation": (
                "GPU 0: 2 points, last 87 %, lowest 20 %",
                "GPU 1: 2 points, last 88 %",
            ),
            "GPU memory used": (
                "GPU 0: 2 points, last 3.0 GiB, lowest 1.0 GiB",
                "GPU 1: 2 points, last 6.0 GiB",
            ),
            "GPU temperature": (
                "GPU 0: 2 points, last 68 °C, lowest 41 °C",
                "GPU 1: 2 points, last 69 °C",
            ),
            "GPU power": (
                "GPU 0: 2 points, last 245 W, lowest 60 W",
                "GPU 1: 2 points, last 246 W",
            ),
        }
        for title, lines in expected.items():
            chart = telemetry_of_gpu_1.locator(f'figure[data-chart="{title}"] svg.chart')
            check(chart).to_have_attribute("data-points", points)
            for line in lines:
                check(chart).to_have_attribute("aria-label", re.compile(re.escape(line)))
            check(chart.locator("circle.series-point")).to_have_count(int(points))
        for host_figure in ("CPU", "Memory used", "Disk used"):
            chart = telemetry_of_gpu_1.locator(f'figure[data-chart="{host_figure}"] svg.chart')
            check(chart).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
        for absent in ("Network", "Disk I/O"):
            check(telemetry_of_gpu_1.locator(f'figure[data-chart="{absent}"]')).to_have_count(0)
        check(telemetry_of_gpu_1.locator(".telemetry-note")).to_contain_text(
            "2 points, one per 5 s"
        )
        check(telemetry_of_gpu_1.locator(".telemetry-note")).to_contain_text(
            "Not measured on this node: disk i/o, network."
        )
        screenshot(page, "nodes-telemetry-gpus-nomad")
    finally:
        context.close()
