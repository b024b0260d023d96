"""The nodes page charts each node's telemetry, live and over the longer ranges, in a real
browser against a real ``winslow up`` (which samples its node every 5 seconds)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.ui.conftest import admin_token, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


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
