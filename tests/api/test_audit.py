"""The audit trail: every command to the API, with who, when, from where and what changed,
in ``GET /api/v1/audit`` (admins) and in the history of the project it touched.

One real server (uvicorn on 127.0.0.1) for the module; each test works on its own
project, and finds its own entries by the request ids or projects it made.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.served import served_in_thread
from tests.fixtures.winslow import build_context
from winslow.api.app import create_app
from winslow.api.audit import masked_path, redact
from winslow.core.access import Grant, Role, Scope
from winslow.engine.reconcile import Engine
from winslow.storage.objects import ObjectStore
from winslow.storage.s3 import S3Config
from winslow.store import people, tokens
from winslow.store.repo import Store

PIPELINE = """
name: audited
stages:
  - name: first
    command: ["true"]
"""


@dataclasses.dataclass
class Site:
    store: Store
    engine: Engine
    address: str
    root: str
    """An admin's token."""
    alice: str
    bob: str
    pipeline_operations: dict[tuple[str, str], str]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.address, headers=headers, timeout=30)

    def audit(self, **params: Any) -> dict[str, Any]:
        with self.client(self.root) as admin:
            response = admin.get("/api/v1/audit", params=params)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def newest(self) -> dict[str, Any]:
        return self.audit(limit=1)["data"][0]  # type: ignore[no-any-return]

    def create(self, name: str, token: str | None = None) -> dict[str, Any]:
        with self.client(token or self.alice) as client:
            made = client.post("/api/v1/projects", json={"name": name, "pipeline": "audited"})
        assert made.status_code == 201, made.text
        return made.json()  # type: ignore[no-any-return]

    def history(self, project: str) -> list[dict[str, Any]]:
        with self.client(self.root) as admin:
            response = admin.get(f"/api/v1/projects/{project}/history")
        assert response.status_code == 200, response.text
        return response.json()["data"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Config) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("audit")
    objects = ObjectStore(dataclasses.replace(s3_server, bucket=f"test-{secrets.token_hex(6)}"))
    objects.ensure_bucket()
    context = build_context(folder / "winslow", objects, f"sqlite:///{folder / 'winslow.db'}")
    store = context.store
    root = store.create_token("root", admin=True)
    alice, bob = store.create_token("alice"), store.create_token("bob")
    app = create_app(context)
    document = app.openapi()
    operations = {
        (method.upper(), path): operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    try:
        with served_in_thread(app) as address:
            found = Site(store, context.engine, address, root, alice, bob, operations)
            with found.client(root) as admin:
                applied = admin.put("/api/v1/pipelines/audited", json={"text": PIPELINE})
                assert applied.status_code == 200, applied.text
            # Alice and bob may make projects of it.
            people.set_access(
                store,
                "pipeline",
                "audited",
                [Grant(f"user:{name}", Role.MEMBER) for name in ("alice", "bob")]
                + [Grant("user:root", Role.OWNER)],
            )
            yield found
    finally:
        context.engine.stop()
        store.close()


def test_a_command_is_recorded_with_who_from_where_and_what_changed(site: Site) -> None:
    project = site.create("vars")
    with site.client(site.alice) as alice:
        response = alice.patch(
            "/api/v1/projects/vars/variables",
            json={"set": {"INPUT": "videos/a.mp4", "API_KEY": "s3cr3t"}, "unset": ["OLD"]},
        )
    assert response.status_code == 200, response.text

    entry = site.newest()
    assert {k: v for k, v in entry.items() if k not in ("id", "at", "request")} == {
        "actor": "alice",
        "via": "token:alice",
        "address": "127.0.0.1",
        "method": "PATCH",
        "path": "/api/v1/projects/vars/variables",
        "operation": site.pipeline_operations[("PATCH", "/api/v1/projects/{ref}/variables")],
        "status": 200,
        "project_id": project["id"],
        "summary": "PATCH /api/v1/projects/vars/variables → 200",
        "changes": {"set": {"INPUT": "videos/a.mp4", "API_KEY": "***"}, "unset": ["OLD"]},
    }
    assert datetime.fromisoformat(entry["at"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert "s3cr3t" not in json.dumps(site.audit())

    # The project's history says from where its change came, under the same request.
    line = site.history("vars")[-1]
    assert line["actor"] == "alice"
    assert line["data"]["origin"] == {
        "address": "127.0.0.1",
        "via": "token:alice",
        "request": entry["request"],
    }
    # Only the command's own line: it wrote history, so no extra ``command`` line.
    assert [e["kind"] for e in site.history("vars")].count("command") == 0


def test_creating_a_project_is_recorded_on_the_new_project(site: Site) -> None:
    project = site.create("fresh")
    entry = site.newest()
    assert (entry["method"], entry["path"], entry["status"]) == ("POST", "/api/v1/projects", 201)
    assert entry["project_id"] == project["id"]
    assert entry["changes"] == {"name": "fresh", "pipeline": "audited"}
    created = site.history("fresh")[0]
    assert created["data"]["origin"]["request"] == entry["request"]


def test_a_deleted_project_keeps_its_trail_found_by_its_id(site: Site) -> None:
    project = site.create("doomed")
    with site.client(site.alice) as alice:
        assert alice.delete("/api/v1/projects/doomed").status_code == 204
    trail = site.audit(project=project["id"])["data"]
    assert [(e["method"], e["path"], e["status"]) for e in trail] == [
        ("DELETE", "/api/v1/projects/doomed", 204),
        ("POST", "/api/v1/projects", 201),
    ]


def test_a_command_that_wrote_no_history_gets_a_command_line_there(site: Site) -> None:
    site.create("quiet")
    with site.client(site.alice) as alice:
        made = alice.post(
            "/api/v1/projects/quiet/tokens", json={"name": "ci", "capabilities": ["trigger"]}
        )
        assert made.status_code == 201, made.text
        assert made.json()["token"] not in json.dumps(site.audit())
        assert alice.delete("/api/v1/projects/quiet/tokens/ci").status_code == 204
        before = len(site.history("quiet"))
        # Revoked already: nothing changes, so nothing writes history but the trail.
        again = alice.delete("/api/v1/projects/quiet/tokens/ci")
    assert again.status_code == 204
    entry = site.newest()
    history = site.history("quiet")
    assert len(history) == before + 1
    line = history[-1]
    assert (line["actor"], line["kind"], line["message"]) == (
        "alice",
        "command",
        "DELETE /api/v1/projects/quiet/tokens/ci → 204",
    )
    assert line["data"]["origin"] == {
        "address": "127.0.0.1",
        "via": "token:alice",
        "request": entry["request"],
    }
    assert line["data"]["status"] == 204


def test_a_workspace_upload_lands_in_the_history_and_its_part_urls_in_the_trail_only(
    site: Site,
) -> None:
    site.create("uploaded")
    with site.client(site.alice) as alice:
        assert alice.post("/api/v1/projects/uploaded/start").status_code == 200
        site.engine.run_until_idle()
        [run] = alice.get("/api/v1/projects/uploaded").json()["runs"]
        assert run["state"] == "succeeded", run
        uploads = f"/api/v1/projects/uploaded/runs/{run['id']}/workspace/uploads"
        began = alice.post(uploads, json={"path": "notes/fix.csv", "size": 3})
        assert began.status_code == 201, began.text
        upload = site.newest()
        urls = alice.post(
            f"{uploads}/{began.json()['upload_id']}/urls",
            json={"path": "notes/fix.csv", "part_numbers": [1]},
        )
        assert urls.status_code == 200, urls.text
        asked = site.newest()
    assert upload["changes"] == {"path": "notes/fix.csv", "size": 3}
    assert (asked["method"], asked["status"]) == ("POST", 200)
    commands = [e for e in site.history("uploaded") if e["kind"] == "command"]
    assert [(e["message"], e["data"]["origin"]["request"]) for e in commands] == [
        (f"POST {uploads} → 201", upload["request"])
    ]


def test_refused_commands_are_recorded_too_and_stay_out_of_the_history(site: Site) -> None:
    project = site.create("refusing")
    before = len(site.history("refusing"))
    with site.client() as nobody:
        assert nobody.post("/api/v1/projects/refusing/pause").status_code == 401
    unauthenticated = site.newest()
    with site.client(site.alice) as alice:
        assert alice.post("/api/v1/projects/nowhere/pause").status_code == 404
        missing = site.newest()
        malformed = alice.patch("/api/v1/projects/refusing/variables", json={"set": 3})
        assert malformed.status_code == 422
        invalid = site.newest()
    with site.client(site.bob) as bob:
        # Alice's project, which bob does not see: as if there were none.
        assert bob.post("/api/v1/projects/refusing/kill").status_code == 404
        hidden = site.newest()
        member = [Grant("user:alice", Role.OWNER), Grant("user:bob", Role.MEMBER)]
        people.set_access(site.store, "project", project["id"], member)
        # A member reads, but may not steer.
        assert bob.post("/api/v1/projects/refusing/kill").status_code == 403
    forbidden = site.newest()
    reader, _ = tokens.create_token(site.store, "alice", "reader", scope=Scope.READ)
    with site.client(reader) as read_only:
        assert read_only.post("/api/v1/projects/refusing/start").status_code == 403
    refused_token = site.newest()

    assert (unauthenticated["actor"], unauthenticated["via"], unauthenticated["status"]) == (
        "anonymous",
        "anonymous",
        401,
    )
    assert unauthenticated["project_id"] == project["id"]
    assert (missing["actor"], missing["status"], missing["project_id"]) == ("alice", 404, None)
    assert (invalid["status"], invalid["changes"]) == (422, {"set": 3})
    assert (forbidden["actor"], forbidden["via"], forbidden["status"]) == (
        "bob",
        "token:bob",
        403,
    )
    assert forbidden["summary"] == "POST /api/v1/projects/refusing/kill → 403"
    assert (hidden["actor"], hidden["status"], hidden["project_id"]) == ("bob", 404, project["id"])
    assert (refused_token["actor"], refused_token["via"]) == ("alice", "token:reader")
    assert len(site.history("refusing")) == before


def test_sign_in_attempts_are_recorded_by_name_never_by_secret(site: Site) -> None:
    with site.client() as browser:
        signed_in = browser.post("/api/v1/session", json={"token": site.alice})
        assert signed_in.status_code == 200, signed_in.text
        good = site.newest()
        wrong = browser.post(
            "/api/v1/session", json={"username": "mallory", "password": "hunter2-hunter2"}
        )
        assert wrong.status_code == 401, wrong.text
        bad = site.newest()
        out = browser.request("DELETE", "/api/v1/session", headers={"X-Winslow-Console": "1"})
        assert out.status_code == 204
        signed_out = site.newest()

    handle = signed_in.json()["handle"]
    assert (good["actor"], good["via"], good["status"]) == ("alice", f"session:{handle}", 200)
    assert good["changes"] == {"token": "***"}
    assert (bad["actor"], bad["via"], bad["status"]) == ("mallory", "anonymous", 401)
    assert bad["changes"] == {"username": "mallory", "password": "***"}
    assert (signed_out["actor"], signed_out["via"]) == ("alice", f"session:{handle}")
    trail = json.dumps(site.audit())
    assert site.alice not in trail and "hunter2" not in trail


def test_a_trigger_is_recorded_through_its_token(site: Site) -> None:
    site.create("triggered")
    with site.client(site.alice) as alice:
        made = alice.post(
            "/api/v1/projects/triggered/tokens",
            json={"name": "nightly", "capabilities": ["trigger"]},
        )
    assert made.status_code == 201, made.text
    with site.client() as script:
        fired = script.post(
            "/api/v1/projects/triggered/trigger",
            headers={"X-Winslow-Trigger-Token": made.json()["token"]},
            json={"comment": "nightly run"},
        )
    assert fired.status_code == 200, fired.text
    entry = site.newest()
    assert (entry["actor"], entry["via"], entry["status"]) == (
        "trigger:nightly",
        "trigger:nightly",
        200,
    )
    line = site.history("triggered")[-1]
    assert line["data"]["origin"]["via"] == "trigger:nightly"


def test_large_and_non_json_bodies_are_recorded_by_size_and_reach_the_app_whole(
    site: Site,
) -> None:
    # A pipeline text over the kept size: validation sees all of it (its last stage).
    stages = "".join(f"  - name: s{i}\n    command: ['true']\n" for i in range(200))
    text = f"name: big\nstages:\n{stages}  - name: last\n    command: [oops]\n"
    body = json.dumps({"text": text}).encode()
    assert len(body) > 4096
    with site.client(site.alice) as alice:
        checked = alice.post(
            "/api/v1/pipelines/validate",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert checked.status_code == 200, checked.text
        big = site.newest()
        plain = alice.post(
            "/api/v1/pipelines/validate",
            content=b"not json",
            headers={"Content-Type": "text/plain"},
        )
        not_json = site.newest()
    assert big["changes"] == {"bytes": len(body)}
    assert checked.json()["valid"] is True
    assert (not_json["status"], not_json["changes"]) == (plain.status_code, {"bytes": 8})


def test_reads_are_not_recorded(site: Site) -> None:
    site.create("read-only")
    newest = site.newest()
    with site.client(site.alice) as alice:
        assert alice.get("/api/v1/projects").status_code == 200
        assert alice.get("/api/v1/projects/read-only").status_code == 200
        assert alice.head("/api/v1/health").status_code in (200, 405)
        assert alice.get("/api/v1/nowhere").status_code == 404
    assert site.newest() == newest


def test_only_admins_read_the_trail(site: Site) -> None:
    with site.client(site.alice) as alice:
        refused = alice.get("/api/v1/audit")
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    with site.client() as nobody:
        assert nobody.get("/api/v1/audit").status_code == 401
        document = nobody.get("/api/v1/openapi.json").json()
    assert document["paths"]["/api/v1/audit"]["get"]["x-winslow-access"] == "admin"


def test_the_trail_filters_by_actor_project_time_and_pages(site: Site) -> None:
    site.create("filtered", site.bob)
    with site.client(site.bob) as bob:
        for labels in (["a"], ["b"], ["c"]):
            changed = bob.patch("/api/v1/projects/filtered", json={"labels_add": labels})
            assert changed.status_code == 200, changed.text
    project_id = site.newest()["project_id"]

    by_project = site.audit(project="filtered")["data"]
    assert [e["changes"] for e in by_project] == [
        {"labels_add": ["c"]},
        {"labels_add": ["b"]},
        {"labels_add": ["a"]},
        {"name": "filtered", "pipeline": "audited"},
    ]
    assert site.audit(project=project_id)["data"] == by_project
    assert all(e["actor"] == "bob" for e in site.audit(actor="bob")["data"])
    assert {e["actor"] for e in site.audit(actor="alice")["data"]} == {"alice"}

    first = site.audit(project="filtered", limit=2)
    assert [e["id"] for e in first["data"]] == [e["id"] for e in by_project[:2]]
    rest = site.audit(project="filtered", limit=2, before=first["next_before"])
    assert [e["id"] for e in rest["data"]] == [e["id"] for e in by_project[2:]]
    assert site.audit(project="filtered", limit=2, before=rest["next_before"])["data"] == []

    later = (datetime.fromisoformat(by_project[0]["at"]) + timedelta(seconds=1)).isoformat()
    assert site.audit(project="filtered", since=later)["data"] == []
    assert site.audit(project="filtered", since=by_project[1]["at"])["data"] == by_project[:2]


def test_the_cli_shows_the_trail(site: Site) -> None:
    site.create("from-cli")
    env = {**os.environ, "WINSLOW_ADDR": site.address, "WINSLOW_TOKEN": site.root}
    winslow = [str(Path(sys.executable).parent / "winslow"), "audit"]
    shown = subprocess.run(
        [*winslow, "--project", "from-cli", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    entries = json.loads(shown.stdout)["data"]
    assert [(e["actor"], e["summary"]) for e in entries] == [
        ("alice", "POST /api/v1/projects → 201")
    ]
    table = subprocess.run(
        [*winslow, "--actor", "alice", "--limit", "1"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "POST /api/v1/projects → 201" in table and "127.0.0.1 (token:alice)" in table
    refused = subprocess.run(
        [*winslow], env={**env, "WINSLOW_TOKEN": site.alice}, capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and "admin" in refused.stderr


def test_secrets_are_masked_at_any_depth_and_in_queries() -> None:
    body = {"steps": [{"ldap_bind_password": "x", "name": "a"}], "Access-Key": "y", "n": 1}
    assert redact(body) == {"steps": [{"ldap_bind_password": "***", "name": "a"}],
                            "Access-Key": "***", "n": 1}  # fmt: skip
    assert (
        masked_path("/api/v1/resources", "path=videos%2Fa.mp4&token=abc")
        == "/api/v1/resources?path=videos/a.mp4&token=***"
    )
