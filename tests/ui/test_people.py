"""The people pages in a real browser, against one real `winslow up`: an admin makes
users and groups on the People page, an owner gives a group a role on the project's
Access tab and a member of that group then sees the project (and not the People page),
and a person makes an API token on the Tokens page that is shown once, works against the
API, and stops working when revoked.

Each browser context signs in through the API (``POST /api/v1/session``), which sets the
same session cookie the sign-in page does; the sign-in page has tests of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.server import Server
from tests.ui.conftest import VIEWPORT, admin_token, screenshot
from winslow.units import parse_megabytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PIPELINE = """name: people-ui
stages:
  - name: only
    command: ["true"]
"""
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(module_server: Server) -> Server:
    return module_server


@pytest.fixture(scope="module")
def admin_api(server: Server) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {admin_token(server)}"}
    with httpx.Client(base_url=server.addr + "/api/v1", headers=headers, timeout=30) as api:
        api.put("/pipelines/people-ui", json={"text": PIPELINE}).raise_for_status()
        yield api


class Tab:
    """A browser tab of its own context, signed in as one person; its script errors kept."""

    def __init__(self, browser: Any, server: Server, credentials: dict[str, str]) -> None:
        self.context = browser.new_context(base_url=server.addr, viewport=VIEWPORT)
        self.context.set_default_timeout(15_000)
        signed_in = self.context.request.post("/api/v1/session", data=credentials)
        assert signed_in.ok, signed_in.text()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def api(self, path: str) -> Any:
        """GET ``path`` (below /api/v1) with this tab's session."""
        response = self.context.request.get(f"/api/v1{path}")
        assert response.ok, response.text()
        return response.json()


@pytest.fixture(scope="module")
def admin(browser, server: Server, admin_api: httpx.Client) -> Iterator[Tab]:
    tab = Tab(browser, server, {"token": admin_token(server)})
    yield tab
    tab.context.close()


def person(browser, server: Server, admin_api: httpx.Client, name: str) -> Tab:
    """A local user ``name`` with a password, signed in by it in a context of their own."""
    admin_api.post("/users", json={"name": name, "password": PASSWORD}).raise_for_status()
    return Tab(browser, server, {"username": name, "password": PASSWORD})


@pytest.fixture
def expect():
    return pytest.importorskip("playwright.sync_api").expect


def test_an_admin_makes_a_user_and_a_group_and_puts_the_user_in_it(
    admin: Tab, admin_api: httpx.Client, expect
) -> None:
    page = admin.page
    page.goto("/people")
    expect(page.get_by_role("link", name="People")).to_have_attribute("aria-current", "page")
    expect(page.locator("#user-rows tr[data-name='admin']")).to_contain_text("admin")

    page.locator("#new-user-name").fill("ada")
    page.locator("#new-user-password").fill(PASSWORD)
    page.get_by_role("button", name="Create user").click()
    ada = page.locator("#user-rows tr[data-name='ada']")
    expect(ada).to_contain_text("local")
    expect(ada).to_contain_text("never")  # not signed in yet

    # The same name again: the API's refusal is said under the form, the list unchanged.
    page.locator("#new-user-name").fill("ada")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("#user-problem")).to_contain_text("ada")
    expect(page.locator("#user-rows tr[data-name='ada']")).to_have_count(1)

    page.locator("#new-group-name").fill("vision")
    page.locator("#new-group-description").fill("Drone video people")
    page.get_by_role("button", name="Create group").click()
    expect(page.locator("#group-rows tr[data-name='vision']")).to_contain_text("nobody yet")

    page.locator("#member-group").select_option("vision")
    page.locator("#member-user").select_option("ada")
    page.locator("#member-role").select_option("maintainer")
    page.get_by_role("button", name="Add to group").click()
    expect(page.locator("#group-rows tr[data-name='vision'] li[data-user='ada']")).to_contain_text(
        "maintainer"
    )
    expect(ada).to_contain_text("vision (maintainer)")
    page.locator("#member-user").select_option("admin")
    page.locator("#member-role").select_option("member")
    page.get_by_role("button", name="Add to group").click()
    in_vision = page.locator("#group-rows tr[data-name='vision'] li[data-user='admin']")
    expect(in_vision).to_contain_text("member")
    page.get_by_role("button", name="Remove admin from vision").click()
    expect(in_vision).to_have_count(0)

    page.get_by_role("button", name="Quota of group vision").click()
    page.locator("#quota-gpus").fill("4")
    page.locator("#quota-memory").fill("lots")
    page.get_by_role("button", name="Save quota").click()
    expect(page.locator("#quota-memory")).to_have_attribute("aria-invalid", "true")
    page.locator("#quota-memory").fill("64G")
    page.get_by_role("button", name="Save quota").click()
    expect(page.locator("#quota-dialog")).to_be_hidden()
    expect(page.locator("#group-rows tr[data-name='vision'] .quota")).to_have_text(
        "4 GPUs · 64.0 GiB memory"
    )

    page.get_by_role("button", name="Make admin ada").click()
    expect(ada).to_have_attribute("data-admin", "true")
    page.get_by_role("button", name="Disable ada").click()
    expect(ada).to_have_attribute("data-disabled", "true")
    screenshot(page, "people-admin")

    user = admin_api.get("/users/ada").json()
    assert (user["groups"], user["admin"], user["disabled"]) == (
        {"vision": "maintainer"},
        True,
        True,
    )
    group = admin_api.get("/groups/vision").json()
    assert group["quota"] == {"gpus": 4, "cpus": None, "memory_mb": 65536}
    assert group["description"] == "Drone video people"
    assert admin.errors == []


