"""Which state changes are news, for whom, in what words, signed how, retried when.

Pure: values in, values out. A project tells a person when it needs one (it awaits input
at a gate or for variables, the pipeline paused it, it failed) and, for those who want
it, when it succeeded after a long run. ``failing`` (a branch failed while others still
run) counts as failed; the ``failed`` that follows it is no second notice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from winslow.errors import ValidationError

if TYPE_CHECKING:
    from winslow.store.notifications import StateEvent, Subscription


class NotifyEvent(str, Enum):
    AWAITING_INPUT = "awaiting_input"
    """At a gate, or variables are missing."""
    PAUSED = "paused"
    """Paused by the pipeline (after a stage, a kill, nothing left to start), not by a person."""
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    """Only after a run longer than the subscription's ``long_run_seconds``."""
    TEST = "test"
    """Sent on request, to check a subscription works."""


SUBSCRIBABLE = (
    NotifyEvent.AWAITING_INPUT,
    NotifyEvent.PAUSED,
    NotifyEvent.FAILED,
    NotifyEvent.SUCCEEDED,
)

FAILED_STATES = frozenset({"failed", "failing"})

RETRY_DELAYS_SECONDS: tuple[float, ...] = (30, 120, 600, 3600, 6 * 3600)
"""Seconds before each new attempt of a delivery; one more attempt than delays, then it
has failed."""

LONG_RUN_SECONDS = 600
"""A success is news after a run at least this long, seconds (a subscription's default)."""

SIGNATURE_HEADER = "X-Winslow-Signature"
DELIVERY_HEADER = "X-Winslow-Delivery"
EVENT_HEADER = "X-Winslow-Event"

ERROR_CHARS = 300
"""Characters of a remote answer kept as a delivery's last error."""

_EMAIL = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")


@dataclass(frozen=True)
class Notice:
    """A state change worth telling of."""

    event: NotifyEvent
    change: StateEvent
    ran_for_seconds: float | None = None
    """For ``succeeded``: since the project last started running."""


def notice_for(change: StateEvent) -> NotifyEvent | None:
    """The notice a state change gives, if any (a success's length is judged later)."""
    to_state, from_state = change.to_state, change.from_state
    if to_state == "awaiting_input":
        return NotifyEvent.AWAITING_INPUT
    if to_state == "paused" and change.actor == "engine":
        return NotifyEvent.PAUSED
    if to_state in FAILED_STATES and from_state not in FAILED_STATES:
        return NotifyEvent.FAILED
    if to_state == "succeeded":
        return NotifyEvent.SUCCEEDED
    return None


def running_since(changes: list[tuple[datetime, str, str]]) -> datetime | None:
    """When the project last started running, from its state changes newest first:
    the latest move into ``running`` that was no pause called off."""
    for at, from_state, to_state in changes:
        if to_state == "running" and from_state != "pausing":
            return at
    return None


def failing_before(changes: list[tuple[datetime, str, str]]) -> bool:
    """Whether the project was already ``failing`` (and so told of) since it last started
    running, from its state changes newest first: ``failing → pausing → failed`` is one
    failure, told once."""
    for _at, from_state, to_state in changes:
        if to_state == "failing":
            return True
        if to_state == "running" and from_state != "pausing":
            return False
    return False


def wants(subscription: Subscription, notice: Notice) -> bool:
    """Whether ``subscription`` hears of ``notice``: its scope, its events, a long enough
    run for a success, and nothing from before it existed."""
    change = notice.change
    if subscription.project_id is not None and subscription.project_id != change.project_id:
        return False
    if subscription.pipeline_name is not None and subscription.pipeline_name != (
        change.pipeline_name
    ):
        return False
    if subscription.events and notice.event.value not in subscription.events:
        return False
    if change.at < subscription.created_at:
        return False
    if notice.event is NotifyEvent.SUCCEEDED:
        ran = notice.ran_for_seconds
        return ran is not None and ran >= subscription.long_run_seconds
    return True


def project_url(console_url: str, project_name: str) -> str:
    return f"{console_url.rstrip('/')}/projects/{quote(project_name, safe='')}"


