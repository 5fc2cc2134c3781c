"""The vendor plugin contract: every hook a plugin may implement, in lifecycle order.

A plugin is a module (or object) registered under the ``msp_gateway`` entry-point group whose
functions are decorated with ``gateway.hookimpl`` and named after the specs below.

How calls are routed: a plugin first declares its vendors with ``gateway_register_vendors``.
From then on the gateway calls every other hook *only on the plugin that registered the
connection's vendor*, so an implementation never has to check which vendor it is serving.
``gateway_connect`` turns a configured connection into the plugin's own client object; every
operation hook receives that object as ``client``.

Answers and errors:
- Operation hooks are ``firstresult``: the owning plugin's answer is the answer.
- A hook a plugin does not implement (or a capability it does not list) is answered to the
  caller as 501 Not Implemented, naming the vendor and the capability.
- Vendor HTTP goes through ``gateway.vendor_http.VendorHTTP``, which raises the typed errors in
  ``gateway.errors``; hooks let those propagate. A hook raises ``gateway.errors.NotSupported``
  when the vendor cannot do what was asked (NinjaOne cannot acknowledge an alert).
- Write hooks receive the write's ``dedup_key``; where the vendor has a field for an external
  reference (ConnectWise ``externalXRef``, Autotask ``externalID``, Halo ``third_party_id``)
  store it there so ``gateway_reconcile`` can find the effect later.

Evolution: hooks only gain arguments (pluggy lets an implementation omit those it does not
use). Additions carry a ``.. versionadded::`` note.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from gateway.models import (
        Alert,
        Attachment,
        AttachmentUpload,
        Connection,
        Customer,
        Device,
        Effect,
        ReconcileContext,
        ReplyStep,
        RunbookLink,
        Ticket,
        TicketCreate,
        TicketForm,
        TicketPage,
        TicketQuery,
        TicketStatus,
        ThreadEntry,
        TimeEntry,
        TimeEntryCreate,
        VendorInfo,
    )
    from gateway.webhooks import WebhookDelivery, WebhookEvent

PROJECT = "msp_gateway"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------- registration


@hookspec
def gateway_register_vendors() -> list[VendorInfo]:
    """Declare the vendors this plugin serves.

    Called once when plugins load. Every plugin's answer is collected; two plugins claiming one
    vendor name fail start-up.

    :returns: one ``VendorInfo`` per vendor: its name (the ``vendor`` value in connection
        config), its kind, its capabilities, its default rate limit, its attachment cap in bytes
        and the msgspec Struct its connection settings convert to.
    """


@hookspec(firstresult=True)
def gateway_connect(connection: Connection) -> Any:
    """Build the client object for one configured connection.

    Build it with ``gateway.vendor_http.VendorHTTP`` so that every call is rate-limited and
    audited.

    :param connection: the connection with its base URL, converted settings and resolved
        secrets. Secrets must only ever reach the vendor's auth headers.
    :returns: any object; the gateway passes it back as ``client`` to every other hook for this
        connection and calls ``close()`` on it, if it has one, at shut-down.
    """


# --------------------------------------------------------------------------- ticket reads


@hookspec(firstresult=True)
def gateway_ticket_list(client: Any, query: TicketQuery) -> TicketPage:
    """Return one page of tickets, oldest change first where the vendor allows it.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param query: ``updated_since`` (only tickets changed at or after it), ``open_only``,
        ``page_size`` (a wish; the vendor may cap it) and ``cursor`` (the ``next_cursor`` of the
        page before, ``None`` for the first page).
    :returns: a ``TicketPage``; its ``next_cursor`` is ``None`` on the last page.
    """


@hookspec(firstresult=True)
def gateway_ticket_get(client: Any, ticket_id: str) -> Ticket | None:
    """Read one ticket.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket_id: the ticket's id at the vendor.
    :returns: the ticket in the canonical model, or ``None`` when the vendor has no such ticket.
    """


@hookspec(firstresult=True)
def gateway_ticket_thread(client: Any, ticket_id: str) -> list[ThreadEntry]:
    """Read the ticket's conversation.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket_id: the ticket's id at the vendor.
    :returns: the entries oldest first, internal entries marked ``internal``.
    """


@hookspec(firstresult=True)
def gateway_ticket_time_entries(client: Any, ticket_id: str) -> list[TimeEntry]:
    """Read the time logged against the ticket.

    .. versionadded:: 0.2

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket_id: the ticket's id at the vendor.
    :returns: the time entries, oldest first.
    """


@hookspec(firstresult=True)
def gateway_ticket_attachments(client: Any, ticket_id: str) -> list[Attachment]:
    """List the files attached to the ticket.

    .. versionadded:: 0.2

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket_id: the ticket's id at the vendor.
    :returns: metadata only: id, file name, size and content type of each file.
    """


@hookspec(firstresult=True)
def gateway_attachment_download(client: Any, ticket_id: str, attachment_id: str) -> AttachmentUpload | None:
    """Read one attachment's bytes; the gateway hands them to the caller.

    .. versionadded:: 0.2

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket_id: the ticket's id at the vendor.
    :param attachment_id: the attachment's id, as ``gateway_ticket_attachments`` gave it.
    :returns: the bytes with their file name and content type, or ``None`` when the ticket has
        no such attachment.
    """


@hookspec(firstresult=True)
def gateway_ticket_statuses(client: Any, ticket: Ticket) -> list[TicketStatus]:
    """List the statuses this ticket may be moved to.

    The gateway refuses a status change to any status not in this list (422, listing the valid
    ones).

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket: the ticket; its ``board`` names the board, queue or ticket type where the
        PSA scopes statuses (ConnectWise statuses are per board).
    :returns: the statuses in the PSA's own order, each with its canonical category.
    """


@hookspec(firstresult=True)
def gateway_ticket_form(client: Any) -> TicketForm:
    """Describe the new-ticket form. The gateway caches it per connection and validates
    ``POST /v1/tickets`` against it.

    :param client: the object ``gateway_connect`` returned for the connection.
    :returns: the form's fields with ``required`` flags and picklist options.
    """


# --------------------------------------------------------------------------- writes


@hookspec(firstresult=True)
def gateway_reply(client: Any, ticket_id: str, reply: ReplyStep, dedup_key: str) -> Effect:
    """Post a reply (visible to the customer) or an internal note.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket_id: the ticket's id at the vendor.
    :param reply: ``text``; ``internal`` (false: the customer sees it); ``status_id``, set only
        when the vendor lists ``REPLY_WITH_STATUS``: then the status change must happen in the
        same vendor call.
    :param dedup_key: the write's dedup key; store it in the vendor's external-reference field
        where there is one, so ``gateway_reconcile`` can find the effect.
    :returns: the ``Effect`` naming the vendor id of the note or action made.
    """


@hookspec(firstresult=True)
def gateway_status_change(client: Any, ticket_id: str, status_id: str) -> Effect:
    """Move the ticket to another PSA status.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket_id: the ticket's id at the vendor.
    :param status_id: one of the ids ``gateway_ticket_statuses`` listed for the ticket.
    :returns: the ``Effect`` of the change (the ticket's id, or the vendor's record of it).
    """


@hookspec(firstresult=True)
def gateway_ticket_create(client: Any, ticket: TicketCreate, dedup_key: str) -> Effect:
    """Create a ticket.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket: summary, description, customer and form values, already validated against
        ``gateway_ticket_form``; ``related`` names records in other tools (an alert).
    :param dedup_key: the write's dedup key; store it in the vendor's external-reference field.
    :returns: the ``Effect`` naming the new ticket's id.
    """


@hookspec(firstresult=True)
def gateway_time_entry(
    client: Any, ticket_id: str, entry: TimeEntryCreate, dedup_key: str
) -> Effect:
    """Log time against the ticket.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket_id: the ticket's id at the vendor.
    :param entry: minutes, notes, start time, member and whether it is billable.
    :param dedup_key: the write's dedup key; store it where the vendor keeps a reference.
    :returns: the ``Effect`` naming the time entry (or action) made.
    """


@hookspec(firstresult=True)
def gateway_attachment_add(
    client: Any, ticket_id: str, attachment: AttachmentUpload, dedup_key: str
) -> Effect:
    """Attach a file to the ticket. The gateway has already checked the size cap.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param ticket_id: the ticket's id at the vendor.
    :param attachment: the file name, content type, size and bytes.
    :param dedup_key: the write's dedup key with the file's index (``key:0``, ``key:1``...).
    :returns: the ``Effect`` naming the attachment made.
    """


@hookspec(firstresult=True)
def gateway_alert_action(client: Any, alert_id: str, action: str, dedup_key: str) -> Effect:
    """Acknowledge or resolve an RMM alert. Raise ``gateway.errors.NotSupported`` with the
    reason when the vendor has no such action.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param alert_id: the alert's id at the vendor.
    :param action: ``"acknowledge"`` or ``"resolve"``.
    :param dedup_key: the write's dedup key.
    :returns: the ``Effect`` of the action.
    """


@hookspec(firstresult=True)
def gateway_reconcile(client: Any, context: ReconcileContext) -> Effect | None:
    """Look for the effect of a write step whose outcome is unknown.

    Called before a step is sent again after a timeout, a dropped connection or a worker crash.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param context: the step name (``reply``, ``status``, ``create``, ``time_entry``,
        ``attachment``, ``alert``), the ticket (or alert), the payload sent, the dedup key, when
        the first attempt started, and vendor ids already claimed by other writes (never return
        one of those).
    :returns: the ``Effect`` found, meaning the step is done, or ``None`` when the vendor shows
        no trace of it, meaning it is safe to send again.
    """


# --------------------------------------------------------------------------- RMM and documentation


@hookspec(firstresult=True)
def gateway_customer_list(client: Any) -> list[Customer]:
    """List the vendor's customers.

    :param client: the object ``gateway_connect`` returned for the connection.
    :returns: the companies (PSA), organizations (RMM) or companies (docs) with the ids and
        names the customer map matches on.
    """


@hookspec(firstresult=True)
def gateway_alert_list(client: Any, customer_id: str | None) -> list[Alert]:
    """List active alerts.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param customer_id: a vendor organization id to list that customer's only, or ``None`` for all.
    :returns: the active alerts, each with the device it fired on where known.
    """


@hookspec(firstresult=True)
def gateway_alert_get(client: Any, alert_id: str) -> Alert | None:
    """Read one alert.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param alert_id: the alert's id at the vendor.
    :returns: the alert, or ``None`` when it no longer exists (reset or resolved).
    """


@hookspec(firstresult=True)
def gateway_device_get(client: Any, device_id: str) -> Device | None:
    """Read one device.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param device_id: the device's id at the vendor.
    :returns: the device with ``url``, the link to its page in the vendor's console, or ``None``.
    """


@hookspec(firstresult=True)
def gateway_device_find(client: Any, serial: str | None, hostname: str | None) -> Device | None:
    """Find a device by serial number or host name (serial wins).

    :param client: the object ``gateway_connect`` returned for the connection.
    :param serial: the serial number to look for, or ``None``.
    :param hostname: the host name to look for, or ``None``.
    :returns: the matching device, or ``None``.
    """


@hookspec(firstresult=True)
def gateway_runbook_list(client: Any, customer_id: str) -> list[RunbookLink]:
    """List a customer's runbook articles.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param customer_id: the customer's (company's) id in the documentation tool.
    :returns: the articles, each with the URL that opens it.
    """


# --------------------------------------------------------------------------- inbound webhooks


@hookspec(firstresult=True)
def gateway_webhook_parse(
    client: Any, headers: dict[str, str], body: bytes, secret: str | None
) -> WebhookDelivery | list[WebhookEvent]:
    """Verify and parse one inbound webhook delivery. Raise ``gateway.errors.BadSignature``
    when the signature is missing or wrong.

    .. versionchanged:: 0.2 may return a ``WebhookDelivery``.

    :param client: the object ``gateway_connect`` returned for the connection.
    :param headers: request headers, lower-cased names.
    :param body: the raw body, exactly as received (signatures are computed over it).
    :param secret: the connection's webhook secret.
    :returns: the changed records (``WebhookEvent``: entity, vendor id, action) for the gateway
        to fetch; where the vendor's payload names the delivery (an id that its retries repeat)
        or the time it was sent, a ``WebhookDelivery`` carrying them, so the gateway refuses old
        deliveries and takes each id once. A plain list is deduplicated by the body's digest for
        a short window.
    """


def all_hook_names() -> list[str]:
    """Every hook name in this contract, in the order above (used by doc and test checks)."""
    return [name for name in globals() if name.startswith("gateway_") and callable(globals()[name])]

