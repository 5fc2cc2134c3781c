"""Template Vendor's records as Structs, and their translation into canonical models."""

from __future__ import annotations

from datetime import datetime

import msgspec
from gateway import models
from gateway.models import make_ref

from gateway_templatevendor.constants import DEVICE_PAGE, VENDOR


class Organization(msgspec.Struct, frozen=True):
    id: int
    name: str


class Device(msgspec.Struct, frozen=True):
    id: int
    organization_id: int
    name: str
    hostname: str | None = None
    serial_number: str | None = None
    online: bool | None = None


class Alert(msgspec.Struct, frozen=True):
    id: int
    device_id: int
    organization_id: int
    message: str
    severity: str = ""
    status: str = "open"  # open, acknowledged, resolved
    created_at: datetime | None = None


def customer(org: Organization, connection_id: str) -> models.Customer:
    return models.Customer(
        ref=make_ref(connection_id, org.id), name=org.name, vendor=VENDOR, integration_ids={VENDOR: str(org.id)}
    )


def device(record: Device, *, connection_id: str, web_url: str) -> models.Device:
    """A device with ``url``, the link to its page in the vendor's console."""
    return models.Device(
        ref=make_ref(connection_id, record.id),
        name=record.name,
        customer_ref=make_ref(connection_id, record.organization_id),
        serial=record.serial_number,
        hostname=record.hostname,
        url=web_url + DEVICE_PAGE.format(device_id=record.id),
        online=record.online,
    )


def alert(record: Alert, connection_id: str) -> models.Alert:
    return models.Alert(
        ref=make_ref(connection_id, record.id),
        message=record.message,
        severity=record.severity,
        device_ref=make_ref(connection_id, record.device_id),
        customer_ref=make_ref(connection_id, record.organization_id),
        created_at=record.created_at,
        active=record.status != "resolved",
    )
