"""Signing in to the console in a real browser: through an OpenID provider (the small one
of ``tests/fixtures/oidc_provider.py``), with a local user's name and password, and with
an LDAP account's (the real slapd of ``tests/fixtures/slapd.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.oidc_provider import OidcProvider, running_provider
from tests.fixtures.server import Server, running_server
from tests.fixtures.slapd import Slapd
from tests.ui.conftest import VIEWPORT, admin_token, rows_come_to, screenshot
from tests.ui.test_accessibility import AXE, BLOCKING, axe_violations, describe
from winslow.settings import Settings
from winslow.store import people
from winslow.store.repo import open_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    """A provider on another site than the console (localhost, not 127.0.0.1), so the
    way back is a cross-site navigation, as from a real provider."""
    with running_provider("localhost", asks=True) as provider:
        yield provider


@pytest.fixture(scope="module")
def console_with_oidc(
    provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One `winslow up` for the module that signs people in through ``provider`` too."""
    env = {
        "WINSLOW_OIDC_ISSUER": provider.address,
        "WINSLOW_OIDC_CLIENT_ID": provider.client_id,
        "WINSLOW_OIDC_CLIENT_SECRET": provider.client_secret or "",
    }
    with running_server(tmp_path_factory.mktemp("signin"), env) as server:
        provider.redirect_uris.append(server.addr + "/api/v1/oidc/callback")
        yield server


def add_local_user(data_dir: Path, name: str, password: str) -> None:
    store = open_store(Settings(data_dir=data_dir).resolved_database_url())
    try:
        people.create_user(store, name, password=password)
    finally:
        store.close()


def test_signing_in_through_the_provider_lands_on_the_overview(
    browser, console_with_oidc: Server
) -> None:
    server = console_with_oidc
    context = browser.new_context(base_url=server.addr, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        tab.goto("/")
        assert tab.url.endswith("/signin?next=/")
        button = tab.get_by_role("link", name="Sign in with localhost")
        screenshot(tab, "signin-with-oidc")
        if AXE.is_file():
            serious = [v for v in axe_violations(tab) if v["impact"] in BLOCKING]
            assert not serious, describe(serious)
        button.click()
        tab.get_by_role("link", name="Continue as ada").click()  # on the provider's site
        tab.wait_for_url(server.addr + "/")
        tab.get_by_role("heading", name="Projects").wait_for()
        assert tab.locator("header .who").get_by_text("ada", exact=True).is_visible()
        [cookie] = [c for c in context.cookies() if c["name"] == "winslow_session"]
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
        screenshot(tab, "signed-in-through-oidc")
    finally:
        context.close()


def test_signing_in_with_a_user_name_and_password(browser, console_with_oidc: Server) -> None:
    server = console_with_oidc
    add_local_user(server.data_dir, "grace", "correct horse battery")
    context = browser.new_context(base_url=server.addr, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        tab.goto("/signin?next=/nodes")
        tab.get_by_label("User name").fill("grace")
        tab.get_by_label("Password").fill("wrong horse")
        tab.get_by_role("button", name="Sign in", exact=True).click()
        problem = tab.locator("#password-problem")
        problem.wait_for(state="visible")
        assert problem.get_attribute("role") == "alert"
        assert problem.inner_text() == "Wrong user name or password."
        assert tab.get_by_label("User name").get_attribute("aria-invalid") == "true"
        assert re.search(r"/signin\?next=/nodes$", tab.url)
        screenshot(tab, "signin-wrong-password")
        tab.get_by_label("Password").fill("correct horse battery")
        tab.get_by_role("button", name="Sign in", exact=True).click()
        tab.wait_for_url(server.addr + "/nodes")
        tab.get_by_role("heading", name="Nodes").wait_for()
        assert tab.locator("header .who").get_by_text("grace", exact=True).is_visible()
    finally:
        context.close()


@pytest.fixture(scope="module")
def console_with_ldap(tmp_path_factory: pytest.TempPathFactory, slapd: Slapd) -> Iterator[Server]:
    """One `winslow up` for the module that signs people in against ``slapd`` too."""
    with running_server(tmp_path_factory.mktemp("signin-ldap"), slapd.env()) as server:
        yield server


def test_signing_in_with_an_ldap_password_shows_what_the_directory_groups_allow(
    browser, console_with_ldap: Server, slapd: Slapd
) -> None:
    server = console_with_ldap
    headers = {"Authorization": f"Bearer {admin_token(server)}"}
    with httpx.Client(base_url=server.addr + "/api/v1", headers=headers, timeout=30) as api:
        pipeline = 'name: ldap-ui\nstages:\n  - name: only\n    command: ["true"]\n'
        api.put("/pipelines/ldap-ui", json={"text": pipeline}).raise_for_status()
        # Charged to groups before alice ever signed in: only the directory says she is
        # in vision and not in night-shift.
        for name, group in (("vision-drones", "vision"), ("night-shift-log", "night-shift")):
            body = {"name": name, "pipeline": "ldap-ui", "group": group, "group_role": "member"}
            api.post("/projects", json=body).raise_for_status()
    context = browser.new_context(base_url=server.addr, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        tab.goto("/")
        assert tab.url.endswith("/signin?next=/")
        tab.get_by_label("User name").fill("alice")
        tab.get_by_label("Password").fill("not-her-password")
        tab.get_by_role("button", name="Sign in", exact=True).click()
        problem = tab.locator("#password-problem")
        problem.wait_for(state="visible")
        assert problem.inner_text() == "Wrong user name or password."
        assert tab.get_by_label("User name").get_attribute("aria-invalid") == "true"
        assert tab.url.endswith("/signin?next=/")
        assert not [c for c in context.cookies() if c["name"] == "winslow_session"]

        tab.get_by_label("Password").fill(slapd.passwords["alice"])
        tab.get_by_role("button", name="Sign in", exact=True).click()
        tab.wait_for_url(server.addr + "/")
        tab.get_by_role("heading", name="Projects").wait_for()
        assert tab.locator("header .who").get_by_text("alice", exact=True).is_visible()
        assert tab.get_by_role("link", name="People").count() == 0  # not an admin
        rows_come_to(tab, lambda names: names == ["vision-drones"])
        screenshot(tab, "signed-in-through-ldap")
    finally:
        context.close()
