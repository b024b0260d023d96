"""Console sessions over HTTP: the cookie holds a session's secret (never the API token),
the server ends sessions (sign-out, expiry, revocation), and who may see and end which."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.fixtures.winslow import Harness
from winslow import defaults
from winslow.store import tokens
from winslow.store.sessions import start_session

COOKIE = "winslow_session"


def browser(winslow: Harness, base_url: str = "http://testserver") -> TestClient:
    """A client with no token: only what the console's cookie gives."""
    return TestClient(winslow.api.app, base_url=base_url)


def signed_in(winslow: Harness, token: str | None = None) -> TestClient:
    client = browser(winslow)
    response = client.post("/api/v1/session", json={"token": token or winslow.token})
    assert response.status_code == 200, response.text
    return client


def test_signing_in_sets_a_strict_httponly_cookie_with_a_session_secret_not_the_token(
    winslow: Harness,
) -> None:
    client = browser(winslow)
    response = client.post(
        "/api/v1/session", json={"token": winslow.token}, headers={"User-Agent": "Firefox/140"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["user"], body["user_agent"], body["current"]) == ("tester", "Firefox/140", True)
    cookie = response.headers["set-cookie"]
    secret = client.cookies[COOKIE]
    assert winslow.token not in cookie and secret != winslow.token
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
    assert f"max-age={defaults.SESSION_MAX_AGE_SECONDS}" in cookie.lower()
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    assert secret not in response.text  # the body names the session by its handle only
    assert client.get("/api/v1/projects").status_code == 200

    over_https = browser(winslow, "https://testserver")
    secure = over_https.post("/api/v1/session", json={"token": winslow.token})
    assert "secure" in secure.headers["set-cookie"].lower()


def test_an_api_token_in_the_cookie_signs_nobody_in(winslow: Harness) -> None:
    client = browser(winslow)
    client.cookies.set(COOKIE, winslow.token)
    response = client.get("/api/v1/projects")
    assert response.status_code == 401
    assert response.json() == {
        "detail": "Your console session has ended (signed out, expired, or revoked); "
        "sign in again.",
        "code": "unauthorized",
    }
    page = client.get("/", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/signin?next=/")


def test_signing_out_ends_the_session_on_the_server_so_a_copied_cookie_is_worthless(
    winslow: Harness,
) -> None:
    client = signed_in(winslow)
    copied = client.cookies[COOKIE]
    signed_out = client.delete("/api/v1/session", headers={"X-Winslow-Console": "1"})
    assert signed_out.status_code == 204
    assert f'{COOKIE}=""' in signed_out.headers["set-cookie"]  # the browser forgets it too
    thief = browser(winslow)
    thief.cookies.set(COOKIE, copied)
    assert thief.get("/api/v1/projects").status_code == 401
    assert thief.get("/nodes", follow_redirects=False).status_code == 303
    assert browser(winslow).delete("/api/v1/session").status_code == 204  # nothing to end


def test_the_server_ends_a_session_fourteen_days_after_sign_in(winslow: Harness) -> None:
    long_ago = datetime.now(UTC) - timedelta(seconds=defaults.SESSION_MAX_AGE_SECONDS + 60)
    started = start_session(winslow.context.store, winslow.token, at=long_ago)
    assert started is not None
    client = browser(winslow)
    client.cookies.set(COOKIE, started[0])  # a browser that kept the cookie anyway
    assert client.get("/api/v1/projects").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin?next=/"


def test_revoking_the_token_ends_the_sessions_made_with_it(winslow: Harness) -> None:
    token = winslow.context.store.create_token("ana")
    client = signed_in(winslow, token)
    assert client.get("/api/v1/projects").status_code == 200
    tokens.revoke_token(winslow.context.store, "ana", "ana")
    assert client.get("/api/v1/projects").status_code == 401


def test_signing_in_again_ends_the_session_the_browser_had(winslow: Harness) -> None:
    client = signed_in(winslow)
    first = client.cookies[COOKIE]
    signed_in_again = client.post("/api/v1/session", json={"token": winslow.token})
    assert signed_in_again.status_code == 200
    assert client.cookies[COOKIE] != first
    handles = [s["handle"] for s in winslow.api.get("/api/v1/sessions").json()["data"]]
    assert handles == [signed_in_again.json()["handle"]]


def test_an_admin_sees_every_session_and_others_only_their_own(winslow: Harness) -> None:
    store = winslow.context.store
    admin = store.create_token("root", admin=True)
    ben = store.create_token("ben")
    ana = signed_in(winslow, store.create_token("ana"))
    signed_in(winslow, ben)
    root = signed_in(winslow, admin)

    everybody = root.get("/api/v1/sessions")
    assert everybody.status_code == 200
    rows = everybody.json()["data"]
    assert [(s["user"], s["current"]) for s in rows] == [
        ("root", True),
        ("ben", False),
        ("ana", False),
    ]
    assert set(rows[0]) == {
        "handle",
        "user",
        "created_at",
        "last_seen_at",
        "expires_at",
        "idle_expires_at",
        "user_agent",
        "address",
        "current",
    }
    for client in (ana, root):  # no secret is ever listed
        assert client.cookies[COOKIE] not in everybody.text

    mine = ana.get("/api/v1/sessions").json()["data"]
    assert [(s["user"], s["current"]) for s in mine] == [("ana", True)]
    by_token = winslow.api.get(  # ben's token: no admin
        "/api/v1/sessions", headers={"Authorization": f"Bearer {ben}"}
    ).json()["data"]
    assert [(s["user"], s["current"]) for s in by_token] == [("ben", False)]


def test_an_admin_ends_any_session_others_only_their_own(winslow: Harness) -> None:
    store = winslow.context.store
    root = store.create_token("root", admin=True)
    ana = signed_in(winslow, store.create_token("ana"))
    tester = signed_in(winslow, store.create_token("ben"))
    [ana_session] = ana.get("/api/v1/sessions").json()["data"]
    [tester_session] = tester.get("/api/v1/sessions").json()["data"]
    console = {"X-Winslow-Console": "1"}

    refused = ana.delete(f"/api/v1/sessions/{tester_session['handle']}", headers=console)
    assert refused.status_code == 404
    assert refused.json() == {
        "detail": f"No session '{tester_session['handle']}' of ana that goes on; "
        "`winslow session list` shows them.",
        "code": "not_found",
    }
    assert tester.get("/api/v1/projects").status_code == 200

    by_admin = winslow.api.delete(
        f"/api/v1/sessions/{ana_session['handle']}",
        headers={"Authorization": f"Bearer {root}"},
    )
    assert by_admin.status_code == 204
    assert ana.get("/api/v1/projects").status_code == 401
    assert tester.get("/api/v1/projects").status_code == 200

    own = tester.delete(f"/api/v1/sessions/{tester_session['handle']}", headers=console)
    assert own.status_code == 204 and f'{COOKIE}=""' in own.headers["set-cookie"]
    assert tester.get("/api/v1/projects").status_code == 401
