"""The write pipeline's API side: validate a write, stamp its dedup key, store it, enqueue it.

Validation happens before anything is queued, against facts cached per connection in Redis
(``cache:*`` keys): the ticket (its board and status), the statuses of its board, and the
connection's new-ticket form. The API answers 202 only after ``WriteStore.accept`` has stored
the record.
"""

from __future__ import annotations

import functools
import hashlib
import time
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msgspec
from opentelemetry import trace

from gateway import durability, entropy, events, keys, metrics
from gateway.aio import Channel
from gateway.cache import MISS, ReadThrough
from gateway.errors import WriteRefused
from gateway.hub import Hub
from gateway.store import record_key
from gateway.models import StatusCategory, Ticket, TicketForm, TicketStatus, split_ref
from gateway.writes import Accepted, WriteRecord, WriteStep, body_hash, dedup_key, now

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


def ticket_keys(gw: Hub, ref: str) -> list[str]:
    """Where a ticket's facts are held: its record in the ticket store, its cached copy."""
    return [record_key(ref), keys.ticket_cache(gw.connection(split_ref(ref)[0]).workspace, ref)]


async def ticket_facts_async(gw: Hub, client: Channel, ref: str) -> Ticket | None:
    """``cached_ticket`` without the vendor, on an asyncio client: the store's record, else the
    short-lived cache, in one round trip; ``None`` when neither holds the ticket."""
    stored, cached = await client.mget(*ticket_keys(gw, ref))
    found = gw.store.decode(stored)
    if found is None and cached and cached != MISS:
        found = TICKETS.decode(cached)
    return found


# Statuses change rarely: a process keeps each board's for a while, so that validating a write
# usually needs no round trip for them.
STATUSES_HELD_SECONDS = 30.0
_no_io: ContextVar[bool] = ContextVar("gateway_intake_no_io", default=False)


class WouldBlock(Exception):
    """Raised inside ``without_io`` by a lookup that would need Redis or the vendor."""


@contextmanager
def without_io() -> Iterator[None]:
    """Plan a write on the event loop: a lookup that is not held in this process raises
    ``WouldBlock`` (the caller plans again in a thread) instead of blocking the loop."""
    token = _no_io.set(True)
    try:
        yield
    finally:
        _no_io.reset(token)


def cached_statuses(gw: Hub, ticket: Ticket) -> list[TicketStatus]:
    """The statuses of the ticket's board (or of its connection, for PSAs without boards)."""
    key = keys.cache(gw.connection(ticket.connection).workspace, "statuses", ticket.connection,
                     ticket.board.id if ticket.board else "-")
    held = gw.held.get(key)
    if held is not None and held[0] > time.monotonic():
        return held[1]
    if _no_io.get():
        raise WouldBlock(key)
    found = STATUSES.get(gw.redis, key, lambda: gw.vendor(ticket.connection).ticket_statuses(ticket=ticket)) or []
    if len(gw.held) > 4096:  # boards are few; a full map is just started again
        gw.held.clear()
    gw.held[key] = (time.monotonic() + STATUSES_HELD_SECONDS, found)
    return found


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
    return f"run-{write_id}-{int(prepaid)}-{entropy.token_hex(6)}"


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
    durability.confirm_resend(gw, idempotency_key)  # replicated: a 202 only once the replicas have it
    record = gw.writes.get(write_id)
    return Submitted(write_id, False, idempotency_key, record.status if record else "queued")


async def replay_async(gw: Hub, client: Channel, **write: Any) -> Submitted | None:
    """``replay`` on the event loop (same arguments): one round trip on ``client`` when the key
    is new or absent (the usual case), the rest in a thread."""
    key = write.get("idempotency_key")
    if not key or not await client.exists(dedup_key(write["workspace"], key)):
        return None
    return await anyio.to_thread.run_sync(functools.partial(replay, gw, **write))


def _reused(dedup_key: str, write_id: str) -> WriteRefused:
    return WriteRefused(
        422,
        "Idempotency-Key reused with a different body",
        f"the key {dedup_key!r} was used for write {write_id} with another body; "
        "use a new key for a new write",
        write_id=write_id,
    )


def _trace_context() -> dict[str, str]:
    """The current span as W3C trace context, for the write's jobs (``jobs`` reads it back with
    the W3C propagator, whatever propagators the process is configured with): formatted here,
    which costs a tenth of the global propagators' ``inject`` on the 202 path."""
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return {}
    found = {"traceparent": f"00-{span.trace_id:032x}-{span.span_id:016x}-{span.trace_flags:02x}"}
    if span.trace_state:
        found["tracestate"] = span.trace_state.to_header()
    return found


@dataclass
class _Prepared:
    """A validated write ready for ``WriteStore.accept``, and what to do once it is stored."""

    record: WriteRecord
    uploads: int
    run: tuple[str, int]
    status_ticket: str | None
    event: events.Staged
    counter: tuple[str, str]
    announce_after: bool
    known: Sequence[str] = ()

    def accept_options(self) -> dict[str, Any]:
        return {"run": self.run, "status_ticket": self.status_ticket,
                "event": None if self.announce_after else self.event,
                "counter": None if self.announce_after else self.counter, "known": self.known}


