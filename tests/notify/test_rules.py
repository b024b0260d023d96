"""Which state changes notify whom, what the body and the e-mail say, how a body is signed,
and when a failed delivery is tried again: pure, no store, no network."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from winslow.errors import ValidationError
from winslow.notify import rules
from winslow.notify.rules import Notice, NotifyEvent
from winslow.notify.senders import body_bytes
from winslow.store.notifications import StateEvent, Subscription

T0 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


def change(from_state: str, to_state: str, actor: str = "engine", **kw) -> StateEvent:
    values = {
        "id": 7,
        "project_id": "p1",
        "project_name": "ulm-0603",
        "pipeline_name": "tiny",
        "at": T0,
        "actor": actor,
        "from_state": from_state,
        "to_state": to_state,
        "reason": "run 3 of 'detect' failed: exit code 1",
        "waiting_for": {},
    }
    values.update(kw)
    return StateEvent(**values)


def subscription(**kw) -> Subscription:
    values = {
        "id": 1,
        "name": "ops",
        "kind": "webhook",
        "target": "http://hooks.example/x",
        "project_id": None,
        "project_name": None,
        "pipeline_name": "tiny",
        "events": (),
        "long_run_seconds": 600,
        "created_at": T0 - timedelta(days=1),
        "created_by": "ana",
    }
    values.update(kw)
    return Subscription(**values)


@pytest.mark.parametrize(
    ("from_state", "to_state", "actor", "expected"),
    [
        ("running", "awaiting_input", "engine", NotifyEvent.AWAITING_INPUT),
        ("pausing", "paused", "engine", NotifyEvent.PAUSED),
        ("running", "paused", "engine", NotifyEvent.PAUSED),
        ("awaiting_input", "paused", "ana", None),  # the person paused it: they know
        ("running", "failed", "engine", NotifyEvent.FAILED),
        ("pausing", "failed", "engine", NotifyEvent.FAILED),
        ("running", "failing", "engine", NotifyEvent.FAILED),
        ("failing", "failed", "engine", None),  # told once, at failing
        ("running", "succeeded", "engine", NotifyEvent.SUCCEEDED),
        ("idle", "running", "ana", None),
        ("failed", "running", "ana", None),
        ("running", "pausing", "ana", None),
    ],
    ids=lambda v: v.value if isinstance(v, NotifyEvent) else str(v),
)
def test_which_state_changes_are_news(from_state, to_state, actor, expected) -> None:
    assert rules.notice_for(change(from_state, to_state, actor)) is expected


def test_a_run_started_when_the_project_last_left_a_resting_state() -> None:
    newest_first = [
        (T0 - timedelta(minutes=5), "pausing", "running"),  # a pause called off
        (T0 - timedelta(minutes=6), "running", "pausing"),
        (T0 - timedelta(minutes=30), "awaiting_input", "running"),
        (T0 - timedelta(hours=2), "idle", "running"),
    ]
    assert rules.running_since(newest_first) == T0 - timedelta(minutes=30)
    assert rules.running_since([]) is None


def test_a_failing_project_that_is_paused_and_fails_is_one_failure() -> None:
    told = [
        (T0 - timedelta(minutes=1), "failing", "pausing"),
        (T0 - timedelta(minutes=5), "running", "failing"),
        (T0 - timedelta(hours=1), "idle", "running"),
    ]
    assert rules.failing_before(told)
    resumed = [(T0 - timedelta(minutes=1), "failing", "running"), *told]
    assert not rules.failing_before([(T0, "running", "pausing"), *resumed])
    assert not rules.failing_before([(T0, "running", "pausing"), (T0, "idle", "running")])


def test_a_success_is_news_only_after_a_long_enough_run() -> None:
    succeeded = change("running", "succeeded")
    sub = subscription(long_run_seconds=600)
    assert rules.wants(sub, Notice(NotifyEvent.SUCCEEDED, succeeded, ran_for_seconds=600))
    assert not rules.wants(sub, Notice(NotifyEvent.SUCCEEDED, succeeded, ran_for_seconds=599))
    assert not rules.wants(sub, Notice(NotifyEvent.SUCCEEDED, succeeded, ran_for_seconds=None))
    assert rules.wants(
        subscription(long_run_seconds=0), Notice(NotifyEvent.SUCCEEDED, succeeded, 1.0)
    )


def test_scope_events_and_age_decide_who_hears() -> None:
    failed = Notice(NotifyEvent.FAILED, change("running", "failed"))
    assert rules.wants(subscription(), failed)
    assert not rules.wants(subscription(pipeline_name="other"), failed)
    assert rules.wants(subscription(pipeline_name=None, project_id="p1"), failed)
    assert not rules.wants(subscription(pipeline_name=None, project_id="p2"), failed)
    assert rules.wants(subscription(events=("failed",)), failed)
    assert not rules.wants(subscription(events=("awaiting_input",)), failed)
    # A subscription made after the change does not hear of it.
    assert not rules.wants(subscription(created_at=T0 + timedelta(seconds=1)), failed)


def test_the_payload_names_the_project_its_state_reason_and_link() -> None:
    gate = change(
        "running",
        "awaiting_input",
        reason="stage 'review' waits for a person; resume to start it",
        waiting_for={"stage": "review", "gate": "review"},
        project_name="ulm 06/03",
    )
    payload = rules.build_payload(
        Notice(NotifyEvent.AWAITING_INPUT, gate), "ops", "http://w.example:8080/"
    )
    assert payload == {
        "event": "awaiting_input",
        "subscription": "ops",
        "at": T0.isoformat(),
        "history_event": 7,
        "project": {
            "id": "p1",
            "name": "ulm 06/03",
            "pipeline": "tiny",
            "state": "awaiting_input",
            "previous_state": "running",
            "reason": "stage 'review' waits for a person; resume to start it",
            "url": "http://w.example:8080/projects/ulm%2006%2F03",
        },
        "waiting_for": {"stage": "review", "gate": "review"},
    }


def test_the_email_says_project_state_reason_and_link() -> None:
    payload = rules.build_payload(
        Notice(NotifyEvent.FAILED, change("running", "failed")), "ops", "http://w:8080"
    )
    subject, text = rules.email_text(payload)
    assert subject == "[Winslow] ulm-0603 failed"
    assert "Project 'ulm-0603' (pipeline tiny) failed." in text
    assert "Reason: run 3 of 'detect' failed: exit code 1" in text
    assert "Open it: http://w:8080/projects/ulm-0603" in text


def test_the_signature_is_the_hex_hmac_sha256_of_the_exact_body() -> None:
    body = body_bytes({"event": "failed", "project": {"name": "ümlaut"}})
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert rules.sign("s3cret", body) == f"sha256={expected}"
    assert rules.verify("s3cret", body, f"sha256={expected}")
    assert not rules.verify("other", body, f"sha256={expected}")
    assert not rules.verify("s3cret", body + b" ", f"sha256={expected}")


def test_retries_back_off_then_give_up() -> None:
    delays = rules.RETRY_DELAYS_SECONDS
    assert delays == (30, 120, 600, 3600, 21600)
    assert [rules.retry_delay(n, delays) for n in range(1, 7)] == [*delays, None]


@pytest.mark.parametrize(
    "url", ["ftp://x.example/", "file:///etc/passwd", "javascript:alert(1)", "http://", "x"]
)
def test_only_http_urls_are_webhooks(url: str) -> None:
    with pytest.raises(ValidationError, match="no webhook URL"):
        rules.check_webhook_url(url)


def test_webhook_and_email_targets_that_work() -> None:
    assert rules.check_webhook_url("https://hooks.example/a?b=1") == "https://hooks.example/a?b=1"
    assert rules.check_email("ops@example.org") == "ops@example.org"
    with pytest.raises(ValidationError):
        rules.check_email("ops@example.org\r\nBcc: all@example.org")
    with pytest.raises(ValidationError, match="Unknown event 'started'"):
        rules.check_events(["failed", "started"])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/XXXX", "https://hooks.slack.com/services/…"),
        ("http://127.0.0.1:9000/hook", "http://127.0.0.1:9000/hook"),
        ("https://h.example/?token=abc", "https://h.example/…"),
        ("https://user:pw@h.example", "https://h.example/…"),
        ("https://h.example", "https://h.example"),
    ],
)
def test_webhook_urls_are_shown_without_what_may_be_their_secret(url: str, shown: str) -> None:
    assert rules.redact_url(url) == shown
