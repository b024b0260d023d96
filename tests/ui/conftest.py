"""The console in a real browser: Debian's Chromium driven by Playwright, against a real
`winslow up`. Screenshots go to ``test-output/screenshots/``."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.server import Server, running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
VIEWPORT = {"width": 1366, "height": 800}
"""A laptop screen."""


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (`make test` installs it with apt-get)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def admin_token(server: Server) -> str:
    return (server.data_dir / "admin-token").read_text().strip()


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `winslow up` for every module of browser tests a worker runs: each test keeps
    to projects and pipelines named for it, and a server per module cost a start of
    several seconds of CPU thirty times over."""
    with running_server(tmp_path_factory.mktemp("ui-server")) as server:
        yield server


@pytest.fixture(scope="module")
def module_server(ui_server: Server) -> Server:
    """Here the worker's shared server: the browser modules that ask for a server of
    their own module get that one."""
    return ui_server


@pytest.fixture
def winslow_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """The worker's shared `winslow up` (``ui_server``). A test marked ``own_server`` (it
    counts what the whole server holds) gets one for itself."""
    if request.node.get_closest_marker("own_server") is None:
        yield request.getfixturevalue("module_server")
        return
    with running_server(tmp_path) as server:
        yield server


@pytest.fixture
def console(winslow_server: Server) -> Server:
    """A running `winslow up` with the console (its admin token in ``admin_token``)."""
    return winslow_server


@pytest.fixture
def page(browser, console: Server) -> Iterator[object]:
    """A browser tab signed in to ``console`` through the sign-in page."""
    context = browser.new_context(base_url=console.addr, viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.goto("/signin")
    tab.get_by_label("Token").fill(admin_token(console))
    tab.get_by_role("button", name="Sign in with token").click()
    tab.wait_for_url(console.addr + "/")
    yield tab
    context.close()


def screenshot(tab: object, name: str) -> Path:
    """Save a full-page screenshot as ``test-output/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def show_tab(page: object, name: str) -> None:
    """Open one of the project page's tabs (Overview, Log, Files, Run details, ...).

    A click that lands while the page's first live update reflows its head (a reason or
    a hint appears above the tabs) hits what moved under the pointer, as it would for a
    person, who then clicks again: so do we, at most three times."""
    from playwright.sync_api import expect

    tab = page.get_by_role("tab", name=name, exact=True)  # type: ignore[attr-defined]
    for _ in range(2):
        tab.click()
        try:
            expect(tab).to_have_attribute("aria-selected", "true", timeout=2_000)
            return
        except AssertionError:
            continue
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def project_rows_shown(tab: object) -> list[str]:
    """The names of the overview's visible project rows, top to bottom, read in one step in
    the page: a live update may redraw the rows between counting them and reading each."""
    names: list[str] = tab.eval_on_selector_all(  # type: ignore[attr-defined]
        "#project-rows tr[data-name]",
        "rows => rows.filter(r => r.checkVisibility()).map(r => r.dataset.name)",
    )
    return names


def rows_come_to(tab: object, wanted: Callable[[list[str]], bool], seconds: float = 15) -> None:
    """Wait until the overview's rows are as ``wanted``; fail naming the rows last shown.
    A filter, a page or a live update redraws the rows a moment after the control that
    asked for it settles: reading them that instant sees the old rows or none."""
    deadline = time.monotonic() + seconds
    while not wanted(shown := project_rows_shown(tab)):
        if time.monotonic() > deadline:
            raise AssertionError(f"the overview shows {shown}")
        tab.wait_for_timeout(100)  # type: ignore[attr-defined]
