"""Signing in to a real `winslow up` with an LDAP password, against a real slapd.

The server gets the ``WINSLOW_LDAP_*`` settings of the test directory (tests/fixtures/
slapd.py); the first sign-in makes the user, with the directory's name, email and groups.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.server import BIN, Server, running_server
from tests.fixtures.slapd import Slapd


@pytest.fixture(scope="module")
def ldap_server(tmp_path_factory: pytest.TempPathFactory, slapd: Slapd) -> Iterator[Server]:
    """One `winslow up` signing people in against ``slapd`` for the whole module."""
    with running_server(tmp_path_factory.mktemp("ldap-server"), env=slapd.env()) as server:
        yield server


def admin(server: Server) -> httpx.Client:
    token = (server.data_dir / "admin-token").read_text().strip()
    return httpx.Client(base_url=server.addr, headers={"Authorization": f"Bearer {token}"})


def test_an_ldap_password_signs_in_and_makes_the_user(ldap_server: Server, slapd: Slapd) -> None:
    with httpx.Client(base_url=ldap_server.addr) as browser:
        response = browser.post(
            "/api/v1/session", json={"username": "alice", "password": slapd.passwords["alice"]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["user"] == "alice"
        me = browser.get("/api/v1/me")
    assert me.status_code == 200, me.text
    assert (me.json()["name"], me.json()["admin"]) == ("alice", False)
    assert me.json()["via"].startswith("session:")
    assert {"traffic", "vision"} <= set(me.json()["groups"])

    with admin(ldap_server) as api:
        user = api.get("/api/v1/users/alice").raise_for_status().json()
        vision = api.get("/api/v1/groups/vision").raise_for_status().json()
    assert user["source"] == "ldap"
    assert (user["display_name"], user["email"]) == ("Alice Liddell", "alice@lab.test")
    assert user["groups"] == {"traffic": "member", "vision": "member"}
    assert user["has_password"] is False  # the directory keeps the password, not Winslow
    assert (vision["source"], vision["members"]) == ("ldap", {"alice": "member"})


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "not-her-password"), ("mallory", "anything"), ("alice)(uid=*", "alice-pw-1")],
)
def test_a_wrong_ldap_password_is_refused(ldap_server: Server, username, password) -> None:
    with httpx.Client(base_url=ldap_server.addr) as browser:
        response = browser.post(
            "/api/v1/session", json={"username": username, "password": password}
        )
        assert response.status_code == 401, response.text
        assert response.json()["detail"] == "Wrong user name or password."
        assert "winslow_session" not in browser.cookies


def test_a_server_without_ldap_never_loads_its_client_library() -> None:
    """ldap3 took a fifth of a second of every server start, LDAP set up or not."""
    loaded = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "import sys, winslow.server, winslow.api.app; print(sorted("
            "m for m in sys.modules if m.split('.')[0] == 'ldap3' or m == 'winslow.identity.ldap'"
            "))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
