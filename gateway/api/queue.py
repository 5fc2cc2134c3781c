"""The unified queue: every synced ticket of the workspace, filtered, sorted, paged, counted.

- ``GET /v1/tickets``: the global queue.
- ``GET /v1/customers/{customer_id}/tickets``: the same records and filters for one customer.
- ``POST /v1/webhooks/{connection_id}``: vendor webhooks (signature checked by the plugin).
- ``POST /v1/admin/connections/{connection_id}/resync``: rebuild a connection's tickets.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter, RawBody

from gateway import customers, sync, webhooks
from gateway.api.common import ADMIN, READ, authorize, gateway_of, own_connection, redis_of
from gateway.api.openapi import WEBHOOK_BODY, declared
from gateway.api.problems import ApiError, clip, not_found
from gateway.api.schemas import ResyncStarted
from gateway.errors import BadSignature, NotSupported
from gateway.models import Capability, Ticket
from gateway.store import RawPage, TicketFilter

log = logging.getLogger("gateway.webhooks")

Many = Annotated[list[str] | None, QueryParameter(required=False)]
SortBy = Literal["updated", "created", "age"]
Order = Literal["desc", "asc"]


class Facets(msgspec.Struct):
    status: dict[str, int]
    cat: dict[str, int]
    customer: dict[str, int]
    assignee: dict[str, int]


class TicketPage(msgspec.Struct, omit_defaults=True):
    """One page of the queue; pass ``next_cursor`` back as ``cursor`` for the next."""

    tickets: list[Ticket]
    next_cursor: str | None = None
    total: int | None = None
    facets: Facets | None = None


class WebhookAccepted(msgspec.Struct):
    """``events``: the changed records the gateway will fetch. ``duplicate``: this delivery had
    been taken already (a replay, or a vendor retry whose answer was lost); nothing is fetched."""

    events: int
    duplicate: bool = False


@dataclass
class QueueQuery:
    """The queue's filters, sort and paging, as both queue routes take them."""

    filter: TicketFilter
    sort: str
    order: str
    limit: int
    cursor: str | None
    facets: bool


def queue_query(
    status: FromQuery[Many] = None,
    status_id: FromQuery[Many] = None,
    category: FromQuery[Many] = None,
    customer: FromQuery[Many] = None,
    assignee: FromQuery[Many] = None,
    connection: FromQuery[Many] = None,
    vendor: FromQuery[Many] = None,
    priority: FromQuery[Many] = None,
    board: FromQuery[Many] = None,
    q: FromQuery[str | None] = None,
    created_after: FromQuery[datetime | None] = None,
    created_before: FromQuery[datetime | None] = None,
    updated_after: FromQuery[datetime | None] = None,
    updated_before: FromQuery[datetime | None] = None,
    sort: FromQuery[SortBy] = "updated",
    order: FromQuery[Order] = "desc",
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
    facets: FromQuery[bool] = False,
) -> QueueQuery:
    """Filters combine (AND); a filter given several times matches any of its values.
    ``status`` is the PSA's status name, ``status_id`` is ``connection:status id``, ``category``
    the canonical one; ``q`` searches summaries."""
    flt = TicketFilter(
        status=status_id or [], status_name=status or [], category=category or [], customer=customer or [],
        assignee=assignee or [], connection=connection or [], vendor=vendor or [], priority=priority or [],
        board=board or [], text=(q or "").strip(), created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before,
    )
    return QueueQuery(flt, sort, order, limit, cursor, facets)


async def _page(request: Request, query: QueueQuery) -> Response[TicketPage]:
    principal = authorize(request, READ)
    gw = gateway_of(request)
    for connection in query.filter.connection:
        own_connection(gw, principal, connection, f"connection {connection}")
    try:
        page = await gw.store.page_async(
            redis_of(request), principal.workspace, query.filter, sort=query.sort, order=query.order,
            limit=max(1, min(query.limit, 500)), cursor=query.cursor, facets=query.facets,
        )
    except ValueError as exc:
        raise ApiError(400, "Bad cursor", str(exc), "start again without a cursor") from None
    return Response(content=page_json(page), media_type="application/json")


_encode = msgspec.json.Encoder().encode


def page_json(page: RawPage) -> bytes:
    """``TicketPage``'s JSON with the tickets spliced in as the store holds them (the same
    bytes msgspec would write for the struct: its fields in order, defaults left out)."""
    parts = [b'{"tickets":[', page.tickets, b"]"]
    if page.next_cursor is not None:
        parts += [b',"next_cursor":', _encode(page.next_cursor)]
    if page.total is not None:
        parts += [b',"total":', _encode(page.total)]
    if page.facets is not None:
        parts += [b',"facets":', _encode(msgspec.convert(page.facets, Facets))]
    parts.append(b"}")
    return b"".join(parts)


QUEUE_QUERY = {"queue": Provide(queue_query, sync_to_thread=False)}


