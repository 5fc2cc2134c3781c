"""The Autotask plugin's hook implementations (entry point ``msp_gateway: autotask``).

Autotask cannot change a status in the same call as a note (note POST, then ticket PATCH), so
the plugin does not list ``reply_with_status``; the gateway sends the two steps. Notes and time
entries have no external-reference field, so their reconcile matches content created since the
step began; created tickets carry the dedup key in ``externalID``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from gateway import hookimpl
from gateway.errors import NotSupported
from gateway.models import (
    AttachmentUpload,
    Capability,
    Connection,
    Customer,
    Effect,
    RateLimitPolicy,
    RateLimitWindow,
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
    make_ref,
)
from gateway.webhooks import WebhookDelivery
from gateway_autotask import mapping, reconcile, webhooks
from gateway_autotask import query as q
from gateway_autotask.client import AutotaskClient
from gateway_autotask.detail import gateway_attachment_download, gateway_ticket_attachments, gateway_ticket_time_entries  # noqa: F401
from gateway_autotask.constants import (
    ATTACHMENT_CAP_BYTES,
    HEADROOM,
    HOURLY_THRESHOLD,
    ID_SHAPE,
    THREAD_LIMIT,
    TITLE,
    VENDOR,
    external_id_for,
)
from gateway_autotask.settings import AutotaskSettings

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
    }
)

# 10,000 calls an hour per database, shared by every integration: the gateway takes half,
# which keeps the database under the 50 % mark where Autotask starts adding latency.
DEFAULT_RATE_LIMIT = RateLimitPolicy(
    windows=(RateLimitWindow(requests=HOURLY_THRESHOLD, per_seconds=3600.0),),
    concurrency=THREAD_LIMIT,
    headroom=HEADROOM,
)


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
            settings_type=AutotaskSettings,
            secret_settings=("secret", "integration_code"),
            id_shape=ID_SHAPE,
        )
    ]


@hookimpl
def gateway_connect(connection: Connection) -> AutotaskClient:
    return AutotaskClient(connection)


# --------------------------------------------------------------------------- ticket reads


def _overrides(client: AutotaskClient) -> dict[str, str]:
    return dict(client.settings.status_categories)


def _tickets(
    client: AutotaskClient, records: list[dict[str, Any]], related: dict[int, tuple[RelatedRecord, ...]] | None = None
) -> list[Ticket]:
    fields = client.fields("Tickets")
    related = related or {}
    company_ids = {int(r["companyID"]) for r in records if r.get("companyID") is not None}
    names = client.company_names(company_ids) if company_ids else {}
    return [
        mapping.to_ticket(
            record,
            connection_id=client.connection.id,
            fields=fields,
            overrides=_overrides(client),
            company_names=names,
            url=client.ticket_url(record["id"]),
            related=related.get(int(record["id"]), ()),
        )
        for record in records
    ]


@hookimpl
def gateway_ticket_list(client: AutotaskClient, query: TicketQuery) -> TicketPage:
    if query.cursor:
        # The cursor is Autotask's nextPageUrl: the filter and page size travel inside it.
        page = client.next_page(query.cursor)
    else:
        filters: list[q.Condition] = []
        if query.updated_since is not None:
            filters.append(q.gte("lastActivityDate", query.updated_since))
        if query.open_only:
            closed = mapping.closed_status_ids(client.fields("Tickets"), _overrides(client))
            if closed:
                filters.append(q.not_in("status", closed))
        page = client.query_page("Tickets", filters, max_records=query.page_size)
    return TicketPage(tickets=_tickets(client, page.items), next_cursor=page.next_url)


@hookimpl
def gateway_ticket_get(client: AutotaskClient, ticket_id: str) -> Ticket | None:
    if not ticket_id.isdigit():
        return None
    record = client.ticket(ticket_id)
    if record is None:
        return None
    # One ticket's configuration item (lists leave it out: a call per ticket).
    item_id = record.get("configurationItemID")
    item = client.configuration_item(item_id) if item_id else None
    related = {int(record["id"]): (mapping.to_configuration(client.connection.id, item),)} if item else {}
    return _tickets(client, [record], related)[0]


@hookimpl
def gateway_ticket_thread(client: AutotaskClient, ticket_id: str) -> list[ThreadEntry]:
    notes = client.notes(ticket_id)
    resources = {int(n["creatorResourceID"]) for n in notes if n.get("creatorResourceID") and not n.get("createdByContactID")}
    contacts = {int(n["createdByContactID"]) for n in notes if n.get("createdByContactID")}
    resource_names = client.resource_names(resources) if resources else {}
    contact_names = client.contact_names(contacts) if contacts else {}
    entries = [
        mapping.to_thread_entry(
            note,
            public_publish=client.settings.public_publish,
            resource_names=resource_names,
            contact_names=contact_names,
        )
        for note in notes
    ]
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(entries, key=lambda e: (e.created_at or oldest, int(e.id)))


@hookimpl
def gateway_ticket_statuses(client: AutotaskClient, ticket: Ticket) -> list[TicketStatus]:
    # Statuses are one picklist for the whole database: the ticket's queue does not matter.
    return mapping.statuses(client.fields("Tickets"), _overrides(client))


@hookimpl
def gateway_ticket_form(client: AutotaskClient) -> TicketForm:
    return mapping.to_form(client.connection.id, client.fields("Tickets"), _overrides(client))


@hookimpl
def gateway_customer_list(client: AutotaskClient) -> list[Customer]:
    # integration_ids is keyed by gateway vendor name, as every plugin keys it: a Hudu company
    # whose Autotask integration points at company 175 matches {"autotask": "175"}.
    return [
        Customer(
            ref=make_ref(client.connection.id, company["id"]),
            name=str(company.get("companyName") or ""),
            vendor=VENDOR,
            integration_ids={VENDOR: str(company["id"])},
        )
        for company in client.companies()
    ]


# --------------------------------------------------------------------------- writes


@hookimpl
def gateway_reply(client: AutotaskClient, ticket_id: str, reply: ReplyStep, dedup_key: str) -> Effect:
    if reply.status_id is not None:
        raise NotSupported(VENDOR, Capability.REPLY_WITH_STATUS.value, "Autotask changes a status in a separate ticket update")
    publish = client.settings.internal_publish if reply.internal else client.settings.public_publish
    note_id = client.add_note(ticket_id, title=mapping.note_title(reply.text), description=reply.text, publish=publish)
    return Effect(vendor_id=str(note_id), detail="internal note" if reply.internal else "public reply")


@hookimpl
def gateway_status_change(client: AutotaskClient, ticket_id: str, status_id: str) -> Effect:
    client.set_ticket_status(ticket_id, int(status_id))
    # A status change makes no new record: nothing to claim.
    return Effect(detail=f"status set to {status_id}")


@hookimpl
def gateway_ticket_create(client: AutotaskClient, ticket: TicketCreate, dedup_key: str) -> Effect:
    body = mapping.create_body(ticket, client.fields("Tickets"), external_id_for(dedup_key))
    return Effect(vendor_id=str(client.create_ticket(body)), detail="ticket created")


@hookimpl
def gateway_time_entry(client: AutotaskClient, ticket_id: str, entry: TimeEntryCreate, dedup_key: str) -> Effect:
    entry_id = client.add_time_entry(
        ticket_id,
        minutes=entry.minutes,
        notes=entry.notes,
        started_at=entry.started_at,
        member=entry.member,
        billable=entry.billable,
    )
    return Effect(vendor_id=str(entry_id), detail=f"{entry.minutes} minutes logged")


@hookimpl
def gateway_attachment_add(client: AutotaskClient, ticket_id: str, attachment: AttachmentUpload, dedup_key: str) -> Effect:
    attachment_id = client.add_attachment(
        ticket_id,
        filename=attachment.filename,
        content_type=attachment.content_type,
        data=attachment.data,
        publish=client.settings.public_publish,
    )
    return Effect(vendor_id=str(attachment_id), detail=f"{attachment.filename} attached")


# --------------------------------------------------------------------------- reconcile


@hookimpl
def gateway_reconcile(client: AutotaskClient, context: ReconcileContext) -> Effect | None:
    return reconcile.find_effect(client, context)


# --------------------------------------------------------------------------- inbound webhooks


@hookimpl
def gateway_webhook_parse(client: AutotaskClient, headers: dict[str, str], body: bytes, secret: str | None) -> WebhookDelivery:
    webhooks.verify(headers, body, secret)
    return webhooks.delivery(body)
