"""What the console pages show, read through the same ownership checks as the API.

Every function takes the signed-in ``Principal`` and sees only its workspace. Names of tickets
and customers come from the ticket store or the ticket cache, never from a live vendor call:
a list page must not spend a connection's rate budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgspec

from gateway import audit, intake, keys
from gateway.api.write_admin import own_write, write_view
from gateway.api.auth import Principal
from gateway.api.problems import ApiError
from gateway.console.timeline import Timeline, timeline
from gateway.core import Gateway
from gateway.writes import WriteRecord, WriteView

SCAN = 500  # newest dead letters the list filters over


@dataclass(frozen=True)
class TicketName:
    ref: str
    number: str | None
    summary: str | None
    customer: str | None


@dataclass(frozen=True)
class DeadLetterRow:
    write: WriteRecord
    cause: str
    ticket: TicketName | None
    customer: str | None


@dataclass(frozen=True)
class WriteDetail:
    view: WriteView
    request: dict[str, Any]
    ticket: TicketName | None
    customer: str | None
    cause: str | None
    timeline: Timeline

    @property
    def request_json(self) -> str:
        """The redacted request, indented for reading (the template escapes it)."""
        return json.dumps(self.request, indent=2, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Filters:
    connection: str = ""
    kind: str = ""
    cause: str = ""

    @property
    def active(self) -> bool:
        return bool(self.connection or self.kind or self.cause)


def cause_of(record: WriteRecord) -> str:
    """Why a write failed, in one word: the outcome of its last failed attempt."""
    for attempt in reversed(record.attempts):
        if attempt.outcome not in {"sent", "reconciled"}:
            return attempt.outcome
    return "unreconcilable" if record.error else "unknown"


def ticket_name(gw: Gateway, ref: str | None) -> TicketName | None:
    """The ticket's number, summary and customer as the store (or the ticket cache) knows them."""
    if not ref:
        return None
    ticket = gw.store.get(ref)
    if ticket is None:
        conn = gw.connections.get(ref.split(":", 1)[0])
        ticket = intake.TICKETS.peek(gw.redis, keys.ticket_cache(conn.workspace, ref))[1] if conn else None
    if ticket is None:
        return TicketName(ref, None, None, None)
    return TicketName(ref, ticket.number, ticket.summary, ticket.customer.name if ticket.customer else None)


def _customer(record: WriteRecord, ticket: TicketName | None) -> str | None:
    if ticket and ticket.customer:
        return ticket.customer
    customer_id = record.request.get("customer_id") if isinstance(record.request, dict) else None
    return f"customer {customer_id}" if customer_id else None


def dead_letters(gw: Gateway, principal: Principal, filters: Filters) -> tuple[list[DeadLetterRow], dict[str, list[str]]]:
    """The workspace's dead letters, newest first, filtered; and the values each filter can take."""
    records = gw.writes.dead_letters(principal.workspace, SCAN)
    choices: dict[str, set[str]] = {"connection": set(), "kind": set(), "cause": set()}
    rows = []
    for record in records:
        cause = cause_of(record)
        choices["connection"].add(record.connection)
        choices["kind"].add(record.kind)
        choices["cause"].add(cause)
        if filters.connection and record.connection != filters.connection:
            continue
        if filters.kind and record.kind != filters.kind:
            continue
        if filters.cause and cause != filters.cause:
            continue
        ticket = ticket_name(gw, record.target or record.result_ref)
        rows.append(DeadLetterRow(record, cause, ticket, _customer(record, ticket)))
    return rows, {k: sorted(v) for k, v in choices.items()}


def write_detail(gw: Gateway, principal: Principal, write_id: str) -> WriteDetail:
    """One write of the workspace with its redacted request and its audit timeline (404 else)."""
    record = own_write(gw, principal, write_id)
    ticket = ticket_name(gw, record.target or record.result_ref)
    records = audit.read_audit(gw.redis, write_id=record.id, limit=1000, pending=gw.tracer_provider)
    view = write_view(gw, record)
    return WriteDetail(
        # A caller may have put anything in its Idempotency-Key, a secret included.
        view=msgspec.structs.replace(view, dedup_key=gw.redactor.scrub(view.dedup_key)),
        request=gw.redactor.payload(record.request),
        ticket=ticket,
        customer=_customer(record, ticket),
        cause=cause_of(record) if record.status in {"dead", "discarded"} else None,
        timeline=timeline(records),
    )


def find_writes(gw: Gateway, principal: Principal, query: str) -> list[WriteRecord]:
    """Writes of the workspace matching a write id, an Idempotency-Key or a ticket reference."""
    query = query.strip()
    if not query or len(query) > 300:
        return []
    found: dict[str, WriteRecord] = {}
    if query.startswith("w_"):
        record = gw.writes.get(query)
        if record and record.workspace == principal.workspace:
            found[record.id] = record
    held = gw.redis.get(f"dedup:{principal.workspace}:{query}")
    if held:
        record = gw.writes.get(held.decode().split(" ", 1)[0])
        if record and record.workspace == principal.workspace:
            found[record.id] = record
    connection, sep, _ = query.partition(":")
    conn = gw.connections.get(connection) if sep else None
    if conn is not None and conn.workspace == principal.workspace:
        for entry in audit.read_audit(gw.redis, ticket=query, limit=1000, pending=gw.tracer_provider):
            write_id = entry.attributes.get("gateway.write_id")
            if isinstance(write_id, str) and write_id not in found:
                record = gw.writes.get(write_id)
                if record and record.workspace == principal.workspace:
                    found[record.id] = record
    shown = [msgspec.structs.replace(r, dedup_key=gw.redactor.scrub(r.dedup_key)) for r in found.values()]
    return sorted(shown, key=lambda r: r.created_at, reverse=True)


def require_dead(record: WriteRecord) -> None:
    if record.status != "dead":
        raise ApiError(404, "Not found", f"no dead letter {record.id}")
