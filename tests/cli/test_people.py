"""`winslow user|group|whoami`, project and pipeline access, and personal tokens through
the API, against one real `winslow up` for the module (the CLI acts as its admin unless a
test hands it another person's token)."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.fixtures.server import Server

pytestmark = pytest.mark.slow

PIPELINE = 'name: {name}\nstages:\n  - name: a\n    command: ["true"]\n'


def winslow(
    server: Server, *args: str, token: str | None = None, stdin: str = "", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as the admin, or as the holder of ``token``; ``stdin`` is a pipe, as in
    a script."""
    env = {"WINSLOW_TOKEN": token} if token is not None else {}
    result = server.cli(*args, env=env, stdin=stdin, check=False)
    if check:
        assert result.returncode == 0, f"winslow {' '.join(args)}: {result.stderr}"
    return result


def admin_api(server: Server) -> httpx.Client:
    token = (server.data_dir / "admin-token").read_text().strip()
    return httpx.Client(
        base_url=server.addr + "/api/v1", headers={"Authorization": f"Bearer {token}"}
    )


def token_of(
    server: Server, name: str, password: str = "first-pass-1", token_name: str = "cli"
) -> str:
    """A token of user ``name``, made as a person makes their first one: sign in with the
    password, then ask for a token."""
    with httpx.Client(base_url=server.addr + "/api/v1") as browser:
        signed = browser.post("/session", json={"username": name, "password": password})
        assert signed.status_code == 200, signed.text
        # What the console's tokens page sends: its scripts mark each change they ask for.
        made = browser.post(
            "/tokens", json={"name": token_name}, headers={"x-winslow-console": "1"}
        )
        assert made.status_code == 201, made.text
        return str(made.json()["token"])


def new_user(server: Server, name: str) -> str:
    """Make user ``name`` (through the API) and return a token of theirs."""
    with admin_api(server) as api:
        made = api.post("/users", json={"name": name, "password": "first-pass-1"})
        assert made.status_code == 201, made.text
    return token_of(server, name)


def project_names(server: Server, token: str) -> list[str]:
    listed = json.loads(winslow(server, "project", "list", "--json", token=token).stdout)
    return [p["name"] for p in listed["data"]]


def test_a_group_granted_a_project_lets_its_member_see_it(module_server: Server) -> None:
    server = module_server
    ana = new_user(server, "ana")
    made = winslow(server, "group", "create", "vision", "--description", "Vision team").stdout
    added = winslow(server, "group", "add", "vision", "ana").stdout
    shown = winslow(server, "group", "show", "vision").stdout
    with admin_api(server) as api:
        assert api.put("/pipelines/seg", json={"text": PIPELINE.format(name="seg")}).is_success
        assert api.post("/projects", json={"name": "cars", "pipeline": "seg"}).is_success

    granted = winslow(server, "project", "grant", "cars", "group:vision", "member").stdout
    after = project_names(server, ana)
    refused = winslow(server, "project", "start", "cars", token=ana, check=False)
    limited = winslow(
        server,
        "token",
        "create",
        "cars-only",
        "-p",
        "cars",
        "--expires-days",
        "7",
        "--json",
        token=ana,
    ).stdout
    public = winslow(server, "project", "access", "cars", "--public", "--json").stdout
    private = winslow(server, "project", "access", "cars", "--private").stdout
    revoked = winslow(server, "project", "revoke-access", "cars", "group:vision").stdout
    again = winslow(server, "project", "revoke-access", "cars", "group:vision").stdout
    bad = winslow(server, "project", "grant", "cars", "vision", "member", check=False)
    left = winslow(server, "group", "remove", "vision", "ana").stdout
    groups = winslow(server, "group", "list").stdout

    assert made.startswith("vision (local group): Vision team")
    assert added.strip() == "'ana' is member of group 'vision'"
    assert "ana" in shown and "member" in shown
    assert "cars" in after
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: To steer project 'cars' you need to be maintainer")
    cars_id = json.loads(winslow(server, "project", "show", "cars", "--json").stdout)["id"]
    assert json.loads(limited)["projects"] == [cars_id]
    assert json.loads(limited)["expires_at"] is not None
    assert granted.splitlines()[0] == "project cars: you are owner"
    assert ["group:vision", "member"] in [line.split() for line in granted.splitlines()]
    assert '"principal": "*"' in public and '"public": true' in public
    assert "public" not in private.splitlines()[0] and "*" not in private
    assert "group:vision" not in revoked and ["user:admin", "owner"] in [
        line.split() for line in revoked.splitlines()
    ]
    assert again.strip() == "group:vision has no role on project cars; nothing to change"
    assert "cars" not in project_names(server, ana)  # the group's grant was what showed it
    assert bad.returncode == 2 and "'vision' names nobody" in bad.stderr
    assert left.strip() == "'ana' left group 'vision'"
    assert ["vision", "local", "0", "Vision", "team"] in [
        line.split() for line in groups.splitlines()
    ]


def test_pipeline_access_is_shown_and_granted(module_server: Server) -> None:
    server = module_server
    with admin_api(server) as api:
        assert api.put("/pipelines/track", json={"text": PIPELINE.format(name="track")}).is_success
        assert api.post("/groups", json={"name": "tracking"}).is_success

    granted = winslow(server, "pipeline", "grant", "track", "group:tracking", "maintainer")
    shown = winslow(server, "pipeline", "access", "track", "--json").stdout
    revoked = winslow(server, "pipeline", "revoke-access", "track", "group:tracking").stdout
    deleted = winslow(server, "group", "delete", "tracking").stdout
    groups = json.loads(winslow(server, "group", "list", "--json").stdout)["data"]

    assert ["group:tracking", "maintainer"] in [
        line.split() for line in granted.stdout.splitlines()
    ]
    assert '"principal": "group:tracking"' in shown
    assert "group:tracking" not in revoked and "user:admin" in revoked
    assert deleted.strip() == "group 'tracking' deleted"
    assert "tracking" not in [g["name"] for g in groups]


