"""The event log: one Redis stream per workspace of what happened, for callers to read or be sent.

Facts are written once, where they happen, by one-line calls (``write_accepted(gw, record)``
in the intake, ``ticket`` changes in the store's upsert, ``connection_paused`` where a 429 is
turned into a pause ...). Keys:

- ``events:{workspace}``: the stream. The stream id is the event id (``1718000000000-0``), so ids
  are ordered, unique and a resumption point. Entries older than the retention
  (``events_retention_days``) are trimmed on every append (``XADD MINID ~``).
- ``events:conn:{connection}``: a connection's current trouble (``auth_failed``,
  ``sync_failed``, ``paused``), so trouble and recovery are announced once per change, not per
  failed call.

Every event is a msgspec struct tagged by ``type`` (the classes below are the catalogue
``docs/events.md`` is generated from). Data passes through the redactor before it is stored:
configured secret values are masked in text, secret-named keys are masked, long text is cut.

Appending also nudges webhook delivery (``gateway.delivery``): subscriptions of the workspace
that have no delivery queued get one, in the same script as the append.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Union

import logging

import msgspec
import redis
from opentelemetry import trace

from gateway import keys
from gateway.aio import Channel, run_script
from gateway.redact import Redactor

log = logging.getLogger("gateway.events")

if TYPE_CHECKING:
    from gateway.hub import Hub
    from gateway.models import Connection, Ticket, TicketStatus
    from gateway.runtime import Runtime
    from gateway.writes import WriteRecord

STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")
DETAIL_LIMIT = 500


stream_key = keys.event_stream


# --------------------------------------------------------------------------- the catalogue


class StatusSnapshot(msgspec.Struct, frozen=True):
    """A PSA status: its own id and name, and the canonical category it falls in."""

    id: str
    name: str
    category: str


class TicketSnapshot(msgspec.Struct, frozen=True, omit_defaults=True):
    """The ticket as the store holds it after the change (no description or thread)."""

    ref: str
    vendor: str
    summary: str
    status: StatusSnapshot
    number: str | None = None
    board: str | None = None
    customer: str | None = None
    assignee: str | None = None
    priority: str | None = None
    updated_at: datetime | None = None
    url: str | None = None


class EffectSnapshot(msgspec.Struct, frozen=True, omit_defaults=True):
    """What one step of a write left at the vendor."""

    step: str
    vendor_id: str | None = None
    detail: str = ""


class Event(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type"):
    """Every event: ``id`` (the stream id: ordered, unique, the ``Last-Event-ID`` to resume
    from and the ``webhook-id`` of its deliveries), ``type``, ``workspace``, ``occurred_at``,
    the ``connection``, ``ticket`` or ``write`` it is about, and ``trace_id``, the trace of
    the audit records (``GET /v1/admin/audit``) of the same work."""

    id: str = ""
    workspace: str
    occurred_at: datetime
    connection: str | None = None
    ticket: str | None = None
    write: str | None = None
    trace_id: str | None = None


class TicketCreatedData(msgspec.Struct, frozen=True):
    ticket: TicketSnapshot


class TicketCreated(Event, tag="ticket.created"):
    """A ticket the gateway had not seen appeared in a PSA (incremental pull, vendor webhook,
    or a ticket created through the gateway). A backfill (first sync, ``resync``) loads what
    exists without announcing it."""

    data: TicketCreatedData


class TicketUpdatedData(msgspec.Struct, frozen=True):
    changed: list[str]
    old_status: StatusSnapshot
    new_status: StatusSnapshot
    ticket: TicketSnapshot


class TicketUpdated(Event, tag="ticket.updated"):
    """A ticket changed in its PSA: ``changed`` names the fields (``status``, ``summary``,
    ``assignee``, ``priority``, ``board``, ``customer``, ``contact``, ``description``,
    ``number``, ``updated_at``), with the old and new status and their categories."""

    data: TicketUpdatedData


class TicketDeletedData(msgspec.Struct, frozen=True):
    summary: str
    status: StatusSnapshot


class TicketDeleted(Event, tag="ticket.deleted"):
    """A ticket is gone from its PSA (deleted or merged there)."""

    data: TicketDeletedData


class WriteData(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str
    status: str
    dedup_key: str
    target: str | None = None


class WriteAcceptedEvent(Event, tag="write.accepted"):
    """A write was stored and queued (the API answered 202). A repeat of the same
    Idempotency-Key and body is the same write: no second event."""

    # Not "WriteAccepted": that is the 202 body's schema, and a generated client needs one name
    # per schema.

    data: WriteData


class WriteSucceededData(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str
    status: str
    dedup_key: str
    effects: list[EffectSnapshot]
    target: str | None = None
    result_ref: str | None = None
    attempts: int = 0


class WriteSucceeded(Event, tag="write.succeeded"):
    """Every step of a write landed at the vendor; ``effects`` are the vendor ids it made
    (``result_ref`` is the ticket a create made)."""

    data: WriteSucceededData


class WriteDeadLetteredData(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str
    status: str
    dedup_key: str
    cause: str
    target: str | None = None
    attempts: int = 0
    last_vendor_status: int | None = None


class WriteDeadLettered(Event, tag="write.dead_lettered"):
    """A write could not land and waits for an operator (``cause`` says why: the vendor's
    refusal, or attempts exhausted)."""

    data: WriteDeadLetteredData


class WriteAdminData(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str
    status: str
    dedup_key: str
    by: str
    target: str | None = None


class WriteRetried(Event, tag="write.retried"):
    """An operator sent a dead letter again (same dedup key; ``by`` is the API key's name)."""

    data: WriteAdminData


class WriteDiscarded(Event, tag="write.discarded"):
    """An operator gave up on a dead letter for good."""

    data: WriteAdminData


class AlertLinkedData(msgspec.Struct, frozen=True):
    alert: str
    ticket: str


class AlertLinked(Event, tag="alert.linked"):
    """A ticket and an RMM alert were linked (a ticket created from the alert)."""

    data: AlertLinkedData


class ConnectionTroubleData(msgspec.Struct, frozen=True, omit_defaults=True):
    vendor: str
    detail: str
    vendor_status: int | None = None


class ConnectionSyncFailed(Event, tag="connection.sync_failed"):
    """Sync of a PSA connection failed (announced once until the connection recovers)."""

    data: ConnectionTroubleData


class ConnectionAuthFailed(Event, tag="connection.auth_failed"):
    """The vendor refused the connection's credentials (401 or 403)."""

    data: ConnectionTroubleData


class ConnectionPausedData(msgspec.Struct, frozen=True):
    vendor: str
    retry_after_seconds: float
    paused_until: datetime


class ConnectionPaused(Event, tag="connection.paused"):
    """The vendor answered 429: every call on the connection waits for its Retry-After."""

    data: ConnectionPausedData


class ConnectionRecoveredData(msgspec.Struct, frozen=True):
    vendor: str
    was: str


class ConnectionRecovered(Event, tag="connection.recovered"):
    """A call on a connection in trouble succeeded again (``was`` names the trouble)."""

    data: ConnectionRecoveredData


class SubscriptionDisabledData(msgspec.Struct, frozen=True, omit_defaults=True):
    subscription: str
    url_host: str
    failing_since: datetime
    last_error: str = ""


class SubscriptionDisabled(Event, tag="subscription.disabled"):
    """A webhook subscription failed for longer than ``subscription_disable_after_hours`` and
    was disabled; its undelivered events stay in the log (``POST
    /v1/admin/subscriptions/{id}/enable`` sends them)."""

    data: SubscriptionDisabledData


EVENT_CLASSES: tuple[type[Event], ...] = (
    TicketCreated, TicketUpdated, TicketDeleted,
    WriteAcceptedEvent, WriteSucceeded, WriteDeadLettered, WriteRetried, WriteDiscarded,
    AlertLinked,
    ConnectionSyncFailed, ConnectionAuthFailed, ConnectionPaused, ConnectionRecovered,
    SubscriptionDisabled,
)  # fmt: skip
AnyEvent = Union[EVENT_CLASSES]  # type: ignore[valid-type]
EVENT_TYPES: tuple[str, ...] = tuple(c.__struct_config__.tag for c in EVENT_CLASSES)  # type: ignore[misc]


class EventPage(msgspec.Struct):
    """A page of events, oldest first. ``next_after`` is where the next page starts (the last
    event id looked at, also when filters skipped it); the same as ``after`` when nothing is new."""

    events: list[AnyEvent]  # type: ignore[valid-type]
    next_after: str


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def decode(entry_id: str, raw: bytes) -> Event:
    """An event from its stream entry."""
    return msgspec.structs.replace(_decoder.decode(raw), id=entry_id)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


# --------------------------------------------------------------------------- the log

# Append, trim by age, and mark a delivery run queued for each active subscription of the
# workspace that has none (``deliveries:pending``) and is not waiting out a backoff
# (``deliveries:delayed``); the caller enqueues the marked ones.
# Append an event and nudge the workspace's active subscriptions (their delivery runs). A Lua
# function so that other scripts (the write accept) append in their own atomic step.
APPEND_LIB = """
local function append_event(stream, subs, pending, delayed, cutoff, body, ws, now)
  local id = redis.call('XADD', stream, 'MINID', '~', cutoff, '*', 'e', body)
  local nudge = {}
  for _, sub in ipairs(redis.call('SMEMBERS', subs)) do
    local member = ws .. '|' .. sub
    -- one waiting out a backoff is left alone: its delayed run comes when the wait is over
    if not redis.call('ZSCORE', delayed, member) and redis.call('ZADD', pending, 'NX', now, member) == 1 then
      nudge[#nudge + 1] = member
    end
  end
  return id, nudge
end
"""
_APPEND = APPEND_LIB + "return {append_event(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4])}"


class Staged(msgspec.Struct, frozen=True):
    """An event ready for a script to append (``APPEND_LIB``'s ``append_event``): its four keys
    and its arguments (cutoff, body, workspace, now)."""

    keys: tuple[str, str, str, str]
    args: tuple[int, bytes, str, float]


class EventLog:
    """Appends events to a workspace's stream and reads them back."""

    def __init__(self, client: redis.Redis, redactor: Redactor, *, retention_seconds: float = 7 * 86400) -> None:
        self.redis = client
        self.redactor = redactor
        self.retention_seconds = retention_seconds
        self._append = client.register_script(_APPEND)
        # Set by ``gateway.delivery.install``: enqueues delivery jobs for nudged subscriptions.
        self.on_nudge: Any = None

    def stage(self, event: Event) -> Staged:
        """``event`` (its data redacted, the current trace's id) ready for a script to append
        in the same step as the work it reports (``WriteStore.accept``)."""
        if event.trace_id is None:
            event = msgspec.structs.replace(event, trace_id=current_trace_id())
        now = time.time()
        return Staged(
            (stream_key(event.workspace), keys.active_subscriptions(event.workspace),
             keys.DELIVERIES_PENDING, keys.DELIVERIES_DELAYED),
            (int((now - self.retention_seconds) * 1000), self._redacted(event), event.workspace, now),
        )

    def append_staged(self, staged: Staged) -> str:
        """Append an event ``stage`` made; return its id ('' if it could not be: never raises)."""
        try:
            entry_id, nudged = self._append(keys=list(staged.keys), args=list(staged.args))
            self.appended(nudged)
            return entry_id.decode()
        except Exception:  # noqa: BLE001 - reported, never raised into the work that happened
            log.exception("could not append an event to %s", staged.keys[0])
            return ""

    async def append_staged_async(self, client: Channel, staged: Staged) -> list[bytes]:
        """``append_staged`` on an asyncio client; the subscriptions it nudged, for ``appended``
        (which enqueues their runs: call it in a thread). Never raises."""
        try:
            _, nudged = await run_script(client, self._append, staged.keys, staged.args)
            return list(nudged)
        except Exception:  # noqa: BLE001 - reported, never raised into the work that happened
            log.exception("could not append an event to %s", staged.keys[0])
            return []

    def appended(self, nudged: list[bytes]) -> None:
        """After a script appended a staged event: start the delivery runs it nudged."""
        if nudged and self.on_nudge is not None:
            self.on_nudge([n.decode() for n in nudged])

    def emit(self, event: Event) -> str:
        """Append ``event`` (its data redacted); return its id. Never raises: an event is
        a report of work already done, and must not undo it."""
        try:
            staged = self.stage(event)
        except Exception:  # noqa: BLE001 - reported, never raised into the work that happened
            log.exception("could not append a %s event", type(event).__name__)
            return ""
        return self.append_staged(staged)

    def _redacted(self, event: Event) -> bytes:
        raw = msgspec.to_builtins(event)
        raw["data"] = self.redactor.payload(raw.get("data", {}), limit=DETAIL_LIMIT)
        return _encoder.encode(raw)

    def read(
        self,
        workspace: str,
        *,
        after: str = "0",
        types: frozenset[str] = frozenset(),
        connection: str | None = None,
        limit: int = 100,
        scan_cap: int = 5000,
    ) -> EventPage:
        """Events after ``after``, oldest first, that match the filters; looks at no more than
        ``scan_cap`` entries per call (``next_after`` continues where it stopped)."""
        events: list[Event] = []
        cursor = after
        scanned = 0
        while len(events) < limit and scanned < scan_cap:
            batch = self.redis.xrange(stream_key(workspace), min=f"({cursor}", count=min(500, scan_cap - scanned))
            if not batch:
                break
            for entry_id, fields in batch:
                scanned += 1
                cursor = entry_id.decode()
                event = decode(cursor, fields[b"e"])
                if matches(event, types, connection):
                    events.append(event)
                    if len(events) >= limit:
                        break
        return EventPage(events, cursor)

    def wait(self, workspace: str, after: str, *, block_ms: int) -> list[Event]:
        """Events after ``after``, waiting up to ``block_ms`` for the first (``XREAD BLOCK``)."""
        answer = self.redis.xread({stream_key(workspace): after}, count=500, block=block_ms)
        return [decode(i.decode(), f[b"e"]) for _, entries in answer for i, f in entries]

    def last_id(self, workspace: str) -> str:
        """The newest event's id, or ``"0"`` when the log is empty."""
        last = self.redis.xrevrange(stream_key(workspace), count=1)
        return last[0][0].decode() if last else "0"


def matches(event: Event, types: frozenset[str], connection: str | None) -> bool:
    return (not types or type_of(event) in types) and (connection is None or event.connection == connection)


def type_of(event: Event | type[Event]) -> str:
    return event.__struct_config__.tag  # type: ignore[return-value]


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def now() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- tickets (the store)


def ticket_snapshot(ticket: Ticket) -> TicketSnapshot:
    def name(ref: Any) -> str | None:
        return (ref.name or ref.id) if ref is not None else None

    customer = None
    if ticket.customer is not None:
        customer = ticket.customer.ref or f"{ticket.connection}:{ticket.customer.id}"
    return TicketSnapshot(
        ref=ticket.ref, vendor=ticket.vendor, summary=ticket.summary, status=status_snapshot(ticket.status),
        number=ticket.number, board=name(ticket.board), customer=customer, assignee=name(ticket.assignee),
        priority=name(ticket.priority), updated_at=ticket.updated_at, url=ticket.url,
    )  # fmt: skip


def status_snapshot(status: TicketStatus) -> StatusSnapshot:
    return StatusSnapshot(status.id, status.name, status.category.value)


# The fields whose change is a ``ticket.updated``; links and detail lists are not the ticket.
COMPARED = ("status", "summary", "description", "number", "board", "customer", "contact", "assignee",
            "priority", "updated_at")  # fmt: skip


def changed_fields(old: Ticket, new: Ticket) -> list[str]:
    changed = []
    for name in COMPARED:
        before, after = getattr(old, name), getattr(new, name)
        if name == "status":
            before = (before.id, before.name, before.category) if before else None
            after = (after.id, after.name, after.category) if after else None
        if before != after:
            changed.append(name)
    return changed


def ticket_stored(log: EventLog, workspace: str, old: Ticket | None, new: Ticket) -> None:
    """The store upserted ``new`` over ``old``: announce a new ticket or what changed."""
    base = {"workspace": workspace, "occurred_at": now(), "connection": new.connection, "ticket": new.ref}
    if old is None:
        log.emit(TicketCreated(**base, data=TicketCreatedData(ticket_snapshot(new))))
        return
    changed = changed_fields(old, new)
    if changed:
        data = TicketUpdatedData(changed, status_snapshot(old.status), status_snapshot(new.status), ticket_snapshot(new))
        log.emit(TicketUpdated(**base, data=data))


def ticket_deleted(log: EventLog, workspace: str, old: Ticket) -> None:
    log.emit(TicketDeleted(workspace=workspace, occurred_at=now(), connection=old.connection, ticket=old.ref,
                           data=TicketDeletedData(old.summary, status_snapshot(old.status))))  # fmt: skip


# --------------------------------------------------------------------------- writes


def _write_base(record: WriteRecord) -> dict[str, Any]:
    # An alert action's target is an alert, not a ticket: it stays in ``data.target``.
    ticket = record.result_ref if record.kind == "alert_action" else (record.target or record.result_ref)
    return {"workspace": record.workspace, "occurred_at": now(), "connection": record.connection,
            "ticket": ticket, "write": record.id}  # fmt: skip


def write_accepted(gw: Hub, record: WriteRecord) -> Staged:
    """A new write's ``write.accepted``, staged: ``WriteStore.accept`` appends it in the step
    that stores the write, and only if the write is new."""
    data = WriteData(record.kind, record.status, record.dedup_key, record.target)
    return gw.events.stage(WriteAcceptedEvent(**_write_base(record), data=data))


def write_succeeded(gw: Hub, record: WriteRecord) -> None:
    effects = [EffectSnapshot(s.name, s.effect.vendor_id, s.effect.detail) for s in record.steps if s.effect]
    data = WriteSucceededData(record.kind, record.status, record.dedup_key, effects, record.target,
                              record.result_ref, len(record.attempts))  # fmt: skip
    gw.events.emit(WriteSucceeded(**_write_base(record), data=data))


def write_dead_lettered(gw: Hub, record: WriteRecord) -> None:
    last_status = next((a.status for a in reversed(record.attempts) if a.status is not None), None)
    data = WriteDeadLetteredData(record.kind, record.status, record.dedup_key, record.error or "", record.target,
                                 len(record.attempts), last_status)  # fmt: skip
    gw.events.emit(WriteDeadLettered(**_write_base(record), data=data))


def write_retried(gw: Hub, record: WriteRecord, by: str) -> None:
    data = WriteAdminData(record.kind, record.status, record.dedup_key, by, record.target)
    gw.events.emit(WriteRetried(**_write_base(record), data=data))


def write_discarded(gw: Hub, record: WriteRecord, by: str) -> None:
    data = WriteAdminData(record.kind, record.status, record.dedup_key, by, record.target)
    gw.events.emit(WriteDiscarded(**_write_base(record), data=data))


# --------------------------------------------------------------------------- links


def alert_linked(gw: Hub, workspace: str, ticket_ref: str, alert_ref: str) -> None:
    gw.events.emit(AlertLinked(workspace=workspace, occurred_at=now(), connection=ticket_ref.split(":", 1)[0],
                               ticket=ticket_ref, data=AlertLinkedData(alert_ref, ticket_ref)))  # fmt: skip


# --------------------------------------------------------------------------- connections

# Record a connection's trouble; 1 when it is news. Sync failing after the credentials were
# refused is the same trouble, not news.
_TROUBLE = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then return 0 end
if current == 'auth_failed' and ARGV[1] == 'sync_failed' then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
# How often one process looks for a connection's trouble after a successful call.
RECOVERY_CHECK_SECONDS = 1.0


def _trouble_key(connection: str) -> str:
    return f"events:conn:{connection}"


class ConnectionWatch:
    """Announces a connection's trouble once, and its recovery once (one per ``Runtime``)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._trouble = log.redis.register_script(_TROUBLE)
        self._checked: dict[str, float] = {}

    def trouble(self, conn: Connection, kind: str, detail: str = "", status: int | None = None, *,
                retry_after: float | None = None) -> None:  # fmt: skip
        try:
            if not self._trouble(keys=[_trouble_key(conn.id)], args=[kind]):
                return
        except redis.RedisError:
            return
        self._checked.pop(conn.id, None)  # look for the recovery at the next success
        base = {"workspace": conn.workspace, "occurred_at": now(), "connection": conn.id}
        if kind == "paused":
            wait = retry_after or 0.0
            until = datetime.fromtimestamp(time.time() + wait, tz=timezone.utc)
            self.log.emit(ConnectionPaused(**base, data=ConnectionPausedData(conn.vendor, round(wait, 3), until)))
            return
        data = ConnectionTroubleData(conn.vendor, self.log.redactor.scrub(detail)[:DETAIL_LIMIT], status)
        cls = ConnectionAuthFailed if kind == "auth_failed" else ConnectionSyncFailed
        self.log.emit(cls(**base, data=data))

    def ok(self, conn: Connection) -> None:
        """A call on ``conn`` succeeded: announce its recovery if it was in trouble. Looks in
        Redis at most once a second per connection and process."""
        at = time.monotonic()
        if at - self._checked.get(conn.id, -RECOVERY_CHECK_SECONDS) < RECOVERY_CHECK_SECONDS:
            return
        self._checked[conn.id] = at
        try:
            was = self.log.redis.getdel(_trouble_key(conn.id))
        except redis.RedisError:
            return
        if was:
            self.log.emit(ConnectionRecovered(workspace=conn.workspace, occurred_at=now(), connection=conn.id,
                                              data=ConnectionRecoveredData(conn.vendor, was.decode())))  # fmt: skip


def troubles(client: redis.Redis, connection_ids: list[str]) -> dict[str, str]:
    """The current trouble (``auth_failed``, ``sync_failed``, ``paused``) of each connection
    that has one, as last announced."""
    if not connection_ids:
        return {}
    found = client.mget([_trouble_key(c) for c in connection_ids])
    return {c: raw.decode() for c, raw in zip(connection_ids, found) if raw}


def _watch(runtime: Runtime | None) -> ConnectionWatch | None:
    return getattr(runtime, "connection_watch", None) if runtime is not None else None


def connection_paused(runtime: Runtime | None, conn: Connection, retry_after: float) -> None:
    """The vendor answered 429 and the connection is paused for ``retry_after`` seconds."""
    watch = _watch(runtime)
    if watch is not None:
        watch.trouble(conn, "paused", retry_after=retry_after)


def connection_refused(runtime: Runtime | None, conn: Connection, status: int, detail: str) -> None:
    """A vendor answer with an error status: 401 and 403 mean the credentials were refused."""
    watch = _watch(runtime)
    if watch is not None and status in (401, 403):
        watch.trouble(conn, "auth_failed", detail, status)


def connection_ok(runtime: Runtime | None, conn: Connection) -> None:
    """A vendor call on ``conn`` succeeded."""
    watch = _watch(runtime)
    if watch is not None:
        watch.ok(conn)


def sync_failed(gw: Hub, connection_id: str, exc: Exception) -> None:
    """A sync step of the connection failed with a vendor error (not a rate limit)."""
    watch = _watch(gw.runtime)
    if watch is not None:
        watch.trouble(gw.connection(connection_id), "sync_failed", str(exc), getattr(exc, "status", None))
