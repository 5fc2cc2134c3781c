"""Webhook subscriptions of a workspace (admin): create, list, delete, enable again.

- ``POST /v1/admin/subscriptions``: a URL and the event types it wants (none: all); the answer
  carries the subscription's signing secret, shown this once.
- ``GET /v1/admin/subscriptions``: every subscription with its delivery state (cursor, events
  pending, failing since, last error); disabled ones are listed with when and why.
- ``GET /v1/admin/subscriptions/{id}``, ``DELETE /v1/admin/subscriptions/{id}``.
- ``POST /v1/admin/subscriptions/{id}/enable``: enable a disabled subscription and send what it
  has pending from the log; ``after`` replays from an earlier event.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated
from urllib.parse import urlsplit

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody

from gateway import delivery, events
from gateway.api.auth import Principal
from gateway.api.common import ADMIN, authorize, gateway_of
from gateway.api.problems import ApiError, not_found
from gateway.core import Gateway

Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000)]


class SubscriptionCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Where to send events and which types (an empty list: every type)."""

    url: Url
    types: list[str] = []


class SubscriptionEnable(msgspec.Struct, forbid_unknown_fields=True):
    """``after``: an event id to send from (replay); absent, delivery goes on from its cursor."""

    after: str | None = None


class SubscriptionView(msgspec.Struct, omit_defaults=True):
    id: str
    url: str
    types: list[str]
    status: str
    created_at: datetime
    cursor: str
    pending: int  # events of its types after the cursor (among the next 1,000 of the log)
    delivered: int = 0
    failing_since: datetime | None = None
    last_error: str | None = None
    last_status: int | None = None
    retry_at: datetime | None = None
    disabled_at: datetime | None = None


class SubscriptionCreated(msgspec.Struct):
    """The new subscription and its signing secret (``whsec_...``), shown only this once."""

    subscription: SubscriptionView
    secret: str


def _time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=timezone.utc) if value else None


def _view(gw: Gateway, sub: delivery.Subscription) -> SubscriptionView:
    state = delivery.load_state(gw, sub.id)
    return SubscriptionView(
        sub.id, sub.url, sub.types, sub.status, sub.created_at, state.cursor,
        delivery.pending_count(gw, sub, state.cursor), state.delivered, _time(state.failing_since),
        state.last_error, state.last_status, _time(state.retry_at), sub.disabled_at,
    )  # fmt: skip


def _own(gw: Gateway, principal: Principal, sid: str) -> delivery.Subscription:
    sub = delivery.get(gw, principal.workspace, sid) if sid.startswith("sub_") else None
    if sub is None:
        raise not_found(f"subscription {sid}")
    return sub


@post("/v1/admin/subscriptions", operation_id="createSubscription", status_code=201, sync_to_thread=True)
def create_subscription(request: Request, data: JSONBody[SubscriptionCreate]) -> SubscriptionCreated:
    """Subscribe a URL to the workspace's events (signed with Standard Webhooks); it is sent
    what happens from now on. The secret is in this answer only."""
    principal = authorize(request, ADMIN)
    gw = gateway_of(request)
    parts = urlsplit(data.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, "Bad URL", f"{data.url!r} is not an http(s) URL", "give the receiver's full URL")
    unknown = sorted(set(data.types) - set(events.EVENT_TYPES))
    if unknown:
        raise ApiError(400, "Unknown event type", f"{', '.join(unknown)} is not an event type",
                       "see docs/events.md for the catalogue", valid=list(events.EVENT_TYPES))  # fmt: skip
    sub = delivery.create(gw, principal.workspace, data.url, data.types)
    return SubscriptionCreated(_view(gw, sub), sub.secret)


@get("/v1/admin/subscriptions", operation_id="listSubscriptions", sync_to_thread=True)
def list_subscriptions(request: Request) -> list[SubscriptionView]:
    """The workspace's subscriptions and where their delivery stands (disabled ones too)."""
    principal = authorize(request, ADMIN)
    gw = gateway_of(request)
    return [_view(gw, s) for s in delivery.all_of(gw, principal.workspace)]


@get("/v1/admin/subscriptions/{sid:str}", operation_id="getSubscription", sync_to_thread=True)
def get_subscription(request: Request, sid: FromPath[str]) -> SubscriptionView:
    principal = authorize(request, ADMIN)
    gw = gateway_of(request)
    return _view(gw, _own(gw, principal, sid))


@delete("/v1/admin/subscriptions/{sid:str}", operation_id="deleteSubscription", status_code=204, sync_to_thread=True)
def delete_subscription(request: Request, sid: FromPath[str]) -> None:
    """Stop sending to this subscription (a run in flight finishes its one attempt)."""
    principal = authorize(request, ADMIN)
    gw = gateway_of(request)
    _own(gw, principal, sid)
    delivery.delete(gw, principal.workspace, sid)


@post("/v1/admin/subscriptions/{sid:str}/enable", operation_id="enableSubscription", status_code=200,
      sync_to_thread=True)  # fmt: skip
def enable_subscription(request: Request, sid: FromPath[str], data: JSONBody[SubscriptionEnable | None] = None) -> SubscriptionView:
    """Enable a subscription again and send its pending events from the log, in order
    (``after`` replays from that event id)."""
    principal = authorize(request, ADMIN)
    gw = gateway_of(request)
    _own(gw, principal, sid)
    after = data.after if data else None
    if after is not None and not events.STREAM_ID.match(after):
        raise ApiError(400, "Bad after", f"{after!r} is not an event id", "pass the id of an event")
    sub = delivery.enable(gw, principal.workspace, sid, after=after)
    assert sub is not None
    return _view(gw, sub)


ROUTES = [create_subscription, list_subscriptions, get_subscription, delete_subscription, enable_subscription]
