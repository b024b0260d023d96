"""The live nodes page in a real browser against a real ``winslow up``: per node what the
stages hold, what is free and what the node uses now, each run on it with its link, kept
live without a reload; and the API it reads (``GET /api/v1/nodes/live``)."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.fixtures.server import Server
from tests.ui import test_nomad_link
from tests.ui.conftest import VIEWPORT, admin_token, screenshot
from tests.ui.test_overview_console import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.slow]

served_on_nomad = test_nomad_link.served_on_nomad
"""The Winslow on the Nomad stand-in, behind a real server (a fixture)."""

HOLD = (
    "name: hold\nstages:\n  - name: crunch\n    requirements:\n      cpus: 0.5\n"
    '    command: ["sh", "-c", "while [ ! -f {go} ]; do sleep 0.2; done"]\n'
)


def running_run(console: Server, project: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in console.api(f"/projects/{project}")["runs"] if r["state"] == "running"]
        if runs:
            return runs[0]
        assert time.monotonic() < deadline, f"no stage of {project} started"
        time.sleep(0.3)


def test_the_nodes_page_shows_live_figures_and_what_runs_where(page, console, tmp_path) -> None:
    check = pytest.importorskip("playwright.sync_api").expect
    go = tmp_path / "go"
    headers = {"Authorization": f"Bearer {admin_token(console)}"}
    with httpx.Client(base_url=console.addr + "/api/v1", headers=headers, timeout=30) as api:
        api.put("/pipelines/hold", json={"text": HOLD.format(go=go)}).raise_for_status()
        body = {"name": "night-shift", "pipeline": "hold", "start": True}
        api.post("/projects", json=body).raise_for_status()
    try:
        run = running_run(console, "night-shift")
        page.goto("/nodes")
        node = page.locator("section.node#node-local")
        check(node.get_by_role("heading", name=re.compile(r"^local"))).to_be_visible()
        # What the stage holds, and what is left, from the run's own request.
        check(node.locator("[data-figure=cpu-held]")).to_contain_text("0.5 of ")
        check(node.locator("[data-figure=cpu-held]")).to_contain_text("cores held by stages")
        # Measured figures come with the server's samples (every 5 s) and are kept live.
        check(node.locator("[data-figure=cpu]")).to_have_text(
            re.compile(r"^\d+ % busy$"), timeout=45_000
        )
        check(node.locator("[data-figure=memory]")).to_have_text(
            re.compile(r"^\d+\.\d \w+ of \d+\.\d \w+ used$")
        )
        check(node.locator("[data-figure=measured]")).to_contain_text("Measured")
        # The run, named by project and stage, with its link.
        row = node.locator(f"table.runs-here tr[data-run='{run['id']}']")
        check(row).to_contain_text("night-shift")
        check(row).to_contain_text("crunch")
        check(row.get_by_role("link", name=f"run {run['id']}")).to_have_attribute(
            "href", f"/projects/night-shift#run-{run['id']}"
        )
        check(page.locator("#nodes-summary")).to_contain_text("1 stage running")
        screenshot(page, "nodes-live-1366")
        assert_accessible(page, "the nodes page with a run")
        page.set_viewport_size({"width": 1024, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth") <= 1024
        screenshot(page, "nodes-live-1024")

        # The stage ends: the page follows without a reload.
        page.evaluate("window.__kept = true")
        go.touch()
        console.wait_for("night-shift", {"succeeded"})
        check(node.locator("table.runs-here")).to_have_count(0, timeout=30_000)
        check(node).to_contain_text("No stage runs here.")
        check(page.locator("#nodes-summary")).to_contain_text("0 stages running")
        assert page.evaluate("window.__kept") is True
    finally:
        go.touch()


def test_the_live_nodes_api_names_the_runs_and_the_free_capacity(console, tmp_path) -> None:
    go = tmp_path / "go"
    headers = {"Authorization": f"Bearer {admin_token(console)}"}
    with httpx.Client(base_url=console.addr + "/api/v1", headers=headers, timeout=30) as api:
        api.put("/pipelines/hold", json={"text": HOLD.format(go=go)}).raise_for_status()
        api.post("/projects", json={"name": "day-shift", "pipeline": "hold", "start": True})
        try:
            run = running_run(console, "day-shift")
            body = api.get("/nodes/live").json()
            (local,) = [n for n in body["data"] if n["name"] == "local"]
            assert local["cpus_held"] == 0.5
            assert local["cpus_free"] == local["cpus"] - 0.5
            assert local["memory_free_mb"] == local["memory_mb"] - local["memory_held_mb"]
            assert [(r["id"], r["project"], r["stage"], r["link"]) for r in local["runs"]] == [
                (run["id"], "day-shift", "crunch", f"/projects/day-shift#run-{run['id']}")
            ]
            assert body["runs"] == 1
            assert body["gpus_free"] == sum(n["gpus_free"] for n in body["data"])
        finally:
            go.touch()
        console.wait_for("day-shift", {"succeeded"})
        assert api.get("/nodes/live").json()["runs"] == 0


GPU_HOLD = """
name: gpu-hold
stages:
  - name: detect
    requirements: {{gpu: {{count: 1, model: "V100"}}}}
    command: ["sh", "-c", "while [ ! -f {go} ]; do sleep 0.2; done"]
