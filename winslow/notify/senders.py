"""Sending one notification: a signed webhook over httpx, or an e-mail over SMTP.

Each sender either returns (delivered) or raises ``DeliveryError`` with words for the
delivery's ``last_error``; the dispatcher decides about retries. A webhook counts as
delivered on any 2xx answer; a redirect is not followed (the URL is what was subscribed).
"""

from __future__ import annotations

import json
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from winslow import __version__
from winslow.errors import WinslowError
from winslow.notify.rules import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    email_text,
    redact_url,
    short,
    sign,
)


class DeliveryError(WinslowError):
    """A notification could not be delivered this time; the message says why."""

    code = "delivery_failed"


@dataclass(frozen=True)
class SmtpConfig:
    """The mail server e-mails go through (``WINSLOW_SMTP_*``)."""

    host: str
    port: int = 25
    sender: str = "winslow@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact, keys sorted, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def send_webhook(
    client: httpx.Client, url: str, secret: str, delivery_id: int, payload: dict[str, Any]
) -> None:
    """POST ``payload`` to ``url``, signed with ``secret``; raise ``DeliveryError``."""
    body = body_bytes(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"winslow/{__version__}",
        SIGNATURE_HEADER: sign(secret, body),
        DELIVERY_HEADER: str(delivery_id),
        EVENT_HEADER: str(payload.get("event", "")),
    }
    shown = redact_url(url)
    try:
        answer = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        # httpx's words may hold the whole URL.
        words = short(str(exc).replace(url, shown))
        raise DeliveryError(f"POST {shown} -> {type(exc).__name__}: {words}") from exc
    if not 200 <= answer.status_code < 300:
        raise DeliveryError(f"POST {shown} -> HTTP {answer.status_code}: {short(answer.text)}")


def send_email(
    smtp: SmtpConfig | None, address: str, payload: dict[str, Any], timeout: float
) -> None:
    """Mail ``payload`` in plain words to ``address`` through ``smtp``; raise
    ``DeliveryError``."""
    if smtp is None:
        raise DeliveryError(
            "This server sends no e-mail: set WINSLOW_SMTP_HOST (and WINSLOW_SMTP_FROM) and "
            "restart it."
        )
    subject, text = email_text(payload)
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = address
    message["Subject"] = subject
    message.set_content(text)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.user:
                client.login(smtp.user, smtp.password or "")
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"mail to {address} via {smtp.host}:{smtp.port} -> {type(exc).__name__}: "
            f"{short(str(exc))}"
        ) from exc
