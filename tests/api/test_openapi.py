"""The OpenAPI document tells the truth: the credentials each operation takes, and the
errors it answers with the shape Winslow really sends (checked against real answers)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.fixtures.winslow import Harness

METHODS = ("get", "put", "post", "patch", "delete")

PUBLIC = {
    ("get", "/api/v1/health"),
    ("post", "/api/v1/session"),
    ("delete", "/api/v1/session"),
    ("post", "/api/v1/projects/{ref}/trigger"),
    ("get", "/api/v1/oidc"),
    ("get", "/api/v1/oidc/start"),
    ("get", "/api/v1/oidc/callback"),
}
"""Operations anybody may call (the trigger checks a project token itself)."""


@pytest.fixture
def document(winslow: Harness) -> dict[str, Any]:
    response = winslow.api.get("/api/v1/openapi.json", headers={"Authorization": ""})
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


def error_schema(document: dict[str, Any]) -> dict[str, Any]:
    """The documented error shape, resolvable on its own."""
    return {"$ref": "#/components/schemas/ErrorPublic", "components": document["components"]}


def test_the_security_schemes_are_declared(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["session"]["in"] == "cookie"
    assert schemes["trigger_token"] == {
        **schemes["trigger_token"],
        "type": "apiKey",
        "in": "header",
        "name": "X-Winslow-Trigger-Token",
    }


def test_every_operation_documents_its_credentials_and_errors(document: dict[str, Any]) -> None:
    ops = operations(document)
    assert len(ops) > 50
    for method, path, operation in ops:
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        security = operation.get("security", [])
        if (method, path) in PUBLIC and not path.endswith("/trigger"):
            assert security == [], where
        elif path.endswith("/trigger"):
            assert security == [{"trigger_token": []}], where
            assert {"401", "403", "409"} <= set(responses), where
        else:
            assert {"bearer": []} in security, where
            assert "401" in responses, where
        if "{" in path:
            assert "404" in responses, where
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= set(responses), where
        if operation.get("parameters"):
            assert "422" in responses, where
        assert "500" in responses, where
        for status, answer in responses.items():
            if int(status) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorPublic"}, (where, status)


def test_changes_document_conflicts(document: dict[str, Any]) -> None:
    for method, path in [
        ("post", "/api/v1/projects"),
        ("post", "/api/v1/projects/{ref}/start"),
        ("delete", "/api/v1/projects/{ref}"),
        ("put", "/api/v1/pipelines/{name}"),
        ("post", "/api/v1/projects/{ref}/runs/{run_id}/workspace/uploads"),
    ]:
        assert "409" in document["paths"][path][method]["responses"], (method, path)
    assert "409" not in document["paths"]["/api/v1/pipelines/validate"]["post"]["responses"]


def test_fastapis_own_422_list_is_gone(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    error = schemas["ErrorPublic"]
    assert error["required"] == ["detail", "code"]
    assert error["properties"]["detail"]["type"] == "string"
    assert error["properties"]["code"]["type"] == "string"


def test_real_error_answers_match_the_documented_shape(
    winslow: Harness, document: dict[str, Any]
) -> None:
    admin = {"Authorization": f"Bearer {winslow.context.store.create_token('root', admin=True)}"}
    answers = [
        winslow.api.get("/api/v1/projects", headers={"Authorization": ""}),
        winslow.api.get("/api/v1/projects/nope"),
        winslow.api.post("/api/v1/projects", json={"name": 3}),
        winslow.api.post("/api/v1/gc", json={"grace_seconds": 1e20}, headers=admin),
        winslow.api.put("/api/v1/pipelines/bad", json={"text": "name: bad\nstages: 3\n"}),
        winslow.api.post("/api/v1/pipelines/validate", content=b"x" * (3 * 1024 * 1024)),
        winslow.api.get("/api/v1/no-such-thing"),
    ]
    statuses = [answer.status_code for answer in answers]

    assert statuses == [401, 404, 422, 422, 422, 413, 404]
    for answer in answers:
        jsonschema.validate(answer.json(), error_schema(document))
    assert answer_problems(answers[4]) == ["stages"]


def answer_problems(answer: Any) -> list[str]:
    return [problem["field"] for problem in answer.json()["problems"]]


def test_signing_in_documents_the_401_a_wrong_token_gets(
    winslow: Harness, document: dict[str, Any]
) -> None:
    answer = winslow.api.post("/api/v1/session", json={"token": "wsl_wrong"})

    assert answer.status_code == 401
    responses = document["paths"]["/api/v1/session"]["post"]["responses"]
    assert responses["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorPublic"
    }
    jsonschema.validate(answer.json(), error_schema(document))


@pytest.mark.parametrize(
    ("path", "status", "media_type"),
    [
        ("/api/v1/projects/{ref}/workspace/archive", "200", "application/zip"),
        ("/api/v1/projects/{ref}/runs/{run_id}/series.csv", "200", "text/csv"),
        ("/api/v1/projects/{ref}/runs/{run_id}/usage.csv", "200", "text/csv"),
        ("/api/v1/projects/{ref}/runs/{run_id}/logs", "200", "text/plain"),
        ("/api/v1/projects/{ref}/runs/{run_id}/logs/stream", "200", "text/event-stream"),
        ("/api/v1/projects/{ref}/events", "200", "text/event-stream"),
        ("/api/v1/events", "200", "text/event-stream"),
        ("/api/v1/projects/{ref}/runs/{run_id}/logs", "307", None),
        ("/api/v1/resources/download", "307", None),
        ("/api/v1/projects/{ref}/workspace/download", "307", None),
    ],
)
def test_answers_that_are_not_json_are_documented_as_what_they_are(
    document: dict[str, Any], path: str, status: str, media_type: str | None
) -> None:
    answer = document["paths"][path]["get"]["responses"][status]

    assert list(answer.get("content", {})) == ([media_type] if media_type else [])
