"""The Template Vendor plugin: hook implementations, in the order of ``gateway.hookspecs``.

Each hook is a few lines: call ``TemplateVendorClient``, translate with ``mapping``. The
gateway routes only this vendor's connections here and passes back, as ``client``, the
``TemplateVendorClient`` that ``gateway_connect`` built. List in ``CAPABILITIES`` only what
works: a capability left out is refused with 501 before anything is queued.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import hookimpl
from gateway.errors import NotSupported, VendorRejected
from gateway.models import (
    Attachment,
    AttachmentUpload,
    Capability,
    Connection,
    Customer,
    Effect,
    FormField,
    PicklistOption,
    ReconcileContext,
    ReplyStep,
    ThreadEntry,
    Ticket,
    TicketCreate,
    TicketForm,
    TicketPage,
    TicketQuery,
    TicketStatus,
    TimeEntry,
    TimeEntryCreate,
    VendorInfo,
    VendorKind,
)

from gateway_templatevendor import mapping, reconcile
from gateway_templatevendor.client import TemplateVendorClient, record_id
from gateway_templatevendor.constants import (
    API_KEY_SETTING,
    ATTACHMENT_CAP_BYTES,
    DEFAULT_RATE_LIMIT,
    SUMMARY_MAX,
    TITLE,
    VENDOR,
    external_ref,
)
from gateway_templatevendor.settings import TemplateVendorSettings

CAPABILITIES = frozenset(
    {
        Capability.TICKET_READ,
        Capability.REPLY,
        Capability.INTERNAL_NOTE,
        Capability.STATUS,
        Capability.CREATE_TICKET,
        Capability.TIME_ENTRY,
        Capability.ATTACHMENT,
        Capability.CUSTOMER_READ,
        # Not REPLY_WITH_STATUS: a note and a status change are two calls to this vendor.
    }
)


# --------------------------------------------------------------------------- registration


@hookimpl
def gateway_register_vendors() -> list[VendorInfo]:
    """Template Vendor: a PSA with tickets, notes, statuses, time entries and attachments."""
    return [
        VendorInfo(
            name=VENDOR,
            kind=VendorKind.PSA,
            title=TITLE,
            capabilities=CAPABILITIES,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            attachment_cap_bytes=ATTACHMENT_CAP_BYTES,
            settings_type=TemplateVendorSettings,
            secret_settings=(API_KEY_SETTING,),
        )
    ]


@hookimpl
def gateway_connect(connection: Connection) -> TemplateVendorClient:
    """A ``TemplateVendorClient`` for the connection."""
    return TemplateVendorClient(connection)


# --------------------------------------------------------------------------- ticket reads


def _ticket(client: TemplateVendorClient, record: mapping.Ticket) -> Ticket:
    return mapping.ticket(record, connection_id=client.connection.id, web_url=client.web_url)


@hookimpl
def gateway_ticket_list(client: TemplateVendorClient, query: TicketQuery) -> TicketPage:
    """One page of tickets, oldest change first; the cursor is the vendor's page number."""
    page = int(query.cursor) if query.cursor and query.cursor.isdigit() else 1
    items, next_page = client.tickets(
        updated_since=query.updated_since, open_only=query.open_only, page=page, page_size=query.page_size
    )
    return TicketPage(tickets=[_ticket(client, t) for t in items], next_cursor=str(next_page) if next_page else None)


@hookimpl
def gateway_ticket_get(client: TemplateVendorClient, ticket_id: str) -> Ticket | None:
    if not ticket_id.isdigit():
        return None
    record = client.ticket(ticket_id)
    return _ticket(client, record) if record is not None else None


@hookimpl
def gateway_ticket_thread(client: TemplateVendorClient, ticket_id: str) -> list[ThreadEntry]:
    oldest = datetime.min.replace(tzinfo=UTC)
    entries = [mapping.thread_entry(note) for note in client.notes(ticket_id)]
    return sorted(entries, key=lambda e: (e.created_at or oldest, int(e.id)))


@hookimpl
def gateway_ticket_time_entries(client: TemplateVendorClient, ticket_id: str) -> list[TimeEntry]:
    oldest = datetime.min.replace(tzinfo=UTC)
    entries = [mapping.time_entry(entry) for entry in client.time_entries(ticket_id)]
    return sorted(entries, key=lambda e: (e.started_at or oldest, int(e.id)))


@hookimpl
def gateway_ticket_attachments(client: TemplateVendorClient, ticket_id: str) -> list[Attachment]:
    return [mapping.attachment(a) for a in client.attachments(ticket_id)]


