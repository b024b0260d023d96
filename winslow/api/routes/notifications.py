"""Notification subscriptions and their deliveries.

A subscription sends a signed webhook or an e-mail when a project needs a person (or
succeeded after a long run); it covers one project, or every project of a pipeline. Any
token may manage a project's subscriptions, as it may steer the project itself; a
pipeline's reach every project of it, so they take an admin token. A webhook's secret is
made by the server and shown once, at creation. The server's dispatcher
(``winslow/notify/dispatcher.py``) sends; these routes only write and read the store, so
a test notification is queued (202) and shows up in the deliveries.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from winslow.api.access import check_project
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentCaller
from winslow.api.models import Body
from winslow.api.routes import API_V1
from winslow.core.access import Action
from winslow.errors import ForbiddenError, NotFoundError, ValidationError
from winslow.notify import rules
from winslow.notify.dispatcher import console_url
from winslow.pipeline.model import NAME_PATTERN
from winslow.store import notifications as stored
from winslow.store.rows import now
from winslow.store.tokens import Caller

router = APIRouter(prefix=f"{API_V1}/notifications", tags=["notifications"])

EventName = Literal["awaiting_input", "paused", "failed", "succeeded"]
DeliveryStatus = Literal["pending", "delivered", "failed"]

ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"description": "A pipeline's subscriptions take an admin token."}
}


class SubscriptionCreate(Body):
    """Exactly one of ``webhook`` and ``email``; exactly one of ``project`` and ``pipeline``."""

    name: str = Field(max_length=63)
    webhook: str | None = Field(default=None, max_length=2000, description="An http(s) URL.")
    email: str | None = Field(default=None, max_length=254)
    project: str | None = Field(default=None, max_length=63, description="Name or id.")
    pipeline: str | None = Field(default=None, max_length=63)
    events: list[EventName] = Field(
        default=[], max_length=4, description="Events to hear of; empty: all."
    )
    long_run_seconds: int = Field(
        default=rules.LONG_RUN_SECONDS,
        ge=0,
        le=365 * 86400,
        description="A success is news only after a run at least this long.",
    )


class SubscriptionPublic(BaseModel):
    name: str
    kind: Literal["webhook", "email"]
    target: str
    """The e-mail address, or the webhook's URL: whole when made, cut short in lists."""
    project: str | None
    """The project's name, for a project's subscription."""
    project_id: str | None
    pipeline: str | None
    events: list[str]
    long_run_seconds: int
    created_at: datetime
    created_by: str


class SubscriptionCreated(SubscriptionPublic):
    """The new subscription; a webhook's ``secret`` is shown this once."""

    secret: str | None


class SubscriptionsPublic(BaseModel):
    data: list[SubscriptionPublic]


class DeliveryPublic(BaseModel):
    id: int
    subscription: str
    event: str
    project: str | None
    """The project's name when the notification was made."""
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveriesPublic(BaseModel):
    data: list[DeliveryPublic]


def _public(s: stored.Subscription, *, whole: bool = False) -> dict[str, Any]:
    """The subscription as the API shows it; a webhook's URL cut short unless ``whole``
    (its creator just sent it), since many carry a secret of their own."""
    return {
        "name": s.name,
        "kind": s.kind,
        "target": s.target if whole or s.kind != "webhook" else rules.redact_url(s.target),
        "project": s.project_name,
        "project_id": s.project_id,
        "pipeline": s.pipeline_name,
        "events": list(s.events),
        "long_run_seconds": s.long_run_seconds,
        "created_at": s.created_at,
        "created_by": s.created_by,
    }


def _delivery(d: stored.Delivery) -> DeliveryPublic:
    project = d.payload.get("project")
    return DeliveryPublic(
        id=d.id,
        subscription=d.subscription,
        event=d.event,
        project=project.get("name") if isinstance(project, dict) else None,
        status=d.status,  # type: ignore[arg-type]
        attempts=d.attempts,
        last_error=d.last_error,
        created_at=d.created_at,
        next_attempt_at=d.next_attempt_at,
        delivered_at=d.delivered_at,
        payload=d.payload,
    )


def _need_admin(caller: Caller, pipeline: str) -> None:
    if not caller.admin:
        raise ForbiddenError(
            f"Subscriptions to every project of pipeline '{pipeline}' take an admin token; "
            "subscribe to one project instead, or ask an admin."
        )


def _yours(caller: Caller, created_by: str) -> bool:
    """Whether a subscription is the caller's to see and change (admins: every one); others'
    hold their webhook URLs and e-mail addresses."""
    return caller.principal.acts_as_admin or created_by == caller.name


