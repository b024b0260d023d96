"""A run on Nomad links to its job and its allocation in the Nomad UI, by the paths the
real UI uses (``/ui/jobs/<id>@<namespace>``, ``/ui/allocations/<id>``), followed in the
browser to the Nomad stand-in the stages ran on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.served import served_in_thread
from tests.fixtures.winslow import Harness
from tests.ui.conftest import VIEWPORT, screenshot
from winslow.api.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PIPELINE = """
name: on-nomad
stages:
  - name: detect
    command: ["sh", "-c", "echo detected on nomad"]
"""


@pytest.fixture
def served_on_nomad(winslow_on_nomad: Harness, nomad_standin: Any) -> Iterator[str]:
    """The Winslow of ``winslow_on_nomad`` behind a real uvicorn, its console linking to the
    stand-in as it would to a Nomad agent (``NOMAD_ADDR``); its address."""
    context = winslow_on_nomad.context
    # As `winslow up` configures both from the same settings.
    where = {
        "nomad_addr": nomad_standin.address,
        "nomad_namespace": context.backend.config.namespace,
    }  # type: ignore[attr-defined]
    context.settings = context.settings.model_copy(update=where)
    with served_in_thread(create_app(context)) as address:
        yield address


def test_a_run_links_to_its_job_and_allocation_in_the_nomad_ui(
    browser, served_on_nomad: str, winslow_on_nomad: Harness, nomad_standin: Any
) -> None:
    check = pytest.importorskip("playwright.sync_api").expect
    winslow = winslow_on_nomad
    winslow.apply_pipeline(PIPELINE)
    winslow.create("linked", "on-nomad", start=True)
    winslow.engine.run_until_idle(timeout=120)
    (run,) = winslow.show("linked")["runs"]
    assert run["state"] == "succeeded", run
    job_id = run["job_id"]
    allocs = httpx.get(f"{nomad_standin.address}/v1/job/{job_id}/allocations").json()
    (alloc,) = allocs
    assert alloc["Namespace"] == "default"
    ui = f"{nomad_standin.address}/ui"

    context = browser.new_context(base_url=served_on_nomad, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto("/signin")
        page.get_by_label("Token").fill(winslow.token)
        page.get_by_role("button", name="Sign in with token").click()
        page.wait_for_url(served_on_nomad + "/")
        page.goto("/projects/linked")
        row_link = page.locator(f"#run-{run['id']}").get_by_role(
            "link", name=f"Run {run['id']} in the Nomad UI"
        )
        check(row_link).to_have_attribute("href", f"{ui}/jobs/{job_id}@default")

        page.get_by_role("tab", name="Run details").click()
        facts = page.locator("#run-nomad")
        job_link = facts.get_by_role("link", name=f"Run {run['id']} in the Nomad UI")
        alloc_link = facts.get_by_role("link", name="allocation")
        check(job_link).to_have_attribute("href", f"{ui}/jobs/{job_id}@default")
        check(alloc_link).to_have_attribute("href", f"{ui}/allocations/{alloc['ID']}")
        screenshot(page, "nomad-links")

        # Followed, each lands on the stand-in's page of that job and that allocation.
        with page.expect_popup() as opened:
            job_link.click()
        job_page = opened.value
        check(job_page.get_by_role("heading")).to_have_text(f"Job {job_id}")
        check(job_page.locator("[data-namespace]")).to_have_text("default")
        with page.expect_popup() as opened:
            alloc_link.click()
        alloc_page = opened.value
        check(alloc_page.get_by_role("heading")).to_have_text(f"Allocation {alloc['ID']}")
        check(alloc_page.locator("[data-job]")).to_have_text(job_id)
    finally:
        context.close()
