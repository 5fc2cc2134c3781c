"""What every route module shares: the gateway, the caller's key, workspace ownership checks."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request

from gateway import intake, writekinds
from gateway.api.auth import Principal
from gateway.api.problems import ApiError, clip, not_found
from gateway.api.schemas import IDEMPOTENCY_KEY_MAX_LENGTH, WriteAccepted
from gateway.core import Gateway
from gateway.models import Capability, Ticket, split_ref

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


def submit_ticket_write(request: Request, ref: str, kind: writekinds.WriteKind, data: Any) -> WriteAccepted:
    """The route of a write to one ticket whose plan takes the body and the ticket: the caller's
    key and scope, the ticket's connection, what the vendor must support, a resend answered from
    its record (no vendor read), then the kind's plan and the submit."""
    principal = authorize(request, WRITE)
    gw = gateway_of(request)
    connection_id, _ = own_ref(gw, principal, ref)
    kind.require(gw, connection_id, data)
    key, body = idempotency_key(request), msgspec.to_builtins(data)
    resent = intake.replay(gw, workspace=principal.workspace, kind=kind.name, target=ref, request=body, idempotency_key=key)
    if resent is not None:
        return accepted(gw, resent)
    steps = kind.plan(gw, connection_id, data, lambda: owned_ticket(gw, principal, ref))
    submitted = intake.submit(gw, workspace=principal.workspace, connection=connection_id, kind=kind.name, target=ref,
                              steps=steps, request=body, idempotency_key=key)
    return accepted(gw, submitted)
