"""Atera records as Structs, and their translation to the gateway's canonical models.

Field names are the spec's (``components.schemas``): item fields are PascalCase, with the
spec's own spelling (``AgentID`` on an agent, ``AgentId`` on an alert). Only the fields the
plugin reads are declared; the rest of each record is ignored on decode.

Times: the contract's example alert carries ``"Created": "2026-02-04T09:00:00"``, with no
offset. Atera documents no zone for such values; they are read as UTC (assumed; a value with
an offset or ``Z`` keeps it).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec

from gateway.models import Alert, Customer, Device, make_ref

from gateway_atera.constants import PLACEHOLDER_SERIALS, VENDOR


class AteraCustomer(msgspec.Struct, frozen=True):
    """``CustomerDto``."""

    id: int = msgspec.field(name="CustomerID")
    name: str | None = msgspec.field(default=None, name="CustomerName")


class AteraAgent(msgspec.Struct, frozen=True):
    """``AgentDto``: one installed agent, which is what Atera calls a managed device."""

    id: int = msgspec.field(name="AgentID")
    device_guid: str | None = msgspec.field(default=None, name="DeviceGuid")
    customer_id: int | None = msgspec.field(default=None, name="CustomerID")
    agent_name: str | None = msgspec.field(default=None, name="AgentName")
    machine_name: str | None = msgspec.field(default=None, name="MachineName")
    system_name: str | None = msgspec.field(default=None, name="SystemName")
    domain_name: str | None = msgspec.field(default=None, name="DomainName")
    vendor_serial: str | None = msgspec.field(default=None, name="VendorSerialNumber")
    online: bool | None = msgspec.field(default=None, name="Online")
    last_seen: str | None = msgspec.field(default=None, name="LastSeen")
    app_view_url: str | None = msgspec.field(default=None, name="AppViewUrl")


class AteraAlert(msgspec.Struct, frozen=True):
    """``AlertDto``. ``Archived`` is true once the alert is resolved."""

    id: int = msgspec.field(name="AlertID")
    title: str | None = msgspec.field(default=None, name="Title")
    message: str | None = msgspec.field(default=None, name="AlertMessage")
    additional_info: str | None = msgspec.field(default=None, name="AdditionalInfo")
    severity: str | None = msgspec.field(default=None, name="Severity")
    created: str | None = msgspec.field(default=None, name="Created")
    agent_id: int | None = msgspec.field(default=None, name="AgentId")
    device_guid: str | None = msgspec.field(default=None, name="DeviceGuid")
    customer_id: int | None = msgspec.field(default=None, name="CustomerID")
    archived: bool | None = msgspec.field(default=None, name="Archived")
    archived_date: str | None = msgspec.field(default=None, name="ArchivedDate")


# Sorts agents that never reported after every agent that did.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def decode(raw: Any, record_type: type[Any]) -> Any:
    """One record of the vendor's JSON as ``record_type`` (unknown fields are ignored)."""
    return msgspec.convert(raw, record_type)


def timestamp(value: str | None) -> datetime | None:
    """An Atera date-time as an aware datetime (no offset means UTC), or ``None``."""
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _text(value: str | None) -> str:
    return value.strip() if isinstance(value, str) else ""


def real_serial(value: str | None) -> str | None:
    """The serial, unless it is empty or a placeholder a BIOS ships with."""
    serial = _text(value)
    return serial if serial and serial.casefold() not in PLACEHOLDER_SERIALS else None


def customer_from(connection_id: str, customer: AteraCustomer) -> Customer:
    """A customer. ``integration_ids`` is keyed by gateway vendor name, as every plugin keys it:
    Hudu's integration slug for Atera is ``atera``, so a Hudu company linked to Atera customer
    12 carries the same ``{"atera": "12"}``."""
    return Customer(
        ref=make_ref(connection_id, customer.id),
        name=_text(customer.name) or f"Customer {customer.id}",
        vendor=VENDOR,
        integration_ids={VENDOR: str(customer.id)},
    )


def names_of(agent: AteraAgent) -> set[str]:
    """Every name an agent answers to, case-folded: machine, system and agent name, and the
    machine name qualified with its domain."""
    machine = _text(agent.machine_name)
    domain = _text(agent.domain_name)
    names = {machine, _text(agent.system_name), _text(agent.agent_name)}
    if machine and domain and "." in domain:
        names.add(f"{machine}.{domain}")
    return {n.casefold() for n in names if n}


def device_from(connection_id: str, agent: AteraAgent, url: str | None) -> Device:
    """An agent as a device with its console link."""
    hostname = _text(agent.machine_name) or _text(agent.system_name) or None
    return Device(
        ref=make_ref(connection_id, agent.id),
        name=_text(agent.agent_name) or hostname or f"Agent {agent.id}",
        customer_ref=make_ref(connection_id, agent.customer_id) if agent.customer_id is not None else None,
        serial=real_serial(agent.vendor_serial),
        hostname=hostname,
        url=url,
        online=agent.online,
    )


def alert_from(connection_id: str, alert: AteraAlert) -> Alert:
    """An alert; ``active`` is false once Atera has archived (resolved) it."""
    message = _text(alert.title) or _text(alert.message) or _text(alert.additional_info) or f"Alert {alert.id}"
    return Alert(
        ref=make_ref(connection_id, alert.id),
        message=message,
        severity=_text(alert.severity),
        device_ref=make_ref(connection_id, alert.agent_id) if alert.agent_id is not None else None,
        customer_ref=make_ref(connection_id, alert.customer_id) if alert.customer_id is not None else None,
        created_at=timestamp(alert.created),
        active=not alert.archived,
    )
