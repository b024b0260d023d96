"""``WINSLOW_UI_DIR``: a lab's own copy of the console (its templates and static files)
is served instead of the one in the package; without the setting, the package's is."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import winslow as winslow_package
from tests.fixtures.winslow import Harness
from winslow.api.app import create_app
from winslow.settings import Settings

PACKAGED_UI = Path(winslow_package.__file__).parent / "ui"
PACKAGED_HEADING = "<h1>Sign in</h1>"
LAB_HEADING = "<h1>Sign in to the Ulm lab</h1>"
LAB_SHEET = "/* the Ulm lab's own console */\n"


@pytest.fixture
def lab_ui(tmp_path: Path) -> Path:
    """A copy of the packaged console with its own sign-in heading and one extra sheet."""
    ui = tmp_path / "lab-ui"
    shutil.copytree(PACKAGED_UI / "templates", ui / "templates")
    shutil.copytree(PACKAGED_UI / "static", ui / "static")
    signin = ui / "templates" / "signin.html"
    text = signin.read_text()
    assert PACKAGED_HEADING in text  # else this test no longer changes what it means to
    signin.write_text(text.replace(PACKAGED_HEADING, LAB_HEADING))
    (ui / "static" / "lab.css").write_text(LAB_SHEET)
    return ui


def console(winslow: Harness) -> TestClient:
    """The app over the harness's store and engine, its settings read as `winslow up`
    reads them: from the environment, where WINSLOW_UI_DIR may be set."""
    given = winslow.context.settings
    settings = Settings(
        data_dir=given.data_dir,
        database_url=given.database_url,
        poll_seconds=given.poll_seconds,
        telemetry_seconds=given.telemetry_seconds,
    )
    return TestClient(create_app(dataclasses.replace(winslow.context, settings=settings)))


def test_winslow_ui_dir_serves_the_labs_templates_and_static_files(
    winslow: Harness, lab_ui: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINSLOW_UI_DIR", str(lab_ui))

    with console(winslow) as client:
        signin = client.get("/signin")
        sheet = client.get("/static/lab.css")

    assert signin.status_code == 200
    assert LAB_HEADING in signin.text
    assert PACKAGED_HEADING not in signin.text
    assert (sheet.status_code, sheet.text) == (200, LAB_SHEET)


def test_without_winslow_ui_dir_the_packaged_console_is_served(
    winslow: Harness, lab_ui: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WINSLOW_UI_DIR", raising=False)

    with console(winslow) as client:
        signin = client.get("/signin")
        sheet = client.get("/static/lab.css")
        packaged = client.get("/static/console.css")

    assert signin.status_code == 200
    assert PACKAGED_HEADING in signin.text
    assert LAB_HEADING not in signin.text
    assert sheet.status_code == 404
    assert packaged.status_code == 200
    assert packaged.content == (PACKAGED_UI / "static" / "console.css").read_bytes()