def _prepare(
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
) -> _Prepared:
    write_id = gw.writes.new_id()
    trace_context = _trace_context()  # the request's span: the write's jobs continue its trace
    created = now()
    record = WriteRecord(
        id=write_id,
        workspace=workspace,
        connection=connection,
        vendor=gw.connection(connection).vendor,
        kind=kind,
        dedup_key=idempotency_key or f"gw-{entropy.token_hex(16)}",
        body_hash=_fingerprint(kind, target, request, uploads),
        chain=f"{connection}:{split_ref(target)[1]}" if target else f"new:{write_id}",
        steps=steps,
        request=request,
        created_at=created,
        updated_at=created,
        target=target,
        trace_context=trace_context,
    )
    # Status writes to a ticket are numbered in acceptance order by the accept script: a
    # retried old one must never undo a newer one that already landed (``WriteStore``).
    status_ticket = split_ref(target)[1] if target and any("status_id" in s.payload for s in steps) else None
    # The write.accepted event and the accepted count go in the accept's own step, except under
    # ``replicated``, where a write the replicas do not confirm is withdrawn: announced after.
    return _Prepared(record, len(uploads), (new_run(write_id), gw.connection_cap(connection)), status_ticket,
                     events.write_accepted(gw, record), metrics.write_accepted(record),
                     announce_after=gw.settings.gateway.durability == "replicated")


def _finish(gw: Hub, prepared: _Prepared, accepted: Accepted, *, confirmed: bool = False,
            nudged: Sequence[bytes] = ()) -> Submitted:
    """After the accept: the nudged deliveries, the replicas (``replicated``, unless
    ``confirmed`` already, with the event announced and the subscriptions it ``nudged``), the
    request's audit attributes, and the answer. No I/O for a new write with nothing nudged once
    the replicas, if any, confirmed it."""
    record = prepared.record
    gw.events.appended([*accepted.nudged, *nudged])
    if not confirmed:
        durability.confirm_accept(gw, record, accepted)  # replicated: on the replicas, or withdrawn (503)
        if prepared.announce_after and accepted.new:
            gw.events.append_staged(prepared.event)
            metrics.count(gw.redis, *prepared.counter)
    audited = {"gateway.kind": "api_write", "gateway.write_id": accepted.write_id,
               "gateway.dedup_key": record.dedup_key, "gateway.workspace": record.workspace}
    if record.target:
        audited["gateway.ticket"] = record.target
    trace.get_current_span().set_attributes(audited)  # one call: each takes the span's lock
    if not accepted.new:
        gw.writes.delete_blobs(record.id, prepared.uploads)
        if not accepted.same_body:
            raise _reused(record.dedup_key, accepted.write_id)
        record_now = gw.writes.get(accepted.write_id)
        return Submitted(accepted.write_id, False, record.dedup_key, record_now.status if record_now else "queued")
    return Submitted(record.id, True, record.dedup_key)


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
    prepared = _prepare(gw, workspace=workspace, connection=connection, kind=kind, target=target, steps=steps,
                        request=request, idempotency_key=idempotency_key, uploads=uploads)
    for index, upload in enumerate(uploads):
        gw.writes.put_blob(prepared.record.id, index, upload.data)
    return _finish(gw, prepared, gw.writes.accept(prepared.record, **prepared.accept_options()))


async def submit_async(gw: Hub, client: Channel, *, known: Sequence[str] = (), **write: Any) -> Submitted | None:
    """``submit`` on the event loop (same arguments): one round trip on ``client`` for a write
    without attachments; what needs more (blobs, replicas, nudged deliveries, a resent key)
    runs in a thread. ``known``: keys of which one must exist (``ticket_keys``: the write's
    ticket is held), else nothing is stored and the answer is ``None``; the caller then reads
    the ticket (``owned_ticket``) and submits in a thread."""
    if write.get("uploads"):
        return None if known else await anyio.to_thread.run_sync(functools.partial(submit, gw, **write))
    prepared = _prepare(gw, **write)
    prepared.known = known
    accepted = await gw.writes.accept_async(client, prepared.record, **prepared.accept_options())
    if not accepted.known:
        return None
    # replicated: the replicas must have it (else it is withdrawn: 503), then it is announced
    await durability.confirm_accept_async(gw, client, prepared.record, accepted)
    nudged: list[bytes] = []
    if prepared.announce_after and accepted.new:
        nudged = await gw.events.append_staged_async(client, prepared.event)
        await metrics.count_async(client, *prepared.counter)
    if accepted.nudged or nudged or not accepted.new:
        return await anyio.to_thread.run_sync(functools.partial(_finish, gw, prepared, accepted, confirmed=True,
                                                                nudged=nudged))
    return _finish(gw, prepared, accepted, confirmed=True)
