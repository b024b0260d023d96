"""The access matrix: every operation of the live OpenAPI document, called as each kind of
person (the project's owner, a maintainer and a member by their groups' grants, a signed-in
stranger, anybody while the project is public, the owner's revoked token, an admin, the
owner's read-only token), gets what its ``x-winslow-access`` label promises.

What each label promises is written here once, from ``core/access.py``'s rules, so a
route that checks less than its label says (or more) shows up as a cell of the matrix.
A refusal is exactly 401 (credentials), 403 (may not) or the 404 that hides a project or
pipeline from who may not read it; a pass is anything else (a 409 or a 422 still means the
access check let the call through), a read that passes answers what it answers an
admin, and a refusal is one the operation documents. One seeded Winslow serves the
module; calls that would destroy what later calls need (deleting, steering a project) act
on a copy made for the call.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.seeded import PIPELINE, Seeded, fill, query_for, seed
from tests.fixtures.served import served_in_thread
from tests.fixtures.winslow import Harness, build_context
from winslow.api.access import ACCESS_KEY
from winslow.api.app import create_app
from winslow.core.access import EVERYONE, Grant, Role, Scope
from winslow.storage.keys import resource_key
from winslow.storage.objects import ObjectStore
from winslow.storage.s3 import S3Config
from winslow.store import people, tokens
from winslow.store.repo import Store

pytestmark = pytest.mark.slow  # seeds a Winslow with a real stage run

METHODS = ("get", "put", "post", "patch", "delete")

LABELS = frozenset(
    {
        "public",
        "self",
        "signed-in",
        "creator",
        "admin",
        "project:read",
        "project:approve",
        "project:steer",
        "project:manage",
        "pipeline:read",
        "pipeline:edit",
        "pipeline:manage",
        "resources:write",
        "group:manage",
    }
)
"""Every access label an operation may carry (``winslow/api/access.py``)."""

RANK = {"owner": Role.OWNER, "admin": Role.OWNER, "maintainer": Role.MAINTAINER}
RANK |= {"member": Role.MEMBER, "public": Role.PUBLIC}
"""The role each person holds on project ``ulm`` and pipeline ``tiny``; none: not there."""

NEEDS = {
    "project:read": Role.PUBLIC,
    "project:approve": Role.MAINTAINER,  # ulm's gate does not let members approve
    "project:steer": Role.MAINTAINER,
    "project:manage": Role.OWNER,
    "pipeline:read": Role.PUBLIC,
    "pipeline:edit": Role.MAINTAINER,
    "pipeline:manage": Role.OWNER,
}

GROUP_MANAGERS = frozenset({"admin", "maintainer"})
"""Who passes ``group:manage`` on group ``vision``: admins, and the maintainer, who
maintains it."""

POOL_WRITERS = frozenset({"admin", "maintainer", "owner"})
"""Who passes ``resources:write``: admins and group maintainers (the owner owns the seeded
group ``crew``, the maintainer maintains ``vision``); not a member of a group."""

CHANGING = frozenset(LABELS - {"public", "self", "signed-in", "project:read", "pipeline:read"})
"""Labels whose operations a read-only token may not call, even where they are a GET."""

ROLES = ("owner", "maintainer", "member", "stranger", "public", "revoked", "admin", "reader")

USERS = {"owner": "tester", "maintainer": "mia", "member": "mel", "stranger": "sam"}
USERS |= {"public": "pat", "revoked": "tester", "admin": "root", "reader": "tester"}

SKIPPED = {("post", "/api/v1/projects/{ref}/trigger")}
"""Takes a project's trigger token, no person's: ``test_triggers.py`` checks it."""

COPIED = re.compile(r"/api/v1/projects/\{ref\}(/start|/pause|/resume|/kill)?")
"""Changes to a project that later calls would feel: each acts on a copy of ``ulm``."""

HIDING = re.compile(r"No (project|pipeline) '")


def expected(label: str, role: str, method: str) -> int | None:
    """The status ``role`` must get calling a ``method`` operation labelled ``label``;
    ``None``: it passes the access check."""
    if label == "public":
        return None
    if role == "revoked":
        return 401
    if role == "reader":
        if method != "get" or label in CHANGING:
            return 403
        role = "owner"
    if label in ("self", "signed-in", "creator"):
        return None
    if label == "admin":
        return None if role == "admin" else 403
    if label == "group:manage":
        return None if role in GROUP_MANAGERS else 403
    if label == "resources:write":
        return None if role in POOL_WRITERS else 403
    held = RANK.get(role)
    if held is None:
        return 404
    return None if held >= NEEDS[label] else 403


@dataclass
class World:
    seeded: Seeded
    address: str
    credentials: dict[str, str]
    """Role → the token it calls with."""
    document: dict[str, Any]
    read_answers: dict[tuple[str, str], int] = field(default_factory=dict)
    """(method, path) → what the admin's call answered, for every GET."""
    counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def store(self) -> Store:
        return self.seeded.winslow.context.store

    @property
    def owner(self) -> TestClient:
        return self.seeded.winslow.api

    def client(self, role: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.credentials[role]}"}
        return httpx.Client(base_url=self.address, headers=headers, timeout=30)

    def fresh(self, what: str) -> str:
        return f"{what}-{next(self.counter)}"

    def copy_of_ulm(self) -> str:
        name = self.fresh("copy")
        made = self.owner.post("/api/v1/projects", json={"name": name, "pipeline": "tiny"})
        assert made.status_code == 201, made.text
        ulm = self.store.get_project(Seeded.project).id
        people.set_access(
            self.store, "project", made.json()["id"], people.get_access(self.store, "project", ulm)
        )
        return name

    def copy_of_tiny(self) -> str:
        name = self.fresh("copy")
        text = PIPELINE.replace("name: tiny", f"name: {name}")
        made = self.owner.put(f"/api/v1/pipelines/{name}", json={"text": text})
        assert made.status_code == 200, made.text
        grants = people.get_access(self.store, "pipeline", Seeded.pipeline)
        people.set_access(self.store, "pipeline", name, grants)
        return name


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item and path.startswith("/api/v1/")
    ]


