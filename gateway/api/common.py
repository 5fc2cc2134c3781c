"""What every route module shares: the gateway, the caller's key, workspace ownership checks."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request

from gateway import intake, writekinds
from gateway.aio import Channel
from gateway.api.auth import Principal
from gateway.api.problems import ApiError, clip, not_found
from gateway.api.schemas import IDEMPOTENCY_KEY_MAX_LENGTH, WriteAccepted
from gateway.core import Gateway
from gateway.models import Capability, Ticket, split_ref
from gateway.writes import WriteStep

READ, WRITE, ADMIN, EVENTS = "tickets:read", "tickets:write", "admin", "events:read"
IDEMPOTENCY_HEADER = "idempotency-key"


def gateway_of(request: Request) -> Gateway:
    """The ``Gateway`` this app serves."""
    return request.app.state.gateway


def authorize(request: Request, scope: str) -> Principal:
    """The caller's key, checked for ``scope`` (401 without a valid key, 403 without it)."""
    return request.app.state.keyring.principal(request, scope)


def own_connection(gw: Gateway, principal: Principal, connection_id: str, what: str) -> None:
    """404 (never 403) unless the connection is in the caller's workspace; 503 when its
    plugin failed to load."""
    down = gw.unavailable.get(connection_id)
    if down and down[0] == principal.workspace:
        raise ApiError(503, "Connection unavailable", down[1], "fix or reinstall the vendor plugin, then restart")
    conn = gw.connections.get(connection_id)
    if conn is None or conn.workspace != principal.workspace:
        raise not_found(what)


def own_ref(gw: Gateway, principal: Principal, ref: str, what: str = "ticket") -> tuple[str, str]:
    """Split a reference the caller may use into ``(connection, vendor id)``; 404 when the id
    cannot be one at that vendor (``VendorInfo.id_shape``), before any vendor call."""
    connection_id, vendor_id = split_ref(ref)
    own_connection(gw, principal, connection_id, f"{what} {clip(ref)}")
    vendor_id_or_404(gw, connection_id, vendor_id, f"{what} {clip(ref)}")
    return connection_id, vendor_id


def vendor_id_or_404(gw: Gateway, connection_id: str, vendor_id: str, what: str) -> str:
    """``vendor_id`` if it can name a record at the connection's vendor, else 404."""
    if not gw.vendors.info(gw.connection(connection_id).vendor).id_shape.admits(vendor_id):
        raise not_found(what)
    return vendor_id


def owned_ticket(gw: Gateway, principal: Principal, ref: str) -> Ticket:
    """The ticket (cached facts) if it exists in the caller's workspace, else 404."""
    connection_id, _ = own_ref(gw, principal, ref)
    gw.vendors.require(gw.connection(connection_id).vendor, Capability.TICKET_READ)
    ticket = intake.cached_ticket(gw, ref)
    if ticket is None:
        raise not_found(f"ticket {ref}")
    return ticket


def idempotency_key(request: Request) -> str | None:
    """The caller's ``Idempotency-Key`` (1 to 255 characters), if sent."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not (1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH):
        raise ApiError(400, "Bad Idempotency-Key", f"an Idempotency-Key is 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters")
    return key


def accepted(gw: Gateway, submitted: intake.Submitted) -> WriteAccepted:
    """The 202 body for a stored write."""
    return WriteAccepted(submitted.write_id, submitted.status, submitted.dedup_key, duplicate=not submitted.created)


def redis_of(request: Request) -> Channel:
    """The API's hot-path Redis connection for the running event loop (``gateway.aio``: it
    belongs to the loop it was opened on; uvicorn runs one, test clients may start several)."""
    clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Channel] = request.app.state.aredis
    loop = asyncio.get_running_loop()
    client = clients.get(loop)
    if client is None:
        client = clients[loop] = gateway_of(request).async_redis()
    return client


async def close_async_redis(clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Channel]) -> None:
    """Close the running loop's connection (the app's shutdown)."""
    client = clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def _plan_on_loop(plan: Callable[[Callable[[], Ticket]], list[WriteStep]],
                  ticket: Callable[[], Ticket]) -> list[WriteStep] | None:
    """``plan`` run on the event loop; ``None`` when it needs a lookup this process does not
    hold (``intake.WouldBlock``): then it must run in a thread."""
    try:
        with intake.without_io():
            return plan(ticket)
    except intake.WouldBlock:
        return None


def _facts_needed() -> Ticket:
    raise intake.WouldBlock("the ticket's facts")


async def accept_ticket_write(request: Request, principal: Principal, connection_id: str, ref: str,
                              plan: Callable[[Callable[[], Ticket]], list[WriteStep]], /, **write: Any) -> WriteAccepted:
    """Accept a write to one ticket (``write``: ``intake.submit``'s arguments but the connection
    and steps), with as few round trips as the write allows:

    1. a resent ``Idempotency-Key`` is answered from its record;
    2. a plan that needs none of the ticket's facts (a reply, a time entry) is stored by one
       script that also checks the ticket is held (in the store or the cache);
    3. a plan that needs them (a status change) reads them in one round trip first;
    4. anything else, and a ticket held nowhere, runs in a thread: the ticket is read from the
       cache or the vendor (404 when it does not exist), planned and stored as before.
    """
    gw = gateway_of(request)
    client = redis_of(request)
    resent = await intake.replay_async(gw, client, **write)
    if resent is not None:
        return accepted(gw, resent)
    steps = _plan_on_loop(plan, _facts_needed)
    if steps is not None:
        submitted = await intake.submit_async(gw, client, connection=connection_id, steps=steps,
                                              known=intake.ticket_keys(gw, ref), **write)
        if submitted is not None:
            return accepted(gw, submitted)
    else:
        facts = await intake.ticket_facts_async(gw, client, ref)
        if facts is not None:
            def held() -> Ticket:
                gw.vendors.require(gw.connection(connection_id).vendor, Capability.TICKET_READ)
                return facts

            steps = _plan_on_loop(plan, held)
            if steps is not None:
                submitted = await intake.submit_async(gw, client, connection=connection_id, steps=steps, **write)
                if submitted is not None:
                    return accepted(gw, submitted)

    def in_thread() -> intake.Submitted:
        ticket = owned_ticket(gw, principal, ref)
        return intake.submit(gw, connection=connection_id, steps=plan(lambda: ticket), **write)

    return accepted(gw, await anyio.to_thread.run_sync(in_thread))


async def submit_ticket_write(request: Request, ref: str, kind: writekinds.WriteKind, data: Any) -> WriteAccepted:
    """The route of a write to one ticket whose plan takes the body and the ticket: the caller's
    key and scope, the ticket's connection, what the vendor must support, then
    ``accept_ticket_write`` with the kind's plan."""
    principal = authorize(request, WRITE)
    gw = gateway_of(request)
    connection_id, _ = own_ref(gw, principal, ref)
    kind.require(gw, connection_id, data)
    return await accept_ticket_write(
        request, principal, connection_id, ref, lambda ticket: kind.plan(gw, connection_id, data, ticket),
        workspace=principal.workspace, kind=kind.name, target=ref, request=msgspec.to_builtins(data),
        idempotency_key=idempotency_key(request),
    )