def _own_subscription(context: AppContext, caller: Caller, name: str) -> stored.Subscription:
    found = stored.get_subscription(context.store, name)
    if not _yours(caller, found.created_by):
        raise NotFoundError(
            f"You have no subscription '{name}'; `winslow notify list` shows yours."
        )
    return found


def _one_of(body: SubscriptionCreate) -> None:
    if (body.webhook is None) == (body.email is None):
        raise ValidationError("Give exactly one of 'webhook' (a URL) and 'email' (an address).")
    if (body.project is None) == (body.pipeline is None):
        raise ValidationError("Give exactly one of 'project' and 'pipeline' as the scope.")
    if not re.fullmatch(NAME_PATTERN, body.name):
        raise ValidationError(
            f"{body.name!r} cannot name a subscription: use 1 to 63 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit."
        )


@router.post(
    "/subscriptions",
    response_model=SubscriptionCreated,
    status_code=201,
    responses={**ADMIN_ONLY, 404: {"description": "No such project or pipeline."}},
)
def create_subscription(
    body: SubscriptionCreate, context: ContextDep, caller: CurrentCaller
) -> SubscriptionCreated:
    """Subscribe a webhook or an e-mail address to a project's or a pipeline's notices."""
    _one_of(body)
    project_id = None
    if body.pipeline is not None:
        _need_admin(caller, body.pipeline)
        if body.pipeline not in context.pipelines.files():
            raise NotFoundError(
                f"No pipeline '{body.pipeline}'; `winslow pipeline list` shows them."
            )
    else:
        project_id = check_project(context, caller, body.project or "", Action.READ).project.id
    secret = None
    if body.webhook is not None:
        kind, target = "webhook", rules.check_webhook_url(body.webhook)
        secret = rules.new_secret()
    else:
        kind, target = "email", rules.check_email(body.email or "")
        if not context.settings.smtp_host:
            raise ValidationError(
                "This server sends no e-mail: set WINSLOW_SMTP_HOST (and WINSLOW_SMTP_FROM), "
                "restart it, then subscribe again; or use a webhook."
            )
    made = stored.create_subscription(
        context.store,
        name=body.name,
        kind=kind,
        target=target,
        secret=secret,
        project_id=project_id,
        pipeline_name=body.pipeline,
        events=rules.check_events(list(body.events)),
        long_run_seconds=body.long_run_seconds,
        created_by=caller.name,
    )
    return SubscriptionCreated(**_public(made, whole=True), secret=secret)


@router.get("/subscriptions", response_model=SubscriptionsPublic)
def list_subscriptions(context: ContextDep, caller: CurrentCaller) -> SubscriptionsPublic:
    """Your subscriptions (an admin's: every one), by name; never a webhook's secret."""
    return SubscriptionsPublic(
        data=[
            SubscriptionPublic(**_public(s))
            for s in stored.list_subscriptions(context.store)
            if _yours(caller, s.created_by)
        ]
    )


@router.delete("/subscriptions/{name}", status_code=204, responses=ADMIN_ONLY)
def delete_subscription(name: str, context: ContextDep, caller: CurrentCaller) -> Response:
    """Remove a subscription and its deliveries; nothing more is sent to it."""
    found = _own_subscription(context, caller, name)
    if found.pipeline_name is not None:
        _need_admin(caller, found.pipeline_name)
    stored.delete_subscription(context.store, found.id)
    return Response(status_code=204)


@router.post("/subscriptions/{name}/test", response_model=DeliveryPublic, status_code=202)
def send_test(name: str, context: ContextDep, caller: CurrentCaller) -> DeliveryPublic:
    """Queue a test notification to the subscription; the deliveries show how it went."""
    found = _own_subscription(context, caller, name)
    payload = rules.trial_payload(found.name, now(), console_url(context.settings))
    return _delivery(stored.add_test_delivery(context.store, found, payload))


@router.get("/deliveries", response_model=DeliveriesPublic)
def list_deliveries(
    context: ContextDep,
    caller: CurrentCaller,
    subscription: Annotated[str | None, Query(max_length=63)] = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveriesPublic:
    """Deliveries to your subscriptions (an admin's: all), newest first, with their
    attempts and last error."""
    found = stored.list_deliveries(
        context.store, subscription=subscription, status=status, limit=limit
    )
    if not caller.principal.acts_as_admin:
        mine = {
            s.name for s in stored.list_subscriptions(context.store) if _yours(caller, s.created_by)
        }
        found = [d for d in found if d.subscription in mine]
    return DeliveriesPublic(data=[_delivery(d) for d in found])
