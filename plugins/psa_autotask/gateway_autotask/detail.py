"""A ticket's details read back from Autotask: its time entries and its attachments.

- Time: ``TimeEntries/query`` on ``ticketID`` [C goat ``time_entry.go``]; ``hoursWorked``
  becomes minutes, ``startDateTime`` (else ``dateWorked``) the start, ``summaryNotes`` the
  notes, and the resource's name the member.
- Attachments: ``TicketAttachments/query`` on ``ticketID`` (attachment queries need the
  object's id since 2021.1, and then include the attachments of the ticket's notes and time
  entries [V AT-doc AttachmentChanges.htm, AttachmentInfoEntity.htm]). Only
  ``FILE_ATTACHMENT``s are files; links (``URL``, ``FILE_LINK``, ``FOLDER_LINK``) are left out.
  A query never returns ``data`` [V AT-doc: "data ... cannot be queried"].
- Download: the attachment's own child URL under its parent, ``Tickets/{id}/Attachments/{aid}``
  (``TicketNotes/...`` or ``TimeEntries/...`` for those parents), answered as
  ``{"items": [{..., "data": base64}]}`` [V AT-doc child URLs; C swagger-derived
  ATREST-CSharp-Client ``TicketAttachmentsChildQueryItem``; U the envelope].

The hooks are re-exported from ``hooks`` (the plugin's entry point), which pluggy registers.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from datetime import datetime, timezone
from typing import Any

from gateway import hookimpl
from gateway.errors import VendorError
from gateway.models import Attachment, AttachmentUpload, TimeEntry

from gateway_autotask.client import AutotaskClient
from gateway_autotask.query import parse_datetime

FILE_ATTACHMENT = "FILE_ATTACHMENT"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def file_name(record: dict[str, Any]) -> str:
    """A file attachment's name: the last part of ``fullPath`` (which may carry a client's
    folder), else its title."""
    path = str(record.get("fullPath") or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return path or str(record.get("title") or "") or f"attachment-{record.get('id')}"


def content_type(record: dict[str, Any]) -> str | None:
    """The attachment's ``contentType``, else the one its name suggests."""
    given = str(record.get("contentType") or "").split(";", 1)[0].strip()
    return given or mimetypes.guess_type(file_name(record), strict=False)[0]


def parent_of(record: dict[str, Any], ticket_id: int) -> tuple[str, int]:
    """The entity and id whose child URL serves the attachment's data."""
    for field, entity in (("ticketNoteID", "TicketNotes"), ("timeEntryID", "TimeEntries")):
        parent = _int(record.get(field))
        if parent:
            return entity, parent
    return "Tickets", ticket_id


def _files(client: AutotaskClient, ticket_id: str) -> list[dict[str, Any]]:
    records = client.ticket_attachment_infos(ticket_id)
    return [r for r in records if str(r.get("attachmentType") or FILE_ATTACHMENT).upper() == FILE_ATTACHMENT]


@hookimpl
def gateway_ticket_time_entries(client: AutotaskClient, ticket_id: str) -> list[TimeEntry]:
    if not ticket_id.isdigit():
        return []
    records = client.time_entries(ticket_id)
    resources = {r for r in (_int(e.get("resourceID")) for e in records) if r is not None}
    names = client.resource_names(resources) if resources else {}
    entries = []
    for record in records:
        resource = _int(record.get("resourceID"))
        entries.append(
            TimeEntry(
                id=str(record["id"]),
                minutes=round(float(record.get("hoursWorked") or 0) * 60),
                notes=str(record.get("summaryNotes") or ""),
                started_at=parse_datetime(record.get("startDateTime")) or parse_datetime(record.get("dateWorked")),
                member=(names.get(resource) or str(resource)) if resource is not None else None,
            )
        )
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(entries, key=lambda e: (e.started_at or oldest, int(e.id)))


@hookimpl
def gateway_ticket_attachments(client: AutotaskClient, ticket_id: str) -> list[Attachment]:
    if not ticket_id.isdigit():
        return []
    return [
        Attachment(
            id=str(record["id"]),
            filename=file_name(record),
            size=_int(record.get("fileSize")),
            content_type=content_type(record),
            created_at=parse_datetime(record.get("attachDate")),
        )
        for record in _files(client, ticket_id)
    ]


@hookimpl
def gateway_attachment_download(client: AutotaskClient, ticket_id: str, attachment_id: str) -> AttachmentUpload | None:
    if not (ticket_id.isdigit() and attachment_id.isdigit()):
        return None
    # The data URL names the parent: only an attachment found on this ticket is served.
    info = next((r for r in _files(client, ticket_id) if _int(r.get("id")) == int(attachment_id)), None)
    if info is None:
        return None
    entity, parent = parent_of(info, int(ticket_id))
    record = client.attachment_with_data(entity, parent, attachment_id)
    if record is None:
        return None
    try:
        data = base64.b64decode(str(record.get("data") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise VendorError(
            f"autotask answered attachment {attachment_id} with data that is not base64",
            connection=client.connection.id,
        ) from None
    merged = {**info, **{k: v for k, v in record.items() if v not in (None, "")}}
    return AttachmentUpload(
        filename=file_name(merged),
        content_type=content_type(merged) or "application/octet-stream",
        size=len(data),
        data=data,
    )