def test_the_quota_dialog_reads_a_memory_size_as_the_cli_does(
    admin: Tab, admin_api: httpx.Client, expect
) -> None:
    admin_api.post("/groups", json={"name": "sizes"}).raise_for_status()
    page = admin.page
    page.goto("/people")
    memory = page.locator("#quota-memory")
    # B is bytes, i and iB spell the same unit, case does not matter, a bare number is MiB.
    for text in ("536870912B", "1.5Ti", "1536 KiB", "3gib", "100"):
        page.get_by_role("button", name="Quota of group sizes").click()
        memory.fill(text)
        page.get_by_role("button", name="Save quota").click()
        expect(page.locator("#quota-dialog")).to_be_hidden()
        stored = admin_api.get("/groups/sizes").json()["quota"]
        assert stored["memory_mb"] == parse_megabytes(text), text

    for text in ("8iB", "1e3M", "8KiBB"):
        with pytest.raises(ValueError):
            parse_megabytes(text)
        page.get_by_role("button", name="Quota of group sizes").click()
        memory.fill(text)
        page.get_by_role("button", name="Save quota").click()
        expect(memory).to_have_attribute("aria-invalid", "true")
        page.locator("#quota-cancel").click()
        assert admin_api.get("/groups/sizes").json()["quota"]["memory_mb"] == 100, text
    assert admin.errors == []