@get("/v1/tickets", operation_id="listTickets", dependencies=QUEUE_QUERY, opt={"quiet": True})
async def list_tickets(request: Request, queue: NamedDependency[QueueQuery]) -> Response[TicketPage]:
    """The queue over every PSA connection, filtered, sorted and paged (see the parameters)."""
    return await _page(request, queue)


def customer_company_refs(request: Request, customer_id: str) -> list[str]:
    """The PSA company references of a workspace customer (or a company reference itself)."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    refs = customers.company_refs(gw, principal.workspace, customer_id)
    if refs is None:
        if ":" not in customer_id:
            raise not_found(f"customer {customer_id}")
        own_connection(gw, principal, customer_id.split(":", 1)[0], f"customer {customer_id}")
        refs = [customer_id]
    return refs


@get("/v1/customers/{customer_id:str}/tickets", operation_id="listCustomerTickets", dependencies=QUEUE_QUERY,
     opt={"quiet": True})
async def list_customer_tickets(
    request: Request, customer_id: FromPath[str], queue: NamedDependency[QueueQuery]
) -> Response[TicketPage]:
    """One customer's tickets across every PSA: the global queue filtered by that customer
    (a ``customer`` parameter is replaced by the customer's companies)."""
    queue.filter.customer = await anyio.to_thread.run_sync(customer_company_refs, request, customer_id)
    return await _page(request, queue)


@post("/v1/webhooks/{connection_id:str}", operation_id="receiveWebhook", status_code=202, sync_to_thread=True,
      request_max_body_size=5 * 1024 * 1024, opt={"public": True}, operation_class=declared(body=WEBHOOK_BODY))
def receive_webhook(request: Request, connection_id: FromPath[str], body: RawBody) -> WebhookAccepted:
    """A vendor webhook. No API key: the vendor's signature (checked by the plugin against the
    connection's ``webhook_secret_env``) is the credential. The changed tickets are fetched."""
    gw = gateway_of(request)
    conn = gw.connections.get(connection_id)
    found = gw.settings.connection(connection_id)
    secret_env = found[1].webhook_secret_env if found else None
    secret = os.environ.get(secret_env) if secret_env else None
    if conn is None or not secret or not gw.vendors.has(conn.vendor, Capability.WEBHOOK):
        raise not_found(f"webhook endpoint {connection_id}")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        events = gw.vendor(connection_id).webhook_parse(headers=headers, body=body, secret=secret)
    except BadSignature as exc:
        log.warning("refused a webhook for %s: %s (from %s)", connection_id, exc, request.client.host if request.client else "?")
        raise ApiError(401, "Bad webhook signature", "the signature is missing or does not match",
                       "sign deliveries with the connection's webhook secret") from None
    except NotSupported:
        raise not_found(f"webhook endpoint {connection_id}") from None
    except ValueError as exc:
        raise ApiError(400, "Unreadable webhook", clip(str(exc)), "send the vendor's documented payload") from None
    delivery = webhooks.as_delivery(events)
    try:
        first = webhooks.ReplayGuard(gw.redis).first_time(connection_id, delivery, body)
    except webhooks.StaleDelivery as exc:
        log.warning("refused a stale webhook for %s: %s", connection_id, exc)
        raise ApiError(400, "Stale webhook delivery", str(exc), "deliveries are taken only while fresh") from None
    if not first:
        # Acknowledged, so a vendor retrying a delivery whose answer it lost stops retrying.
        log.info("ignored a repeated webhook delivery for %s", connection_id)
        return WebhookAccepted(0, duplicate=True)
    shape = gw.vendors.info(conn.vendor).id_shape
    count = 0
    for event in delivery.events:
        if event.entity in ("ticket", "note") and shape.admits(event.vendor_id):
            sync.fetch_soon(gw, connection_id, event.vendor_id, event.action if event.entity == "ticket" else "updated")
            count += 1
    return WebhookAccepted(count)


@post("/v1/admin/connections/{connection_id:str}/resync", operation_id="resyncConnection", status_code=202,
      sync_to_thread=True, operation_class=declared())
def resync_connection(request: Request, connection_id: FromPath[str]) -> ResyncStarted:
    """Drop a PSA connection's tickets from the store and backfill them again (the store is a
    cache). RMM and documentation connections keep no tickets: 409."""
    principal = authorize(request, ADMIN)
    gw = gateway_of(request)
    own_connection(gw, principal, connection_id, f"connection {connection_id}")
    if connection_id not in sync.synced_connections(gw):
        conn = gw.connection(connection_id)
        kind = gw.vendors.info(conn.vendor).kind.value
        raise ApiError(409, "Nothing to resync", f"{connection_id} is a {kind} connection ({conn.vendor}); "
                       "resync rebuilds the ticket store, which holds only PSA connections' tickets",
                       "resync a PSA connection", applies_to="psa")
    sync.resync(gw, connection_id)
    return ResyncStarted(connection_id, "resyncing")


ROUTES: list[Any] = [list_tickets, list_customer_tickets, receive_webhook, resync_connection]
