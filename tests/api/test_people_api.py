"""People and access through the API: who am I, a project made for a group, public
projects, group managers, passwords, and signing in with one."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.fixtures.winslow import Harness
from winslow.store import people

PIPELINE = 'name: tiny\nstages:\n  - name: only\n    command: ["true"]\n'


def as_user(winslow: Harness, name: str, *, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {winslow.context.store.create_token(name, admin=admin)}"}


def test_me_says_who_and_what_the_credentials_allow(winslow: Harness) -> None:
    ana = as_user(winslow, "ana")
    people.create_group(winslow.context.store, "vision")
    people.set_member(winslow.context.store, "vision", "ana")
    me = winslow.api.get("/api/v1/me", headers=ana).json()
    assert me == {
        "name": "ana",
        "admin": False,
        "groups": ["vision"],
        "scope": "steer",
        "projects": None,
        "via": "token:ana",
    }


def test_a_project_made_for_a_group_is_theirs_and_charged_to_them(winslow: Harness) -> None:
    store = winslow.context.store
    winslow.apply_pipeline(PIPELINE)
    ana, ben, cid = as_user(winslow, "ana"), as_user(winslow, "ben"), as_user(winslow, "cid")
    people.create_group(store, "vision")
    people.set_member(store, "vision", "ana")
    people.set_member(store, "vision", "ben")

    refused = winslow.api.post(
        "/api/v1/projects", json={"name": "x", "pipeline": "tiny", "group": "other"}, headers=ana
    )
    assert refused.status_code == 403
    assert "not in group 'other'" in refused.json()["detail"]
    made = winslow.api.post(
        "/api/v1/projects",
        json={"name": "ulm", "pipeline": "tiny", "group": "vision", "public": True},
        headers=ana,
    )
    assert made.status_code == 201, made.text
    assert store.get_project("ulm").charged_group == "vision"

    access = winslow.api.get("/api/v1/projects/ulm/access", headers=ben).json()
    assert access["grants"] == [
        {"principal": "user:ana", "role": "owner"},
        {"principal": "group:vision", "role": "maintainer"},
        {"principal": "*", "role": "public"},
    ]
    assert (access["public"], access["your_role"]) == (True, "maintainer")
    assert winslow.api.post("/api/v1/projects/ulm/pause", headers=ben).status_code in (200, 409)
    # cid is in no group: the project is public, so cid reads it and may do nothing else.
    assert winslow.api.get("/api/v1/projects/ulm", headers=cid).status_code == 200
    steer = winslow.api.post("/api/v1/projects/ulm/start", headers=cid)
    assert steer.status_code == 403
    assert steer.json()["detail"] == (
        "To steer project 'ulm' you need to be maintainer or above; "
        "you are public of project 'ulm'."
    )
    change = winslow.api.put(
        "/api/v1/projects/ulm/access",
        json={"grants": [{"principal": "group:vision", "role": "owner"}]},
        headers=ben,
    )
    assert change.status_code == 403  # a maintainer does not change access


def test_group_owners_and_maintainers_manage_members_admins_the_rest(winslow: Harness) -> None:
    store = winslow.context.store
    lead, member = as_user(winslow, "lead"), as_user(winslow, "mem")
    as_user(winslow, "new")
    assert (
        winslow.api.post("/api/v1/groups", json={"name": "vision"}, headers=lead).status_code == 403
    )
    assert winslow.api.post("/api/v1/groups", json={"name": "vision"}).status_code == 201
    people.set_member(store, "vision", "lead", "maintainer")
    people.set_member(store, "vision", "mem", "member")

    added = winslow.api.put("/api/v1/groups/vision/members/new", json={}, headers=lead)
    assert added.status_code == 200 and added.json()["members"]["new"] == "member"
    owner = winslow.api.put(
        "/api/v1/groups/vision/members/new", json={"role": "owner"}, headers=lead
    )
    assert owner.status_code == 403  # only owners make owners
    by_member = winslow.api.delete("/api/v1/groups/vision/members/new", headers=member)
    assert by_member.status_code == 403
    assert winslow.api.delete("/api/v1/groups/vision/members/new", headers=lead).status_code == 200


def test_a_user_signs_in_with_a_password_and_changes_it(winslow: Harness) -> None:
    made = winslow.api.post("/api/v1/users", json={"name": "ana", "password": "correct horse"})
    assert made.status_code == 201 and made.json()["has_password"] is True
    browser = TestClient(winslow.api.app)
    wrong = browser.post("/api/v1/session", json={"username": "ana", "password": "wrong one"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "Wrong user name or password."
    signed = browser.post("/api/v1/session", json={"username": "ana", "password": "correct horse"})
    assert signed.status_code == 200 and signed.json()["user"] == "ana"
    console = {"X-Winslow-Console": "1"}
    assert browser.get("/api/v1/me").json()["via"].startswith("session:")

    no_current = browser.put(
        "/api/v1/users/ana/password", json={"password": "battery staple"}, headers=console
    )
    assert no_current.status_code == 403
    changed = browser.put(
        "/api/v1/users/ana/password",
        json={"password": "battery staple", "current": "correct horse"},
        headers=console,
    )
    assert changed.status_code == 204
    other = browser.get("/api/v1/users/tester")
    assert other.status_code == 403  # another user's page is theirs and the admins'
    again = TestClient(winslow.api.app).post(
        "/api/v1/session", json={"username": "ana", "password": "battery staple"}
    )
    assert again.status_code == 200


def test_a_new_pipeline_is_shared_for_use_and_edited_by_its_owner(winslow: Harness) -> None:
    ana, ben = as_user(winslow, "ana"), as_user(winslow, "ben")
    made = winslow.api.put("/api/v1/pipelines/tiny", json={"text": PIPELINE}, headers=ana)
    assert made.status_code == 200, made.text
    assert winslow.api.get("/api/v1/pipelines/tiny", headers=ben).status_code == 200
    used = winslow.api.post("/api/v1/projects", json={"name": "u", "pipeline": "tiny"}, headers=ben)
    assert used.status_code == 201
    edit = winslow.api.put("/api/v1/pipelines/tiny", json={"text": PIPELINE}, headers=ben)
    assert edit.status_code == 403
    private = winslow.api.put(
        "/api/v1/pipelines/tiny/access",
        json={"grants": [{"principal": "user:ana", "role": "owner"}]},
        headers=ana,
    )
    assert private.status_code == 200
    assert winslow.api.get("/api/v1/pipelines/tiny", headers=ben).status_code == 404
    console = TestClient(winslow.api.app)
    token = ben["Authorization"].removeprefix("Bearer ")
    assert console.post("/api/v1/session", json={"token": token}).status_code == 200
    assert console.get("/pipelines/tiny").status_code == 404
    assert "tiny" not in console.get("/pipelines").text


def test_subscriptions_are_their_makers_and_need_the_project(winslow: Harness) -> None:
    winslow.apply_pipeline(PIPELINE)
    ana, ben = as_user(winslow, "ana"), as_user(winslow, "ben")
    made = winslow.api.post(
        "/api/v1/projects", json={"name": "ulm", "pipeline": "tiny"}, headers=ana
    )
    assert made.status_code == 201
    hook = {"name": "ana-hook", "webhook": "http://127.0.0.1:9/hook", "project": "ulm"}
    assert (
        winslow.api.post("/api/v1/notifications/subscriptions", json=hook, headers=ana).status_code
        == 201
    )

    theirs = {**hook, "name": "ben-hook"}
    refused = winslow.api.post("/api/v1/notifications/subscriptions", json=theirs, headers=ben)
    assert refused.status_code == 404  # ulm is not ben's to see, nor its notices
    listed = winslow.api.get("/api/v1/notifications/subscriptions", headers=ben).json()["data"]
    assert listed == []  # ana's webhook URL is not shown to ben
    for answer in (
        winslow.api.post("/api/v1/notifications/subscriptions/ana-hook/test", headers=ben),
        winslow.api.delete("/api/v1/notifications/subscriptions/ana-hook", headers=ben),
    ):
        assert answer.status_code == 404
    everyone = winslow.api.get("/api/v1/notifications/subscriptions").json()["data"]
    assert [s["name"] for s in everyone] == ["ana-hook"]  # the admin sees all
