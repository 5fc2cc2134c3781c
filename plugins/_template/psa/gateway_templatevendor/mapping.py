"""Template Vendor's records as Structs, and their translation into canonical models.

The Structs name the vendor's own fields (decoding fails loudly on a changed type, not later
in a hook). Translation functions take a record and return the gateway's model.

Status categories: the vendor's statuses are its own; the category used for cross-PSA filters
is ``closed`` for a closed status, else read from the name ("New" -> new, "Waiting..." ->
awaiting_customer, "Resolved" -> resolved), else in_progress.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec
from gateway import models
from gateway.models import StatusCategory, make_ref

from gateway_templatevendor.constants import VENDOR


class Status(msgspec.Struct, frozen=True):
    id: int
    name: str
    closed: bool = False
    is_default: bool = False


class StatusRef(msgspec.Struct, frozen=True):
    id: int
    name: str = ""


class Company(msgspec.Struct, frozen=True):
    id: int
    name: str


class Ticket(msgspec.Struct, frozen=True):
    id: int
    summary: str
    status: StatusRef
    company_id: int | None = None
    description: str = ""
    closed: bool = False
    external_ref: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Note(msgspec.Struct, frozen=True):
    id: int
    ticket_id: int
    text: str
    internal: bool
    author: str = ""
    created_at: datetime | None = None


class TimeEntry(msgspec.Struct, frozen=True):
    id: int
    ticket_id: int
    minutes: int
    notes: str = ""
    started_at: datetime | None = None
    created_at: datetime | None = None


class Attachment(msgspec.Struct, frozen=True):
    id: int
    ticket_id: int
    filename: str
    size: int
    content_type: str | None = None
    created_at: datetime | None = None


_NAME_RULES: tuple[tuple[re.Pattern[str], StatusCategory], ...] = (
    (re.compile(r"\bnew\b", re.IGNORECASE), StatusCategory.NEW),
    (re.compile(r"\bwait|\bcustomer", re.IGNORECASE), StatusCategory.AWAITING_CUSTOMER),
    (re.compile(r"\bresolved\b", re.IGNORECASE), StatusCategory.RESOLVED),
)


def category(name: str, *, closed: bool) -> StatusCategory:
    """The canonical category of a vendor status (rules in the module docstring)."""
    if closed:
        return StatusCategory.CLOSED
    for pattern, found in _NAME_RULES:
        if pattern.search(name):
            return found
    return StatusCategory.IN_PROGRESS


def status(record: Status) -> models.TicketStatus:
    return models.TicketStatus(
        id=str(record.id), name=record.name, category=category(record.name, closed=record.closed), closed=record.closed
    )


def ticket(record: Ticket, *, connection_id: str, web_url: str) -> models.Ticket:
    """A vendor ticket as the canonical ``Ticket`` (without its thread: lists leave it out)."""
    return models.Ticket(
        ref=make_ref(connection_id, record.id),
        connection=connection_id,
        vendor=VENDOR,
        vendor_id=str(record.id),
        summary=record.summary,
        status=models.TicketStatus(
            id=str(record.status.id),
            name=record.status.name,
            category=category(record.status.name, closed=record.closed),
            closed=record.closed,
        ),
        number=str(record.id),
        description=record.description,
        customer=(
            models.NamedRef(id=str(record.company_id), ref=make_ref(connection_id, record.company_id))
            if record.company_id is not None
            else None
        ),
        created_at=record.created_at,
        updated_at=record.updated_at,
        url=f"{web_url}/tickets/{record.id}",
    )


def thread_entry(note: Note) -> models.ThreadEntry:
    return models.ThreadEntry(
        id=str(note.id), text=note.text, internal=note.internal, author=note.author, created_at=note.created_at
    )


def time_entry(entry: TimeEntry) -> models.TimeEntry:
    return models.TimeEntry(id=str(entry.id), minutes=entry.minutes, notes=entry.notes, started_at=entry.started_at)


def attachment(record: Attachment) -> models.Attachment:
    return models.Attachment(
        id=str(record.id), filename=record.filename, size=record.size, content_type=record.content_type,
        created_at=record.created_at,
    )


def customer(company: Company, connection_id: str) -> models.Customer:
    return models.Customer(
        ref=make_ref(connection_id, company.id), name=company.name, vendor=VENDOR,
        integration_ids={VENDOR: str(company.id)},
    )