def test_an_owner_grants_a_group_and_its_member_sees_the_project_but_not_people(
    browser, server: Server, admin: Tab, admin_api: httpx.Client, expect
) -> None:
    admin_api.post("/groups", json={"name": "optics"}).raise_for_status()
    bea = person(browser, server, admin_api, "bea")
    admin_api.put("/groups/optics/members/bea", json={"role": "member"}).raise_for_status()
    created = admin_api.post("/projects", json={"name": "optics-survey", "pipeline": "people-ui"})
    created.raise_for_status()
    assert "optics-survey" not in {p["name"] for p in bea.api("/projects")["data"]}

    page = admin.page
    page.goto("/projects/optics-survey#access")
    expect(page.locator("#access-role")).to_have_text("Your role: owner")
    grants = page.locator("#access-grants tbody tr")
    expect(grants).to_have_count(1)
    only_owner = grants.first.get_attribute("data-principal")

    # A group nobody made is said beside the name, and nothing is sent.
    page.locator("#grant-name").fill("optcs")
    page.get_by_role("button", name="Grant").click()
    expect(page.locator("#grant-name")).to_have_attribute("aria-invalid", "true")
    page.locator("#grant-name").fill("optics")
    page.locator("#grant-role").select_option("member")
    page.get_by_role("button", name="Grant").click()
    expect(page.locator("#access-status")).to_have_text(
        "Saved: user admin owner, group optics member."
    )
    page.get_by_label("Role of group optics").select_option("maintainer")
    saved = "Saved: user admin owner, group optics maintainer"
    expect(page.locator("#access-status")).to_have_text(f"{saved}.")
    page.get_by_label("Public: every signed-in user may read this project").check()
    expect(page.locator("#access-status")).to_have_text(f"{saved}; public.")
    assert admin_api.get("/projects/optics-survey/access").json()["public"] is True
    # The last owner cannot go: the refusal shows in the tab, the owner stays.
    page.get_by_role("button", name=f"Remove {only_owner.replace(':', ' ')}").click()
    expect(page.locator("#access-problem")).to_contain_text("at least one owner")
    expect(page.locator(f"#access-grants tr[data-principal='{only_owner}']")).to_have_count(1)
    screenshot(page, "people-access-owner")

    bea_page = bea.page
    bea_page.goto("/")
    expect(bea_page.locator("#project-rows tr[data-name='optics-survey']")).to_have_count(1)
    expect(bea_page.get_by_role("link", name="Tokens")).to_be_visible()
    expect(bea_page.get_by_role("link", name="People")).to_have_count(0)
    bea_page.goto("/projects/optics-survey#access")
    expect(bea_page.locator("#access-role")).to_have_text("Your role: maintainer")
    expect(bea_page.locator("#access-public")).to_contain_text("Public")
    expect(bea_page.locator("#access-readonly")).to_be_visible()
    expect(bea_page.locator("#grant-form")).to_have_count(0)
    expect(bea_page.locator("#access-grants select")).to_have_count(0)
    screenshot(bea_page, "people-access-member")

    response = bea_page.goto("/people")
    assert response is not None and response.status == 403
    expect(bea_page.locator("#forbidden")).to_contain_text("Only admins")
    expect(bea_page.locator("#user-rows")).to_have_count(0)
    assert bea.errors == [] and admin.errors == []
    bea.context.close()


def test_a_token_is_shown_once_works_and_stops_when_revoked(
    browser, server: Server, admin_api: httpx.Client, expect
) -> None:
    cai = person(browser, server, admin_api, "cai")
    notes = admin_api.post("/projects", json={"name": "cai-notes", "pipeline": "people-ui"})
    notes.raise_for_status()
    grants = [
        {"principal": "user:admin", "role": "owner"},
        {"principal": "user:cai", "role": "member"},
    ]
    admin_api.put("/projects/cai-notes/access", json={"grants": grants}).raise_for_status()
    page = cai.page
    page.goto("/tokens")
    expect(page.locator("#token-rows")).to_contain_text("no tokens yet")
    scopes = page.locator("#token-scope option").all_text_contents()
    assert scopes == ["read", "steer"]  # admin scope is for admins only

    page.locator("#token-name").fill("laptop")
    page.locator("#token-scope").select_option("read")
    page.locator("#token-days").fill("30")
    # A project the person cannot see is refused beside the field; nothing is made.
    page.locator("#token-projects").fill("someone-elses")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#token-projects")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#token-secret")).to_be_hidden()
    page.locator("#token-projects").fill("cai-notes")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#token-secret")).to_be_visible()
    expect(page.locator("#token-secret")).to_contain_text("you will not see it again")
    secret = page.locator("#secret-value").input_value()
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#secret-copied")).to_have_text("Copied.")
    row = page.locator("#token-rows tr[data-name='laptop']")
    expect(row).to_have_attribute("data-state", "active")
    expect(row).to_contain_text("read")
    expect(row).to_contain_text("cai-notes")

    me = httpx.get(server.addr + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200
    assert (me.json()["name"], me.json()["scope"]) == ("cai", "read")
    assert me.json()["projects"] == [notes.json()["id"]]

    screenshot(page, "people-token-secret")
    page.get_by_role("button", name="I have copied it; hide it").click()
    expect(page.locator("#token-secret")).to_be_hidden()
    page.get_by_role("button", name="Revoke laptop").click()
    page.locator("#revoke-confirm").click()
    expect(row).to_have_attribute("data-state", "revoked")
    screenshot(page, "people-tokens")

    me = httpx.get(server.addr + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 401
    page.reload()
    expect(page.locator("#token-rows tr[data-name='laptop']")).to_have_attribute(
        "data-state", "revoked"
    )
    assert secret not in page.content()
    assert cai.errors == []
    cai.context.close()
