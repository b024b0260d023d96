"""``NomadClient`` against an ``httpx.MockTransport``: the retry loop, error mapping, streams.

The network is replaced, nothing of ours is: every request goes through the real
``RetryTransport`` and handles, and the answers are shaped like Nomad's documented ones.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.nomad_api import SAMPLES
from winslow.backends.nomad.backend import NomadBackend
from winslow.backends.nomad.client import NomadClient, RetryTransport
from winslow.backends.nomad.config import NomadConfig
from winslow.backends.nomad.permissions import (
    NAMESPACE_CAPABILITIES,
    POLICY_FILE,
    VARIABLE_CAPABILITIES,
    NomadPermissionError,
)
from winslow.errors import (
    BackendError,
    BackendUnavailableError,
    ConflictError,
    SubmitRejectedError,
)

TOKEN = "s3cr3t-t0ken-4a1d"
ADDRESS = "http://nomad.test:4646"


class Nomad:
    """A scripted Nomad: answers in order and records every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_for(nomad: Nomad, **config) -> tuple[NomadClient, list[float]]:
    pauses: list[float] = []
    cfg = NomadConfig(address=ADDRESS, token=TOKEN, **config)
    client = NomadClient(cfg, transport=httpx.MockTransport(nomad), sleep=pauses.append)
    return client, pauses


def job_json(job_id="winslow-p1-1"):
    return {"ID": job_id, "Type": "batch", "Status": "running", "Stop": False}


# Retries ----------------------------------------------------------------------------------


def test_get_answered_503_then_200_is_retried_once_after_the_first_pause(caplog):
    nomad = Nomad(
        httpx.Response(503, text="No cluster leader"),
        httpx.Response(200, json=job_json(), headers={"X-Nomad-Index": "42"}),
    )
    client, pauses = client_for(nomad)
    with caplog.at_level(logging.WARNING, logger="winslow.backends.nomad.client"):
        job, index = client.jobs.read("winslow-p1-1")

    assert (job["ID"], index) == ("winslow-p1-1", 42)
    assert len(nomad.requests) == 2
    assert pauses == [0.5]
    assert "attempt #1/5 failed; will retry in 0.5 s: GET /v1/job/winslow-p1-1 -> 503" in (
        caplog.text
    )


def test_retry_after_lengthens_the_pause():
    nomad = Nomad(
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(200, json=[], headers={"X-Nomad-Index": "7"}),
    )
    client, pauses = client_for(nomad)
    assert client.nodes.list() == ([], 7)
    assert pauses == [3.0]


def test_retry_after_beyond_the_cap_is_cut():
    nomad = Nomad(
        httpx.Response(503, headers={"Retry-After": "3600"}),
        httpx.Response(200, json=[]),
    )
    client, pauses = client_for(nomad)
    client.nodes.list()
    assert pauses == [30.0]


def test_get_that_keeps_failing_gives_up_after_the_schedule_naming_nomad_addr():
    nomad = Nomad(httpx.Response(502, text="bad gateway"))
    client, pauses = client_for(nomad)
    with pytest.raises(BackendUnavailableError) as caught:
        client.jobs.read("winslow-p1-1")
    assert len(nomad.requests) == 5
    assert pauses == [0.5, 1.0, 2.0, 5.0]
    assert "NOMAD_ADDR" in caught.value.message
    assert ADDRESS in caught.value.message
    assert "502" in caught.value.message


def test_unreachable_agent_is_retried_then_unavailable():
    nomad = Nomad(httpx.ConnectError("Connection refused"))
    client, _pauses = client_for(nomad)
    with pytest.raises(BackendUnavailableError) as caught:
        client.nodes.list()
    assert len(nomad.requests) == 5
    assert "Cannot reach Nomad at http://nomad.test:4646 (NOMAD_ADDR)" in caught.value.message
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_register_is_a_post_and_never_repeated():
    nomad = Nomad(httpx.Response(503, text="rpc error: No cluster leader"))
    client, pauses = client_for(nomad)
    with pytest.raises(BackendUnavailableError):
        client.jobs.register(job_json())
    assert len(nomad.requests) == 1
    assert pauses == []


