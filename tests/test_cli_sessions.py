"""`winslow session list|revoke` and admin tokens from the CLI, against a real `winslow up`."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.server import Server

pytestmark = pytest.mark.slow


def sign_in(server: Server, token: str, browser: str) -> httpx.Client:
    client = httpx.Client(base_url=server.addr, headers={"User-Agent": browser})
    response = client.post("/api/v1/session", json={"token": token})
    assert response.status_code == 200, response.text
    return client


def test_an_admin_lists_and_ends_console_sessions_from_the_cli(winslow_server: Server) -> None:
    server = winslow_server
    admin = (server.data_dir / "admin-token").read_text().strip()
    ana_token = server.cli("token", "create", "ana", "--local").stdout.strip()
    listed = server.cli("token", "list", "--local").stdout.splitlines()
    assert listed[0].split() == ["NAME", "CREATED", "ADMIN", "REVOKED"]
    assert {line.split()[0]: line.split()[3:] for line in listed[1:]} == {
        "admin": ["yes"],
        "ana": [],
    }
    ana = sign_in(server, ana_token, "Firefox/140")
    sign_in(server, admin, "Chromium/141")

    sessions = server.json("session", "list")["data"]
    assert [(s["user"], s["user_agent"]) for s in sessions] == [
        ("admin", "Chromium/141"),
        ("ana", "Firefox/140"),
    ]
    table = server.cli("session", "list").stdout
    assert sessions[1]["handle"] in table and "Firefox/140" in table

    ended = server.cli("session", "revoke", sessions[1]["handle"])
    assert ended.stdout.strip() == f"session {sessions[1]['handle']} ended"
    assert ana.get("/api/v1/projects").status_code == 401
    assert [s["user"] for s in server.json("session", "list")["data"]] == ["admin"]

    again = server.cli("session", "revoke", sessions[1]["handle"], check=False)
    assert again.returncode == 1
    assert again.stderr.startswith(f"error: No session '{sessions[1]['handle']}' that goes on")


def test_revoking_a_token_from_the_cli_ends_its_console_sessions(winslow_server: Server) -> None:
    token = winslow_server.cli("token", "create", "ben", "--admin", "--local").stdout.strip()
    ben = sign_in(winslow_server, token, "Firefox/140")
    assert ben.get("/api/v1/sessions").json()["data"][0]["user"] == "ben"
    winslow_server.cli("token", "revoke", "ben", "--local")
    assert ben.get("/api/v1/projects").status_code == 401
    assert winslow_server.json("session", "list")["data"] == []
