"""Finding the effect of a write whose outcome is unknown, before it is sent again.

The gateway calls ``gateway_reconcile`` after a timeout, a dropped connection or a worker
crash. Each step is looked for the way a person would, never returning a record in
``context.claimed`` (those belong to other writes):

- ``create``: a ticket whose external reference is the write's dedup key.
- ``reply``: a note on the ticket with the same text and visibility, made since the first try.
- ``status``: the ticket already has the target status.
- ``time_entry``: an entry with the same minutes and notes, made since the first try.
- ``attachment``: a file on the ticket with the same name and size.

If the vendor offers an idempotency key or an external-reference field on notes, use it
instead: it is exact where matching by content is a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.models import Effect, ReconcileContext

from gateway_templatevendor.client import TemplateVendorClient
from gateway_templatevendor.constants import RECONCILE_SKEW_SECONDS, external_ref


def _earliest(context: ReconcileContext) -> datetime:
    since = context.since if context.since.tzinfo else context.since.replace(tzinfo=UTC)
    return since - timedelta(seconds=RECONCILE_SKEW_SECONDS)


def _recent(moment: datetime | None, context: ReconcileContext) -> bool:
    return moment is not None and moment >= _earliest(context)


def _field(payload: Any, name: str, default: Any = None) -> Any:
    """A field of the step's payload (stored as JSON, so usually a dict)."""
    if isinstance(payload, dict):
        return payload.get(name, default)
    return getattr(payload, name, default)


def _created(client: TemplateVendorClient, context: ReconcileContext) -> Effect | None:
    for ticket in client.tickets_with_external_ref(external_ref(context.dedup_key)):
        if str(ticket.id) not in context.claimed:
            return Effect(vendor_id=str(ticket.id), detail="ticket found by external reference")
    return None


def _replied(client: TemplateVendorClient, context: ReconcileContext) -> Effect | None:
    text = str(_field(context.payload, "text", "")).strip()
    internal = bool(_field(context.payload, "internal", False))
    for note in client.notes(context.ticket_id or ""):
        if (str(note.id) not in context.claimed and note.text.strip() == text and note.internal == internal
                and _recent(note.created_at, context)):
            return Effect(vendor_id=str(note.id), detail="note found by text")
    return None


def _status(client: TemplateVendorClient, context: ReconcileContext) -> Effect | None:
    target = str(_field(context.payload, "status_id", ""))
    ticket = client.ticket(context.ticket_id or "")
    if target and ticket is not None and str(ticket.status.id) == target:
        return Effect(detail=f"ticket already has status {ticket.status.name}")
    return None


def _time_logged(client: TemplateVendorClient, context: ReconcileContext) -> Effect | None:
    minutes = int(_field(context.payload, "minutes", 0))
    notes = str(_field(context.payload, "notes", "")).strip()
    for entry in client.time_entries(context.ticket_id or ""):
        if (str(entry.id) not in context.claimed and entry.minutes == minutes and entry.notes.strip() == notes
                and _recent(entry.created_at, context)):
            return Effect(vendor_id=str(entry.id), detail="time entry found by minutes and notes")
    return None


def _attached(client: TemplateVendorClient, context: ReconcileContext) -> Effect | None:
    filename = _field(context.payload, "filename")
    size = _field(context.payload, "size")
    for attachment in client.attachments(context.ticket_id or ""):
        if str(attachment.id) not in context.claimed and attachment.filename == filename and attachment.size == size:
            return Effect(vendor_id=str(attachment.id), detail="attachment found by name and size")
    return None


FINDERS: dict[str, Callable[[TemplateVendorClient, ReconcileContext], Effect | None]] = {
    "create": _created,
    "reply": _replied,
    "status": _status,
    "time_entry": _time_logged,
    "attachment": _attached,
}


def find_effect(client: TemplateVendorClient, context: ReconcileContext) -> Effect | None:
    """The earlier effect of the step, or ``None`` when the vendor shows no trace of it."""
    finder = FINDERS.get(context.step)
    return finder(client, context) if finder else None
