"""A ticket's details read back from ConnectWise: its time entries and its documents (files).

- Time: ``GET /time/entries?conditions=chargeToId = {id} and chargeToType = "ServiceTicket"``.
  The ticket shortcut ``GET /service/tickets/{id}/timeentries`` answers only references
  (``TimeEntryReference``: ``id`` and ``_info``, 2017 Service API spec), so the full entries
  come from ``/time/entries`` [V spec path; C pycw fields].
- Files: ``GET /system/documents?recordType=Ticket&recordId={id}`` lists them (the link a
  ticket's ``_info.documents_href`` carries) [V amp fixture]; ``GET /system/documents/{id}/download``
  serves one file's bytes [U: the download path is not in our sources' specs]. Documents that
  are links (``urlFlag``/``linkFlag``) have no file and are left out.
- ConnectWise's DocumentInfo carries no content type: the list guesses one from the file
  name, a download takes the ``Content-Type`` the server answers with (the guess when that
  is missing or generic).

The hooks are re-exported from ``hooks`` (the plugin's entry point), which pluggy registers.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from gateway import hookimpl
from gateway.attachments import content_type, disposition_filename, guess_type
from gateway.errors import VendorRejected
from gateway.models import Attachment, AttachmentUpload, TimeEntry

from gateway_connectwise import records
from gateway_connectwise.client import ConnectWiseClient
from gateway_connectwise.constants import DOCUMENT_RECORD_TYPE


class DocumentFile(msgspec.Struct, rename="camel"):
    """A DocumentInfo as listed for a record (only the fields read here) [C pycw]."""

    id: int
    title: str = ""
    file_name: str = ""
    size: int | None = None
    link_flag: bool = False
    url_flag: bool = False
    info: records.Info | None = msgspec.field(default=None, name="_info")

    @property
    def name(self) -> str:
        return self.file_name or self.title or f"document-{self.id}"


def _minutes(entry: records.TimeEntry) -> int:
    if entry.actual_hours is not None:
        return round(entry.actual_hours * 60)
    if entry.time_start and entry.time_end:
        return round((entry.time_end - entry.time_start).total_seconds() / 60)
    return 0


def _is_ticket_id(value: str) -> bool:
    return str(value).isdigit()


def _files(client: ConnectWiseClient, ticket_id: str) -> list[DocumentFile]:
    params = {"recordType": DOCUMENT_RECORD_TYPE, "recordId": int(ticket_id)}
    documents = client.all("/system/documents", DocumentFile, params=params)
    return [d for d in documents if not (d.link_flag or d.url_flag)]


@hookimpl
def gateway_ticket_time_entries(client: ConnectWiseClient, ticket_id: str) -> list[TimeEntry]:
    if not _is_ticket_id(ticket_id):
        return []
    entries = [
        TimeEntry(
            id=str(entry.id),
            minutes=_minutes(entry),
            notes=entry.notes or "",
            started_at=entry.time_start,
            member=(entry.member.identifier or entry.member.name) if entry.member else None,
        )
        for entry in client.time_entries(ticket_id)
    ]
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(entries, key=lambda e: (e.started_at or oldest, int(e.id)))


@hookimpl
def gateway_ticket_attachments(client: ConnectWiseClient, ticket_id: str) -> list[Attachment]:
    if not _is_ticket_id(ticket_id):
        return []
    return [
        Attachment(
            id=str(document.id),
            filename=document.name,
            size=document.size,
            content_type=guess_type(document.name),
            created_at=(document.info.date_entered or document.info.last_updated) if document.info else None,
        )
        for document in _files(client, ticket_id)
    ]


@hookimpl
def gateway_attachment_download(
    client: ConnectWiseClient, ticket_id: str, attachment_id: str
) -> AttachmentUpload | None:
    if not (_is_ticket_id(ticket_id) and _is_ticket_id(attachment_id)):
        return None
    # The download URL names no ticket: only a document filed on this ticket is served.
    document = next((d for d in _files(client, ticket_id) if d.id == int(attachment_id)), None)
    if document is None:
        return None
    try:
        response = client.download_document(document.id)
    except VendorRejected as exc:
        if exc.status == 404:
            return None
        raise
    filename = document.file_name or disposition_filename(response.headers.get("content-disposition")) or document.name
    data = response.content
    return AttachmentUpload(
        filename=filename, content_type=content_type(filename, response.headers.get("content-type")), size=len(data),
        data=data,
    )
