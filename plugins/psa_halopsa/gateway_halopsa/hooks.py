"""The HaloPSA plugin: the gateway hooks, in the order of ``gateway.hookspecs``.

Every operation hook gets ``client``, the ``HaloClient`` that ``gateway_connect`` built.
Writes are Halo actions (``POST /api/Actions``): a public reply is an action with
``hiddenfromuser`` false, an internal note one with it true; ``new_status`` on the same action
changes the status in the same call, and a bare status change is an internal action whose
only purpose is its ``new_status``.
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.errors import VendorAmbiguous
from gateway.models import (
    AttachmentUpload,
    Connection,
    Customer,
    Effect,
    FormField,
    PicklistOption,
    ReconcileContext,
    ReplyStep,
    Ticket,
    TicketCreate,
    TicketForm,
    TicketPage,
    TicketQuery,
    TicketStatus,
    ThreadEntry,
    TimeEntryCreate,
    VendorInfo,
    VendorKind,
)
from gateway.webhooks import WebhookEvent

from gateway_halopsa import constants, mapping, reconcile, webhooks, writes
from gateway_halopsa.client import HaloClient, TicketCursor
from gateway_halopsa.detail import gateway_attachment_download, gateway_ticket_attachments, gateway_ticket_time_entries  # noqa: F401
from gateway_halopsa.settings import HaloSettings

# --------------------------------------------------------------------------- registration


@hookimpl
def gateway_register_vendors() -> list[VendorInfo]:
    return [
        VendorInfo(
            name=constants.VENDOR,
            kind=VendorKind.PSA,
            title=constants.TITLE,
            capabilities=constants.CAPABILITIES,
            default_rate_limit=constants.DEFAULT_RATE_LIMIT,
            attachment_cap_bytes=constants.ATTACHMENT_CAP_BYTES,
            settings_type=HaloSettings,
            secret_settings=("client_secret",),
            id_shape=constants.ID_SHAPE,
        )
    ]


@hookimpl
def gateway_connect(connection: Connection) -> HaloClient:
    return HaloClient(connection)


# --------------------------------------------------------------------------- ticket reads


def _status_map(client: HaloClient) -> dict[str, TicketStatus]:
    return {str(s.get("id")): mapping.to_status(s, client.settings) for s in client.statuses()}


def _ticket(client: HaloClient, record: dict, statuses: dict[str, TicketStatus]) -> Ticket:
    return mapping.to_ticket(
        record,
        connection=client.connection.id,
        root=client.root,
        statuses=statuses,
        settings=client.settings,
    )


@hookimpl
def gateway_ticket_list(client: HaloClient, query: TicketQuery) -> TicketPage:
    filters: dict[str, str] = {}
    if query.open_only:
        filters["open_only"] = "true"
    if query.updated_since:
        filters["lastupdatefromdate"] = mapping.halo_time(query.updated_since)
    page = client.ticket_page(TicketCursor.decode(query.cursor, query.page_size), **filters)
    statuses = _status_map(client)
    return TicketPage(
        tickets=[_ticket(client, record, statuses) for record in page.tickets],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


@hookimpl
def gateway_ticket_get(client: HaloClient, ticket_id: str) -> Ticket | None:
    record = client.ticket(ticket_id)
    if record is None:
        return None
    return _ticket(client, record, _status_map(client))


@hookimpl
def gateway_ticket_thread(client: HaloClient, ticket_id: str) -> list[ThreadEntry]:
    return [mapping.to_thread_entry(action) for action in client.actions(ticket_id)]


@hookimpl
def gateway_ticket_statuses(client: HaloClient, ticket: Ticket) -> list[TicketStatus]:
    tickettype = int(ticket.board.id) if ticket.board and ticket.board.id.isdigit() else None
    return [mapping.to_status(s, client.settings) for s in client.statuses(tickettype)]


@hookimpl
def gateway_ticket_form(client: HaloClient) -> TicketForm:
    ticket_types = tuple(
        PicklistOption(id=str(t["id"]), name=str(t.get("name") or t["id"])) for t in client.ticket_types()
    )
    priorities: dict[str, PicklistOption] = {}
    for p in client.priorities():
        # Priorities are listed per SLA; ``priorityid`` is the id a ticket takes.
        key = str(p.get("priorityid", p.get("id")))
        priorities.setdefault(key, PicklistOption(id=key, name=str(p.get("name") or key)))
    clients = tuple(
        PicklistOption(id=str(c["id"]), name=str(c.get("name") or c["id"])) for c in client.clients()
    )
    fields = (
        FormField(name="summary", label="Summary", required=True, type="string"),
        FormField(name="details", label="Details", type="text"),
        FormField(name="tickettype_id", label="Ticket type", type="picklist", options=ticket_types),
        FormField(name="priority_id", label="Priority", type="picklist", options=tuple(priorities.values())),
        FormField(name="client_id", label="Client", type="picklist", options=clients),
    )
    statuses = tuple(mapping.to_status(s, client.settings) for s in client.statuses())
    return TicketForm(connection=client.connection.id, fields=fields, statuses=statuses)


# --------------------------------------------------------------------------- writes


def _saved_id(record: dict, what: str) -> str:
    """The id Halo gave what it saved; without one the write's outcome is unknown."""
    value = record.get("id")
    if value in (None, "", 0):
        raise VendorAmbiguous(f"halopsa saved the {what} but its answer has no id")
    return str(value)


