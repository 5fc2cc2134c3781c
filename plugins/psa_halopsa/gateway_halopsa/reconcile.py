"""Finding the effect of a write whose outcome is unknown (``gateway_reconcile``).

- create: a ticket opened since the attempt whose ``third_party_id_string`` is the dedup key
  (list answers may omit that field, so candidates with the same summary are read in full);
- reply: an action since the attempt with the same note text, the same ``hiddenfromuser``
  and, for reply + status, the same ``new_status``;
- status: the ticket's current status is the one asked for;
- time_entry: an internal action since the attempt with the same ``timetaken`` and note;
- attachment: the ticket's attachment carrying the dedup key, else same name and size.

Ids in ``context.claimed`` belong to other writes and are never returned.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from gateway.models import Effect, ReconcileContext

from gateway_halopsa import constants
from gateway_halopsa.client import HaloClient
from gateway_halopsa.mapping import halo_time, parse_time, plain_text


def _get(payload: Any, name: str, default: Any = None) -> Any:
    """A field of the step payload, whether it arrives as a dict or a struct."""
    if payload is None:
        return default
    if isinstance(payload, dict):
        return payload.get(name, default)
    return getattr(payload, name, default)


def _same_text(a: Any, b: Any) -> bool:
    return " ".join(plain_text(a).split()) == " ".join(plain_text(b).split())


def _earliest(context: ReconcileContext) -> datetime:
    since = context.since if context.since.tzinfo else context.since.replace(tzinfo=timezone.utc)
    return since - timedelta(seconds=constants.RECONCILE_SKEW_SECONDS)


def _recent_actions(client: HaloClient, context: ReconcileContext) -> list[dict[str, Any]]:
    earliest = _earliest(context)
    found = []
    for action in client.actions(context.ticket_id):
        when = parse_time(action.get("datetime"))
        if str(action.get("id")) in context.claimed or (when is not None and when < earliest):
            continue
        found.append(action)
    return found


def find_reply(client: HaloClient, context: ReconcileContext) -> Effect | None:
    text = _get(context.payload, "text", "")
    internal = bool(_get(context.payload, "internal", False))
    status_id = _get(context.payload, "status_id")
    for action in _recent_actions(client, context):
        if bool(action.get("hiddenfromuser")) != internal:
            continue
        if not _same_text(action.get("note") or action.get("note_html"), text):
            continue
        if status_id and str(action.get("new_status")) != str(status_id):
            continue
        return Effect(vendor_id=str(action["id"]), detail="found the action already posted")
    return None


def find_status(client: HaloClient, context: ReconcileContext) -> Effect | None:
    wanted = str(_get(context.payload, "status_id") or "")
    ticket = client.ticket(context.ticket_id) if context.ticket_id else None
    if not wanted or ticket is None or str(ticket.get("status_id")) != wanted:
        return None
    for action in reversed(_recent_actions(client, context)):
        if str(action.get("new_status")) == wanted:
            return Effect(vendor_id=str(action["id"]), detail=f"ticket is already in status {wanted}")
    return Effect(detail=f"ticket is already in status {wanted}")


def find_time_entry(client: HaloClient, context: ReconcileContext) -> Effect | None:
    minutes = _get(context.payload, "minutes")
    if minutes is None:
        return None
    hours = float(minutes) / 60
    notes = _get(context.payload, "notes") or f"{minutes} min logged"
    for action in _recent_actions(client, context):
        if abs(float(action.get("timetaken") or 0) - hours) > 0.01:
            continue
        if not _same_text(action.get("note") or action.get("note_html"), notes):
            continue
        return Effect(vendor_id=str(action["id"]), detail="found the time already logged")
    return None


def find_attachment(client: HaloClient, context: ReconcileContext) -> Effect | None:
    filename = _get(context.payload, "filename")
    size = _get(context.payload, "size")
    earliest = _earliest(context)
    fallback = None
    for item in client.attachments(context.ticket_id):
        vendor_id = str(item.get("id"))
        if vendor_id in context.claimed:
            continue
        if item.get("third_party_id") == context.dedup_key:
            return Effect(vendor_id=vendor_id, detail="found the attachment by its dedup key")
        if item.get("third_party_id") or item.get("filename") != filename:
            continue
        when = parse_time(item.get("datecreated"))
        if when is not None and when < earliest:
            continue
        if size is not None and item.get("filesize") not in (None, size):
            continue
        fallback = fallback or Effect(vendor_id=vendor_id, detail="found an attachment of the same name and size")
    return fallback


def find_created_ticket(client: HaloClient, context: ReconcileContext) -> Effect | None:
    field = client.settings.dedup_field
    summary = _get(context.payload, "summary")
    candidates: list[str] = []
    for record in client.iter_tickets(datesearch="dateoccured", startdate=halo_time(_earliest(context))):
        vendor_id = str(record.get("id"))
        if vendor_id in context.claimed:
            continue
        if field in record:
            if record.get(field) == context.dedup_key:
                return Effect(vendor_id=vendor_id, detail=f"found the ticket by {field}")
        elif summary is None or record.get("summary") == summary:
            candidates.append(vendor_id)
    for vendor_id in candidates:
        full = client.ticket(vendor_id)
        if full is not None and full.get(field) == context.dedup_key:
            return Effect(vendor_id=vendor_id, detail=f"found the ticket by {field}")
    return None


FINDERS = {
    "reply": find_reply,
    "status": find_status,
    "time_entry": find_time_entry,
    "attachment": find_attachment,
    "create": find_created_ticket,
}


def reconcile(client: HaloClient, context: ReconcileContext) -> Effect | None:
    finder = FINDERS.get(context.step)
    if finder is None or (context.step != "create" and not context.ticket_id):
        return None
    return finder(client, context)