def build_payload(notice: Notice, subscription: str, console_url: str) -> dict[str, Any]:
    """The webhook's JSON body (and the e-mail's facts) for ``notice``."""
    change = notice.change
    payload: dict[str, Any] = {
        "event": notice.event.value,
        "subscription": subscription,
        "at": change.at.isoformat(),
        "history_event": change.id,
        "project": {
            "id": change.project_id,
            "name": change.project_name,
            "pipeline": change.pipeline_name,
            "state": change.to_state,
            "previous_state": change.from_state,
            "reason": change.reason,
            "url": project_url(console_url, change.project_name),
        },
    }
    if change.waiting_for:
        payload["waiting_for"] = change.waiting_for
    if notice.ran_for_seconds is not None:
        payload["ran_for_seconds"] = round(notice.ran_for_seconds)
    return payload


def trial_payload(subscription: str, at: datetime, console_url: str) -> dict[str, Any]:
    """The body of a test notification: no project, the console's address."""
    return {
        "event": NotifyEvent.TEST.value,
        "subscription": subscription,
        "at": at.isoformat(),
        "project": None,
        "console": console_url,
    }


def email_text(payload: dict[str, Any]) -> tuple[str, str]:
    """The e-mail's subject and plain text body for a payload."""
    project = payload.get("project")
    if not project:
        return (
            "[Winslow] test notification",
            f"This is a test notification of subscription '{payload['subscription']}'.\n\n"
            f"Winslow: {payload.get('console', '')}\n",
        )
    words = {
        "awaiting_input": "waits for you",
        "paused": "paused",
        "failed": "failed",
        "succeeded": "succeeded",
    }.get(str(payload["event"]), str(payload["event"]))
    lines = [
        f"Project '{project['name']}' (pipeline {project['pipeline']}) {words}.",
        "",
        f"State: {project['state']}",
        f"Reason: {project['reason'] or '-'}",
    ]
    if "ran_for_seconds" in payload:
        lines.append(f"Ran for: {payload['ran_for_seconds'] // 60} min")
    lines += ["", f"Open it: {project['url']}", ""]
    lines.append(f"(subscription '{payload['subscription']}', at {payload['at']})")
    return f"[Winslow] {project['name']} {words}", "\n".join(lines) + "\n"


def sign(secret: str, body: bytes) -> str:
    """The ``X-Winslow-Signature`` of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` (the header's value) signs ``body`` with ``secret``; what a
    receiver does before trusting a webhook."""
    return hmac.compare_digest(sign(secret, body), signature)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def retry_delay(attempts: int, delays: tuple[float, ...]) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones; ``None``: give up."""
    return delays[attempts - 1] if 1 <= attempts <= len(delays) else None


def check_webhook_url(url: str) -> str:
    """``url`` if a webhook can be sent there (http or https, with a host); else
    ``ValidationError``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValidationError(
            f"{url!r} is no webhook URL: give an http:// or https:// URL with a host."
        )
    return url


def redact_url(url: str) -> str:
    """``url`` as lists, errors and logs show it: scheme, host, port and the first path
    segment. Many webhook URLs carry their own secret in the rest (Slack's, for one)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    segments = [segment for segment in parts.path.split("/") if segment]
    path = f"/{segments[0]}" if segments else ""
    hidden = len(segments) > 1 or parts.query or parts.username
    return f"{parts.scheme}://{host}{port}{path}" + ("/…" if hidden else "")


def check_email(address: str) -> str:
    """``address`` if it is one plain e-mail address; else ``ValidationError``."""
    if not _EMAIL.fullmatch(address):
        raise ValidationError(
            f"{address!r} is no e-mail address: give one address like ops@example.org."
        )
    return address


def check_events(events: list[str]) -> list[str]:
    """The events as given, sorted and once each; ``ValidationError`` names an unknown one."""
    known = [e.value for e in SUBSCRIBABLE]
    for event in events:
        if event not in known:
            raise ValidationError(f"Unknown event '{event}'; choose from: {', '.join(known)}.")
    return sorted(set(events))


def short(text: str) -> str:
    """A remote answer cut to what a delivery keeps of it."""
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
