"""Notifications in the store: subscriptions, deliveries, and how far the history was read.

The dispatcher (``winslow/notify/dispatcher.py``) reads the history's state changes in
the order of their ids, from a cursor kept here, and adds one delivery per subscription
and event. A delivery names its subscription and event once (a unique pair), so reading
an event again, after a restart or on purpose, never adds a second one. Sending is
claimed by moving ``next_attempt_at`` ahead first, so a slow send is not picked up twice.

Time is a parameter (``at``) where it decides something, so tests move the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from winslow.errors import ConflictError, NotFoundError
from winslow.store.notify_tables import DeliveryRow, NotifyCursorRow, SubscriptionRow
from winslow.store.repo import Store
from winslow.store.rows import now, utc
from winslow.store.tables import EventRow, ProjectRow

CURSOR_ID = 1
"""The id of the cursor's one row."""


@dataclass(frozen=True)
class Subscription:
    """A subscription as the store shows it; ``secret`` is for signing, never for lists."""

    id: int
    name: str
    kind: str
    target: str
    project_id: str | None
    project_name: str | None
    pipeline_name: str | None
    events: tuple[str, ...]
    long_run_seconds: int
    created_at: datetime
    created_by: str
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StateEvent:
    """A state change from the history, with the project as it is now."""

    id: int
    project_id: str
    project_name: str
    pipeline_name: str
    at: datetime
    actor: str
    from_state: str
    to_state: str
    reason: str | None
    waiting_for: dict[str, Any]
    """The project's ``waiting_for``, where it still is in the state the event names."""


@dataclass(frozen=True)
class Delivery:
    id: int
    subscription: str
    event: str
    event_id: int | None
    project_id: str | None
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class NewDelivery:
    subscription_id: int
    event_id: int | None
    event: str
    project_id: str | None
    payload: dict[str, Any]


# -- subscriptions ---------------------------------------------------------------------------


def _subscription(row: SubscriptionRow, project_name: str | None) -> Subscription:
    return Subscription(
        id=row.id,
        name=row.name,
        kind=row.kind,
        target=row.target,
        project_id=row.project_id,
        project_name=project_name,
        pipeline_name=row.pipeline_name,
        events=tuple(row.events or ()),
        long_run_seconds=row.long_run_seconds,
        created_at=utc(row.created_at) or now(),
        created_by=row.created_by,
        secret=row.secret,
    )


def create_subscription(
    store: Store,
    *,
    name: str,
    kind: str,
    target: str,
    secret: str | None,
    project_id: str | None,
    pipeline_name: str | None,
    events: list[str],
    long_run_seconds: int,
    created_by: str,
    at: datetime | None = None,
) -> Subscription:
    """Add a subscription and return it; ``ConflictError`` if the name is taken."""
    try:
        with store.transaction() as session:
            session.add(
                SubscriptionRow(
                    name=name,
                    kind=kind,
                    target=target,
                    secret=secret,
                    project_id=project_id,
                    pipeline_name=pipeline_name,
                    events=list(events),
                    long_run_seconds=long_run_seconds,
                    created_at=at or now(),
                    created_by=created_by,
                )
            )
    except IntegrityError:
        raise ConflictError(
            f"A notification subscription named '{name}' exists already; choose another name, "
            "or remove that one first."
        ) from None
    return get_subscription(store, name)


def _subscriptions_query() -> Any:
    return (
        select(SubscriptionRow, ProjectRow.name)
        .outerjoin(ProjectRow, ProjectRow.id == SubscriptionRow.project_id)
        .order_by(SubscriptionRow.name)
    )


def list_subscriptions(store: Store) -> list[Subscription]:
    """Every subscription, by name."""
    with store.sessions() as session:
        return [_subscription(row, name) for row, name in session.execute(_subscriptions_query())]


def get_subscription(store: Store, name: str) -> Subscription:
    """The subscription called ``name``; ``NotFoundError`` if there is none."""
    query = _subscriptions_query().where(SubscriptionRow.name == name)
    with store.sessions() as session:
        found = session.execute(query).first()
    if found is None:
        raise NotFoundError(
            f"No notification subscription '{name}'; `winslow notify list` shows them."
        )
    return _subscription(found[0], found[1])


def delete_subscription(store: Store, subscription_id: int) -> None:
    """Remove a subscription with its deliveries."""
    with store.transaction() as session:
        session.execute(delete(DeliveryRow).where(DeliveryRow.subscription_id == subscription_id))
        session.execute(delete(SubscriptionRow).where(SubscriptionRow.id == subscription_id))


# -- reading the history ---------------------------------------------------------------------


def read_cursor(store: Store) -> int:
    """The id of the last history line every delivery has been made for."""
    with store.sessions() as session:
        row = session.get(NotifyCursorRow, CURSOR_ID)
        return row.event_id if row is not None else 0


def write_cursor(store: Store, event_id: int) -> None:
    with store.transaction() as session:
        row = session.get(NotifyCursorRow, CURSOR_ID)
        if row is None:
            session.add(NotifyCursorRow(id=CURSOR_ID, event_id=event_id))
        else:
            row.event_id = event_id


