"""Signing in to the console in a real browser: through an OpenID provider (the small one
of ``tests/fixtures/oidc_provider.py``), and with a local user's name and password."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.oidc_provider import OidcProvider, running_provider
from tests.fixtures.server import Server, running_server
from tests.ui.conftest import VIEWPORT, screenshot
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
