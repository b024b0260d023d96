"""Schemathesis over the whole API: generated requests to every operation of
``/api/v1/openapi.json``, with a token, against a Winslow with seeded data. No answer may
be a server error, and every answer must be one the document promises: a documented
status, the documented content type, a body that matches the documented schema.

Each operation gets three passes of ``EXAMPLES`` generated requests (derandomized, so a
run is repeatable; no deadline, so a slow machine fails nothing):

- ``seeded``: path parameters name real things (project ``ulm``, its run, pipeline
  ``tiny``, the uploads in progress, the session, the trigger token), so the code behind
  each lookup runs with generated queries and bodies;
- ``generated``: everything generated, valid by the schema;
- ``invalid``: Schemathesis's negative mode, every request breaking the schema somewhere
  (not possible for some operations: then there is nothing to break).

Every read must have found its thing at least once in the ``seeded`` pass (a 2xx), so
the run cannot pass on 404s alone. Three operations are left out: the live streams
(``/events``, ``/projects/{ref}/events``, ``.../logs/stream``) end only when the client
leaves, and ``tests/test_sse.py`` reads them. Operations that delete, rename or kill run
last, so the seeded data is there for all others.

One test walks the operations with Schemathesis's Python API (``from_asgi``,
``APIOperation.as_strategy``, ``Case.call_and_validate``) under Hypothesis, rather than
one pytest test per operation: the seeded Winslow is made once (a real stage runs), and
``schemathesis.pytest.from_fixture`` (4.32) does not run under pytest 9.2.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode, checks

from tests.fixtures.seeded import Seeded, query_for, token_name_for, upload_id_for
from winslow.api.routes.triggers import TRIGGER_HEADER

pytestmark = pytest.mark.slow  # each seeds a Winslow with a real stage run

EXAMPLES = 6
"""Generated requests per operation and pass: under a minute for the whole API (over 100
operations) on 2 cores. Who may call each one is the access matrix's to check
(``test_access_matrix.py``); this looks for answers the document does not promise."""

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]

STREAMS = ("/events", "/logs/stream")
"""Paths ending so are Server-Sent Events streams, which never end by themselves."""

LAST = (
    ("DELETE", "/api/v1/projects/{ref}/tokens/{name}"),
    ("DELETE", "/api/v1/sessions/{handle}"),
    ("POST", "/api/v1/projects/{ref}/kill"),
    ("PATCH", "/api/v1/projects/{ref}"),
    ("DELETE", "/api/v1/projects/{ref}"),
    ("DELETE", "/api/v1/pipelines/{name}"),
)
"""Operations that take seeded things away (a rename and a kill too), in the order they
run, last."""

NEED_A_PROVIDER = frozenset({"GET /api/v1/oidc/start", "GET /api/v1/oidc/callback"})
"""Reached only with an OpenID provider set up and a sign-in under way: they answer 404
here (no OIDC), and tests/identity/test_oidc.py walks them with a real provider."""

SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


def in_order(operations: list[APIOperation]) -> list[APIOperation]:
    """The operations to fuzz: the streams left out, the ``LAST`` ones at the end."""
    kept = [op for op in operations if not op.path.endswith(STREAMS)]
    rank = {operation: place for place, operation in enumerate(LAST)}
    return sorted(kept, key=lambda op: rank.get((op.method.upper(), op.path), -1))


def passes(operation: APIOperation, seeded: Seeded) -> dict[str, st.SearchStrategy[Case]]:
    """The generated requests for ``operation``, by pass."""
    path = operation.path
    names = {name: value for name, value in seeded.values.items() if f"{{{name}}}" in path}
    if "{upload_id}" in path:
        names["upload_id"] = upload_id_for(path, seeded)
    if token_name := token_name_for(path):
        names["name"] = token_name
    headers = {TRIGGER_HEADER: seeded.trigger_token} if path.endswith("/trigger") else None
    return {
        "seeded": operation.as_strategy(
            path_parameters=names, headers=headers, query=query_for(path)
        ),
        "generated": operation.as_strategy(),
        "invalid": operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    }


def fuzz(strategy: st.SearchStrategy[Case], call: Callable[[Case], Any]) -> str | None:
    """Run ``call`` on the generated cases; Schemathesis's report of what failed, if any."""

    @SETTINGS
    @given(case=strategy)
    def run(case: Case) -> None:
        call(case)

    try:
        run()
    except Unsatisfiable:
        return None  # nothing to break: every value of every parameter is valid
    except Exception as exc:
        return str(exc)
    except BaseExceptionGroup as group:  # Schemathesis groups the failures of one case
        return str(group)
    return None


def test_generated_requests_get_no_server_error_and_documented_answers(seeded: Seeded) -> None:
    app = seeded.winslow.api.app
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    # Credentials are ours to send; generated ones would only ever get the 401.
    schema.config.generation.update(with_security_parameters=False)
    auth = {"Authorization": f"Bearer {seeded.winslow.token}"}
    answers: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    failures: dict[str, str] = {}
    operations = in_order([result.ok() for result in schema.get_all_operations()])
    assert len(operations) > 50

    for operation in operations:
        for name, strategy in passes(operation, seeded).items():
            label = f"{operation.label} ({name})"

            def call(case: Case, label: str = label) -> None:
                response = case.call_and_validate(headers=auth, checks=CHECKS)
                answers[label][response.status_code] += 1

            if (failure := fuzz(strategy, call)) is not None:
                failures[label] = failure

    assert failures == {}, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    reached = {
        label for label, statuses in answers.items() if any(200 <= s < 300 for s in statuses)
    }
    missed = {
        operation.label
        for operation in operations
        if operation.method == "get"
        and f"{operation.label} (seeded)" not in reached
        and operation.label not in NEED_A_PROVIDER
    }
    assert missed == set(), {label: dict(answers[f"{label} (seeded)"]) for label in missed}
