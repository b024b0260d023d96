"""A command starts in a fraction of a second: it loads the noun it names and the HTTP
client, not pydantic, the server's settings or the other nouns (each was a slice of every
call's start: typer's pydantic coercion, the settings class, all nouns' commands built).
"""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.server import BIN
from winslow.cli.helpers import reflowed
from winslow.client_settings import ClientSettings
from winslow.errors import ValidationError

HEAVY = {"pydantic", "pydantic_settings", "fastapi", "sqlalchemy", "boto3", "yaml"}
"""Top-level packages a command that only calls the API has no use for."""


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "python"), "-X", "importtime", str(BIN / "winslow"), *args],
        text=True,
        capture_output=True,
        timeout=60,
        env={
            **os.environ,
            "WINSLOW_ADDR": "http://127.0.0.1:9",  # nothing answers: the start is what counts
            "WINSLOW_CLI_RETRY_SECONDS": "0",
            **env,
        },
    )


def imported(result: subprocess.CompletedProcess[str]) -> set[str]:
    # -X importtime writes "import time: <self> | <cumulative> | <indented name>" on stderr.
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    } - {"imported package"}


def test_a_command_loads_its_noun_and_the_client_only() -> None:
    listing = run_cli("project", "list")
    assert "No Winslow server answers at http://127.0.0.1:9" in listing.stderr
    names = imported(listing)
    assert {"httpx", "winslow.cli.projects"} <= names
    assert not {name for name in names if name.split(".")[0] in HEAVY}
    assert not names & {"winslow.settings", "winslow.cli.deploy", "winslow.cli.notify"}

    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("winslow ")
    names = imported(version)
    assert not {name for name in names if name.split(".")[0] in HEAVY | {"httpcore"}}
    assert not names & {"winslow.cli.deploy", "winslow.cli.tokens", "winslow.cli.resources"}


def test_help_still_lists_every_noun() -> None:
    shown = subprocess.run(
        [str(BIN / "winslow"), "--help"],
        text=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120", "TERM": "dumb"},
    )
    assert shown.returncode == 0, shown.stderr
    for noun in ("pipeline", "project", "resources", "workspace", "token", "user", "group"):
        assert f" {noun} " in shown.stdout, shown.stdout


def help_of(*args: str, columns: int) -> str:
    shown = subprocess.run(
        [str(BIN / "winslow"), *args, "--help"],
        text=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "COLUMNS": str(columns), "TERM": "dumb"},
    )
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def test_help_text_flows_to_the_terminals_width() -> None:
    """Typer's rich help kept the docstrings' line breaks: a wide terminal showed the audit
    command's description cut in two, a narrow one every paragraph ragged."""
    wide = help_of(columns=200)
    assert (
        "Show the audit trail, newest first: every command with who, when, from where and "
        "what it changed (an admin's token)."
    ) in wide
    narrow = help_of("project", "resume", columns=60)
    lines = [line.strip() for line in narrow.splitlines()]
    start = lines.index("With --var, --image, --cpus, --memory, --gpus or")
    assert lines[start + 1] == "--comment, the stage's next run differs for that run only;"
    # A paragraph laid out line by line keeps its lines.
    assert (
        reflowed("Lines:\n- one\n- two\n\nflowing\ntext") == "Lines:\n- one\n- two\n\nflowing text"
    )


def test_a_bad_retry_setting_is_refused_in_words() -> None:
    refused = run_cli("project", "list", WINSLOW_CLI_RETRY_SECONDS="soon")
    assert refused.returncode == 1
    assert (
        "error: WINSLOW_CLI_RETRY_SECONDS must be a number of seconds, 0 or more; got 'soon'"
        in refused.stderr
    )
    assert "Traceback" not in refused.stderr


def test_client_settings_take_arguments_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WINSLOW_ADDR", "http://winslow.lab:8080")
    monkeypatch.setenv("WINSLOW_TOKEN", "")  # empty: unset, as a shell's `export X=` means
    monkeypatch.setenv("WINSLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WINSLOW_CLI_RETRY_SECONDS", "2.5")
    from_env = ClientSettings()
    assert from_env.addr == "http://winslow.lab:8080"
    assert from_env.token is None
    assert from_env.data_dir == tmp_path
    assert from_env.cli_retry_seconds == 2.5
    given = ClientSettings(addr="http://other:1", token="t", cli_retry_seconds=0)
    assert (given.addr, given.token, given.cli_retry_seconds) == ("http://other:1", "t", 0)
    assert "secret-token" not in repr(ClientSettings(token="secret-token"))
    with pytest.raises(ValidationError, match="0 or more; got -1"):
        ClientSettings(cli_retry_seconds=-1)


def test_only_an_https_server_loads_the_ca_bundle_and_neither_skips_verification() -> None:
    from winslow.cli.client import _tls_context

    assert _tls_context("https://winslow.lab/api/v1") is True  # httpx's default trust
    plain = _tls_context("http://127.0.0.1:8080/api/v1")
    assert isinstance(plain, ssl.SSLContext)
    # Should a handshake ever happen, it fails: it verifies and trusts no one.
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.cert_store_stats()["x509_ca"] == 0
