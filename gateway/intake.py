"""The write pipeline's API side: validate a write, stamp its dedup key, store it, enqueue it.

Validation happens before anything is queued, against facts cached per connection in Redis
(``cache:*`` keys): the ticket (its board and status), the statuses of its board, and the
connection's new-ticket form. The API answers 202 only after ``WriteStore.accept`` has stored
the record.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from opentelemetry import propagate, trace

from gateway import durability
from gateway.core import Gateway
from gateway.jobs import enqueue_write
from gateway.models import StatusCategory, Ticket, TicketForm, TicketStatus, split_ref
from gateway.writes import WriteRecord, WriteStep, body_hash, now

TICKET_TTL = 300
STATUSES_TTL = 600
FORM_TTL = 3600


class WriteRefused(Exception):
    """A write that fails validation: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra
        super().__init__(detail)


# --------------------------------------------------------------------------- cached vendor facts


def cached_ticket(gw: Gateway, ref: str, *, refresh: bool = False) -> Ticket | None:
    key = f"cache:ticket:{ref}"
    if not refresh:
        raw = gw.redis.get(key)
        if raw:
            return msgspec.json.decode(raw, type=Ticket)
    connection_id, vendor_id = split_ref(ref)
    ticket = gw.call(connection_id, "gateway_ticket_get", ticket_id=vendor_id)
    if ticket is not None:
        gw.redis.set(key, msgspec.json.encode(ticket), ex=TICKET_TTL)
    return ticket


def cached_statuses(gw: Gateway, ticket: Ticket) -> list[TicketStatus]:
    scope = ticket.board.id if ticket.board else "-"
    key = f"cache:statuses:{ticket.connection}:{scope}"
    raw = gw.redis.get(key)
    if raw:
        return msgspec.json.decode(raw, type=list[TicketStatus])
    statuses = gw.call(ticket.connection, "gateway_ticket_statuses", ticket=ticket)
    gw.redis.set(key, msgspec.json.encode(statuses), ex=STATUSES_TTL)
    return statuses


def cached_form(gw: Gateway, connection_id: str, *, refresh: bool = False) -> TicketForm:
    key = f"cache:form:{connection_id}"
    if not refresh:
        raw = gw.redis.get(key)
        if raw:
            return msgspec.json.decode(raw, type=TicketForm)
    form = gw.call(connection_id, "gateway_ticket_form")
    gw.redis.set(key, msgspec.json.encode(form), ex=FORM_TTL)
    return form


def check_status(gw: Gateway, ticket: Ticket, status_id: str) -> TicketStatus:
    """The status named, if the ticket's board allows it; else 422 listing the valid ones."""
    statuses = cached_statuses(gw, ticket)
    for status in statuses:
        if status.id == str(status_id):
            return status
    raise WriteRefused(
        422,
        "Status not valid for this ticket",
        f"status {status_id!r} is not one of the statuses of "
        f"{ticket.board.name if ticket.board and ticket.board.name else 'this ticket'} in {ticket.vendor}",
        valid_statuses=[msgspec.to_builtins(s) for s in statuses],
    )


def first_in_progress(gw: Gateway, ticket: Ticket) -> str | None:
    """The status a "first reply moves New to In Progress" rule picks, if the ticket is new."""
    if ticket.status.category is not StatusCategory.NEW:
        return None
    for status in cached_statuses(gw, ticket):
        if status.category is StatusCategory.IN_PROGRESS:
            return status.id
    return None


# --------------------------------------------------------------------------- submission


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Submitted:
    write_id: str
    created: bool


def submit(
    gw: Gateway,
    *,
    workspace: str,
    connection: str,
    kind: str,
    target: str | None,
    steps: list[WriteStep],
    request: dict[str, Any],
    idempotency_key: str | None,
    uploads: Sequence[Upload] = (),
) -> Submitted:
    """Store and enqueue a validated write; the same key and body return the earlier write."""
    write_id = gw.writes.new_id()
    digests = [hashlib.sha256(u.data).hexdigest() for u in uploads]
    fingerprint = body_hash({"kind": kind, "target": target, "request": request, "files": digests})
    dedup_key = idempotency_key or f"gw-{uuid.uuid4().hex}"
    for index, upload in enumerate(uploads):
        gw.writes.put_blob(write_id, index, upload.data)
    trace_context: dict[str, str] = {}
    propagate.inject(trace_context)
    created = now()
    record = WriteRecord(
        id=write_id,
        workspace=workspace,
        connection=connection,
        vendor=gw.connection(connection).vendor,
        kind=kind,  # type: ignore[arg-type]
        dedup_key=dedup_key,
        body_hash=fingerprint,
        chain=f"{connection}:{split_ref(target)[1]}" if target else f"new:{write_id}",
        steps=steps,
        request=request,
        created_at=created,
        updated_at=created,
        target=target,
        trace_context=trace_context,
    )
    accepted = gw.writes.accept(record)
    durability.confirm_accept(gw, record, accepted)  # replicated: on the replicas, or withdrawn (503)
    span = trace.get_current_span()
    span.set_attribute("gateway.kind", "api_write")
    span.set_attribute("gateway.write_id", accepted.write_id)
    span.set_attribute("gateway.dedup_key", dedup_key)
    span.set_attribute("gateway.workspace", workspace)
    if target:
        span.set_attribute("gateway.ticket", target)
    if not accepted.new:
        gw.writes.delete_blobs(write_id, len(uploads))
        if not accepted.same_body:
            raise WriteRefused(
                422,
                "Idempotency-Key reused with a different body",
                f"the key {dedup_key!r} was used for write {accepted.write_id} with another body; "
                "use a new key for a new write",
                write_id=accepted.write_id,
            )
        return Submitted(accepted.write_id, created=False)
    if accepted.head:
        enqueue_write(gw, write_id)
    return Submitted(write_id, created=True)
