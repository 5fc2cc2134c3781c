"""The Atera plugin's hook implementations (entry point ``msp_gateway: atera``).

What Atera can and cannot do here:

- customers are read; agents are Atera's managed devices, read one at a time or found by
  serial number (``VendorSerialNumber``) or host name (``MachineName``), each with its console
  link (``AppViewUrl``);
- open alerts are read (all, or one customer's, or one by id), and *resolve* is
  ``PUT /api/v3/alerts/{id}``, which archives the alert;
- there is no acknowledge: Atera's API has no such verb, so it is refused, never faked;
- no runbooks: Atera's knowledge base has no customer field.
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.errors import NotSupported, VendorRejected
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

from gateway_atera import mapping
from gateway_atera.client import AteraClient, is_atera_id
from gateway_atera.constants import DEFAULT_RATE_LIMIT, ID_SHAPE, TITLE, VENDOR
from gateway_atera.mapping import AteraAgent
from gateway_atera.settings import AteraSettings

ACKNOWLEDGE_REFUSAL = (
    "Atera's API has no acknowledge for alerts: an alert can only be resolved (action "
    "'resolve', PUT /api/v3/alerts/{id}), which archives it"
)
RUNBOOK_REFUSAL = (
    "Atera's knowledge base articles carry no customer, so there is no runbook per customer: "
    "connect Hudu or IT Glue for runbooks"
)


# --------------------------------------------------------------------------- registration


@hookimpl
def gateway_register_vendors() -> list[VendorInfo]:
    """Atera: an RMM that reads customers, agents and alerts and resolves alerts."""
    return [
        VendorInfo(
            name=VENDOR,
            kind=VendorKind.RMM,
            title=TITLE,
            capabilities=frozenset(
                {
                    Capability.CUSTOMER_READ,
                    Capability.DEVICE_READ,
                    Capability.DEVICE_LINK,
                    Capability.ALERT_READ,
                    Capability.ALERT_RESOLVE,
                }
            ),
            default_rate_limit=DEFAULT_RATE_LIMIT,
            attachment_cap_bytes=None,
            settings_type=AteraSettings,
            secret_settings=("api_key",),
            id_shape=ID_SHAPE,
            unsupported={
                Capability.ALERT_ACKNOWLEDGE: ACKNOWLEDGE_REFUSAL,
                Capability.RUNBOOK: RUNBOOK_REFUSAL,
            },
        )
    ]


@hookimpl
def gateway_connect(connection: Connection) -> AteraClient:
    """A client for one Atera account (the key goes in the ``X-API-KEY`` header only)."""
    return AteraClient(connection)


# --------------------------------------------------------------------------- customers and devices


@hookimpl
def gateway_customer_list(client: AteraClient) -> list[Customer]:
    """Every Atera customer."""
    return [mapping.customer_from(client.connection.id, c) for c in client.customers()]


@hookimpl
def gateway_device_get(client: AteraClient, device_id: str) -> Device | None:
    """One agent with its serial, host name and console link, or ``None``."""
    agent = client.agent(device_id)
    return _device(client, agent) if agent is not None else None


@hookimpl
def gateway_device_find(client: AteraClient, serial: str | None, hostname: str | None) -> Device | None:
    """The agent with this serial number, else with this host name, else ``None``."""
    agent = _by_serial(client, serial) if mapping.real_serial(serial) else None
    if agent is None and hostname and hostname.strip():
        agent = _by_hostname(client, hostname)
    return _device(client, agent) if agent is not None else None


def _device(client: AteraClient, agent: AteraAgent) -> Device:
    return mapping.device_from(client.connection.id, agent, client.agent_url(agent))


def _freshest(agents: list[AteraAgent]) -> AteraAgent | None:
    # A re-imaged or re-installed machine leaves an old agent with the same serial or name.
    agents.sort(key=lambda a: mapping.timestamp(a.last_seen) or mapping.EPOCH, reverse=True)
    return agents[0] if agents else None


def _by_serial(client: AteraClient, serial: str | None) -> AteraAgent | None:
    # The API has no serial filter: the agents are paged through (50 a call).
    wanted = (serial or "").strip().casefold()
    return _freshest([a for a in client.agents() if (mapping.real_serial(a.vendor_serial) or "").casefold() == wanted])


def _by_hostname(client: AteraClient, hostname: str) -> AteraAgent | None:
    wanted = hostname.strip().casefold()
    short = wanted.split(".", 1)[0]
    found = list(client.agents_on_machine(short))
    # Only an exact name counts, a full DNS name before the bare machine name.
    exact = [a for a in found if wanted in mapping.names_of(a)]
    return _freshest(exact or [a for a in found if short in mapping.names_of(a)])


# --------------------------------------------------------------------------- alerts


@hookimpl
def gateway_alert_list(client: AteraClient, customer_id: str | None) -> list[Alert]:
    """Open alerts, all or one customer's (Atera has no customer filter: filtered here)."""
    if customer_id is not None and not is_atera_id(customer_id):
        return []
    wanted = int(customer_id) if customer_id is not None else None
    return [
        mapping.alert_from(client.connection.id, a)
        for a in client.alerts()
        if wanted is None or a.customer_id == wanted
    ]


@hookimpl
def gateway_alert_get(client: AteraClient, alert_id: str) -> Alert | None:
    """One open (or snoozed) alert, or ``None`` once it is resolved or gone. Atera keeps a
    resolved alert, archived; the hook contract answers ``None`` for it, as for NinjaOne's
    reset alerts, so a caller sees one meaning whichever RMM it asks."""
    alert = client.alert(alert_id)
    if alert is None or alert.archived:
        return None
    return mapping.alert_from(client.connection.id, alert)


@hookimpl
def gateway_alert_action(client: AteraClient, alert_id: str, action: str, dedup_key: str) -> Effect:
    """``resolve`` archives the alert; ``acknowledge`` is refused (Atera has none)."""
    if action == "acknowledge":
        raise NotSupported(VENDOR, Capability.ALERT_ACKNOWLEDGE.value, ACKNOWLEDGE_REFUSAL)
    if action != "resolve":
        raise NotSupported(VENDOR, f"alert_{action}", f"Atera alerts can only be resolved, not {action!r}")
    try:
        client.resolve_alert(alert_id)
    except VendorRejected as exc:
        # The spec's only documented refusal of a resolve is 400. An alert that is already
        # resolved is the outcome asked for, so that one 400 is not a failure.
        if exc.status == 400 and _resolved(client, alert_id):
            return Effect(vendor_id=alert_id, detail="alert was already resolved at Atera")
        raise
    return Effect(vendor_id=alert_id, detail="alert resolved")


def _resolved(client: AteraClient, alert_id: str) -> bool:
    alert = client.alert(alert_id)
    return alert is not None and bool(alert.archived)


# --------------------------------------------------------------------------- reconcile


@hookimpl
def gateway_reconcile(client: AteraClient, context: ReconcileContext) -> Effect | None:
    """A resolve leaves no record of its own: its effect is that the alert is archived. So an
    ``alert`` step is done when Atera shows the alert resolved; anything else is not ours."""
    if context.step != "alert":
        return None
    payload = context.payload if isinstance(context.payload, dict) else {}
    if payload.get("action", "resolve") != "resolve":
        return None  # acknowledge is refused before any call, so it never left an effect
    alert_id = context.ticket_id  # for an alert step, the target alert's id
    if not alert_id or not is_atera_id(alert_id) or alert_id in context.claimed:
        return None
    if not _resolved(client, alert_id):
        return None
    return Effect(vendor_id=alert_id, detail="alert resolved (archived at Atera)")
