"""Notifications end to end: a real Winslow (SQLite, SeaweedFS, local stages) reaches a
gate or fails, the dispatcher reads the history and sends a signed webhook to a receiver
on 127.0.0.1 or an e-mail to a real SMTP server (aiosmtpd) on 127.0.0.1. Failed sends are
retried and visible through the API; a restarted dispatcher sends nothing twice.

Retry delays are a few hundredths of a second here, so retries are real but quick.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.fixtures.postgres import ON_BOTH_DATABASES
from tests.fixtures.winslow import Harness
from tests.notify.conftest import Mailbox, Receiver
from winslow.notify.dispatcher import Dispatcher, NotifyConfig
from winslow.notify.senders import SmtpConfig
from winslow.store.notifications import read_cursor

GATED = """
name: gated
stages:
  - name: prepare
    command: ["sh", "-c", "echo ready"]
  - name: review
    gate: true
    command: ["sh", "-c", "echo reviewed"]
"""

BROKEN = """
name: broken
stages:
  - name: detect
    command: ["sh", "-c", "echo no GPU left >&2; exit 3"]
"""

QUICK = (0.05, 0.05, 0.05)
"""Retry delays for tests, seconds: four attempts in all."""

CONSOLE = "http://winslow.example:8080"

pytestmark = ON_BOTH_DATABASES


def dispatcher(winslow: Harness, **config: Any) -> Dispatcher:
    return Dispatcher(
        winslow.context.store, NotifyConfig(console_url=CONSOLE, retry_delays=QUICK, **config)
    )


def subscribe(winslow: Harness, expect: int = 201, headers: Any = None, **body: Any) -> Any:
    answer = winslow.api.post("/api/v1/notifications/subscriptions", json=body, headers=headers)
    assert answer.status_code == expect, answer.text
    return answer.json()


def deliveries(winslow: Harness, **params: Any) -> list[dict[str, Any]]:
    answer = winslow.api.get("/api/v1/notifications/deliveries", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]  # type: ignore[no-any-return]


def test_a_gate_sends_a_signed_webhook(winslow: Harness, receiver: Receiver) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("ulm-0603", "gated")
    made = subscribe(winslow, name="hook", webhook=receiver.url, project="ulm-0603")
    secret = made["secret"]
    assert secret and made["kind"] == "webhook"
    listed = winslow.api.get("/api/v1/notifications/subscriptions").json()["data"]
    assert [s["name"] for s in listed] == ["hook"] and "secret" not in listed[0]
    assert made["target"] == receiver.url
    assert listed[0]["target"] == receiver.url.removesuffix("/winslow") + "/…"

    winslow.command("ulm-0603", "start")
    winslow.engine.run_until_idle()
    assert winslow.show("ulm-0603")["state"] == "awaiting_input"
    dispatcher(winslow).run_until_settled()

    [hook] = receiver.received  # idle → running told nobody anything
    expected = hmac.new(secret.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-Winslow-Signature"] == f"sha256={expected}"
    assert hook.headers["X-Winslow-Event"] == "awaiting_input"
    assert hook.headers["Content-Type"] == "application/json"
    [delivery] = deliveries(winslow)
    assert hook.headers["X-Winslow-Delivery"] == str(delivery["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == (
        "delivered",
        1,
        None,
    )
    payload = hook.json
    assert payload["event"] == "awaiting_input"
    assert payload["project"]["name"] == "ulm-0603"
    assert payload["project"]["state"] == "awaiting_input"
    assert payload["project"]["reason"] == "stage 'review' waits for a person; resume to start it"
    assert payload["project"]["url"] == f"{CONSOLE}/projects/ulm-0603"
    assert payload["waiting_for"] == {"stage": "review", "gate": "review"}


def test_a_failed_project_sends_an_email(winslow: Harness, mailbox: Mailbox) -> None:
    winslow.context.settings = winslow.context.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": mailbox.port}
    )
    winslow.apply_pipeline(BROKEN)
    admin = {"Authorization": f"Bearer {winslow.context.store.create_token('root', admin=True)}"}
    plain = {"Authorization": f"Bearer {winslow.context.store.create_token('ana')}"}
    refused = subscribe(
        winslow, 403, headers=plain, name="ops", email="ops@example.org", pipeline="broken"
    )
    assert "admin token" in refused["detail"]
    subscribe(winslow, headers=admin, name="ops", email="ops@example.org", pipeline="broken")
    winslow.create("ulm-0603", "broken", start=True)
    winslow.engine.run_until_idle()
    shown = winslow.show("ulm-0603")
    assert shown["state"] == "failed"
    smtp = SmtpConfig(host="127.0.0.1", port=mailbox.port, sender="winslow@lab.example")
    dispatcher(winslow, smtp=smtp).run_until_settled()

    [mail] = mailbox.messages
    assert mail["X-Envelope-To"] == "ops@example.org"
    assert mail["From"] == "winslow@lab.example"
    assert mail["Subject"] == "[Winslow] ulm-0603 failed"
    text = mail.get_payload(decode=True).decode()
    assert "Project 'ulm-0603' (pipeline broken) failed." in text
    assert f"Reason: {shown['state_reason']}" in text
    assert f"Open it: {CONSOLE}/projects/ulm-0603" in text
    assert [d["status"] for d in deliveries(winslow)] == ["delivered"]


def test_a_failing_receiver_is_retried_until_it_answers(
    winslow: Harness, receiver: Receiver
) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("ulm-0603", "gated")
    subscribe(winslow, name="hook", webhook=receiver.url, project="ulm-0603")
    receiver.statuses = [500, 500, 200]
    queued = winslow.api.post("/api/v1/notifications/subscriptions/hook/test")
    assert queued.status_code == 202, queued.text
    assert (queued.json()["status"], queued.json()["attempts"]) == ("pending", 0)

    dispatcher(winslow).run_until_settled()

    assert len(receiver.received) == 3
    assert {r.headers["X-Winslow-Delivery"] for r in receiver.received} == {
        str(queued.json()["id"])
    }
    assert len({r.headers["X-Winslow-Signature"] for r in receiver.received}) == 1  # same bytes
    [delivery] = deliveries(winslow, subscription="hook")
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 3
    shown = receiver.url.removesuffix("/winslow") + "/…"  # the rest may be a secret
    assert delivery["last_error"] == f"POST {shown} -> HTTP 500: no"
    assert delivery["event"] == "test"


def test_a_receiver_that_never_answers_well_fails_the_delivery(
    winslow: Harness, receiver: Receiver
) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("ulm-0603", "gated")
    subscribe(winslow, name="hook", webhook=receiver.url, project="ulm-0603")
    receiver.statuses = [503] * 10
    winslow.api.post("/api/v1/notifications/subscriptions/hook/test")

    dispatcher(winslow).run_until_settled()

    assert len(receiver.received) == len(QUICK) + 1
    [failed] = deliveries(winslow, status="failed")
    assert failed["attempts"] == len(QUICK) + 1
    assert failed["last_error"].endswith("HTTP 503: no")
    assert deliveries(winslow, status="pending") == []


def test_a_restarted_dispatcher_sends_nothing_twice(winslow: Harness, receiver: Receiver) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("ulm-0603", "gated", start=True)
    subscribe(winslow, name="hook", webhook=receiver.url, project="ulm-0603")
    winslow.engine.run_until_idle()
    first = dispatcher(winslow)
    first.run_until_settled()
    first.stop()
    assert len(receiver.received) == 1

    # Young history lines are read again (settle_seconds), old ones are behind the cursor:
    # either way nothing is sent again.
    for settle in (60.0, 0.0, 0.0):
        again = dispatcher(winslow, settle_seconds=settle)
        again.run_until_settled()
        again.stop()
    assert len(receiver.received) == 1
    assert len(deliveries(winslow)) == 1
    assert read_cursor(winslow.context.store) > 0

    # What happens after the restart is still told.
    winslow.command("ulm-0603", "resume")
    winslow.engine.run_until_idle()
    assert winslow.show("ulm-0603")["state"] == "succeeded"
    dispatcher(winslow).run_until_settled()
    assert len(receiver.received) == 1  # a short run's success is no news


def test_a_long_run_success_is_told_to_those_who_want_it(
    winslow: Harness, receiver: Receiver
) -> None:
    winslow.apply_pipeline(GATED.replace("    gate: true\n", ""))
    winslow.create("ulm-0603", "gated")
    subscribe(winslow, name="any", webhook=receiver.url, project="ulm-0603", long_run_seconds=0)
    subscribe(winslow, name="long", webhook=receiver.url + "/long", project="ulm-0603")
    winslow.command("ulm-0603", "start")
    winslow.engine.run_until_idle()
    dispatcher(winslow).run_until_settled()

    [told] = receiver.received
    assert told.json["event"] == "succeeded" and told.json["subscription"] == "any"
    assert told.json["ran_for_seconds"] >= 0


def test_subscriptions_refuse_what_cannot_work(winslow: Harness) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("ulm-0603", "gated")
    bad_url = subscribe(winslow, 422, name="x", webhook="ftp://files.example/", project="ulm-0603")
    assert "http:// or https://" in bad_url["detail"]
    no_smtp = subscribe(winslow, 422, name="x", email="ops@example.org", project="ulm-0603")
    assert "WINSLOW_SMTP_HOST" in no_smtp["detail"]
    both = subscribe(winslow, 422, name="x", webhook="http://h.example/", email="a@b.example")
    assert "exactly one of 'webhook'" in both["detail"]
    nowhere = subscribe(winslow, 404, name="x", webhook="http://h.example/", project="nope")
    assert "nope" in nowhere["detail"]
    subscribe(winslow, name="x", webhook="http://h.example/", project="ulm-0603")
    twice = subscribe(winslow, 409, name="x", webhook="http://h.example/", project="ulm-0603")
    assert "exists already" in twice["detail"]
    assert winslow.api.delete("/api/v1/notifications/subscriptions/x").status_code == 204
    gone = winslow.api.post("/api/v1/notifications/subscriptions/x/test")
    assert gone.status_code == 404 and "winslow notify list" in gone.json()["detail"]


def test_deleting_a_project_removes_its_subscriptions(winslow: Harness) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("ulm-0603", "gated")
    winslow.create("ulm-0604", "gated")
    subscribe(winslow, name="gone", webhook="http://h.example/", project="ulm-0603")
    subscribe(winslow, name="kept", webhook="http://h.example/", project="ulm-0604")
    winslow.api.post("/api/v1/notifications/subscriptions/gone/test")

    assert winslow.api.delete("/api/v1/projects/ulm-0603").status_code == 204

    listed = winslow.api.get("/api/v1/notifications/subscriptions").json()["data"]
    assert [s["name"] for s in listed] == ["kept"]
    assert deliveries(winslow) == []