def request_for(
    world: World, role: str, method: str, path: str, operation: dict[str, Any]
) -> tuple[str, dict[str, str] | None, Any]:
    """The URL, query and body of one cell: real things, fresh ones where the call would
    use them up."""
    given: dict[str, str] = {}
    params = query_for(path)
    body: Any = {} if "requestBody" in operation else None
    seeded, store = world.seeded, world.store
    if method != "get" and COPIED.fullmatch(path):
        given["ref"] = world.copy_of_ulm()
    elif path == "/api/v1/pipelines/{name}" and method == "delete":
        given["name"] = world.copy_of_tiny()
    elif path.startswith("/api/v1/users/{name}"):
        given["name"] = USERS[role]
    elif path.startswith("/api/v1/users/{user}"):
        given |= {"user": "tester", "name": "nothing"}  # revokes nothing
    elif path == "/api/v1/groups/{name}" and method == "delete":
        given["name"] = people.create_group(store, world.fresh("gone")).name
    elif path.startswith("/api/v1/groups/{name}"):
        given |= {"name": "vision", "user": "extra"}
        people.set_member(store, "vision", "extra")  # a manager's DELETE took them out
    elif path == "/api/v1/resources" and method == "delete":
        params = {"path": f"scratch/{world.fresh('file')}.bin"}
        seeded.winslow.context.objects.put_bytes(resource_key(params["path"]), b"x")
    elif path.endswith("/uploads/{upload_id}") and method == "delete":
        given["upload_id"], params = fresh_upload(world, path)
    if path == "/api/v1/gc":
        body = {"dry_run": True}
    if path.endswith("/logs/search"):
        params = {"q": "hi"}
    return fill(path, seeded, **given), params, body