@hookimpl
def gateway_attachment_download(
    client: TemplateVendorClient, ticket_id: str, attachment_id: str
) -> AttachmentUpload | None:
    if not (ticket_id.isdigit() and attachment_id.isdigit()):
        return None
    record = client.attachment(ticket_id, attachment_id)
    if record is None:
        return None
    data = client.attachment_content(ticket_id, attachment_id)
    return AttachmentUpload(record.filename, record.content_type or "application/octet-stream", len(data), data)


@hookimpl
def gateway_ticket_statuses(client: TemplateVendorClient, ticket: Ticket) -> list[TicketStatus]:
    """Every status, in the vendor's order (this vendor does not scope statuses per queue)."""
    return [mapping.status(s) for s in client.statuses()]


@hookimpl
def gateway_ticket_form(client: TemplateVendorClient) -> TicketForm:
    statuses = client.statuses()
    fields = (
        FormField(name="summary", label="Summary", required=True, max_length=SUMMARY_MAX),
        FormField(name="description", label="Description", type="text"),
        FormField(
            name="company", label="Company", required=True, type="picklist",
            options=tuple(PicklistOption(id=str(c.id), name=c.name) for c in client.companies()),
        ),
        FormField(
            name="status", label="Status", type="picklist",
            options=tuple(PicklistOption(id=str(s.id), name=s.name, default=s.is_default) for s in statuses),
        ),
    )
    return TicketForm(
        connection=client.connection.id, fields=fields, statuses=tuple(mapping.status(s) for s in statuses)
    )


# --------------------------------------------------------------------------- writes


@hookimpl
def gateway_reply(client: TemplateVendorClient, ticket_id: str, reply: ReplyStep, dedup_key: str) -> Effect:
    if reply.status_id is not None:
        raise NotSupported(VENDOR, Capability.REPLY_WITH_STATUS.value, f"{TITLE} sets a status in a separate call")
    note = client.add_note(ticket_id, reply.text, internal=reply.internal)
    return Effect(vendor_id=str(note.id), detail="internal note" if reply.internal else "public reply")


@hookimpl
def gateway_status_change(client: TemplateVendorClient, ticket_id: str, status_id: str) -> Effect:
    ticket = client.set_status(ticket_id, record_id(status_id, "status"))
    return Effect(detail=f"status {ticket.status.name or status_id}")


@hookimpl
def gateway_ticket_create(client: TemplateVendorClient, ticket: TicketCreate, dedup_key: str) -> Effect:
    fields = ticket.fields
    company = fields.get("company") or ticket.customer_id
    if not company:
        raise VendorRejected(f"a {TITLE} ticket needs a company", status=422)
    body: dict[str, Any] = {
        "summary": ticket.summary or str(fields.get("summary", "")),
        "company_id": record_id(company, "company"),
        # The dedup key goes in the vendor's external-reference field: reconcile finds it there.
        "external_ref": external_ref(dedup_key),
    }
    if fields.get("status") not in (None, ""):
        body["status_id"] = record_id(fields["status"], "status")
    description = ticket.description or str(fields.get("description", ""))
    if ticket.related:
        description = "\n\n".join(filter(None, [description, "Related: " + ", ".join(ticket.related)]))
    if description:
        body["description"] = description
    created = client.create_ticket(body)
    return Effect(vendor_id=str(created.id), detail="ticket created")


@hookimpl
def gateway_time_entry(
    client: TemplateVendorClient, ticket_id: str, entry: TimeEntryCreate, dedup_key: str
) -> Effect:
    started = entry.started_at or datetime.now(UTC) - timedelta(minutes=entry.minutes)
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    body: dict[str, Any] = {
        "minutes": entry.minutes, "notes": entry.notes, "started_at": started.isoformat(), "billable": entry.billable
    }
    if entry.member:
        body["member"] = entry.member
    created = client.add_time_entry(ticket_id, body)
    return Effect(vendor_id=str(created.id), detail=f"{entry.minutes} minutes")


@hookimpl
def gateway_attachment_add(
    client: TemplateVendorClient, ticket_id: str, attachment: AttachmentUpload, dedup_key: str
) -> Effect:
    added = client.add_attachment(ticket_id, attachment.filename, attachment.content_type, attachment.data)
    return Effect(vendor_id=str(added.id), detail=added.filename)


@hookimpl
def gateway_reconcile(client: TemplateVendorClient, context: ReconcileContext) -> Effect | None:
    return reconcile.find_effect(client, context)


# --------------------------------------------------------------------------- customers


@hookimpl
def gateway_customer_list(client: TemplateVendorClient) -> list[Customer]:
    return [mapping.customer(c, client.connection.id) for c in client.companies()]
