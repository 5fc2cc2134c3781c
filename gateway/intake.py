"""The write pipeline's API side: validate a write, stamp its dedup key, store it, enqueue it.

Validation happens before anything is queued, against facts cached per connection in Redis
(``cache:*`` keys): the ticket (its board and status), the statuses of its board, and the
connection's new-ticket form. The API answers 202 only after ``WriteStore.accept`` has stored
the record.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from opentelemetry import propagate, trace

from gateway import durability, events, keys, metrics
from gateway.cache import ReadThrough
from gateway.errors import WriteRefused
from gateway.hub import Hub
from gateway.models import StatusCategory, Ticket, TicketForm, TicketStatus, split_ref
from gateway.writes import WriteRecord, WriteStep, body_hash, now

TICKET_TTL = 300
STATUSES_TTL = 600
FORM_TTL = 3600


# --------------------------------------------------------------------------- cached vendor facts

TICKETS = ReadThrough(Ticket, TICKET_TTL)
STATUSES = ReadThrough(list[TicketStatus], STATUSES_TTL)
FORMS = ReadThrough(TicketForm, FORM_TTL)


def cached_ticket(gw: Hub, ref: str, *, refresh: bool = False) -> Ticket | None:
    """The ticket's facts for validating a write: from the ticket store when sync has it (no
    vendor call), else a short-lived cache, else the vendor."""
    if not refresh:
        stored = gw.store.get(ref)
        if stored is not None:
            return stored
    connection_id, vendor_id = split_ref(ref)
    key = keys.ticket_cache(gw.connection(connection_id).workspace, ref)
    return TICKETS.get(gw.redis, key, lambda: gw.vendor(connection_id).ticket_get(ticket_id=vendor_id),
                       refresh=refresh)


def cached_statuses(gw: Hub, ticket: Ticket) -> list[TicketStatus]:
    """The statuses of the ticket's board (or of its connection, for PSAs without boards)."""
    key = keys.cache(gw.connection(ticket.connection).workspace, "statuses", ticket.connection,
                     ticket.board.id if ticket.board else "-")
    found = STATUSES.get(gw.redis, key, lambda: gw.vendor(ticket.connection).ticket_statuses(ticket=ticket))
    return found or []


def cached_form(gw: Hub, connection_id: str, *, refresh: bool = False) -> TicketForm:
    """The connection's new-ticket form (required fields, picklists)."""
    key = keys.cache(gw.connection(connection_id).workspace, "form", connection_id)
    form = FORMS.get(gw.redis, key, lambda: gw.vendor(connection_id).ticket_form(), refresh=refresh)
    return form if form is not None else TicketForm(connection_id, ())


def check_status(gw: Hub, ticket: Ticket, status_id: str) -> TicketStatus:
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


# A time entry must start in this range: a PSA cannot store (and a plugin cannot convert) more.
EARLIEST_ENTRY = datetime(1971, 1, 1, tzinfo=timezone.utc)
LATEST_ENTRY_AHEAD = timedelta(days=366)


def check_time_entry(started_at: datetime | None, minutes: int) -> None:
    """Refuse at accept a time entry that could never land (422 naming ``started_at``)."""
    if started_at is None:
        return
    aware = started_at if started_at.tzinfo else started_at.replace(tzinfo=timezone.utc)
    latest = datetime.now(timezone.utc) + LATEST_ENTRY_AHEAD
    if not EARLIEST_ENTRY <= aware <= latest - timedelta(minutes=minutes):
        raise WriteRefused(
            422, "Time entry out of range",
            f"started_at must be between {EARLIEST_ENTRY:%Y-%m-%d} and one year from now (UTC)",
            field="started_at",
        )


def first_in_progress(gw: Hub, ticket: Ticket) -> str | None:
    """The status a "first reply moves New to In Progress" rule picks, if the ticket is new."""
    if ticket.status.category is not StatusCategory.NEW:
        return None
    for status in cached_statuses(gw, ticket):
        if status.category is StatusCategory.IN_PROGRESS:
            return status.id
    return None


# --------------------------------------------------------------------------- submission

def new_run(write_id: str, prepaid: bool = False) -> str:
    """A run of ``write_id`` as the scheduler holds it: the write, whether its rate slot is
    prepaid, and a nonce. Nothing is stored until a worker takes it (``jobs.run_job``)."""
    return f"run-{write_id}-{int(prepaid)}-{uuid.uuid4().hex[:12]}"


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Submitted:
    write_id: str
    created: bool
    dedup_key: str
    status: str = "queued"


def _fingerprint(kind: str, target: str | None, request: dict[str, Any], uploads: Sequence[Upload]) -> str:
    digests = [hashlib.sha256(u.data).hexdigest() for u in uploads]
    return body_hash({"kind": kind, "target": target, "request": request, "files": digests})


def replay(
    gw: Hub,
    *,
    workspace: str,
    kind: str,
    target: str | None,
    request: dict[str, Any],
    idempotency_key: str | None,
    uploads: Sequence[Upload] = (),
) -> Submitted | None:
    """The write an ``Idempotency-Key`` already names, answered from its record before any
    validation (so a resend never needs the vendor); ``None`` when the key is new."""
    if not idempotency_key:
        return None
    held = gw.writes.dedup(workspace, idempotency_key)
    if held is None:
        return None
    write_id, digest = held
    if digest != _fingerprint(kind, target, request, uploads):
        raise _reused(idempotency_key, write_id)
    record = gw.writes.get(write_id)
    return Submitted(write_id, False, idempotency_key, record.status if record else "queued")


def _reused(dedup_key: str, write_id: str) -> WriteRefused:
    return WriteRefused(
        422,
        "Idempotency-Key reused with a different body",
        f"the key {dedup_key!r} was used for write {write_id} with another body; "
        "use a new key for a new write",
        write_id=write_id,
    )


def submit(
    gw: Hub,
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
    """Store a validated write and queue its first run, in one round trip after the blobs; the
    same key and body return the earlier write."""
    write_id = gw.writes.new_id()
    fingerprint = _fingerprint(kind, target, request, uploads)
    # Status writes to a ticket are numbered in acceptance order by the accept script: a
    # retried old one must never undo a newer one that already landed (``WriteStore``).
    status_ticket = split_ref(target)[1] if target and any("status_id" in s.payload for s in steps) else None
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
        kind=kind,
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
    accepted = gw.writes.accept(record, run=(new_run(write_id), gw.connection_cap(connection)),
                                status_ticket=status_ticket)
    durability.confirm_accept(gw, record, accepted)  # replicated: on the replicas, or withdrawn (503)
    span = trace.get_current_span()
    span.set_attribute("gateway.kind", "api_write")
    span.set_attribute("gateway.write_id", accepted.write_id)
    span.set_attribute("gateway.dedup_key", dedup_key)
    span.set_attribute("gateway.workspace", workspace)
    if target:
        span.set_attribute("gateway.ticket", target)
    if accepted.new:
        metrics.write_accepted(gw.redis, record)
    else:
        gw.writes.delete_blobs(write_id, len(uploads))
        if not accepted.same_body:
            raise _reused(dedup_key, accepted.write_id)
        record_now = gw.writes.get(accepted.write_id)
        return Submitted(accepted.write_id, False, dedup_key, record_now.status if record_now else "queued")
    events.write_accepted(gw, record)
    return Submitted(write_id, True, dedup_key)