def fresh_upload(world: World, path: str) -> tuple[str, dict[str, str] | None]:
    """An upload in progress for a DELETE to abort, with the query naming its file."""
    target = f"scratch/{world.fresh('upload')}.bin"
    if "/workspace/" in path:
        where = f"/api/v1/projects/{Seeded.project}/runs/{world.seeded.run_id}/workspace/uploads"
        made = world.owner.post(where, json={"path": target, "size": 3})
        query = None
    else:
        with world.client("admin") as admin:
            made = admin.post("/api/v1/resources/uploads", json={"path": target, "size": 3})
        query = {"path": target}
    assert made.status_code == 201, made.text
    return str(made.json()["upload_id"]), query


def call(client: httpx.Client, method: str, url: str, params: Any, body: Any) -> tuple[int, str]:
    """The status and, for an error, the detail; a stream is left once its status came."""
    with client.stream(method.upper(), url, params=params, json=body) as answer:
        if answer.status_code < 400:
            return answer.status_code, ""
        answer.read()
        return answer.status_code, str(answer.json().get("detail", ""))


def refused(status: int, detail: str) -> bool:
    return status in (401, 403) or (status == 404 and HIDING.match(detail) is not None)


@contextmanager
def public_while(world: World, on: bool) -> Iterator[None]:
    """Project ``ulm`` and pipeline ``tiny`` readable by every signed-in user, while ``on``."""
    if not on:
        yield
        return
    ulm = world.store.get_project(Seeded.project).id
    saved = {key: people.get_access(world.store, kind, key) for kind, key in granted_things(ulm)}
    for kind, key in granted_things(ulm):
        people.set_access(world.store, kind, key, [*saved[key], Grant(EVERYONE, Role.PUBLIC)])
    try:
        yield
    finally:
        for kind, key in granted_things(ulm):
            people.set_access(world.store, kind, key, saved[key])


def granted_things(ulm: str) -> list[tuple[str, str]]:
    return [("project", ulm), ("pipeline", Seeded.pipeline)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Config) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("matrix")
    objects = ObjectStore(dataclasses.replace(s3_server, bucket=f"test-{secrets.token_hex(6)}"))
    objects.ensure_bucket()
    context = build_context(folder / "winslow", objects, f"sqlite:///{folder / 'winslow.db'}")
    store = context.store
    owner_token = store.create_token("tester")
    app = create_app(context)
    client = TestClient(app, headers={"Authorization": f"Bearer {owner_token}"})
    try:
        seeded = seed(Harness(context, client, owner_token, folder / "winslow"))
        role_tokens = {"owner": owner_token, "admin": store.create_token("root", admin=True)}
        for role in ("maintainer", "member", "stranger", "public"):
            role_tokens[role] = store.create_token(USERS[role])
        people.create_user(store, "extra")
        people.create_group(store, "vision")
        people.set_member(store, "vision", "mia", "maintainer")
        people.create_group(store, "viewers")
        people.set_member(store, "viewers", "mel")
        role_tokens["revoked"] = tokens.create_token(store, "tester", "old")[0]
        tokens.revoke_token(store, "tester", "old")
        role_tokens["reader"] = tokens.create_token(store, "tester", "reader", scope=Scope.READ)[0]
        grants = [Grant("group:vision", Role.MAINTAINER), Grant("group:viewers", Role.MEMBER)]
        ulm = store.get_project(Seeded.project).id
        for kind, key in granted_things(ulm):
            # A new pipeline is shared (``*``); here it is private like the project, so the
            # stranger and the public role differ on it too (``public_while``).
            kept = [g for g in people.get_access(store, kind, key) if g.principal != EVERYONE]
            people.set_access(store, kind, key, [*kept, *grants])
        with served_in_thread(app) as address:
            document = httpx.get(f"{address}/api/v1/openapi.json").json()
            found = World(seeded, address, role_tokens, document)
            with found.client("admin") as admin:
                for method, path, operation in operations(document):
                    if method == "get":
                        url, params, _ = request_for(found, "admin", method, path, operation)
                        found.read_answers[method, path] = call(admin, method, url, params, None)[0]
            yield found
    finally:
        client.close()
        context.engine.stop()
        store.close()


