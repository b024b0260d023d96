"""The auth matrix: every operation of the OpenAPI document that declares credentials,
called with each kind of credentials that must not work (none; a wrong, a revoked API
token; a console session expired, signed out, revoked, or made from a revoked token; the
API token where the session belongs; another project's trigger token, in its header and
as a bearer token), answers 401 in Winslow's error shape and changes nothing: not a row
of the database (a session's ``last_seen_at`` included), not an object in the bucket, not
a file in the pipelines folder. No operation documents a 403 for these: 403 is for valid
credentials that may not do something.

The operations come from the live document, so a new route is in the matrix the day it
is added; the public ones (health, signing in and out) declare no credentials and are
checked by ``test_openapi.py`` to be exactly those. Each call names real things (project
``ulm``, its run, the uploads in progress) and sends a body where one is taken, so a 401
is the credentials' doing, not a 404's or a 422's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.seeded import Seeded, bucket_keys, database_rows, fill, query_for
from winslow import defaults
from winslow.api.deps import SESSION_COOKIE
from winslow.api.routes.triggers import TRIGGER_HEADER
from winslow.store import tokens
from winslow.store.sessions import end_session, revoke_session, start_session

pytestmark = pytest.mark.slow  # each seeds a Winslow with a real stage run

METHODS = ("get", "put", "post", "patch", "delete")

CONSOLE = {"X-Winslow-Console": "1"}
"""Sent with every cookie, so a refusal is never the console header's doing."""


def _session(seeded: Seeded, token: str, at: datetime | None = None) -> tuple[str, str]:
    """A new console session's secret and handle."""
    started = start_session(seeded.winslow.context.store, token, at=at)
    assert started is not None
    return started[0], started[1].handle


def no_credentials(_seeded: Seeded) -> dict[str, str]:
    return {}


def wrong_token(_seeded: Seeded) -> dict[str, str]:
    return {"Authorization": "Bearer wsl_" + "x" * 43}


def revoked_token(seeded: Seeded) -> dict[str, str]:
    store = seeded.winslow.context.store
    token = store.create_token("gone")
    tokens.revoke_token(store, "gone", "gone")
    return {"Authorization": f"Bearer {token}"}


def expired_session(seeded: Seeded) -> dict[str, str]:
    long_ago = datetime.now(UTC) - timedelta(seconds=defaults.SESSION_MAX_AGE_SECONDS + 60)
    secret, _ = _session(seeded, seeded.winslow.token, at=long_ago)
    return {"Cookie": f"{SESSION_COOKIE}={secret}", **CONSOLE}


def signed_out_session(seeded: Seeded) -> dict[str, str]:
    secret, _ = _session(seeded, seeded.winslow.token)
    assert end_session(seeded.winslow.context.store, secret)
    return {"Cookie": f"{SESSION_COOKIE}={secret}", **CONSOLE}


def revoked_session(seeded: Seeded) -> dict[str, str]:
    secret, handle = _session(seeded, seeded.winslow.token)
    revoke_session(seeded.winslow.context.store, handle)
    return {"Cookie": f"{SESSION_COOKIE}={secret}", **CONSOLE}


def session_of_a_revoked_token(seeded: Seeded) -> dict[str, str]:
    store = seeded.winslow.context.store
    secret, _ = _session(seeded, store.create_token("leaver"))
    tokens.revoke_token(store, "leaver", "leaver")
    return {"Cookie": f"{SESSION_COOKIE}={secret}", **CONSOLE}


def api_token_as_cookie(seeded: Seeded) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={seeded.winslow.token}", **CONSOLE}


def another_projects_trigger_token(seeded: Seeded) -> dict[str, str]:
    return {TRIGGER_HEADER: seeded.other_trigger_token}


def trigger_token_as_bearer(seeded: Seeded) -> dict[str, str]:
    return {"Authorization": f"Bearer {seeded.trigger_token}"}


CREDENTIALS = [
    no_credentials,
    wrong_token,
    revoked_token,
    expired_session,
    signed_out_session,
    revoked_session,
    session_of_a_revoked_token,
    api_token_as_cookie,
    another_projects_trigger_token,
    trigger_token_as_bearer,
]
"""Each makes the credentials it names (in the store, where it needs to) and returns the
headers that carry them."""


def guarded_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item and item[method].get("security")
    ]


def pipeline_files(seeded: Seeded) -> list[str]:
    folder = seeded.winslow.context.settings.resolved_pipelines_dir()
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def everything(seeded: Seeded) -> dict[str, Any]:
    rows = database_rows(seeded)
    # The audit trail records refused commands too (tests/api/test_audit.py): that is
    # the one write a refusal makes.
    rows.pop("audit_log", None)
    return {
        "database": rows,
        "bucket": bucket_keys(seeded),
        "pipelines": pipeline_files(seeded),
    }


@pytest.mark.parametrize("make", CREDENTIALS, ids=lambda make: make.__name__)
def test_every_guarded_operation_refuses_credentials_that_do_not_hold(
    seeded: Seeded, make: Any
) -> None:
    stranger = TestClient(seeded.winslow.api.app)  # no token of its own
    document = stranger.get("/api/v1/openapi.json").json()
    error = {"$ref": "#/components/schemas/ErrorPublic", "components": document["components"]}
    headers = make(seeded)
    before = everything(seeded)
    operations = guarded_operations(document)
    assert len(operations) > 50

    let_in: dict[str, Any] = {}
    for method, path, operation in operations:
        body = {} if "requestBody" in operation else None
        url = fill(path, seeded)
        answer = stranger.request(method, url, params=query_for(path), json=body, headers=headers)
        where = f"{method.upper()} {path}"
        if answer.status_code != 401:
            let_in[where] = (answer.status_code, answer.text[:200])
            continue
        assert "401" in operation["responses"], where
        jsonschema.validate(answer.json(), error)
        assert answer.json()["code"] == "unauthorized", where
        assert answer.headers["WWW-Authenticate"] == "Bearer", where

    assert let_in == {}
    assert everything(seeded) == before


def test_the_matrix_would_see_a_door_left_open(seeded: Seeded) -> None:
    """The same calls with the real token get past the credentials check everywhere."""
    stranger = TestClient(seeded.winslow.api.app)
    document = stranger.get("/api/v1/openapi.json").json()
    admitted = seeded.winslow.api  # sends the tester's token
    refused = {}
    for method, path, operation in guarded_operations(document):
        if path.endswith(("/events", "/logs/stream", "/trigger")) or method == "delete":
            continue  # streams never end; the trigger takes no API token; deletes change
        body = {} if "requestBody" in operation else None
        answer = admitted.request(method, fill(path, seeded), params=query_for(path), json=body)
        if answer.status_code == 401:
            refused[f"{method.upper()} {path}"] = answer.text[:200]
    assert refused == {}
