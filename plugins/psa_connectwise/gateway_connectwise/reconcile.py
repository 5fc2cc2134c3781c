"""Finding the effect of a write whose outcome is unknown, before it is sent again.

ConnectWise has no idempotency keys. Each step is looked for the way a person would:

- ``create``: a ticket whose ``externalXRef`` is the write's dedup key.
- ``reply``: a note on the ticket with the same text and the same tab (Discussion or
  Internal), created at or after the first attempt (less a minute of clock skew).
- ``status``: the ticket already has the target status.
- ``time_entry``: an entry charged to the ticket with the same start (or, when none was
  given, the same length, created since the first attempt) and the same notes.
- ``attachment``: a document on the ticket with the same file name and size.

Records in ``context.claimed`` belong to other writes and are never returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
from gateway.models import AttachmentUpload, Effect, ReconcileContext, ReplyStep, TimeEntryCreate

from gateway_connectwise.client import ConnectWiseClient
from gateway_connectwise.constants import RECONCILE_SKEW_SECONDS, external_ref
from gateway_connectwise.records import TimeEntry

S = TypeVar("S")


def _payload(value: Any, type_: type[S]) -> S:
    """The step's payload as ``type_`` (it may come back from storage as plain JSON)."""
    return value if isinstance(value, type_) else msgspec.convert(value, type_)


def _earliest(context: ReconcileContext) -> datetime:
    since = context.since if context.since.tzinfo else context.since.replace(tzinfo=UTC)
    return since - timedelta(seconds=RECONCILE_SKEW_SECONDS)


def _same_text(a: str, b: str) -> bool:
    # ConnectWise keeps note text as sent, but line endings may come back normalised.
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def _created(client: ConnectWiseClient, context: ReconcileContext) -> Effect | None:
    for ticket in client.tickets_with_external_ref(external_ref(context.dedup_key)):
        if str(ticket.id) not in context.claimed:
            return Effect(vendor_id=str(ticket.id), detail="ticket found by externalXRef")
    return None


def _replied(client: ConnectWiseClient, context: ReconcileContext) -> Effect | None:
    reply = _payload(context.payload, ReplyStep)
    earliest = _earliest(context)
    for note in client.notes(context.ticket_id or ""):
        created = note.date_created or (note.info.date_entered if note.info else None)
        if (
            str(note.id) not in context.claimed
            and _same_text(note.text, reply.text)
            and note.internal_analysis_flag == reply.internal
            and note.detail_description_flag == (not reply.internal)
            and created is not None
            and created >= earliest
        ):
            return Effect(vendor_id=str(note.id), detail="note found by text and tab")
    return None


def _target_status(payload: Any) -> str:
    if isinstance(payload, (str, int)):
        return str(payload)
    if isinstance(payload, Mapping):
        return str(payload.get("status_id") or payload.get("id") or "")
    return str(getattr(payload, "status_id", "") or "")


def _status(client: ConnectWiseClient, context: ReconcileContext) -> Effect | None:
    target = _target_status(context.payload)
    ticket = client.ticket(context.ticket_id or "")
    if target and ticket is not None and ticket.status is not None and str(ticket.status.id) == target:
        return Effect(detail=f"ticket already has status {ticket.status.label}")
    return None


def _minutes(entry: TimeEntry) -> int | None:
    if entry.actual_hours is not None:
        return round(entry.actual_hours * 60)
    if entry.time_start and entry.time_end:
        return round((entry.time_end - entry.time_start).total_seconds() / 60)
    return None


def _time_logged(client: ConnectWiseClient, context: ReconcileContext) -> Effect | None:
    wanted = _payload(context.payload, TimeEntryCreate)
    earliest = _earliest(context)
    for entry in client.time_entries(context.ticket_id or "", time_start=wanted.started_at):
        if str(entry.id) in context.claimed or not _same_text(entry.notes or "", wanted.notes):
            continue
        if wanted.started_at is None:
            entered = (entry.info.date_entered if entry.info else None) or entry.date_entered
            if _minutes(entry) != wanted.minutes or entered is None or entered < earliest:
                continue
        return Effect(vendor_id=str(entry.id), detail="time entry found by start and notes")
    return None


def _attached(client: ConnectWiseClient, context: ReconcileContext) -> Effect | None:
    upload = _payload(context.payload, AttachmentUpload)
    for document in client.documents(context.ticket_id or ""):
        if (
            str(document.id) not in context.claimed
            and document.file_name == upload.filename
            and document.size == upload.size
        ):
            return Effect(vendor_id=str(document.id), detail="document found by file name and size")
    return None


FINDERS: dict[str, Callable[[ConnectWiseClient, ReconcileContext], Effect | None]] = {
    "create": _created,
    "reply": _replied,
    "status": _status,
    "time_entry": _time_logged,
    "attachment": _attached,
}


def find_effect(client: ConnectWiseClient, context: ReconcileContext) -> Effect | None:
    """The earlier effect of the step, or ``None`` when ConnectWise shows no trace of it."""
    finder = FINDERS.get(context.step)
    return finder(client, context) if finder else None