def state_events_after(store: Store, after: int, limit: int) -> list[StateEvent]:
    """The history's state changes after event ``after``, oldest first, at most ``limit``;
    those of deleted projects are gone with their history."""
    query = (
        select(EventRow, ProjectRow)
        .join(ProjectRow, ProjectRow.id == EventRow.project_id)
        .where(EventRow.id > after, EventRow.kind == "state")
        .order_by(EventRow.id)
        .limit(limit)
    )
    events = []
    with store.sessions() as session:
        for event, project in session.execute(query):
            data = event.data or {}
            to_state = str(data.get("to", ""))
            events.append(
                StateEvent(
                    id=event.id,
                    project_id=project.id,
                    project_name=project.name,
                    pipeline_name=project.pipeline_name,
                    at=utc(event.at) or now(),
                    actor=event.actor,
                    from_state=str(data.get("from", "")),
                    to_state=to_state,
                    reason=data.get("reason"),
                    waiting_for=dict(project.waiting_for or {})
                    if project.state == to_state
                    else {},
                )
            )
    return events


def state_changes_before(
    store: Store, project_id: str, event_id: int, limit: int = 200
) -> list[tuple[datetime, str, str]]:
    """The project's state changes before event ``event_id``, newest first, as
    ``(at, from, to)``."""
    query = (
        select(EventRow.at, EventRow.data)
        .where(
            EventRow.project_id == project_id,
            EventRow.kind == "state",
            EventRow.id < event_id,
        )
        .order_by(EventRow.id.desc())
        .limit(limit)
    )
    with store.sessions() as session:
        return [
            (utc(at) or now(), str((data or {}).get("from", "")), str((data or {}).get("to", "")))
            for at, data in session.execute(query)
        ]


# -- deliveries ------------------------------------------------------------------------------


def add_deliveries(store: Store, new: list[NewDelivery], at: datetime | None = None) -> int:
    """Add the deliveries not made yet (by subscription and event); return how many."""
    at = at or now()
    added = 0
    with store.transaction() as session:
        for item in new:
            if item.event_id is not None:
                exists = session.scalars(
                    select(DeliveryRow.id).where(
                        DeliveryRow.subscription_id == item.subscription_id,
                        DeliveryRow.event_id == item.event_id,
                    )
                ).first()
                if exists is not None:
                    continue
            session.add(
                DeliveryRow(
                    subscription_id=item.subscription_id,
                    event_id=item.event_id,
                    event=item.event,
                    project_id=item.project_id,
                    payload=item.payload,
                    status="pending",
                    attempts=0,
                    created_at=at,
                    next_attempt_at=at,
                )
            )
            added += 1
    return added


def _delivery(row: DeliveryRow, subscription: str) -> Delivery:
    return Delivery(
        id=row.id,
        subscription=subscription,
        event=row.event,
        event_id=row.event_id,
        project_id=row.project_id,
        payload=dict(row.payload or {}),
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=utc(row.created_at) or now(),
        next_attempt_at=utc(row.next_attempt_at),
        delivered_at=utc(row.delivered_at),
    )


def add_test_delivery(
    store: Store, subscription: Subscription, payload: dict[str, Any]
) -> Delivery:
    """Queue a test notification to ``subscription``; the dispatcher sends it."""
    at = now()
    with store.transaction() as session:
        row = DeliveryRow(
            subscription_id=subscription.id,
            event_id=None,
            event="test",
            project_id=None,
            payload=payload,
            status="pending",
            attempts=0,
            created_at=at,
            next_attempt_at=at,
        )
        session.add(row)
        session.flush()
        return _delivery(row, subscription.name)


def claim_due(store: Store, at: datetime, lease_seconds: float, limit: int = 50) -> list[Delivery]:
    """The pending deliveries due at ``at``, oldest first, each held back for
    ``lease_seconds`` so that no other pass sends it meanwhile."""
    query = (
        select(DeliveryRow, SubscriptionRow.name)
        .join(SubscriptionRow, SubscriptionRow.id == DeliveryRow.subscription_id)
        .where(DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= at)
        .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
        .limit(limit)
    )
    with store.transaction() as session:
        found = list(session.execute(query))
        for row, _ in found:
            row.next_attempt_at = at + timedelta(seconds=lease_seconds)
        return [_delivery(row, name) for row, name in found]


def record_attempt(
    store: Store,
    delivery_id: int,
    *,
    at: datetime,
    error: str | None,
    retry_at: datetime | None,
) -> Delivery | None:
    """Write how an attempt went: delivered without ``error``; else pending until
    ``retry_at``, or failed for good without one. ``None`` if the delivery is gone."""
    with store.transaction() as session:
        row = session.get(DeliveryRow, delivery_id)
        if row is None:
            return None
        row.attempts += 1
        if error is None:
            row.status, row.delivered_at, row.next_attempt_at = "delivered", at, None
        else:
            row.last_error = error
            row.status = "pending" if retry_at is not None else "failed"
            row.next_attempt_at = retry_at
        name = session.scalars(
            select(SubscriptionRow.name).where(SubscriptionRow.id == row.subscription_id)
        ).one()
        return _delivery(row, name)


def list_deliveries(
    store: Store, *, subscription: str | None = None, status: str | None = None, limit: int = 100
) -> list[Delivery]:
    """Deliveries, newest first; only ``subscription``'s and of ``status`` where given."""
    query = (
        select(DeliveryRow, SubscriptionRow.name)
        .join(SubscriptionRow, SubscriptionRow.id == DeliveryRow.subscription_id)
        .order_by(DeliveryRow.id.desc())
        .limit(limit)
    )
    if subscription is not None:
        query = query.where(SubscriptionRow.name == subscription)
    if status is not None:
        query = query.where(DeliveryRow.status == status)
    with store.sessions() as session:
        return [_delivery(row, name) for row, name in session.execute(query)]


def count_deliveries(store: Store) -> int:
    with store.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(DeliveryRow)) or 0)
