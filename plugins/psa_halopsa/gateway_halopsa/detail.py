"""A ticket's details read back from Halo: its time entries and its attachments.

- Time: Halo logs time on actions (``timetaken``, hours) [V halo-spec ``Actions``], which is
  where ``gateway_time_entry`` puts it, so the ticket's time is its actions with
  ``timetaken`` above zero (``GET /api/Actions?ticket_id=``). ``/api/TimesheetEvent`` is no
  way in: it filters by agent and date range only, not by ticket [V halo-spec parameters].
  The work's start is ``actionarrivaldate`` when set, else the action's ``datetime``; the
  member is the action's ``who``.
- Attachments: ``GET /api/Attachment?ticket_id=`` → ``{"record_count", "attachments": [...]}``
  (metadata: ``id, filename, filesize, content_type, datecreated``) [V halo-spec params and
  ``Attachment`` schema; C haloapi ``ResourceType = attachments``].
- Download: ``GET /api/Attachment/{id}`` answers the file's bytes with a
  ``Content-Disposition`` [C haloapi ``Get-HaloAttachment``]. That URL names no ticket, so only
  an attachment the ticket's list shows is fetched.

The hooks are re-exported from ``hooks`` (the plugin's entry point), which pluggy registers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from gateway import hookimpl
from gateway.attachments import content_type, disposition_filename, guess_type, media_type
from gateway.models import Attachment, AttachmentUpload, TimeEntry

from gateway_halopsa.client import HaloClient
from gateway_halopsa.mapping import parse_time, plain_text


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _hours(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _files(client: HaloClient, ticket_id: str) -> list[dict[str, Any]]:
    wanted = int(ticket_id)
    # Halo's list includes the attachments of the ticket's actions; all carry its ticket_id.
    return [
        a
        for a in client.attachments(wanted)
        if _int(a.get("id")) is not None and _int(a.get("ticket_id")) in (None, wanted)
    ]


@hookimpl
def gateway_ticket_time_entries(client: HaloClient, ticket_id: str) -> list[TimeEntry]:
    if not ticket_id.isdigit():
        return []
    entries = [
        TimeEntry(
            id=str(action["id"]),
            minutes=round(_hours(action.get("timetaken")) * 60),
            notes=str(action.get("note") or plain_text(action.get("note_html")) or ""),
            started_at=parse_time(action.get("actionarrivaldate")) or parse_time(action.get("datetime")),
            member=str(action["who"]) if action.get("who") else None,
        )
        for action in client.actions(ticket_id)
        if action.get("id") is not None and _hours(action.get("timetaken")) > 0
    ]
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(entries, key=lambda e: (e.started_at or oldest, int(e.id)))


@hookimpl
def gateway_ticket_attachments(client: HaloClient, ticket_id: str) -> list[Attachment]:
    if not ticket_id.isdigit():
        return []
    listed = []
    for record in _files(client, ticket_id):
        filename = str(record.get("filename") or "") or f"attachment-{record['id']}"
        listed.append(
            Attachment(
                id=str(record["id"]),
                filename=filename,
                size=_int(record.get("filesize")),
                content_type=media_type(record.get("content_type")) or guess_type(filename),
                created_at=parse_time(record.get("datecreated")),
            )
        )
    return listed


@hookimpl
def gateway_attachment_download(client: HaloClient, ticket_id: str, attachment_id: str) -> AttachmentUpload | None:
    if not (ticket_id.isdigit() and attachment_id.isdigit()):
        return None
    record = next((a for a in _files(client, ticket_id) if _int(a.get("id")) == int(attachment_id)), None)
    if record is None:
        return None
    response = client.attachment_file(attachment_id)
    if response is None:
        return None
    filename = (
        str(record.get("filename") or "")
        or disposition_filename(response.headers.get("content-disposition"))
        or f"attachment-{attachment_id}"
    )
    data = response.content
    return AttachmentUpload(
        filename=filename,
        content_type=content_type(filename, record.get("content_type"), response.headers.get("content-type")),
        size=len(data),
        data=data,
    )
