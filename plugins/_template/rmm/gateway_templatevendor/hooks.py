"""The Template Vendor plugin: hook implementations, in the order of ``gateway.hookspecs``.

An RMM: organizations are the customers; devices are read one at a time or found by serial
number or host name, each with its console link; active alerts are read and acknowledged or
resolved. List in ``CAPABILITIES`` only what works: a capability left out is refused with 501
before anything is queued (say why in ``VendorInfo.unsupported``).
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.errors import NotSupported
from gateway.models import (
    Alert,
    Capability,
    Connection,
    Customer,
    Device,
    Effect,
    ReconcileContext,
    VendorInfo,
    VendorKind,
)

from gateway_templatevendor import mapping
from gateway_templatevendor.client import TemplateVendorClient
from gateway_templatevendor.constants import API_KEY_SETTING, DEFAULT_RATE_LIMIT, TITLE, VENDOR
from gateway_templatevendor.settings import TemplateVendorSettings

CAPABILITIES = frozenset(
    {
        Capability.ALERT_READ,
        Capability.ALERT_ACKNOWLEDGE,
        Capability.ALERT_RESOLVE,
        Capability.DEVICE_READ,
        Capability.DEVICE_LINK,
        Capability.CUSTOMER_READ,
    }
)
# The alert status each action leaves behind (what reconcile looks for).
ACTION_STATUS = {"acknowledge": "acknowledged", "resolve": "resolved"}


# --------------------------------------------------------------------------- registration


@hookimpl
def gateway_register_vendors() -> list[VendorInfo]:
    """Template Vendor: an RMM with organizations, devices and alerts."""
    return [
        VendorInfo(
            name=VENDOR,
            kind=VendorKind.RMM,
            title=TITLE,
            capabilities=CAPABILITIES,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            settings_type=TemplateVendorSettings,
            secret_settings=(API_KEY_SETTING,),
        )
    ]


@hookimpl
def gateway_connect(connection: Connection) -> TemplateVendorClient:
    """A ``TemplateVendorClient`` for the connection."""
    return TemplateVendorClient(connection)


# --------------------------------------------------------------------------- customers and devices


@hookimpl
def gateway_customer_list(client: TemplateVendorClient) -> list[Customer]:
    return [mapping.customer(org, client.connection.id) for org in client.organizations()]


@hookimpl
def gateway_device_get(client: TemplateVendorClient, device_id: str) -> Device | None:
    record = client.device(device_id)
    return mapping.device(record, connection_id=client.connection.id, web_url=client.web_url) if record else None


@hookimpl
def gateway_device_find(client: TemplateVendorClient, serial: str | None, hostname: str | None) -> Device | None:
    """The device with this serial number, else with this host name (exact, any case)."""
    found = None
    if serial and serial.strip():
        wanted = serial.strip().casefold()
        found = next((d for d in client.devices(serial=serial.strip())
                      if (d.serial_number or "").casefold() == wanted), None)
    if found is None and hostname and hostname.strip():
        wanted = hostname.strip().casefold()
        found = next((d for d in client.devices(hostname=hostname.strip())
                      if (d.hostname or "").casefold() == wanted), None)
    if found is None:
        return None
    return mapping.device(found, connection_id=client.connection.id, web_url=client.web_url)


# --------------------------------------------------------------------------- alerts


@hookimpl
def gateway_alert_list(client: TemplateVendorClient, customer_id: str | None) -> list[Alert]:
    return [mapping.alert(a, client.connection.id) for a in client.alerts(customer_id)]


@hookimpl
def gateway_alert_get(client: TemplateVendorClient, alert_id: str) -> Alert | None:
    record = client.alert(alert_id)
    if record is None or record.status == "resolved":
        return None
    return mapping.alert(record, client.connection.id)


@hookimpl
def gateway_alert_action(client: TemplateVendorClient, alert_id: str, action: str, dedup_key: str) -> Effect:
    if action not in ACTION_STATUS:
        raise NotSupported(VENDOR, f"alert_{action}", f"{TITLE} alerts can be acknowledged or resolved, not {action!r}")
    record = client.alert_action(alert_id, action)
    return Effect(vendor_id=str(record.id), detail=f"alert {record.status}")


@hookimpl
def gateway_reconcile(client: TemplateVendorClient, context: ReconcileContext) -> Effect | None:
    """An alert action leaves no record of its own; its effect is the alert's new status. The
    step is done when the alert already has it (resolved also counts as acknowledged)."""
    if context.step != "alert" or not context.ticket_id:
        return None
    payload = context.payload if isinstance(context.payload, dict) else {}
    wanted = ACTION_STATUS.get(str(payload.get("action", "")))
    record = client.alert(context.ticket_id)
    if wanted is None or record is None:
        return None
    if record.status == wanted or (wanted == "acknowledged" and record.status == "resolved"):
        return Effect(vendor_id=str(record.id), detail=f"alert already {record.status}")
    return None