"""


def test_gpus_of_a_nomad_node_and_the_stage_holding_one(
    browser, served_on_nomad: str, winslow_on_nomad, nomad_standin, tmp_path
) -> None:
    """Nomad picks a job's GPUs itself: the page counts the one held against the free ones
    and says which ones it is not known, rather than calling both free."""
    check = pytest.importorskip("playwright.sync_api").expect
    go = tmp_path / "go"
    winslow = winslow_on_nomad
    nomad_standin.add_node("gpu-1", gpus=[("Tesla V100", 16384), ("Tesla V100", 16384)])
    winslow.apply_pipeline(GPU_HOLD.format(go=go))
    winslow.create("gpu-job", "gpu-hold", start=True)
    try:
        run = winslow.wait_until_running("gpu-job")
        assert run["node"] == "gpu-1"
        winslow.context.engine.telemetry.sample_once()
        context = browser.new_context(base_url=served_on_nomad, viewport=VIEWPORT)
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            page.goto("/signin")
            page.get_by_label("Token").fill(winslow.token)
            page.get_by_role("button", name="Sign in with token").click()
            page.wait_for_url(served_on_nomad + "/")
            cell = page.locator("#project-rows tr[data-name='gpu-job'] td.placements")
            check(cell).to_have_text("gpu-1 · 1 GPU")

            page.goto("/nodes")
            node = page.locator("section.node#node-gpu-1")
            check(node.locator("[data-figure=gpus]")).to_have_text("1 of 2 free")
            check(page.locator("#nodes-summary")).to_contain_text("1 of 2 GPUs free")
            gpus = node.get_by_role("table", name="GPUs of gpu-1")
            check(gpus.locator("tbody tr")).to_have_count(2)
            check(gpus.locator("tbody tr").first).to_contain_text("Tesla V100")
            check(gpus.locator("tbody tr").first).to_contain_text("not known")
            row = node.locator(f"table.runs-here tr[data-run='{run['id']}']")
            check(row).to_contain_text("1 (picked by the scheduler)")
            check(row.get_by_role("link", name="gpu-job")).to_have_attribute(
                "href", "/projects/gpu-job"
            )
            screenshot(page, "nodes-gpus-nomad")
            assert_accessible(page, "the nodes page with GPUs")
            # The page stays live: its next refresh draws the same figures from the API.
            page.wait_for_function("document.body.dataset.liveAt !== undefined", timeout=30_000)
            check(node.locator("[data-figure=gpus]")).to_have_text("1 of 2 free")
            check(gpus.locator("tbody tr")).to_have_count(2)
        finally:
            context.close()
    finally:
        go.touch()
