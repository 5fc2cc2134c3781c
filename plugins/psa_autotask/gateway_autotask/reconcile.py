"""Finding the effect of a write step whose outcome is unknown (``gateway_reconcile``).

Created tickets carry the dedup key in ``externalID``. Notes, time entries and attachments have
no external-reference field, so they are matched by content among the records made since the
step began (from the start of that second: Autotask may store whole seconds), skipping ids
other writes have already claimed. A status change is done when the ticket has the status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from gateway.errors import NotSupported
from gateway.models import Effect, ReconcileContext
from gateway_autotask.client import AutotaskClient
from gateway_autotask.constants import VENDOR, external_id_for


def _payload(context: ReconcileContext) -> dict[str, Any]:
    payload = context.payload
    if isinstance(payload, msgspec.Struct):
        payload = msgspec.to_builtins(payload)
    return payload if isinstance(payload, dict) else {"value": payload}


def _since(context: ReconcileContext) -> datetime:
    # Autotask may store whole seconds: look from the start of the second the step began in.
    return context.since.replace(microsecond=0)


def _same_text(a: Any, b: Any) -> bool:
    def norm(s: Any) -> str:
        return str(s or "").replace("\r\n", "\n").strip()

    return norm(a) == norm(b)


def _first_unclaimed(records: list[dict[str, Any]], context: ReconcileContext, match: Any) -> Effect | None:
    for record in sorted(records, key=lambda r: int(r["id"])):
        if str(record["id"]) not in context.claimed and match(record):
            return Effect(vendor_id=str(record["id"]), detail="found by reconcile")
    return None


def _reconcile_reply(client: AutotaskClient, context: ReconcileContext) -> Effect | None:
    p = _payload(context)
    publish = client.settings.internal_publish if p.get("internal") else client.settings.public_publish
    notes = client.notes(context.ticket_id or "", since=_since(context))
    return _first_unclaimed(
        notes, context, lambda n: _same_text(n.get("description"), p.get("text")) and n.get("publish") == publish
    )


def _reconcile_status(client: AutotaskClient, context: ReconcileContext) -> Effect | None:
    p = _payload(context)
    wanted = str(p.get("status_id", p.get("value")))
    ticket = client.ticket(context.ticket_id or "")
    if ticket is not None and str(ticket.get("status")) == wanted:
        return Effect(detail=f"status already {wanted}")
    return None


def _reconcile_create(client: AutotaskClient, context: ReconcileContext) -> Effect | None:
    tickets = client.tickets_with_external_id(external_id_for(context.dedup_key))
    return _first_unclaimed(tickets, context, lambda t: True)


def _reconcile_time_entry(client: AutotaskClient, context: ReconcileContext) -> Effect | None:
    p = _payload(context)
    minutes = int(p.get("minutes") or 0)
    entries = client.time_entries(context.ticket_id or "", since=_since(context))
    return _first_unclaimed(
        entries,
        context,
        lambda e: _same_text(e.get("summaryNotes"), p.get("notes") or "Time entry")
        and round(float(e.get("hoursWorked") or 0) * 60) == minutes,
    )


def _reconcile_attachment(client: AutotaskClient, context: ReconcileContext) -> Effect | None:
    p = _payload(context)
    found = client.attachments(context.ticket_id or "", since=_since(context))
    return _first_unclaimed(
        found,
        context,
        lambda a: a.get("fullPath") == p.get("filename")
        and (a.get("fileSize") in (None, p.get("size")) or p.get("size") is None),
    )


RECONCILERS = {
    "reply": _reconcile_reply,
    "status": _reconcile_status,
    "create": _reconcile_create,
    "time_entry": _reconcile_time_entry,
    "attachment": _reconcile_attachment,
}


def find_effect(client: AutotaskClient, context: ReconcileContext) -> Effect | None:
    """The effect an earlier attempt of ``context.step`` left, or ``None`` when there is none."""
    reconciler = RECONCILERS.get(context.step)
    if reconciler is None:
        raise NotSupported(VENDOR, context.step, f"Autotask makes no {context.step!r} writes")
    return reconciler(client, context)