def test_a_timed_out_register_is_not_repeated_either():
    nomad = Nomad(httpx.ReadTimeout("timed out"))
    client, _ = client_for(nomad)
    with pytest.raises(BackendUnavailableError, match="did not answer POST /v1/jobs in time"):
        client.jobs.register(job_json())
    assert len(nomad.requests) == 1


def test_retry_transport_schedule_is_data():
    nomad = Nomad(httpx.Response(500), httpx.Response(500), httpx.Response(204))
    pauses: list[float] = []
    transport = RetryTransport(httpx.MockTransport(nomad), schedule=(7.0, 9.0), sleep=pauses.append)
    with httpx.Client(transport=transport) as http:
        assert http.delete("http://x/v1/job/a").status_code == 204
    assert pauses == [7.0, 9.0]


# Error mapping ----------------------------------------------------------------------------


def test_404_means_gone_not_an_error():
    nomad = Nomad(httpx.Response(404, text="job not found"))
    client, pauses = client_for(nomad)
    assert client.jobs.read("winslow-gone") == (None, 0)
    assert client.jobs.allocations("winslow-gone") == ([], 0)
    assert client.jobs.evaluations("winslow-gone") == ([], 0)
    assert client.jobs.deregister("winslow-gone") is None
    assert client.nodes.read("n1") == (None, 0)
    assert pauses == []


def test_403_says_the_token_lacks_permission_and_never_shows_the_token(caplog):
    nomad = Nomad(httpx.Response(403, text="Permission denied"))
    client, pauses = client_for(nomad, namespace="vision")
    with caplog.at_level(logging.DEBUG), pytest.raises(BackendError) as caught:
        client.jobs.list("winslow-")
    assert not isinstance(caught.value, BackendUnavailableError)
    assert "lacks list-jobs in namespace 'vision'" in caught.value.message
    assert TOKEN not in caught.value.message
    assert TOKEN not in caplog.text
    assert pauses == []


def test_register_of_an_existing_job_is_a_conflict():
    # Nomad answers a failed check-and-set with a plain 500 (command/agent/http.go).
    nomad = Nomad(httpx.Response(500, text="Enforcing job modify index 0: job already exists"))
    client, _ = client_for(nomad)
    with pytest.raises(ConflictError, match="already exists"):
        client.jobs.register(job_json())


def test_register_refused_by_nomad_is_rejected_with_its_message_cut_short():
    long_reason = "Task group stage validation failed: " + "x" * 2000
    nomad = Nomad(httpx.Response(400, text=long_reason))
    client, _ = client_for(nomad)
    with pytest.raises(SubmitRejectedError) as caught:
        client.jobs.register(job_json("winslow-bad"))
    assert caught.value.message.startswith("Nomad rejected job winslow-bad: Task group stage")
    assert len(caught.value.message) < 400


def test_register_with_validation_errors_in_a_500_is_rejected():
    text = '1 error occurred:\n\t* Task group "stage": Missing tasks for task group\n\n'
    nomad = Nomad(httpx.Response(500, text=text))
    client, _ = client_for(nomad)
    with pytest.raises(SubmitRejectedError, match="Missing tasks for task group"):
        client.jobs.register(job_json())


def test_register_sends_check_and_set_index_zero():
    nomad = Nomad(httpx.Response(200, json={"EvalID": "e1", "JobModifyIndex": 9}))
    client, _ = client_for(nomad)
    answer = client.jobs.register(job_json())
    body = json.loads(nomad.requests[0].content)
    assert body == {"Job": job_json(), "EnforceIndex": True, "JobModifyIndex": 0}
    assert answer["EvalID"] == "e1"
    client.jobs.register(job_json(), enforce_index=None)
    assert "EnforceIndex" not in json.loads(nomad.requests[1].content)