def test_every_operation_carries_a_known_access_label(world: World) -> None:
    labels = {
        f"{method.upper()} {path}": operation.get(ACCESS_KEY)
        for method, path, operation in operations(world.document)
    }
    assert len(labels) > 80
    assert {where: label for where, label in labels.items() if label not in LABELS} == {}
    # And the matrix knows what each label promises.
    for label in LABELS:
        for role in ROLES:
            expected(label, role, "post")


PINNED = {
    ("delete", "/api/v1/projects/{ref}"): "project:manage",
    ("put", "/api/v1/projects/{ref}/access"): "project:manage",
    ("post", "/api/v1/projects/{ref}/tokens"): "project:manage",
    ("post", "/api/v1/projects/{ref}/resume"): "project:approve",
    ("delete", "/api/v1/pipelines/{name}"): "pipeline:manage",
    ("put", "/api/v1/pipelines/{name}/access"): "pipeline:manage",
    ("post", "/api/v1/users"): "admin",
    ("patch", "/api/v1/users/{name}"): "admin",
    ("get", "/api/v1/audit"): "admin",
    ("post", "/api/v1/gc"): "admin",
}
"""Operations whose label is the whole of their protection: a route that swapped its
access dependency for a weaker one would carry the weaker label, and the matrix agree."""

SIGNED_IN_CHANGES = {("post", "/api/v1/pipelines/validate"), ("post", "/api/v1/projects/bulk")}
"""Changes any signed-in user may send: a check that changes nothing, and the bulk command,
which checks each project it names as its own command would."""


def test_no_change_is_labelled_a_read(world: World) -> None:
    labels = {(m, path): op[ACCESS_KEY] for m, path, op in operations(world.document)}
    assert {key: labels[key] for key in PINNED} == PINNED
    reads = {"project:read", "pipeline:read", "signed-in"}
    changes = {key: label for key, label in labels.items() if key[0] != "get"}
    weak = {key for key, label in changes.items() if label in reads}
    assert weak == SIGNED_IN_CHANGES


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_lets_in_exactly_whom_its_label_names(world: World, role: str) -> None:
    wrong: dict[str, Any] = {}
    with public_while(world, role == "public"), world.client(role) as client:
        for method, path, operation in operations(world.document):
            if (method, path) in SKIPPED:
                continue
            label = operation[ACCESS_KEY]
            want = expected(label, role, method)
            url, params, body = request_for(world, role, method, path, operation)
            status, detail = call(client, method, url, params, body)
            where = f"{method.upper()} {path} ({label})"
            if want is None:
                read = world.read_answers.get((method, path), status)
                if refused(status, detail) or status >= 500 or status != read:
                    wrong[where] = (status, detail[:160], "should pass like the admin's", read)
            elif status != want or not refused(status, detail):
                wrong[where] = (status, detail[:160], "should be refused with", want)
            elif str(status) not in operation["responses"]:
                wrong[where] = (status, "is a refusal its operation does not document")
    assert wrong == {}


MEMBERS_APPROVE = """
name: asking
stages:
  - name: make
    command: ["sh", "-c", "echo made"]
  - name: review
    gate: true
    approvers: member
    command: ["sh", "-c", "echo reviewed"]
"""


def waiting_project(world: World, pipeline: str, grants: list[Grant]) -> str:
    """A new project of the owner's, run up to its gate, with ``grants`` besides."""
    name = world.fresh("gated")
    made = world.owner.post(
        "/api/v1/projects", json={"name": name, "pipeline": pipeline, "start": True}
    )
    assert made.status_code == 201, made.text
    key = made.json()["id"]
    people.set_access(
        world.store, "project", key, [*people.get_access(world.store, "project", key), *grants]
    )
    world.seeded.winslow.engine.run_until_idle()
    assert world.owner.get(f"/api/v1/projects/{name}").json()["waiting_for"]["gate"] == "review"
    return name


