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

    Called once when plugins load. Return a list of ``VendorInfo``: the vendor's name (the
    ``vendor`` value in connection config), its kind, its capabilities, its default rate limit,
    its attachment cap in bytes and the msgspec Struct its connection settings convert to.
    Every plugin's answer is collected; two plugins claiming one vendor name fail start-up.
    """


@hookspec(firstresult=True)
def gateway_connect(connection: Connection) -> Any:
    """Build the client object for one configured connection.

    :param connection: the connection with its base URL, converted settings and resolved
        secrets. Secrets must only ever reach the vendor's auth headers.

    Return any object; the gateway passes it back as ``client`` to every other hook for this
    connection and calls ``close()`` on it, if it has one, at shut-down. Build it with
    ``gateway.vendor_http.VendorHTTP`` so that every call is rate-limited and audited.
    """


# --------------------------------------------------------------------------- ticket reads


@hookspec(firstresult=True)
def gateway_ticket_list(client: Any, query: TicketQuery) -> TicketPage:
    """Return one page of tickets, oldest change first where the vendor allows it.

    :param query: ``updated_since`` (only tickets changed at or after it), ``open_only``,
        ``page_size`` (a wish; the vendor may cap it) and ``cursor`` (the ``next_cursor`` of the
        page before, ``None`` for the first page).

    Return a ``TicketPage``; its ``next_cursor`` is ``None`` on the last page.
    """


@hookspec(firstresult=True)
def gateway_ticket_get(client: Any, ticket_id: str) -> Ticket | None:
    """Return one ticket by its vendor id, or ``None`` when the vendor has no such ticket."""


@hookspec(firstresult=True)
def gateway_ticket_thread(client: Any, ticket_id: str) -> list[ThreadEntry]:
    """Return the ticket's conversation, oldest first, internal entries marked ``internal``."""


@hookspec(firstresult=True)
def gateway_ticket_time_entries(client: Any, ticket_id: str) -> list[TimeEntry]:
    """Return the time logged against the ticket, oldest first.

    .. versionadded:: 0.2
    """


@hookspec(firstresult=True)
def gateway_ticket_attachments(client: Any, ticket_id: str) -> list[Attachment]:
    """Return the files attached to the ticket (metadata only: id, file name, size, type).

    .. versionadded:: 0.2
    """


@hookspec(firstresult=True)
def gateway_attachment_download(client: Any, ticket_id: str, attachment_id: str) -> AttachmentUpload | None:
    """Return one attachment's bytes with its file name and content type, or ``None`` when the
    ticket has no such attachment. The gateway hands it to the caller.

    .. versionadded:: 0.2
    """


@hookspec(firstresult=True)
def gateway_ticket_statuses(client: Any, ticket: Ticket) -> list[TicketStatus]:
    """Return the statuses this ticket may be moved to, in the PSA's own order.

    :param ticket: the ticket; its ``board`` names the board, queue or ticket type where the
        PSA scopes statuses (ConnectWise statuses are per board).

    Each status carries its canonical category. The gateway refuses a status change to any
    status not in this list (422, listing the valid ones).
    """


@hookspec(firstresult=True)
def gateway_ticket_form(client: Any) -> TicketForm:
    """Return the new-ticket form: fields with ``required`` flags and picklist options.

    The gateway caches it per connection and validates ``POST /v1/tickets`` against it.
    """


# --------------------------------------------------------------------------- writes


@hookspec(firstresult=True)
def gateway_reply(client: Any, ticket_id: str, reply: ReplyStep, dedup_key: str) -> Effect:
    """Post a reply (``reply.internal`` false: visible to the customer) or an internal note.

    ``reply.status_id`` is set only when the vendor lists ``REPLY_WITH_STATUS``: then the
    status change must happen in the same vendor call. Return the ``Effect`` naming the vendor
    id of the note or action made.
    """


@hookspec(firstresult=True)
def gateway_status_change(client: Any, ticket_id: str, status_id: str) -> Effect:
    """Move the ticket to the PSA status ``status_id`` (one of ``gateway_ticket_statuses``)."""