def test_deregister_purges_only_when_asked():
    nomad = Nomad(httpx.Response(200, json={"EvalID": "e2"}))
    client, _ = client_for(nomad)
    client.jobs.deregister("winslow-p1-1")
    client.jobs.deregister("winslow-p1-1", purge=True)
    assert [r.method for r in nomad.requests] == ["DELETE", "DELETE"]
    assert [r.url.params["purge"] for r in nomad.requests] == ["false", "true"]


# What every request carries ----------------------------------------------------------------


def test_token_namespace_and_region_ride_on_every_request():
    nomad = Nomad(httpx.Response(200, json=[]))
    client, _ = client_for(nomad, namespace="vision", region="eu")
    client.jobs.list("winslow-")
    request = nomad.requests[0]
    assert request.headers["X-Nomad-Token"] == TOKEN
    assert request.url.params["namespace"] == "vision"
    assert request.url.params["region"] == "eu"
    assert request.url.params["prefix"] == "winslow-"
    assert request.url.params["meta"] == "true"


def test_no_token_sends_no_token_header():
    nomad = Nomad(httpx.Response(200, json=[]))
    client = NomadClient(NomadConfig(address=ADDRESS), transport=httpx.MockTransport(nomad))
    client.nodes.list()
    assert "X-Nomad-Token" not in nomad.requests[0].headers
    assert "region" not in nomad.requests[0].url.params


def test_blocking_query_read_timeout_outlasts_its_wait():
    nomad = Nomad(httpx.Response(200, json=[], headers={"X-Nomad-Index": "120"}))
    client, _ = client_for(nomad)
    allocs, index = client.jobs.allocations("winslow-p1-1", index=119, wait=60)
    request = nomad.requests[0]
    assert (allocs, index) == ([], 120)
    assert request.url.params["index"] == "119"
    assert request.url.params["wait"] == "60000ms"
    timeout = request.extensions["timeout"]
    # Nomad may add wait/16 of jitter to a blocking query.
    assert timeout["read"] > 60 + 60 / 16
    assert timeout["connect"] == 5.0


def test_ordinary_calls_have_explicit_timeouts():
    nomad = Nomad(httpx.Response(200, json=[]))
    client, _ = client_for(nomad)
    client.nodes.list()
    timeout = nomad.requests[0].extensions["timeout"]
    assert (timeout["connect"], timeout["read"]) == (5.0, 30.0)


# Event stream ------------------------------------------------------------------------------


def ndjson(*objects) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


def test_event_stream_yields_frames_and_skips_heartbeats():
    frame_a = {"Index": 11, "Events": [{"Topic": "Job", "Key": "winslow-a"}]}
    frame_b = {"Index": 12, "Events": [{"Topic": "Allocation", "Key": "alloc-1"}]}
    body = ndjson(frame_a, {}) + b"\n" + ndjson(frame_b)
    # Split mid-line: frames must not depend on chunk boundaries.
    nomad = Nomad(httpx.Response(200, content=iter([body[:20], body[20:]])))
    client, _ = client_for(nomad)
    stream = client.events.stream({"Job": ["*"], "Allocation": ["*"]}, index=10)
    assert list(stream) == [frame_a, frame_b]
    request = nomad.requests[0]
    assert request.url.params.get_list("topic") == ["Job:*", "Allocation:*"]
    assert request.url.params["index"] == "10"
    assert request.extensions["timeout"]["read"] > 30  # outlasts Nomad's 30 s heartbeat


def test_event_stream_error_written_into_the_stream_breaks_it_off():
    body = ndjson({"Index": 3, "Events": [{"Topic": "Job", "Key": "x"}]})
    body += b"event dropped from buffer\n"
    nomad = Nomad(httpx.Response(200, content=iter([body])))
    client, _ = client_for(nomad)
    stream = client.events.stream({"Job": ["*"]}, index=0)
    assert next(stream)["Index"] == 3
    with pytest.raises(BackendUnavailableError, match="event dropped from buffer"):
        next(stream)


