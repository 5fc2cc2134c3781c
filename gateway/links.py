"""Links between records in different tools (a ticket and the alert or device it is about).

``related_records`` answers what ``GET /v1/tickets/{ref}`` shows as related records:

- alerts the ticket was created from (``POST /v1/tickets`` with ``"alert"``), each followed by
  the device it fired on, with the device's page in the RMM console;
- the PSA's own related records of the ticket (configuration items, agreements), each
  configuration item followed by the RMM device it resolves to (by serial number, else host
  name, through ``gateway_device_find`` of the RMM linked to the ticket's customer).

Ticket-alert links are recorded by ``install``'s write listener when a ticket create that
names an alert succeeds, in both directions, in Redis:

- ``links:ticket:{ticket ref}``: alert refs linked to the ticket (sorted set, score: when);
- ``links:alert:{alert ref}``: ticket refs linked to the alert;
- ``links:info:{alert ref}``: the alert as it was when linked (message, device, customer),
  kept after it is resolved, when the RMM no longer lists it.

Device reads are cached five minutes and configuration item matches ten (two when nothing
matched; ``gateway.keys`` names the caches), so a ticket view costs the RMM at most
a call or two.

PSA plugins describe a configuration item with ``configuration_record`` (serial number and host
name in its ``name``: ``"ACME-FS01 (serial CZJ0123FS1)"``); ``configuration_keys`` reads them
back.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import msgspec

from gateway import context, events, hookspecs, keys
from gateway.cache import ReadThrough
from gateway.customers import customer_of
from gateway.intake import cached_ticket
from gateway.models import Alert, Capability, Device, RelatedRecord, Ticket, VendorKind, make_ref, split_ref

if TYPE_CHECKING:
    from gateway.hub import Hub

log = logging.getLogger("gateway.links")

DEVICE_TTL = 300
CI_MATCH_TTL = 600
CI_MISS_TTL = 120
# How long an alert known to be active is believed without asking the RMM again.
ALERT_RECHECK_SECONDS = 60.0
LINK_INFO_TTL = 90 * 24 * 3600


class AlertSnapshot(msgspec.Struct):
    """An alert as last seen, and when it was last checked at the RMM."""

    alert: Alert
    checked_at: float


# --------------------------------------------------------------------------- configuration items

_SERIAL = re.compile(r"^(?P<label>.*?)\s*\(serial (?P<serial>[^()]*)\)\s*$")


def configuration_record(
    connection_id: str, item_id: str | int, *, hostname: str | None = None, serial: str | None = None,
    label: str | None = None, url: str | None = None,
) -> RelatedRecord:  # fmt: skip
    """A PSA configuration item (asset) as a related record a ticket carries.

    ``name`` is the host name (else ``label``) followed by ``(serial ...)`` when the serial is
    known: the convention ``configuration_keys`` reads to find the RMM device.
    """
    name = (hostname or label or "").strip()
    if serial and serial.strip():
        name = f"{name} (serial {serial.strip()})".strip()
    return RelatedRecord(kind="configuration", ref=make_ref(connection_id, item_id), name=name, url=url)


def configuration_keys(record: RelatedRecord) -> tuple[str | None, str | None]:
    """``(serial, hostname)`` of a configuration record made by ``configuration_record``."""
    name = record.name.strip()
    serial = None
    match = _SERIAL.match(name)
    if match:
        name, serial = match["label"].strip(), match["serial"].strip() or None
    # A host name has no spaces; a label like "Reception printer" is not one.
    hostname = name if name and not re.search(r"\s", name) else None
    return serial, hostname


def related_lines(refs: tuple[str, ...] | list[str]) -> str:
    """The text a PSA ticket created from an alert carries for its related records (for PSAs
    with no field for another tool's record): a heading and one reference per line."""
    return "Related records (MSP gateway):\n" + "\n".join(f"- {ref}" for ref in refs)


# --------------------------------------------------------------------------- ticket <-> alert


def install(gw: Hub) -> None:
    """Record ticket-alert links when writes succeed (call once per ``Hub``; repeat calls
    do nothing)."""
    if not any(isinstance(listener, _LinkRecorder) for listener in gw.write_listeners):
        gw.write_listeners.append(_LinkRecorder(gw))


class _LinkRecorder:
    """The write listener: a created ticket that names alerts is linked to them; a resolved
    alert is remembered as resolved. Never raises: the write has already landed."""

    def __init__(self, gw: Hub) -> None:
        self.gw = gw

    def __call__(self, record: Any) -> None:
        try:
            if record.kind == "create_ticket" and record.result_ref:
                related = [r for step in record.steps if step.name == "create" for r in step.payload.get("related") or []]
                for ref in related:
                    link_alert(self.gw, record.result_ref, ref, workspace=record.workspace)
            elif record.kind == "alert_action" and record.target:
                if any(s.payload.get("action") == "resolve" for s in record.steps if s.name == "alert"):
                    _mark_resolved(self.gw, record.target)
        except Exception:
            log.exception("could not record the links of write %s", getattr(record, "id", "?"))


def link_alert(gw: Hub, ticket_ref: str, alert_ref: str, *, workspace: str | None = None) -> None:
    """Link a ticket and an alert both ways, and keep what the alert is about."""
    when = time.time()
    with gw.redis.pipeline() as pipe:
        pipe.zadd(f"links:ticket:{ticket_ref}", {alert_ref: when}, nx=True)
        pipe.zadd(f"links:alert:{alert_ref}", {ticket_ref: when}, nx=True)
        new, _ = pipe.execute()
    if new and workspace:
        events.alert_linked(gw, workspace, ticket_ref, alert_ref)
    if gw.redis.exists(f"links:info:{alert_ref}"):
        return
    # A fresh call context: these reads are not the write's calls, and a rate limit skips them
    # (the snapshot is then taken at the next read) instead of holding the worker.
    token = context.current.set(context.CallContext(workspace=workspace, defer_on_limit=True))
    try:
        alert_snapshot(gw, alert_ref, refresh=True)
    except Exception:
        log.warning("could not read alert %s to keep with its ticket link", alert_ref)
    finally:
        context.current.reset(token)


def alerts_of_ticket(gw: Hub, ticket_ref: str) -> list[str]:
    """Alert refs linked to the ticket, oldest link first."""
    return [m.decode() for m in gw.redis.zrange(f"links:ticket:{ticket_ref}", 0, -1)]


def tickets_of_alert(gw: Hub, alert_ref: str) -> list[str]:
    """Ticket refs linked to the alert, oldest link first."""
    return [m.decode() for m in gw.redis.zrange(f"links:alert:{alert_ref}", 0, -1)]


def alert_snapshot(gw: Hub, alert_ref: str, *, refresh: bool = False) -> Alert | None:
    """The alert: as last seen when it is known resolved or was checked within a minute, else
    read from the RMM (an alert the RMM no longer lists is kept, marked inactive)."""
    key = f"links:info:{alert_ref}"
    raw = gw.redis.get(key)
    snapshot = msgspec.json.decode(raw, type=AlertSnapshot) if raw else None
    fresh = snapshot is not None and time.time() - snapshot.checked_at < ALERT_RECHECK_SECONDS
    if snapshot is not None and not refresh and (not snapshot.alert.active or fresh):
        return snapshot.alert
    connection_id, alert_id = split_ref(alert_ref)
    if connection_id not in gw.connections or not gw.capable(connection_id, Capability.ALERT_READ):
        return snapshot.alert if snapshot else None
    try:
        live = gw.vendor(connection_id).alert_get(alert_id=alert_id)
    except Exception:
        if snapshot is None:
            raise
        return snapshot.alert
    if live is None:
        if snapshot is None:
            return None
        live = msgspec.structs.replace(snapshot.alert, active=False)
    # Kept only for alerts linked to a ticket: those must outlive their place in the RMM.
    if snapshot is not None or refresh or gw.redis.exists(f"links:alert:{alert_ref}"):
        gw.redis.set(key, msgspec.json.encode(AlertSnapshot(live, time.time())), ex=LINK_INFO_TTL)
    return live


def _mark_resolved(gw: Hub, alert_ref: str) -> None:
    key = f"links:info:{alert_ref}"
    raw = gw.redis.get(key)
    if raw:
        snapshot = msgspec.json.decode(raw, type=AlertSnapshot)
        resolved = AlertSnapshot(msgspec.structs.replace(snapshot.alert, active=False), time.time())
        gw.redis.set(key, msgspec.json.encode(resolved), ex=LINK_INFO_TTL)


# --------------------------------------------------------------------------- devices


DEVICES = ReadThrough(Device, DEVICE_TTL)
CI_DEVICES = ReadThrough(Device, CI_MATCH_TTL, miss_ttl=CI_MISS_TTL)


def _device_key(gw: Hub, device_ref: str) -> str | None:
    connection_id = split_ref(device_ref)[0]
    conn = gw.connections.get(connection_id)
    return keys.cache(conn.workspace, "device", device_ref) if conn is not None else None


def device(gw: Hub, device_ref: str) -> Device | None:
    """The RMM device with its console URL (cached five minutes)."""
    key = _device_key(gw, device_ref)
    connection_id, device_id = split_ref(device_ref)
    if key is None:
        return None

    def load() -> Device | None:
        if not gw.capable(connection_id, Capability.DEVICE_READ):
            return None
        return gw.vendor(connection_id).device_get(device_id=device_id)

    return DEVICES.get(gw.redis, key, load)


def device_for_configuration(gw: Hub, ticket: Ticket, item: RelatedRecord) -> Device | None:
    """The RMM device a PSA configuration item is, matched by serial, else host name.

    Only the RMM organizations linked to the ticket's customer are searched when the customer
    has any (a serial found in another customer's organization is not this ticket's device);
    every RMM connection of the workspace otherwise.
    """
    serial, hostname = configuration_keys(item)
    if not serial and not hostname:
        return None
    digest = hashlib.sha256(f"{serial}|{hostname}".encode()).hexdigest()[:16]
    key = keys.cache(gw.connection(ticket.connection).workspace, "ci-device", item.ref, digest)

    def load() -> Device | None:
        for connection_id, organization in _rmm_candidates(gw, ticket):
            candidate = gw.vendor(connection_id).device_find(serial=serial, hostname=hostname)
            if candidate is not None and (organization is None or candidate.customer_ref == organization):
                device_key = _device_key(gw, candidate.ref)
                if device_key is not None:
                    DEVICES.put(gw.redis, device_key, candidate)
                return candidate
        return None

    return CI_DEVICES.get(gw.redis, key, load)


def _rmm_candidates(gw: Hub, ticket: Ticket) -> list[tuple[str, str | None]]:
    """(RMM connection, the organization the device must belong to or ``None``)."""
    workspace = gw.connection(ticket.connection).workspace
    rmm = [
        c.id for c in gw.connections.values()
        if c.workspace == workspace and gw.vendors.info(c.vendor).kind == VendorKind.RMM
        and gw.vendors.has(c.vendor, Capability.DEVICE_READ) and gw.vendors.implements(c.vendor, hookspecs.gateway_device_find.__name__)
    ]  # fmt: skip
    if ticket.customer is not None and ticket.customer.ref:
        try:
            customer = customer_of(gw, workspace, ticket.customer.ref)
        except Exception:
            customer = None
        linked = [link for link in (customer.links_of(VendorKind.RMM) if customer else []) if link.connection in rmm]
        if linked:
            return [(link.connection, link.ref) for link in linked]
    return [(c, None) for c in rmm]


# --------------------------------------------------------------------------- a ticket's related records


def related_records(gw: Hub, ticket_ref: str, ticket: Ticket | None = None) -> list[RelatedRecord]:
    """Records in other tools linked to the ticket (alerts, devices), oldest link first.

    Includes the PSA's own related records of the ticket (configuration items, agreements),
    each configuration item followed by the RMM device it resolves to. Pass ``ticket`` when it
    was just read, to spare reading it again. A tool that fails to answer leaves out only what
    it would have added.
    """
    out: list[RelatedRecord] = []
    seen: set[tuple[str, str]] = set()

    def add(record: RelatedRecord) -> None:
        if (record.kind, record.ref) not in seen:
            seen.add((record.kind, record.ref))
            out.append(record)

    for alert_ref in alerts_of_ticket(gw, ticket_ref):
        try:
            alert = alert_snapshot(gw, alert_ref)
        except Exception:
            log.warning("could not read alert %s linked to %s", alert_ref, ticket_ref)
            alert = None
        if alert is None:
            add(RelatedRecord(kind="alert", ref=alert_ref))
            continue
        add(RelatedRecord(kind="alert", ref=alert_ref, name=alert.message + ("" if alert.active else " (resolved)")))
        if alert.device_ref:
            add(_device_record(gw, alert.device_ref))
    if ticket is None:
        try:
            ticket = cached_ticket(gw, ticket_ref)
        except Exception:
            log.warning("could not read ticket %s for its related records", ticket_ref)
    for record in ticket.related if ticket else ():
        add(record)
        if record.kind == "configuration" and ticket is not None:
            try:
                found = device_for_configuration(gw, ticket, record)
            except Exception:
                log.warning("could not match configuration item %s to an RMM device", record.ref)
                found = None
            if found is not None:
                add(RelatedRecord(kind="device", ref=found.ref, name=found.name, url=found.url))
    return out


def _device_record(gw: Hub, device_ref: str) -> RelatedRecord:
    try:
        found = device(gw, device_ref)
    except Exception:
        log.warning("could not read device %s", device_ref)
        found = None
    if found is None:
        return RelatedRecord(kind="device", ref=device_ref)
    return RelatedRecord(kind="device", ref=found.ref, name=found.name, url=found.url)
