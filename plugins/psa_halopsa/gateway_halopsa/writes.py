"""The Halo request bodies of each write step, shared by the write hooks and reconcile.

Halo has no idempotency key. Tickets carry the dedup key in ``third_party_id_string`` (the
``dedup_field`` setting) and attachments in ``third_party_id``; actions have no such field,
so an action is found again by what it says (see ``reconcile``).
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from gateway.links import related_lines
from gateway.models import AttachmentUpload, ReplyStep, TicketCreate, TimeEntryCreate

from gateway_halopsa.mapping import halo_time, parse_time
from gateway_halopsa.settings import HaloSettings

# Form values that must never reach Halo from a create: ``id`` would turn it into an update.
_NEVER_SENT = frozenset({"id"})


def as_int(value: Any) -> Any:
    """Halo ids are integers; form values may arrive as strings."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def reply_action(ticket_id: str, reply: ReplyStep, settings: HaloSettings) -> dict[str, Any]:
    """A public reply (``hiddenfromuser`` false) or internal note, with ``new_status`` when the
    status changes in the same call."""
    action: dict[str, Any] = {
        "ticket_id": int(ticket_id),
        "outcome": settings.note_outcome if reply.internal else settings.reply_outcome,
        "note": reply.text,
        "hiddenfromuser": reply.internal,
        "sendemail": (not reply.internal) and settings.reply_sends_email,
    }
    if reply.status_id:
        action["new_status"] = int(reply.status_id)
    return action


def status_action(ticket_id: str, status_id: str, settings: HaloSettings) -> dict[str, Any]:
    """A bare status change: an internal action whose ``new_status`` moves the ticket."""
    return {
        "ticket_id": int(ticket_id),
        "outcome": settings.status_outcome,
        "note": settings.status_note,
        "hiddenfromuser": True,
        "sendemail": False,
        "new_status": int(status_id),
    }


def time_note(entry: TimeEntryCreate) -> str:
    return entry.notes or f"{entry.minutes} min logged"


def time_action(ticket_id: str, entry: TimeEntryCreate, settings: HaloSettings) -> dict[str, Any]:
    """Time is logged on an internal action (``timetaken`` in hours). The action's own
    ``datetime`` is left to Halo (now) so reconcile can find it; the work's start and end go
    in the arrival and completion dates."""
    hours = round(entry.minutes / 60, 4)
    action: dict[str, Any] = {
        "ticket_id": int(ticket_id),
        "outcome": settings.time_outcome,
        "note": time_note(entry),
        "hiddenfromuser": True,
        "sendemail": False,
        "timetaken": hours,
    }
    if not entry.billable:
        action["nonbilltime"] = hours
    started = parse_time(entry.started_at) if isinstance(entry.started_at, str) else entry.started_at
    if started:
        action["actionarrivaldate"] = halo_time(started)
        action["actioncompletiondate"] = halo_time(started + timedelta(minutes=entry.minutes))
    return action


def ticket_fields(ticket: TicketCreate, dedup_key: str, settings: HaloSettings) -> dict[str, Any]:
    """A new ticket: the form's fields by name, summary, details, client and the dedup key."""
    fields = {k: as_int(v) for k, v in ticket.fields.items() if k not in _NEVER_SENT and v is not None}
    fields["summary"] = ticket.summary
    details = ticket.description
    if ticket.related:
        # The dedup key holds the third-party id fields: other tools' records go at the end
        # of the details (Halo's RMM fields take its own integrations' ids, not ours).
        details = "\n\n".join(filter(None, [details, related_lines(ticket.related)]))
    if details:
        fields["details"] = details
    if ticket.customer_id:
        fields["client_id"] = as_int(ticket.customer_id)
    fields[settings.dedup_field] = dedup_key
    return fields


def attachment_fields(ticket_id: str, attachment: AttachmentUpload, dedup_key: str) -> dict[str, Any]:
    return {
        "ticket_id": int(ticket_id),
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "isimage": attachment.content_type.startswith("image/"),
        "data_base64": base64.b64encode(attachment.data).decode("ascii"),
        "third_party_id": dedup_key,
    }