def test_event_stream_missing_is_a_permanent_error():
    nomad = Nomad(httpx.Response(404, text="Invalid URL path"))
    client, _ = client_for(nomad)
    with pytest.raises(BackendError) as caught:
        client.events.stream({"Job": ["*"]})
    assert not isinstance(caught.value, BackendUnavailableError)
    assert "has no event stream" in caught.value.message


def test_event_stream_closed_by_us_ends_quietly():
    nomad = Nomad(httpx.Response(200, content=iter([ndjson({"Index": 1, "Events": []})])))
    client, _ = client_for(nomad)
    stream = client.events.stream({"Job": ["*"]})
    stream.close()
    stream.close()  # twice is fine


# Logs --------------------------------------------------------------------------------------


def frame(data: bytes, offset: int) -> dict:
    return {
        "File": "alloc/logs/main.stdout.0",
        "Offset": offset,
        "Data": base64.b64encode(data).decode(),
    }


def test_logs_decode_frames_written_back_to_back_across_chunks():
    wire = (
        json.dumps(frame(b"hello\n", 6))
        + json.dumps({"File": "alloc/logs/main.stdout.0", "FileEvent": "file truncated"})
        + "\n"
        + json.dumps(frame("wörld\n".encode(), 13))
    ).encode()
    chunks = [wire[i : i + 7] for i in range(0, len(wire), 7)]
    nomad = Nomad(httpx.Response(200, content=iter(chunks)))
    client, _pauses = client_for(nomad)
    data = b"".join(client.client_fs.logs("a1", "main", "stdout", offset=5))
    assert data == "hello\nwörld\n".encode()
    params = nomad.requests[0].url.params
    assert (params["task"], params["type"], params["offset"], params["origin"]) == (
        "main",
        "stdout",
        "5",
        "start",
    )
    assert params["follow"] == "false"
    assert nomad.requests[0].url.path == "/v1/client/fs/logs/a1"


def test_logs_of_a_gone_allocation_are_empty_and_not_retried():
    nomad = Nomad(httpx.Response(404, text="Unknown allocation"))
    client, pauses = client_for(nomad)
    assert list(client.client_fs.logs("gone", "main", "stdout")) == []
    nomad = Nomad(
        httpx.Response(500, text='log entry for task "main" and log type "stdout" not found')
    )
    client, pauses = client_for(nomad)
    assert list(client.client_fs.logs("a1", "main", "stdout")) == []
    assert len(nomad.requests) == 1
    assert pauses == []


# Variables ---------------------------------------------------------------------------------


def test_variable_put_sends_items_to_the_path():
    nomad = Nomad(httpx.Response(200, json={"Path": "winslow/s3", "Items": {}}))
    client, _ = client_for(nomad, namespace="vision")
    client.variables.put("winslow/s3", {"access_key": "AK", "secret_key": "SK"})
    request = nomad.requests[0]
    assert (request.method, request.url.path) == ("PUT", "/v1/var/winslow/s3")
    assert json.loads(request.content) == {
        "Namespace": "vision",
        "Path": "winslow/s3",
        "Items": {"access_key": "AK", "secret_key": "SK"},
    }


def test_read_at_returns_the_bytes_of_a_file_from_an_offset():
    nomad = Nomad(httpx.Response(200, content=b"line 2\n"))
    client, _ = client_for(nomad)
    assert client.client_fs.read_at("a1", "alloc/logs/winslow.log", 7, 1024) == b"line 2\n"
    params = nomad.requests[0].url.params
    assert nomad.requests[0].url.path == "/v1/client/fs/readat/a1"
    assert (params["path"], params["offset"], params["limit"]) == (
        "alloc/logs/winslow.log",
        "7",
        "1024",
    )


def test_read_at_of_a_missing_file_is_empty():
    nomad = Nomad(
        httpx.Response(500, text="stat alloc/logs/winslow.log: no such file or directory")
    )
    client, pauses = client_for(nomad)
    assert client.client_fs.read_at("a1", "alloc/logs/winslow.log", 0, 1024) == b""
    assert pauses == []


