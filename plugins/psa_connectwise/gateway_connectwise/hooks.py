"""The ConnectWise PSA plugin: hook implementations, in the order of ``gateway.hookspecs``.

Each hook is a few lines: call ``ConnectWiseClient``, translate with ``translate``. The
gateway routes only ConnectWise connections here, and passes back as ``client`` the
``ConnectWiseClient`` that ``gateway_connect`` built.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import hookimpl
from gateway.errors import NotSupported, VendorRejected
from gateway.links import related_lines
from gateway.models import (
    AttachmentUpload,
    Capability,
    Connection,
    Customer,
    Effect,
    FormField,
    PicklistOption,
    ReconcileContext,
    RelatedRecord,
    ReplyStep,
    ThreadEntry,
    Ticket,
    TicketCreate,
    TicketForm,
    TicketPage,
    TicketQuery,
    TicketStatus,
    TimeEntryCreate,
    VendorInfo,
    VendorKind,
    split_ref,
)
from gateway.webhooks import WebhookDelivery

from gateway_connectwise import conditions as cond
from gateway_connectwise import mapping, reconcile, webhooks
from gateway_connectwise.client import SECRET_SETTINGS, ConnectWiseClient
from gateway_connectwise.detail import gateway_attachment_download, gateway_ticket_attachments, gateway_ticket_time_entries  # noqa: F401
from gateway_connectwise.constants import (
    ATTACHMENT_CAP_BYTES,
    BILLABLE,
    CHARGE_TO_TICKET,
    DEFAULT_RATE_LIMIT,
    ID_SHAPE,
    NOT_BILLABLE,
    SUMMARY_MAX,
    TITLE,
    VENDOR,
    external_ref,
)
from gateway_connectwise.records import ConnectWiseSettings

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
        Capability.WEBHOOK,
        # Not REPLY_WITH_STATUS: a note and a status change are two ConnectWise calls.
    }
)

# Tickets are listed oldest change first, so a sync can keep a watermark.
TICKET_ORDER = "lastUpdated asc"


# --------------------------------------------------------------------------- registration


@hookimpl
def gateway_register_vendors() -> list[VendorInfo]:
    return [
        VendorInfo(
            name=VENDOR,
            kind=VendorKind.PSA,
            title=TITLE,
            capabilities=CAPABILITIES,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            attachment_cap_bytes=ATTACHMENT_CAP_BYTES,
            settings_type=ConnectWiseSettings,
            secret_settings=SECRET_SETTINGS,
            id_shape=ID_SHAPE,
        )
    ]


@hookimpl
def gateway_connect(connection: Connection) -> ConnectWiseClient:
    return ConnectWiseClient(connection)


# --------------------------------------------------------------------------- ticket reads


def _ticket(client: ConnectWiseClient, record: Any, related: tuple[RelatedRecord, ...] = ()) -> Ticket:
    return mapping.ticket(
        record,
        connection_id=client.connection.id,
        link_root=mapping.ui_root(client.api_root, client.settings.ui_url),
        company_id=client.settings.company_id,
        overrides=client.settings.status_categories,
        related=related,
    )


@hookimpl
def gateway_ticket_list(client: ConnectWiseClient, query: TicketQuery) -> TicketPage:
    conditions = cond.all_of(
        f"lastUpdated >= {cond.when(query.updated_since)}" if query.updated_since else None,
        "closedFlag = false" if query.open_only else None,
    )
    page = int(query.cursor) if query.cursor else 1  # the cursor is ConnectWise's page number
    result = client.tickets(conditions=conditions or None, order_by=TICKET_ORDER, page=page, page_size=query.page_size)
    return TicketPage(
        tickets=[_ticket(client, record) for record in result.items],
        next_cursor=str(result.next_page) if result.next_page else None,
    )


@hookimpl
def gateway_ticket_get(client: ConnectWiseClient, ticket_id: str) -> Ticket | None:
    if not ticket_id.isdigit():
        return None
    record = client.ticket(ticket_id)
    if record is None:
        return None
    # One ticket's configuration items (lists leave them out: two more calls per ticket).
    items = client.ticket_configurations(ticket_id)
    return _ticket(client, record, tuple(mapping.configuration(i, client.connection.id) for i in items))


@hookimpl
def gateway_ticket_thread(client: ConnectWiseClient, ticket_id: str) -> list[ThreadEntry]:
    entries = [mapping.thread_entry(note) for note in client.notes(ticket_id)]
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(entries, key=lambda e: (e.created_at or oldest, int(e.id)))


@hookimpl
def gateway_ticket_statuses(client: ConnectWiseClient, ticket: Ticket) -> list[TicketStatus]:
    board_id = ticket.board.id if ticket.board else None
    if board_id is None:
        record = client.ticket(ticket.vendor_id)
        board_id = str(record.board.id) if record and record.board and record.board.id is not None else None
    if board_id is None:
        return []
    overrides = client.settings.status_categories
    return [mapping.board_status(s, int(board_id), overrides) for s in client.board_statuses(int(board_id))]


@hookimpl
def gateway_ticket_form(client: ConnectWiseClient) -> TicketForm:
    overrides = client.settings.status_categories
    boards = client.boards()
    statuses: list[TicketStatus] = []
    status_options: list[PicklistOption] = []
    type_options: list[PicklistOption] = []
    for board in boards:
        for status in client.board_statuses(board.id):
            statuses.append(mapping.board_status(status, board.id, overrides))
            status_options.append(
                PicklistOption(id=str(status.id), name=status.name, parent=str(board.id), default=status.default_flag)
            )
        type_options += [
            PicklistOption(id=str(t.id), name=t.name, parent=str(board.id), default=t.default_flag)
            for t in client.board_types(board.id)
        ]
    fields = (
        FormField(name="summary", label="Summary", required=True, max_length=SUMMARY_MAX),
        FormField(name="description", label="Description", type="text"),
        FormField(
            name="board",
            label="Board",
            required=True,
            type="picklist",
            options=tuple(PicklistOption(id=str(b.id), name=b.name) for b in boards),
        ),
        FormField(
            name="company",
            label="Company",
            required=True,
            type="picklist",
            options=tuple(PicklistOption(id=str(c.id), name=c.name) for c in client.companies()),
        ),
        FormField(
            name="priority",
            label="Priority",
            type="picklist",
            options=tuple(
                PicklistOption(id=str(p.id), name=p.name, default=p.default_flag) for p in client.priorities()
            ),
        ),
        # Types and statuses belong to a board: ``parent`` is the board's id.
        FormField(name="type", label="Type", type="picklist", options=tuple(type_options)),
        FormField(name="status", label="Status", type="picklist", options=tuple(status_options)),
    )
    return TicketForm(connection=client.connection.id, fields=fields, statuses=tuple(statuses))


# --------------------------------------------------------------------------- writes


def _record_id(field: str, value: Any) -> int:
    """A form value naming a ConnectWise record (``"12"``, ``12`` or a reference ``"cw:12"``)."""
    text = str(value)
    if ":" in text:
        text = split_ref(text)[1]
    record_id = ID_SHAPE.as_int(text)
    if record_id is None:
        raise VendorRejected(f"{field} {text[:40]!r} is not a ConnectWise record id", status=422)
    return record_id


@hookimpl
def gateway_reply(client: ConnectWiseClient, ticket_id: str, reply: ReplyStep, dedup_key: str) -> Effect:
    if reply.status_id is not None:
        raise NotSupported(VENDOR, Capability.REPLY_WITH_STATUS.value, "ConnectWise sets a status in a separate call")
    note = client.add_note(ticket_id, reply.text, internal=reply.internal)
    return Effect(vendor_id=str(note.id), detail="internal note" if reply.internal else "discussion note")


@hookimpl
def gateway_status_change(client: ConnectWiseClient, ticket_id: str, status_id: str) -> Effect:
    # ``PatchOperation.value`` is a string in the Service API spec; ConnectWise reads the id from it.
    operations = [{"op": "replace", "path": "status/id", "value": str(_record_id("status", status_id))}]
    ticket = client.patch_ticket(ticket_id, operations)
    return Effect(detail=f"status {ticket.status.label if ticket.status else status_id}")


@hookimpl
def gateway_ticket_create(client: ConnectWiseClient, ticket: TicketCreate, dedup_key: str) -> Effect:
    fields = ticket.fields
    company = fields.get("company") or ticket.customer_id
    if not company:
        raise VendorRejected("a ConnectWise ticket needs a company", status=422)
    body: dict[str, Any] = {
        "summary": ticket.summary or str(fields.get("summary", "")),
        "company": {"id": _record_id("company", company)},
        "externalXRef": external_ref(dedup_key),
    }
    for name in ("board", "status", "type", "priority"):
        if fields.get(name) not in (None, ""):
            body[name] = {"id": _record_id(name, fields[name])}
    description = ticket.description or str(fields.get("description", ""))
    if ticket.related:
        # ConnectWise has no field for another tool's record (externalXRef holds the dedup
        # key): the references go at the end of the initial description, one line each.
        description = "\n\n".join(filter(None, [description, related_lines(ticket.related)]))
    if description:
        body["initialDescription"] = description
    created = client.create_ticket(body)
    return Effect(vendor_id=str(created.id), detail="ticket created")


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@hookimpl
def gateway_time_entry(client: ConnectWiseClient, ticket_id: str, entry: TimeEntryCreate, dedup_key: str) -> Effect:
    start = entry.started_at or datetime.now(UTC) - timedelta(minutes=entry.minutes)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.replace(microsecond=0)
    body: dict[str, Any] = {
        "chargeToId": _record_id("ticket", ticket_id),
        "chargeToType": CHARGE_TO_TICKET,
        "timeStart": _timestamp(start),
        "timeEnd": _timestamp(start + timedelta(minutes=entry.minutes)),
        "notes": entry.notes,
        "billableOption": BILLABLE if entry.billable else NOT_BILLABLE,
    }
    if entry.member:
        body["member"] = {"identifier": entry.member}
    created = client.add_time_entry(body)
    return Effect(vendor_id=str(created.id), detail=f"{entry.minutes} minutes")


@hookimpl
def gateway_attachment_add(
    client: ConnectWiseClient, ticket_id: str, attachment: AttachmentUpload, dedup_key: str
) -> Effect:
    document = client.upload_document(ticket_id, attachment.filename, attachment.content_type, attachment.data)
    return Effect(vendor_id=str(document.id), detail=document.file_name or attachment.filename)


@hookimpl
def gateway_reconcile(client: ConnectWiseClient, context: ReconcileContext) -> Effect | None:
    return reconcile.find_effect(client, context)


# --------------------------------------------------------------------------- customers


@hookimpl
def gateway_customer_list(client: ConnectWiseClient) -> list[Customer]:
    return [mapping.customer(company, client.connection.id) for company in client.companies()]


# --------------------------------------------------------------------------- inbound webhooks


@hookimpl
def gateway_webhook_parse(
    client: ConnectWiseClient, headers: dict[str, str], body: bytes, secret: str | None
) -> WebhookDelivery:
    webhooks.verify(headers, body, secret)
    return webhooks.delivery(body)
