"""NinjaOne records as canonical models: organizations, devices and alerts.

Field names are the spec's. Timestamps are epoch seconds as doubles (``1717000000.123``);
a value too large to be seconds is read as milliseconds, since some clients' fixtures use those.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from gateway.models import Alert, Customer, Device, make_ref
from gateway_ninjaone.constants import VENDOR

# Epoch seconds pass 1e11 only in the year 5138; anything larger is milliseconds.
_MILLISECONDS_FROM = 1e11


def epoch(value: Any) -> datetime | None:
    """A NinjaOne timestamp as an aware datetime, or ``None``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    seconds = value / 1000 if value > _MILLISECONDS_FROM else value
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def customer_from(connection_id: str, org: dict[str, Any]) -> Customer:
    """An organization as a customer. ``integration_ids`` is keyed by gateway vendor name, as
    every plugin keys it, so ``{"ninjaone": "7"}`` here matches a Hudu company whose ``ninja``
    integration (``id_in_integration``) is organization 7."""
    org_id = str(org["id"])
    return Customer(
        ref=make_ref(connection_id, org_id),
        name=_text(org.get("name")) or f"Organization {org_id}",
        vendor=VENDOR,
        integration_ids={VENDOR: org_id},
    )


def hostname_of(device: dict[str, Any]) -> str | None:
    """The machine's own name: ``systemName``, else NetBIOS, else the first DNS label."""
    for name in (_text(device.get("systemName")), _text(device.get("netbiosName"))):
        if name:
            return name
    dns = _text(device.get("dnsName"))
    return dns.split(".", 1)[0] if dns else None


def serial_of(device: dict[str, Any]) -> str | None:
    """``system.serialNumber`` (agents only), else the BIOS serial."""
    system = device.get("system") or {}
    return _text(system.get("serialNumber")) or _text(system.get("biosSerialNumber")) or None


def names_of(device: dict[str, Any]) -> set[str]:
    """Every name a device answers to, case-folded, for matching a host name."""
    dns = _text(device.get("dnsName"))
    names = {
        _text(device.get("systemName")),
        _text(device.get("netbiosName")),
        _text(device.get("displayName")),
        dns,
        dns.split(".", 1)[0],
    }
    return {n.casefold() for n in names if n}


def device_from(connection_id: str, raw: dict[str, Any], url: str) -> Device:
    """A device (basic or detailed) with its console link."""
    org = raw.get("organizationId")
    offline = raw.get("offline")
    return Device(
        ref=make_ref(connection_id, raw["id"]),
        name=_text(raw.get("displayName")) or hostname_of(raw) or f"Device {raw['id']}",
        customer_ref=make_ref(connection_id, org) if org is not None else None,
        serial=serial_of(raw),
        hostname=hostname_of(raw),
        url=url,
        online=(not offline) if isinstance(offline, bool) else None,
    )


def alert_from(connection_id: str, raw: dict[str, Any]) -> Alert:
    """An active alert (a triggered condition). Its ``uid`` is the activity series uid."""
    device = raw.get("device") or {}
    device_id = raw.get("deviceId", device.get("id"))
    org = device.get("organizationId")
    message = _text(raw.get("message")) or _text(raw.get("subject")) or _text(raw.get("sourceName"))
    return Alert(
        ref=make_ref(connection_id, raw["uid"]),
        message=message,
        severity=_text(raw.get("severity")),
        device_ref=make_ref(connection_id, device_id) if device_id is not None else None,
        customer_ref=make_ref(connection_id, org) if org is not None else None,
        created_at=epoch(raw.get("createTime")),
        active=True,  # /v2/alerts lists active alerts only; a reset one is gone
    )


def organization_of(alert: dict[str, Any]) -> str | None:
    """The organization id of an alert's device, when the alert embeds its device."""
    org = (alert.get("device") or {}).get("organizationId")
    return str(org) if org is not None else None
