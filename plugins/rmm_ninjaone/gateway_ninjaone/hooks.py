"""The NinjaOne plugin's hook implementations (entry point ``msp_gateway: ninjaone``).

What NinjaOne can and cannot do here:

- organizations are the customers; devices are read one at a time or found by serial number
  (computer-systems report) or host name (device search), each with its console link;
- active alerts are read (all, or one organization's) and *reset*, which is what "resolve"
  means at NinjaOne: the alert is cleared and leaves ``/v2/alerts``;
- there is no acknowledge: NinjaOne's API has no such verb, so it is refused, never faked.
"""

from __future__ import annotations

from typing import Any

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
from gateway_ninjaone import mapping
from gateway_ninjaone.client import NinjaOneClient, is_alert_uid
from gateway_ninjaone.constants import DEFAULT_RATE_LIMIT, ID_SHAPE, TITLE, VENDOR
from gateway_ninjaone.settings import NinjaOneSettings

ACKNOWLEDGE_REFUSAL = (
    "NinjaOne's API has no acknowledge for alerts: an alert can only be reset "
    "(action 'resolve'), which clears it from NinjaOne's active alerts"
)


# --------------------------------------------------------------------------- registration


@hookimpl
def gateway_register_vendors() -> list[VendorInfo]:
    """NinjaOne: an RMM that reads organizations, devices and alerts and resets alerts."""
    return [
        VendorInfo(
            name=VENDOR,
            kind=VendorKind.RMM,
            title=TITLE,
            capabilities=frozenset(
                {
                    Capability.ALERT_READ,
                    Capability.ALERT_RESOLVE,
                    Capability.DEVICE_READ,
                    Capability.DEVICE_LINK,
                    Capability.CUSTOMER_READ,
                }
            ),
            default_rate_limit=DEFAULT_RATE_LIMIT,
            attachment_cap_bytes=None,
            settings_type=NinjaOneSettings,
            secret_settings=("client_secret",),
            id_shape=ID_SHAPE,
            # The 501 a caller sees for acknowledge names why, before anything is queued.
            unsupported={Capability.ALERT_ACKNOWLEDGE: ACKNOWLEDGE_REFUSAL},
        )
    ]


@hookimpl
def gateway_connect(connection: Connection) -> NinjaOneClient:
    """A client for one NinjaOne tenant (its token shared through ``runtime.redis``)."""
    return NinjaOneClient(connection)


# --------------------------------------------------------------------------- customers and devices


@hookimpl
def gateway_customer_list(client: NinjaOneClient) -> list[Customer]:
    """Every NinjaOne organization."""
    return [mapping.customer_from(client.connection.id, org) for org in client.organizations()]


@hookimpl
def gateway_device_get(client: NinjaOneClient, device_id: str) -> Device | None:
    """One device with its serial, host name and console link, or ``None``."""
    raw = client.device(device_id)
    if raw is None:
        return None
    return mapping.device_from(client.connection.id, raw, client.device_url(raw["id"]))


@hookimpl
def gateway_device_find(client: NinjaOneClient, serial: str | None, hostname: str | None) -> Device | None:
    """The device with this serial number, else with this host name, else ``None``."""
    device_id = _by_serial(client, serial) if serial and serial.strip() else None
    if device_id is None and hostname and hostname.strip():
        device_id = _by_hostname(client, hostname)
    return gateway_device_get(client, str(device_id)) if device_id is not None else None


def _by_serial(client: NinjaOneClient, serial: str) -> Any:
    wanted = serial.strip().casefold()
    matches = [
        row
        for row in client.computer_systems()
        if wanted in {str(row.get(k) or "").strip().casefold() for k in ("serialNumber", "biosSerialNumber")}
    ]
    # A re-imaged machine can leave an old record with the same serial: take the freshest data.
    matches.sort(key=lambda row: row.get("timestamp") or 0, reverse=True)
    return matches[0]["deviceId"] if matches else None


def _by_hostname(client: NinjaOneClient, hostname: str) -> Any:
    wanted = hostname.strip().casefold()
    short = wanted.split(".", 1)[0]
    found = client.search_devices(short)
    # The search is fuzzy; only an exact name counts, a full DNS name before the bare host name.
    exact = [d for d in found if wanted in mapping.names_of(d)]
    matches = exact or [d for d in found if short in mapping.names_of(d)]
    matches.sort(key=lambda d: d.get("lastContact") or 0, reverse=True)
    return matches[0]["id"] if matches else None


# --------------------------------------------------------------------------- alerts


@hookimpl
def gateway_alert_list(client: NinjaOneClient, customer_id: str | None) -> list[Alert]:
    """Active alerts, all or one organization's."""
    alerts = client.alerts(customer_id)
    if customer_id is not None:
        # ``df`` already filters; an alert whose device says otherwise is not this customer's.
        alerts = [a for a in alerts if mapping.organization_of(a) in (None, str(customer_id))]
    return [mapping.alert_from(client.connection.id, a) for a in alerts]


@hookimpl
def gateway_alert_get(client: NinjaOneClient, alert_id: str) -> Alert | None:
    """One active alert, or ``None`` once it is reset. The spec has no single-alert read, so
    this looks through the active alerts."""
    if not is_alert_uid(alert_id):
        return None
    wanted = alert_id.lower()
    for raw in client.alerts():
        if str(raw.get("uid", "")).lower() == wanted:
            return mapping.alert_from(client.connection.id, raw)
    return None


@hookimpl
def gateway_alert_action(client: NinjaOneClient, alert_id: str, action: str, dedup_key: str) -> Effect:
    """``resolve`` resets the alert; ``acknowledge`` is refused (NinjaOne has none)."""
    if action == "acknowledge":
        raise NotSupported(VENDOR, "alert_acknowledge", ACKNOWLEDGE_REFUSAL)
    if action != "resolve":
        raise NotSupported(VENDOR, f"alert_{action}", f"NinjaOne alerts can only be reset, not {action!r}")
    client.reset_alert(alert_id)
    return Effect(vendor_id=alert_id, detail="alert reset")


# --------------------------------------------------------------------------- reconcile


@hookimpl
def gateway_reconcile(client: NinjaOneClient, context: ReconcileContext) -> Effect | None:
    """A reset leaves no record of its own: its effect is that the alert is gone. So an
    ``alert`` step is done when the alert is no longer active; anything else is not ours."""
    if context.step != "alert":
        return None
    payload = context.payload if isinstance(context.payload, dict) else {}
    if payload.get("action", "resolve") != "resolve":
        return None  # acknowledge is refused before any call, so it never left an effect
    alert_id = _alert_id(context, payload)
    if alert_id is None or alert_id in context.claimed:
        return None
    if gateway_alert_get(client, alert_id) is not None:
        return None
    return Effect(vendor_id=alert_id, detail="alert reset (no longer active at NinjaOne)")


def _alert_id(context: ReconcileContext, payload: dict[str, Any]) -> str | None:
    """The alert uid, from the step's target or its payload (a uid or a ``conn:uid`` ref)."""
    candidates = [context.ticket_id, *(payload.get(k) for k in ("alert_id", "alert", "uid", "id", "ref"))]
    for value in candidates:
        if isinstance(value, str) and value:
            uid = value.rpartition(":")[2]
            if is_alert_uid(uid):
                return uid
    return None
