"""Who may change the resource pool: besides admins and group maintainers, the plain
members of the group ``WINSLOW_RESOURCE_WRITERS`` names (``resource-writers`` unless set)."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.fixtures.winslow import Harness
from winslow.settings import Settings
from winslow.store import people

DATA = b"calibration table\n"


def as_member(winslow: Harness, name: str, group: str) -> dict[str, str]:
    """A plain user's token headers; the user is a member (no more) of ``group``."""
    store = winslow.context.store
    headers = {"Authorization": f"Bearer {store.create_token(name)}"}
    if group not in {g.name for g in people.list_groups(store)}:
        people.create_group(store, group)
    people.set_member(store, group, name, "member")
    return headers


def upload(winslow: Harness, headers: dict[str, str], path: str) -> httpx.Response:
    """Put ``DATA`` at ``path`` the way the CLI does; the first refused step's answer, or
    the completion's."""
    begun = winslow.api.post(
        "/api/v1/resources/uploads", json={"path": path, "size": len(DATA)}, headers=headers
    )
    if begun.status_code != 201:
        return begun
    upload_id = begun.json()["upload_id"]
    urls = winslow.api.post(
        f"/api/v1/resources/uploads/{upload_id}/urls",
        json={"path": path, "part_numbers": [1]},
        headers=headers,
    )
    assert urls.status_code == 200, urls.text
    put = httpx.put(urls.json()["urls"]["1"], content=DATA)
    assert put.status_code == 200, put.text
    return winslow.api.post(
        f"/api/v1/resources/uploads/{upload_id}/complete",
        json={
            "path": path,
            "size": len(DATA),
            "parts": [{"part_number": 1, "md5": hashlib.md5(DATA).hexdigest()}],
        },
        headers=headers,
    )


def pool(winslow: Harness) -> list[str]:
    """The files in the pool, as the admin lists them."""
    listed = winslow.api.get("/api/v1/resources", params={"recursive": True}).json()["data"]
    return [entry["path"] for entry in listed if not entry["is_dir"]]


def delete(winslow: Harness, headers: dict[str, str], path: str) -> httpx.Response:
    return winslow.api.delete("/api/v1/resources", params={"path": path}, headers=headers)


def test_a_plain_member_of_resource_writers_uploads_to_and_deletes_from_the_pool(
    winslow: Harness,
) -> None:
    ana = as_member(winslow, "ana", "resource-writers")
    made = upload(winslow, ana, "calib/ana.txt")
    assert made.status_code == 200, made.text
    assert pool(winslow) == ["calib/ana.txt"]
    assert delete(winslow, ana, "calib/ana.txt").status_code == 204
    assert pool(winslow) == []


def test_a_plain_user_outside_the_writers_group_may_read_the_pool_but_not_change_it(
    winslow: Harness,
) -> None:
    assert upload(winslow, winslow.api.headers, "kept.txt").status_code == 200  # the admin
    ben = as_member(winslow, "ben", "vision")
    refused = upload(winslow, ben, "ben.txt")
    assert refused.status_code == 403
    assert "'resource-writers'" in refused.json()["detail"]
    assert delete(winslow, ben, "kept.txt").status_code == 403
    assert winslow.api.get("/api/v1/resources", headers=ben).status_code == 200
    assert pool(winslow) == ["kept.txt"]


def test_the_writers_group_is_the_one_winslow_resource_writers_names(
    winslow: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINSLOW_RESOURCE_WRITERS", "curators")
    named = Settings(data_dir=winslow.data_dir).resource_writers
    monkeypatch.setattr(
        winslow.context,
        "settings",
        winslow.context.settings.model_copy(update={"resource_writers": named}),
    )
    cid = as_member(winslow, "cid", "curators")
    dee = as_member(winslow, "dee", "resource-writers")

    assert upload(winslow, cid, "cid.txt").status_code == 200
    refused = upload(winslow, dee, "dee.txt")
    assert refused.status_code == 403
    assert "'curators'" in refused.json()["detail"]
    assert delete(winslow, dee, "cid.txt").status_code == 403
    assert delete(winslow, cid, "cid.txt").status_code == 204
    assert pool(winslow) == []
