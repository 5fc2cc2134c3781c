"""Halo records -> canonical models: tickets, statuses (with their category), thread entries."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from typing import Any

from gateway.models import (
    Attachment,
    Customer,
    NamedRef,
    RelatedRecord,
    StatusCategory,
    Ticket,
    TicketStatus,
    ThreadEntry,
    make_ref,
)

from gateway.links import configuration_record
from gateway_halopsa import constants
from gateway_halopsa.settings import HaloSettings

# Name rules for a status no setting names, first match wins. Word-bounded so "Renewal"
# is not "new"; "Waiting on Third Party" is work in progress, not the customer's turn.
_NAME_RULES: tuple[tuple[re.Pattern[str], StatusCategory], ...] = (
    (re.compile(r"\b(closed?|cancell?ed|completed?|void)\b"), StatusCategory.CLOSED),
    (re.compile(r"\b(resolved|fixed|solved)\b"), StatusCategory.RESOLVED),
    (
        re.compile(r"\b(await\w*|waiting|with|pending)\b.*\b(client|customer|user|requester|end.?user|reply|response)\b"),
        StatusCategory.AWAITING_CUSTOMER,
    ),
    (re.compile(r"\b(new|unassigned|open|logged)\b"), StatusCategory.NEW),
)


def parse_time(value: Any) -> datetime | None:
    """A Halo timestamp (ISO 8601, UTC when it carries no offset) as an aware datetime."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    # .NET may send 7 fractional digits; Python reads at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year <= 1900:  # Halo's "no date" is 1900-01-01
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def halo_time(value: datetime) -> str:
    """A datetime as Halo takes it in queries and bodies: UTC, ISO 8601, no offset."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="seconds")


def plain_text(value: Any) -> str:
    """Text of a note that may be HTML."""
    if not value:
        return ""
    text = str(value)
    if "<" in text and ">" in text:
        text = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text)
        text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text).strip()


def status_category(status: dict[str, Any], settings: HaloSettings) -> StatusCategory:
    """The canonical category of a Halo status: settings by id, by name, by type; then the
    name rules; in progress when nothing matches."""
    overrides = {k.strip().lower(): v for k, v in settings.status_categories.items()}
    name = str(status.get("name") or "").strip().lower()
    for key in (str(status.get("id")), name):
        if key in overrides:
            return StatusCategory(overrides[key])
    type_key = str(status.get("type")) if status.get("type") is not None else None
    if type_key is not None and type_key in settings.status_type_categories:
        return StatusCategory(settings.status_type_categories[type_key])
    for pattern, category in _NAME_RULES:
        if pattern.search(name):
            return category
    return StatusCategory.IN_PROGRESS


def to_status(status: dict[str, Any], settings: HaloSettings) -> TicketStatus:
    category = status_category(status, settings)
    return TicketStatus(
        id=str(status.get("id")),
        name=str(status.get("name") or status.get("id")),
        category=category,
        closed=category is StatusCategory.CLOSED,
    )


def unknown_status(status_id: Any, name: str | None, settings: HaloSettings) -> TicketStatus:
    """A status the list did not have (deleted, or hidden from the API agent)."""
    return to_status({"id": status_id, "name": name or f"Status {status_id}"}, settings)


def _named(record: dict[str, Any], id_key: str, name_key: str, connection: str | None = None) -> NamedRef | None:
    value = record.get(id_key)
    if value in (None, "", 0, -1):
        return None
    return NamedRef(
        id=str(value),
        name=str(record.get(name_key) or ""),
        ref=make_ref(connection, value) if connection else None,
    )


def to_configuration(asset: dict[str, Any], connection: str) -> RelatedRecord | None:
    """One of a ticket's ``assets`` (schema ``Device_List``) as a related record: the asset's
    key field is its device name in most Halo setups; the serial comes from an asset field
    whose name says "serial" [U: per tenant]."""
    if asset.get("id") in (None, "", 0):
        return None
    serial = next(
        (str(f.get("value") or "").strip() for f in asset.get("fields") or []
         if isinstance(f, dict) and "serial" in str(f.get("name") or "").lower() and f.get("value")),
        None,
    )  # fmt: skip
    key = str(asset.get("key_field") or "").strip()
    return configuration_record(
        connection, asset["id"], hostname=key or None, label=str(asset.get("inventory_number") or "") or None,
        serial=serial or None,
    )


def to_ticket(
    record: dict[str, Any],
    *,
    connection: str,
    root: str,
    statuses: dict[str, TicketStatus],
    settings: HaloSettings,
) -> Ticket:
    """One Halo ticket (schema ``Faults``) as a canonical ``Ticket``."""
    vendor_id = str(record["id"])
    status_id = str(record.get("status_id"))
    status = statuses.get(status_id) or unknown_status(status_id, record.get("status_name"), settings)
    details = record.get("details") or plain_text(record.get("details_html"))
    return Ticket(
        ref=make_ref(connection, vendor_id),
        connection=connection,
        vendor=constants.VENDOR,
        vendor_id=vendor_id,
        number=vendor_id,
        summary=str(record.get("summary") or ""),
        description=str(details or ""),
        status=status,
        board=_named(record, "tickettype_id", "tickettype_name"),
        customer=_named(record, "client_id", "client_name", connection),
        contact=_named(record, "user_id", "user_name"),
        assignee=_named(record, "agent_id", "agent_name"),
        priority=_named(record, "priority_id", "priority_name"),
        created_at=parse_time(record.get("dateoccurred") or record.get("datecreated")),
        updated_at=parse_time(record.get("last_update") or record.get("lastactiondate")),
        # The agent app's ticket page [U: path not in the API spec].
        url=f"{root}/ticket?id={vendor_id}",
        related=tuple(r for r in (to_configuration(a, connection) for a in _assets(record)) if r is not None),
    )


def _assets(record: dict[str, Any]) -> list[dict[str, Any]]:
    assets = record.get("assets")
    return [a for a in assets if isinstance(a, dict)] if isinstance(assets, list) else []


def to_thread_entry(action: dict[str, Any]) -> ThreadEntry:
    """One action as a conversation entry; ``hiddenfromuser`` means internal."""
    if action.get("actionby_user_id") not in (None, 0, -1):
        author_type = "customer"
    elif action.get("actionby_agent_id") not in (None, 0, -1) or action.get("who_agentid") not in (None, 0, -1):
        author_type = "agent"
    else:
        author_type = "system"
    text = action.get("note") or plain_text(action.get("note_html"))
    files = tuple(
        Attachment(id=str(a.get("id")), filename=str(a.get("filename") or ""), size=a.get("filesize"))
        for a in action.get("attachments") or []
        if isinstance(a, dict) and a.get("id") is not None
    )
    return ThreadEntry(
        id=str(action.get("id")),
        text=str(text or ""),
        internal=bool(action.get("hiddenfromuser")),
        author=str(action.get("who") or ""),
        author_type=author_type,
        created_at=parse_time(action.get("datetime")),
        attachments=files,
    )


def to_customer(client: dict[str, Any], connection: str) -> Customer:
    ids = {}
    if client.get("accountsid"):
        ids["accounts"] = str(client["accountsid"])
    return Customer(
        ref=make_ref(connection, client["id"]),
        name=str(client.get("name") or ""),
        vendor=constants.VENDOR,
        integration_ids=ids,
    )