def test_allocation_stats_read_the_documented_answer_from_the_client_endpoint():
    documented = json.loads((SAMPLES / "client_allocation_stats_response.json").read_text())
    nomad = Nomad(httpx.Response(200, json=documented))
    client, _ = client_for(nomad)
    stats = client.allocations.stats("5fc98185-17ff-26bc-a802-0c74fa471c99")
    assert stats == documented
    [request] = nomad.requests
    assert request.url.path == "/v1/client/allocation/5fc98185-17ff-26bc-a802-0c74fa471c99/stats"
    assert request.extensions["timeout"]["read"] == 10.0  # a late figure is a stale one


def test_allocation_stats_of_a_gone_allocation_are_none_and_errors_are_not_retried():
    gone = Nomad(httpx.Response(404, text='Unknown allocation "a1"'))
    client, _ = client_for(gone)
    assert client.allocations.stats("a1") is None

    down = Nomad(httpx.Response(500, text="No path to node"))
    client, pauses = client_for(down)
    with pytest.raises(BackendUnavailableError, match="No path to node"):
        client.allocations.stats("a1")
    assert (len(down.requests), pauses) == (1, [])  # the sampler asks again in a few seconds


# Permissions -------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[3]
ALLOCATION = {"ID": "a1", "JobID": "winslow-p1-1", "CreateIndex": 5, "ClientStatus": "running"}
ALLOCATION["TaskStates"] = {"main": {"State": "running", "Events": []}}

CALLS = {
    "list jobs": (lambda c: c.jobs.list("winslow-"), "list-jobs in namespace 'winslow'"),
    "register": (lambda c: c.jobs.register({"ID": "winslow-p1-1"}), "submit-job in namespace"),
    "read a job": (lambda c: c.jobs.read("winslow-p1-1"), "read-job in namespace 'winslow'"),
    "stop a job": (lambda c: c.jobs.deregister("winslow-p1-1"), "submit-job in namespace"),
    "allocations": (lambda c: c.allocations.list(), "read-job in namespace 'winslow'"),
    "usage": (lambda c: c.allocations.stats("a1"), "read-job in namespace 'winslow'"),
    "events": (lambda c: c.events.stream({"Job": ["*"]}), "read-job in namespace 'winslow'"),
    "log file": (lambda c: c.client_fs.read_at("a1", "alloc/x", 0, 1), "read-fs in namespace"),
    "task output": (
        lambda c: list(c.client_fs.logs("a1", "main", "stdout")),
        "read-logs in namespace 'winslow'",
    ),
    "nodes": (lambda c: c.nodes.list(), 'node policy "read"'),
    "credentials": (
        lambda c: c.variables.put("nomad/jobs", {"access_key": "a", "secret_key": "s"}),
        "variables write at 'nomad/jobs' in namespace 'winslow'",
    ),
}


@pytest.mark.parametrize("call", CALLS, ids=list(CALLS))
def test_403_names_the_capability_the_call_needed_and_all_the_policy_grants(call):
    """Each endpoint's check is hashicorp/nomad's: nomad/job_endpoint.go (Register and
    Deregister: submit-job; GetJob, Allocations: read-job; List: list-jobs),
    client/fs_endpoint.go (Logs: read-logs; ReadAt: read-fs), nomad/node_endpoint.go
    (node read), nomad/variables_endpoint.go ``hasOperationPermissions`` (Set: write),
    nomad/event_endpoint.go (Job and Allocation topics: read-job)."""
    run, needed = CALLS[call]
    nomad = Nomad(httpx.Response(403, text="Permission denied"))
    client, pauses = client_for(nomad, namespace="winslow")
    with pytest.raises(NomadPermissionError) as caught:
        run(client)
    message = caught.value.message
    assert f"the token (NOMAD_TOKEN) lacks {needed}" in message
    assert (
        "Winslow's policy (deploy/nomad/winslow-policy.hcl) grants submit-job, read-job, "
        "list-jobs, read-logs, read-fs in namespace 'winslow'; variables write at "
        "'nomad/jobs'; node policy \"read\"" in message
    )
    assert "(Permission denied)" in message and TOKEN not in message
    assert caught.value.status_code == 403
    assert pauses == []