def test_a_member_cannot_steer_another_groups_project(world: World) -> None:
    theirs = waiting_project(world, "tiny", [Grant("group:vision", Role.MAINTAINER)])
    with world.client("member") as member:  # of group viewers, not vision
        for verb in ("resume", "pause", "kill"):
            answer = member.post(f"/api/v1/projects/{theirs}/{verb}", json={})
            assert answer.status_code == 404, (verb, answer.text)
            assert answer.json()["detail"].startswith(f"No project '{theirs}'")
        assert member.get(f"/api/v1/projects/{theirs}").status_code == 404
        bulk = member.post("/api/v1/projects/bulk", json={"action": "resume", "projects": [theirs]})
        assert [result["status"] for result in bulk.json()["data"]] == [404], bulk.text
    with world.client("maintainer") as maintainer:  # of vision: the same call goes through
        assert maintainer.post(f"/api/v1/projects/{theirs}/resume", json={}).status_code == 200


def test_a_member_approves_only_a_gate_that_lets_members(world: World) -> None:
    ours = [Grant("group:viewers", Role.MEMBER), Grant(EVERYONE, Role.PUBLIC)]
    plain = waiting_project(world, "tiny", ours)
    with world.client("member") as member:
        refused = member.post(f"/api/v1/projects/{plain}/resume", json={})
    assert refused.status_code == 403, refused.text
    assert "maintainer or above" in refused.json()["detail"]

    applied = world.owner.put("/api/v1/pipelines/asking", json={"text": MEMBERS_APPROVE})
    assert applied.status_code == 200, applied.text
    asking = waiting_project(world, "asking", ours)
    with world.client("member") as member:
        # Only the gate as it is: not from another stage, not just this one stage.
        for body in ({"from_stage": "make"}, {"only": True}):
            answer = member.post(f"/api/v1/projects/{asking}/resume", json=body)
            assert answer.status_code == 403, (body, answer.text)
        with world.client("public") as anybody:  # reads it, as it is public, but no more
            answer = anybody.post(f"/api/v1/projects/{asking}/resume", json={})
            assert answer.status_code == 403, answer.text
        assert world.owner.get(f"/api/v1/projects/{asking}").json()["waiting_for"]["gate"]
        passed = member.post(f"/api/v1/projects/{asking}/resume", json={})
    assert passed.status_code == 200, passed.text
    world.seeded.winslow.engine.run_until_idle()
    runs = world.owner.get(f"/api/v1/projects/{asking}").json()["runs"]
    assert [(run["stage"], run["state"]) for run in runs] == [
        ("make", "succeeded"),
        ("review", "succeeded"),
    ]


def test_a_read_token_changes_nothing(world: World) -> None:
    with world.client("reader") as reader:
        assert reader.get(f"/api/v1/projects/{Seeded.project}").status_code == 200
        for method, url, body in [
            ("POST", f"/api/v1/projects/{Seeded.project}/pause", None),
            ("PATCH", f"/api/v1/projects/{Seeded.project}/variables", {"set": {"B": "2"}}),
            ("POST", "/api/v1/tokens", {"name": "wider", "scope": "read"}),
            ("DELETE", f"/api/v1/projects/{Seeded.project}", None),
        ]:
            answer = reader.request(method, url, json=body)
            assert answer.status_code == 403, (method, url, answer.text)
            assert "only read" in answer.json()["detail"]
    assert world.owner.get(f"/api/v1/projects/{Seeded.project}").json()["variables"] == {"A": "1"}


def test_a_token_for_one_project_reaches_no_other(world: World) -> None:
    ulm = world.store.get_project(Seeded.project).id
    secret = tokens.create_token(world.store, "tester", "ulm-only", projects=[ulm])[0]
    with httpx.Client(
        base_url=world.address, headers={"Authorization": f"Bearer {secret}"}
    ) as limited:
        assert limited.get(f"/api/v1/projects/{Seeded.project}").status_code == 200
        other = limited.get(f"/api/v1/projects/{Seeded.other}")
        assert other.status_code == 404, other.text
        listed = limited.get("/api/v1/projects").json()["data"]
        assert [project["name"] for project in listed] == [Seeded.project]
        made = limited.post("/api/v1/projects", json={"name": "new", "pipeline": "tiny"})
        assert made.status_code == 403, made.text
    # The owner's full token still sees both.
    assert world.owner.get(f"/api/v1/projects/{Seeded.other}").status_code == 200
