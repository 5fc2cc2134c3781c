"""Canonical models: the one shape every vendor's records are translated into.

Vendor plugins return these from their hooks; the API serves them; the write pipeline stores
them. All are msgspec Structs so they encode to JSON and back without a schema layer.

A *reference* (``Ref``) is ``connection:vendor_id`` (``cw-main:48213``): one string that says
which connection, and so which plugin, owns a record.
"""

from __future__ import annotations

import enum
import functools
import re
from datetime import datetime
from typing import Any, Literal

import msgspec

# --------------------------------------------------------------------------- references


class BadReference(ValueError):
    """A string that is not ``connection:vendor_id``."""


def make_ref(connection_id: str, vendor_id: str | int) -> str:
    """Build the reference of a vendor record owned by ``connection_id``."""
    return f"{connection_id}:{vendor_id}"


def split_ref(ref: str) -> tuple[str, str]:
    """Split ``connection:vendor_id`` into its two parts; raise ``BadReference`` otherwise."""
    connection_id, sep, vendor_id = ref.partition(":")
    if not sep or not connection_id or not vendor_id:
        raise BadReference(f"{ref!r} is not a reference of the form connection:vendor_id")
    return connection_id, vendor_id


@functools.cache
def _full_match(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class IdShape(msgspec.Struct, frozen=True):
    """What a vendor's record ids look like (``VendorInfo.id_shape``).

    A reference whose id does not fit names no record at that vendor, so the gateway answers
    404 without a vendor call, and a plugin's ``int()`` never meets a 5,000-digit number (past
    Python's integer-string limit). ``pattern`` is matched in full; ``max_value`` bounds the ids
    that are all digits (a vendor's int32 ids end at 2,147,483,647).
    """

    pattern: str = r"[^\x00-\x20/?#]{1,200}"
    max_value: int | None = None

    @classmethod
    def numeric(cls, max_value: int, *, or_pattern: str = "") -> IdShape:
        """Whole numbers from 0 to ``max_value`` in ASCII digits (and ``or_pattern`` besides:
        NinjaOne names alerts by UUID and devices by number)."""
        digits = f"[0-9]{{1,{len(str(max_value))}}}"
        return cls(f"{digits}|{or_pattern}" if or_pattern else digits, max_value)

    def admits(self, vendor_id: str) -> bool:
        """Whether ``vendor_id`` can be an id at this vendor."""
        if not isinstance(vendor_id, str) or not _full_match(self.pattern).fullmatch(vendor_id):
            return False
        if self.max_value is not None and vendor_id.isascii() and vendor_id.isdigit():
            return int(vendor_id) <= self.max_value  # the pattern bounded its length
        return True

    def as_int(self, vendor_id: str | int) -> int | None:
        """A numeric id as an ``int``, or ``None`` when ``vendor_id`` cannot be one here."""
        text = str(vendor_id)
        return int(text) if text.isascii() and text.isdigit() and self.admits(text) else None


UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
ANY_ID = IdShape()
INT32_ID = IdShape.numeric(2**31 - 1)
INT64_ID = IdShape.numeric(2**63 - 1)


# --------------------------------------------------------------------------- vocabulary


class StatusCategory(str, enum.Enum):
    """Cross-PSA grouping of a vendor's own statuses, used only for filtering."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    AWAITING_CUSTOMER = "awaiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class VendorKind(str, enum.Enum):
    PSA = "psa"
    RMM = "rmm"
    DOCS = "docs"


class Capability(str, enum.Enum):
    """What a vendor plugin can do. A missing capability is answered with 501, never a no-op."""

    TICKET_READ = "ticket_read"
    REPLY = "reply"
    INTERNAL_NOTE = "internal_note"
    REPLY_WITH_STATUS = "reply_with_status"  # reply and status change in one vendor call
    STATUS = "status"
    CREATE_TICKET = "create_ticket"
    TIME_ENTRY = "time_entry"
    ATTACHMENT = "attachment"
    ALERT_READ = "alert_read"
    ALERT_ACKNOWLEDGE = "alert_acknowledge"
    ALERT_RESOLVE = "alert_resolve"
    DEVICE_READ = "device_read"
    DEVICE_LINK = "device_link"
    RUNBOOK = "runbook"
    CUSTOMER_READ = "customer_read"
    WEBHOOK = "webhook"


class RateLimitWindow(msgspec.Struct, frozen=True):
    """At most ``requests`` vendor calls in any ``per_seconds`` window."""

    requests: int
    per_seconds: float = 1.0


class RateLimitPolicy(msgspec.Struct, frozen=True):
    """Every window must allow a call before it is sent; ``concurrency`` caps calls in flight."""

    windows: tuple[RateLimitWindow, ...] = ()
    concurrency: int | None = None
    # Share of each window the gateway allows itself, leaving headroom for other tools.
    headroom: float = 1.0
    # Share of each window that reads may use: the rest stays free for writes, so a sync or a
    # burst of detail views can never spend the budget interactive writes need.
    read_share: float = 0.5


class VendorInfo(msgspec.Struct, frozen=True):
    """What a vendor plugin tells the gateway about itself (``gateway_register_vendors``)."""

    name: str
    kind: VendorKind
    capabilities: frozenset[Capability]
    title: str = ""
    default_rate_limit: RateLimitPolicy = RateLimitPolicy()
    attachment_cap_bytes: int | None = None
    # The msgspec Struct type that the connection's ``settings`` table is converted to.
    settings_type: type | None = None
    # Setting names whose values are secrets (read from environment variables, never logged).
    secret_settings: tuple[str, ...] = ()
    # Why a capability is absent, for the 501 a caller sees (NinjaOne: no acknowledge).
    unsupported: dict[Capability, str] = {}
    # What the vendor's record ids look like: references whose id cannot be one are 404
    # without a vendor call (new in 0.2; the default admits any short printable id).
    id_shape: IdShape = ANY_ID


# --------------------------------------------------------------------------- connections


class Connection(msgspec.Struct, frozen=True):
    """One configured account at one vendor, as handed to a plugin's ``gateway_connect``."""

    id: str
    workspace: str
    vendor: str
    base_url: str
    settings: Any = None  # an instance of the vendor's ``settings_type``
    secrets: dict[str, str] = {}
    timeout_seconds: float = 30.0
    rate_limit: RateLimitPolicy = RateLimitPolicy()
    attachment_cap_bytes: int | None = None
    # The gateway's shared services (limiter, redactor, tracer) for ``VendorHTTP``; ``None`` in
    # narrow unit tests, where calls go out unlimited and unaudited.
    runtime: Any = None


# --------------------------------------------------------------------------- tickets


class NamedRef(msgspec.Struct, frozen=True, omit_defaults=True):
    """A vendor record mentioned by another: its vendor id, name and gateway reference."""

    id: str
    name: str = ""
    ref: str | None = None


class TicketStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    """A PSA's own status (id and name) plus the canonical category it falls in."""

    id: str
    name: str
    category: StatusCategory
    # The board, queue or ticket type the status belongs to, where the PSA scopes statuses.
    scope: str | None = None
    closed: bool = False


class Attachment(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    filename: str
    size: int | None = None
    content_type: str | None = None
    created_at: datetime | None = None


class ThreadEntry(msgspec.Struct, frozen=True, omit_defaults=True):
    """One entry of a ticket's conversation: a reply, a customer message or an internal note."""

    id: str
    text: str
    internal: bool
    author: str = ""
    author_type: Literal["agent", "customer", "system"] = "agent"
    created_at: datetime | None = None
    attachments: tuple[Attachment, ...] = ()


class TimeEntry(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    minutes: int
    notes: str = ""
    started_at: datetime | None = None
    member: str | None = None


class StatusChange(msgspec.Struct, frozen=True, omit_defaults=True):
    status: TicketStatus
    changed_at: datetime | None = None
    by: str | None = None


class RelatedRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """A record in another tool linked to a ticket: a device, an alert, an agreement."""

    kind: Literal["device", "alert", "agreement", "contract", "configuration"]
    ref: str
    name: str = ""
    url: str | None = None


class Ticket(msgspec.Struct, omit_defaults=True):
    ref: str
    connection: str
    vendor: str
    vendor_id: str
    summary: str
    status: TicketStatus
    number: str | None = None
    description: str = ""
    board: NamedRef | None = None
    customer: NamedRef | None = None
    contact: NamedRef | None = None
    assignee: NamedRef | None = None
    priority: NamedRef | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    url: str | None = None
    related: tuple[RelatedRecord, ...] = ()
    # Filled by ``GET /v1/tickets/{ref}``; empty in lists.
    thread: tuple[ThreadEntry, ...] = ()
    time_entries: tuple[TimeEntry, ...] = ()
    status_history: tuple[StatusChange, ...] = ()
    attachments: tuple[Attachment, ...] = ()


class TicketQuery(msgspec.Struct, frozen=True, omit_defaults=True):
    """What ``gateway_ticket_list`` is asked for. ``cursor`` is the vendor's own paging token."""

    updated_since: datetime | None = None
    open_only: bool = False
    page_size: int = 100
    cursor: str | None = None


class TicketPage(msgspec.Struct, frozen=True):
    tickets: list[Ticket]
    next_cursor: str | None = None


# --------------------------------------------------------------------------- ticket forms


class PicklistOption(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    name: str
    # For dependent picklists (sub-issue types under an issue type): the parent option's id.
    parent: str | None = None
    default: bool = False


class FormField(msgspec.Struct, frozen=True, omit_defaults=True):
    """A field of the PSA's new-ticket form."""

    name: str
    label: str
    required: bool = False
    type: Literal["string", "text", "integer", "picklist", "datetime", "boolean"] = "string"
    options: tuple[PicklistOption, ...] = ()
    max_length: int | None = None


class TicketForm(msgspec.Struct, frozen=True):
    """Everything a caller needs to build a valid ``POST /v1/tickets`` for one connection."""

    connection: str
    fields: tuple[FormField, ...]
    statuses: tuple[TicketStatus, ...] = ()


# --------------------------------------------------------------------------- customers, RMM, docs


class Customer(msgspec.Struct, frozen=True, omit_defaults=True):
    """A company as one tool knows it. ``integration_ids`` carries cross-tool ids (Hudu's
    ``id_in_integration``), used to match the same customer across tools."""

    ref: str
    name: str
    vendor: str
    integration_ids: dict[str, str] = {}


class Device(msgspec.Struct, frozen=True, omit_defaults=True):
    ref: str
    name: str
    customer_ref: str | None = None
    serial: str | None = None
    hostname: str | None = None
    url: str | None = None
    online: bool | None = None


class Alert(msgspec.Struct, frozen=True, omit_defaults=True):
    ref: str
    message: str
    severity: str = ""
    device_ref: str | None = None
    customer_ref: str | None = None
    created_at: datetime | None = None
    active: bool = True


class RunbookLink(msgspec.Struct, frozen=True, omit_defaults=True):
    ref: str
    title: str
    url: str
    customer_ref: str | None = None


# --------------------------------------------------------------------------- write steps


class AttachmentUpload(msgspec.Struct, frozen=True):
    """An attachment to send. ``blob_key`` names the bytes in Redis; hooks get ``data``."""

    filename: str
    content_type: str
    size: int
    data: bytes = b""


class ReplyStep(msgspec.Struct, frozen=True, omit_defaults=True):
    """A reply or internal note. ``status_id`` is set only for vendors that can change the
    status in the same call (``Capability.REPLY_WITH_STATUS``)."""

    text: str
    internal: bool = False
    status_id: str | None = None


class TicketCreate(msgspec.Struct, frozen=True, omit_defaults=True):
    """A new ticket: summary and description plus the PSA's own form fields by name."""

    summary: str
    description: str = ""
    customer_id: str | None = None
    fields: dict[str, Any] = {}
    # References of related records to link in the PSA (an alert, a device).
    related: tuple[str, ...] = ()


class TimeEntryCreate(msgspec.Struct, frozen=True, omit_defaults=True):
    minutes: int
    notes: str = ""
    started_at: datetime | None = None
    member: str | None = None
    billable: bool = True


class Effect(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a write step left at the vendor: the id of the note, ticket or entry it made."""

    vendor_id: str | None = None
    detail: str = ""


class ReconcileContext(msgspec.Struct, frozen=True, omit_defaults=True):
    """What ``gateway_reconcile`` is told about an ambiguous step: which ticket, what was sent,
    when the first attempt started, and effects already claimed by other writes."""

    step: str
    ticket_id: str | None
    payload: Any
    dedup_key: str
    since: datetime
    claimed: frozenset[str] = frozenset()