def test_personal_tokens_through_the_api(module_server: Server) -> None:
    server = module_server
    ben = new_user(server, "ben")
    with admin_api(server) as api:
        assert api.put("/pipelines/ben-p", json={"text": PIPELINE.format(name="ben-p")}).is_success
        assert api.post("/groups", json={"name": "builders"}).is_success
        assert api.put("/groups/builders/members/ben", json={"role": "maintainer"}).is_success

    reader = winslow(server, "token", "create", "peek", "--scope", "read", token=ben).stdout
    made = winslow(server, "token", "create", "ci", "--no-expiry", "--json", token=ben).stdout
    listed = winslow(server, "token", "list", token=ben).stdout
    everyone = winslow(server, "token", "list", "--all").stdout
    who = winslow(server, "whoami", token=reader.strip()).stdout
    refused = winslow(
        server, "project", "create", "b1", "--pipeline", "ben-p", token=reader.strip(), check=False
    )
    winslow(server, "token", "revoke", "peek", token=ben)
    after = winslow(server, "whoami", token=reader.strip(), check=False)
    by_admin = winslow(server, "token", "revoke", "ci", "--user", "ben").stdout
    wide = winslow(server, "token", "create", "x", "--scope", "admin", token=ben, check=False)
    mixed = winslow(server, "token", "create", "x", "--admin", check=False)

    assert len(reader.split()) == 1 and reader.startswith("wsl_")
    assert '"expires_at": null' in made and '"scope": "steer"' in made
    assert listed.split()[:5] == ["NAME", "SCOPE", "CREATED", "LAST", "USED"]
    rows = [line.split()[:2] for line in listed.splitlines()[1:]]
    assert rows == [["ci", "steer"], ["cli", "steer"], ["peek", "read"]]
    assert any(line.split()[:3] == ["peek", "ben", "read"] for line in everyone.splitlines())
    assert who.splitlines() == ["ben", "groups: builders", "via token peek, scope read"]
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: This token may only read; use a steer token to change things."
    )
    assert after.returncode == 1  # the server's 401, in its words
    assert after.stderr.startswith("error: The bearer token is not valid (wrong or revoked)")
    assert by_admin.strip() == "token 'ci' of 'ben' revoked"
    assert wide.returncode == 1 and "wider scope than its own" in wide.stderr
    assert mixed.returncode == 2 and "--local" in mixed.stderr


def test_users_quota_and_passwords(module_server: Server) -> None:
    server = module_server
    made = winslow(server, "user", "create", "cleo", "--password-stdin", stdin="first-pass-1\n")
    cleo = token_of(server, "cleo")

    admin = winslow(server, "whoami").stdout
    not_admin = winslow(server, "user", "list", token=cleo, check=False)
    set_quota = winslow(server, "user", "quota", "cleo", "--gpus", "2", "--memory", "16G").stdout
    one_more = winslow(server, "user", "quota", "cleo", "--cpus", "8", "--gpus", "none").stdout
    shown = winslow(server, "user", "show", "cleo").stdout
    winslow(server, "group", "create", "quota-team")
    group = winslow(server, "group", "quota", "quota-team", "--gpus", "8", "--json").stdout
    cleared = winslow(server, "user", "quota", "cleo", "--clear").stdout
    winslow(server, "user", "admin", "cleo", "--on")
    listed = winslow(server, "user", "list").stdout
    own = winslow(server, "user", "passwd", token=cleo, stdin="first-pass-1\nsecond-pass-2\n")
    wrong = winslow(
        server, "user", "passwd", token=cleo, stdin="nope-nope\nthird-pass-3\n", check=False
    )
    winslow(server, "user", "disable", "cleo")
    disabled = winslow(server, "whoami", token=cleo, check=False)
    winslow(server, "user", "enable", "cleo")

    assert made.stdout.splitlines()[0] == "cleo  local user"
    assert "password: set" in made.stdout.splitlines()
    assert admin.splitlines()[0] == "admin (admin)"
    assert admin.splitlines()[2] == "via token admin, scope admin"
    assert not_admin.returncode == 1
    assert not_admin.stderr.startswith("error: Only an admin may do this")
    assert set_quota.strip() == "quota of user 'cleo': 2 GPUs, 16.0 GiB memory"
    assert one_more.strip() == "quota of user 'cleo': 8 CPUs, 16.0 GiB memory"
    assert "quota: 8 CPUs, 16.0 GiB memory" in shown.splitlines()
    assert json.loads(group) == {"gpus": 8, "cpus": None, "memory_mb": None}
    assert cleared.strip() == "quota of user 'cleo': no limit"
    assert ["cleo", "local", "yes"] in [line.split()[:3] for line in listed.splitlines()]
    assert own.stdout.strip() == "password of 'cleo' set"
    assert token_of(server, "cleo", "second-pass-2", "cli-2")  # the new password signs in
    assert wrong.returncode == 1 and "current password" in wrong.stderr
    assert disabled.returncode == 1
    assert disabled.stderr.startswith("error: The bearer token is not valid")
    assert winslow(server, "whoami", token=cleo).stdout.startswith("cleo (admin)")
    by_admin = winslow(server, "user", "passwd", "cleo", stdin="third-pass-3\n").stdout
    assert by_admin.strip() == "password of 'cleo' set"  # an admin needs no current one
    assert token_of(server, "cleo", "third-pass-3", "cli-3")