@hookspec(firstresult=True)
def gateway_ticket_create(client: Any, ticket: TicketCreate, dedup_key: str) -> Effect:
    """Create a ticket from form values already validated against ``gateway_ticket_form``.

    Store ``dedup_key`` in the vendor's external-reference field. Return the new ticket's id.
    """


@hookspec(firstresult=True)
def gateway_time_entry(
    client: Any, ticket_id: str, entry: TimeEntryCreate, dedup_key: str
) -> Effect:
    """Log time against the ticket. Return the id of the time entry (or action) made."""


@hookspec(firstresult=True)
def gateway_attachment_add(
    client: Any, ticket_id: str, attachment: AttachmentUpload, dedup_key: str
) -> Effect:
    """Attach a file to the ticket. The gateway has already checked the size cap."""


@hookspec(firstresult=True)
def gateway_alert_action(client: Any, alert_id: str, action: str, dedup_key: str) -> Effect:
    """Apply ``action`` (``"acknowledge"`` or ``"resolve"``) to an RMM alert.

    Raise ``gateway.errors.NotSupported`` with the reason when the vendor has no such action.
    """


@hookspec(firstresult=True)
def gateway_reconcile(client: Any, context: ReconcileContext) -> Effect | None:
    """Look for the effect of a write step whose outcome is unknown.

    Called before a step is sent again after a timeout, a dropped connection or a worker
    crash. :param context: the step name (``reply``, ``status``, ``create``, ``time_entry``,
    ``attachment``, ``alert``), the ticket, the payload sent, the dedup key, when the first
    attempt started, and vendor ids already claimed by other writes (never return one of those).

    Return the ``Effect`` found, meaning the step is done, or ``None`` when the vendor shows no
    trace of it, meaning it is safe to send again.
    """


# --------------------------------------------------------------------------- RMM and documentation


@hookspec(firstresult=True)
def gateway_customer_list(client: Any) -> list[Customer]:
    """Return the vendor's companies (PSA), organizations (RMM) or companies (docs)."""


@hookspec(firstresult=True)
def gateway_alert_list(client: Any, customer_id: str | None) -> list[Alert]:
    """Return active alerts, optionally for one customer (vendor organization id)."""


@hookspec(firstresult=True)
def gateway_alert_get(client: Any, alert_id: str) -> Alert | None:
    """Return one alert, or ``None`` when it no longer exists (reset or resolved)."""


@hookspec(firstresult=True)
def gateway_device_get(client: Any, device_id: str) -> Device | None:
    """Return one device with ``url``, the link to its page in the vendor's console."""


@hookspec(firstresult=True)
def gateway_device_find(client: Any, serial: str | None, hostname: str | None) -> Device | None:
    """Find the device matching a serial number or host name (serial wins), or ``None``."""


@hookspec(firstresult=True)
def gateway_runbook_list(client: Any, customer_id: str) -> list[RunbookLink]:
    """Return the customer's runbook articles, each with the URL that opens it."""


# --------------------------------------------------------------------------- inbound webhooks


@hookspec(firstresult=True)
def gateway_webhook_parse(
    client: Any, headers: dict[str, str], body: bytes, secret: str | None
) -> WebhookDelivery | list[WebhookEvent]:
    """Verify and parse one inbound webhook delivery.

    :param headers: request headers, lower-cased names. :param body: the raw body, exactly as
    received (signatures are computed over it). :param secret: the connection's webhook secret.

    Raise ``gateway.errors.BadSignature`` when the signature is missing or wrong. Return the
    changed records (``WebhookEvent``: entity, vendor id, action) for the gateway to fetch.
    Where the vendor's payload names the delivery (an id that its retries repeat) or the time
    it was sent, return a ``WebhookDelivery`` carrying them (new in 0.2): the gateway refuses
    old deliveries and takes each id once. A plain list is deduplicated by the body's digest
    for a short window.
    """


def all_hook_names() -> list[str]:
    """Every hook name in this contract, in the order above (used by doc and test checks)."""
    return [name for name in globals() if name.startswith("gateway_") and callable(globals()[name])]