def test_the_shipped_policy_grants_exactly_what_the_hint_says():
    """Capability names as hashicorp/nomad acl/policy.go spells them; no alloc-lifecycle,
    dispatch-job or exec: Winslow never restarts, dispatches or enters an allocation."""
    text = (ROOT / POLICY_FILE).read_text()
    namespace = re.search(r'namespace "winslow" \{(.*?)\n\}', text, re.DOTALL)
    assert namespace is not None
    body = namespace.group(1)
    capabilities = re.search(r"^  capabilities = \[(.*?)\]", body, re.MULTILINE)
    assert capabilities is not None
    assert tuple(re.findall(r'"([a-z-]+)"', capabilities.group(1))) == NAMESPACE_CAPABILITIES
    variables = re.search(r'path "nomad/jobs" \{\s*capabilities = \[(.*?)\]', body)
    assert variables is not None
    assert tuple(re.findall(r'"([a-z-]+)"', variables.group(1))) == VARIABLE_CAPABILITIES
    assert re.search(r'^node \{\s*policy = "read"\s*\}', text, re.MULTILINE)
    assert not re.search(r"^(agent|operator|quota|plugin|host_volume) ", text, re.MULTILINE)


def test_live_log_without_read_fs_fails_loudly_and_warns_once(caplog):
    """``/v1/client/fs/readat`` needs read-fs (client/fs_endpoint.go ``ReadAt``); without
    it the log is not empty, it is unreadable, and the person is told why."""

    def nomad(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/allocations"):
            return httpx.Response(200, json=[ALLOCATION], headers={"X-Nomad-Index": "5"})
        return httpx.Response(403, text="Permission denied")

    config = NomadConfig(address=ADDRESS, token=TOKEN, namespace="winslow")
    client = NomadClient(config, transport=httpx.MockTransport(nomad), sleep=lambda s: None)
    backend = NomadBackend(config, client=client)
    with caplog.at_level(logging.DEBUG, logger="winslow.backends.nomad"):
        for _ in range(3):
            with pytest.raises(NomadPermissionError) as caught:
                backend.logs("winslow-p1-1")
    assert "lacks read-fs in namespace 'winslow'" in caught.value.message
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"job winslow-p1-1: cannot read its log: {caught.value.message}"
    ]


def test_the_api_log_route_reads_the_refusal_not_an_empty_log():
    """The run's live log goes through ``read_log`` (the logs routes, the console's page):
    an unreadable log there is the refusal, not a log that has no lines yet."""
    from winslow.api.context import AppContext
    from winslow.api.routes.projects import read_log
    from winslow.core.models import Run
    from winslow.core.states import StageRunState

    def nomad(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/allocations"):
            return httpx.Response(200, json=[ALLOCATION], headers={"X-Nomad-Index": "5"})
        return httpx.Response(403, text="Permission denied")

    config = NomadConfig(address=ADDRESS, token=TOKEN, namespace="winslow")
    client = NomadClient(config, transport=httpx.MockTransport(nomad), sleep=lambda s: None)
    backend = NomadBackend(config, client=client)
    context = AppContext(None, None, None, backend, None, None)  # type: ignore[arg-type]
    run = Run(
        id=1,
        project_id="p1",
        stage="detect",
        attempt=1,
        state=StageRunState.RUNNING,
        created_at=datetime(2026, 11, 25, tzinfo=UTC),
        job_id="winslow-p1-1",
        submitted=True,
    )
    with pytest.raises(BackendError, match="lacks read-fs in namespace 'winslow'"):
        read_log(context, run, 0)
