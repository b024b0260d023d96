"""``GET /api/v1/nodes`` and the console's Nodes page on a Nomad cluster: a node an
operator drains or marks ineligible says so, with the drain's deadline."""

from __future__ import annotations

from datetime import datetime

from tests.fixtures.winslow import Harness


def test_drained_and_ineligible_nodes_say_so_in_the_api_and_the_console(
    winslow_on_nomad: Harness, nomad_standin
) -> None:
    nomad_standin.add_node("gpu-1")
    nomad_standin.add_node("gpu-2")
    nomad_standin.drain_node("gpu-1", deadline_seconds=2 * 3600)
    nomad_standin.set_eligibility("gpu-2", eligible=False)

    response = winslow_on_nomad.api.get("/api/v1/nodes")
    assert response.status_code == 200, response.text
    nodes = {n["name"]: n for n in response.json()["data"]}
    ready, drained, ineligible = nodes["standin-1"], nodes["gpu-1"], nodes["gpu-2"]
    assert (ready["status"], ready["eligible"], ready["drain"]) == ("ready", True, None)
    assert (ineligible["status"], ineligible["eligible"], ineligible["drain"]) == (
        "ineligible",
        False,
        None,
    )
    drain = drained["drain"]
    assert (drained["status"], drained["eligible"], drain["forced"]) == ("draining", False, False)
    started = datetime.fromisoformat(drain["started_at"])
    deadline = datetime.fromisoformat(drain["deadline"])
    assert round((deadline - started).total_seconds()) == 2 * 3600
    assert drain["summary"] == (
        f"draining since {started:%Y-%m-%d %H:%M} UTC, "
        f"stages stopped at {deadline:%Y-%m-%d %H:%M} UTC"
    )

    session = winslow_on_nomad.api.post("/api/v1/session", json={"token": winslow_on_nomad.token})
    assert session.status_code == 200, session.text
    page = winslow_on_nomad.api.get("/nodes")
    assert page.status_code == 200, page.text
    assert drain["summary"] in page.text
    assert "not accepted (ineligible for scheduling)" in page.text
