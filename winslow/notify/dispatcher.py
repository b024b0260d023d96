"""The dispatcher: turns the history's state changes into deliveries, and sends them.

It reads the append-only history (``events``) by increasing id from a cursor the store
keeps, so nothing is lost across restarts and the engine writes nothing for it. Each pass
has two halves: ``collect`` makes one delivery per subscription and notable state change
(``rules.notice_for``, ``rules.wants``); ``deliver`` sends the deliveries that are due
and writes how each went, with a retry after ``RETRY_DELAYS_SECONDS`` or, when none is
left, ``failed``.

Ids are handed out when a transaction writes, not when it commits: on PostgreSQL a
history line with a smaller id can become visible after one with a larger id. So the
cursor only moves past lines older than ``settle_seconds``; younger ones are read again
next pass, and the store's unique (subscription, event) pair makes that harmless.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from winslow.notify import rules
from winslow.notify.rules import Notice, NotifyEvent
from winslow.notify.senders import DeliveryError, SmtpConfig, send_email, send_webhook
from winslow.store import notifications as stored
from winslow.store.rows import now

if TYPE_CHECKING:
    from winslow.settings import Settings
    from winslow.store.notifications import Delivery, StateEvent, Subscription
    from winslow.store.repo import Store

log = logging.getLogger(__name__)

BATCH = 500
"""History lines read per pass, at most."""


@dataclass(frozen=True)
class NotifyConfig:
    console_url: str
    """Where links in notifications point."""
    smtp: SmtpConfig | None = None
    retry_delays: tuple[float, ...] = rules.RETRY_DELAYS_SECONDS
    poll_seconds: float = 2.0
    """How often the dispatcher looks at the history and for due deliveries."""
    settle_seconds: float = 60.0
    """History lines younger than this are read again next pass (see the module)."""
    timeout_seconds: float = 10.0
    """For one webhook request or one SMTP conversation."""

    @classmethod
    def of(cls, settings: Settings) -> NotifyConfig:
        smtp = None
        if settings.smtp_host:
            smtp = SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                user=settings.smtp_user,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
            )
        return cls(console_url=console_url(settings), smtp=smtp)


def console_url(settings: Settings) -> str:
    """The console's address for links: ``WINSLOW_PUBLIC_URL``, else ``http://host:port``."""
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


class Dispatcher:
    """Collects and sends notifications; ``start`` runs it in a thread, tests call
    ``run_once`` or ``run_until_settled``."""

    def __init__(
        self, store: Store, config: NotifyConfig, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.store = store
        self.config = config
        timeout = httpx.Timeout(config.timeout_seconds)
        self.client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="winslow-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.timeout_seconds + 5)
        self.client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("notify: pass failed; next in %ss", self.config.poll_seconds)
            self._stop.wait(self.config.poll_seconds)

    def run_once(self, at: datetime | None = None) -> int:
        """Collect, then send what is due; return how many deliveries were sent or tried."""
        self.collect(at)
        return self.deliver(at)

    def run_until_settled(self, timeout: float = 30.0) -> None:
        """Pass until no delivery is pending (each retry waits its delay); for tests."""
        deadline = now() + timedelta(seconds=timeout)
        while True:
            self.run_once()
            pending = stored.list_deliveries(self.store, status="pending", limit=1)
            if not pending or now() > deadline:
                return
            self._stop.wait(0.02)

    # -- collecting --------------------------------------------------------------------------

    def collect(self, at: datetime | None = None) -> int:
        """Make deliveries for the state changes after the cursor; return how many."""
        at = at or now()
        cursor = stored.read_cursor(self.store)
        changes = stored.state_events_after(self.store, cursor, BATCH)
        if not changes:
            return 0
        subscriptions = stored.list_subscriptions(self.store)
        new: list[stored.NewDelivery] = []
        for change in changes:
            notice = self._notice(change) if subscriptions else None
            if notice is not None:
                new += self._deliveries(notice, subscriptions)
        added = stored.add_deliveries(self.store, new, at) if new else 0
        settled = at - timedelta(seconds=self.config.settle_seconds)
        moved = cursor
        for change in changes:
            if change.at > settled:
                break
            moved = change.id
        if moved != cursor:
            stored.write_cursor(self.store, moved)
        if added:
            log.info("notify: %d notifications to send", added)
        return added

    def _notice(self, change: StateEvent) -> Notice | None:
        event = rules.notice_for(change)
        if event is None:
            return None
        ran_for = None
        if event is NotifyEvent.SUCCEEDED:
            earlier = stored.state_changes_before(self.store, change.project_id, change.id)
            started = rules.running_since(earlier)
            ran_for = (change.at - started).total_seconds() if started else None
        elif event is NotifyEvent.FAILED and change.from_state == "pausing":
            earlier = stored.state_changes_before(self.store, change.project_id, change.id)
            if rules.failing_before(earlier):
                return None
        return Notice(event, change, ran_for)

    def _deliveries(
        self, notice: Notice, subscriptions: list[Subscription]
    ) -> list[stored.NewDelivery]:
        return [
            stored.NewDelivery(
                subscription_id=s.id,
                event_id=notice.change.id,
                event=notice.event.value,
                project_id=notice.change.project_id,
                payload=rules.build_payload(notice, s.name, self.config.console_url),
            )
            for s in subscriptions
            if rules.wants(s, notice)
        ]

    # -- sending -----------------------------------------------------------------------------

    def deliver(self, at: datetime | None = None) -> int:
        """Send every delivery due at ``at``; return how many were tried."""
        at = at or now()
        lease = self.config.timeout_seconds * 3
        due = stored.claim_due(self.store, at, lease)
        if not due:
            return 0
        by_name = {s.name: s for s in stored.list_subscriptions(self.store)}
        for delivery in due:
            subscription = by_name.get(delivery.subscription)
            if subscription is not None:
                self._attempt(delivery, subscription)
        return len(due)

    def _attempt(self, delivery: Delivery, subscription: Subscription) -> None:
        try:
            self._send(delivery, subscription)
        except DeliveryError as exc:
            attempts = delivery.attempts + 1
            delay = rules.retry_delay(attempts, self.config.retry_delays)
            ended = now()
            retry_at = ended + timedelta(seconds=delay) if delay is not None else None
            stored.record_attempt(
                self.store, delivery.id, at=ended, error=exc.message, retry_at=retry_at
            )
            total = len(self.config.retry_delays) + 1
            if delay is None:
                log.error(
                    "notify: delivery %s to '%s' failed for good after %d attempts: %s",
                    delivery.id,
                    subscription.name,
                    attempts,
                    exc.message,
                )
            else:
                log.warning(
                    "notify: delivery %s to '%s': attempt #%d/%d failed; will retry in %gs: %s",
                    delivery.id,
                    subscription.name,
                    attempts,
                    total,
                    delay,
                    exc.message,
                )
            return
        stored.record_attempt(self.store, delivery.id, at=now(), error=None, retry_at=None)
        log.info(
            "notify: delivery %s (%s) to '%s' delivered",
            delivery.id,
            delivery.event,
            subscription.name,
        )

    def _send(self, delivery: Delivery, subscription: Subscription) -> None:
        if subscription.kind == "webhook":
            send_webhook(
                self.client,
                subscription.target,
                subscription.secret or "",
                delivery.id,
                delivery.payload,
            )
        else:
            send_email(
                self.config.smtp,
                subscription.target,
                delivery.payload,
                self.config.timeout_seconds,
            )