@hookimpl
def gateway_reply(client: HaloClient, ticket_id: str, reply: ReplyStep, dedup_key: str) -> Effect:
    action_id = _saved_id(client.add_action(writes.reply_action(ticket_id, reply, client.settings)), "action")
    kind = "internal note" if reply.internal else "reply"
    return Effect(vendor_id=action_id, detail=f"action {action_id} ({kind})")


@hookimpl
def gateway_status_change(client: HaloClient, ticket_id: str, status_id: str) -> Effect:
    action_id = _saved_id(client.add_action(writes.status_action(ticket_id, status_id, client.settings)), "action")
    return Effect(vendor_id=action_id, detail=f"action {action_id} set status {status_id}")


@hookimpl
def gateway_ticket_create(client: HaloClient, ticket: TicketCreate, dedup_key: str) -> Effect:
    ticket_id = _saved_id(client.save_ticket(writes.ticket_fields(ticket, dedup_key, client.settings)), "ticket")
    return Effect(vendor_id=ticket_id, detail=f"ticket {ticket_id} created")


@hookimpl
def gateway_time_entry(client: HaloClient, ticket_id: str, entry: TimeEntryCreate, dedup_key: str) -> Effect:
    action_id = _saved_id(client.add_action(writes.time_action(ticket_id, entry, client.settings)), "action")
    return Effect(vendor_id=action_id, detail=f"action {action_id} logged {entry.minutes} min")


@hookimpl
def gateway_attachment_add(
    client: HaloClient, ticket_id: str, attachment: AttachmentUpload, dedup_key: str
) -> Effect:
    record = client.add_attachment(writes.attachment_fields(ticket_id, attachment, dedup_key))
    attachment_id = _saved_id(record, "attachment")
    return Effect(vendor_id=attachment_id, detail=f"attachment {attachment_id} added")


@hookimpl
def gateway_reconcile(client: HaloClient, context: ReconcileContext) -> Effect | None:
    return reconcile.reconcile(client, context)


# --------------------------------------------------------------------------- customers


@hookimpl
def gateway_customer_list(client: HaloClient) -> list[Customer]:
    return [mapping.to_customer(c, client.connection.id) for c in client.clients()]


# --------------------------------------------------------------------------- inbound webhooks


@hookimpl
def gateway_webhook_parse(
    client: HaloClient, headers: dict[str, str], body: bytes, secret: str | None
) -> list[WebhookEvent]:
    webhooks.verify(headers, body, secret, client.settings)
    return webhooks.parse(body)
