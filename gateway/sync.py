"""Sync: fills the ticket store from each PSA connection and keeps it fresh.

Per connection, a first *backfill* walks the vendor's paging; then *incremental pulls* ask for
what changed since the watermark minus an overlap (so nothing slips between pulls), every
``poll_seconds``. Vendor webhooks (``POST /v1/webhooks/{connection}``) trigger an immediate
fetch of the changed ticket, and every write the gateway lands does too.

Sync never competes with writes: each job fetches one page, jobs run on queues workers take
only when the write queue is empty (``writes``, ``deliveries``, then ``events``, then ``sync``), and a sync call
uses rate budget only if it is free *now* (it never books a slot ahead, so it cannot push a
write back by more than the one call in flight).

A full backfill also removes tickets the vendor no longer returns (deleted or merged), and
``resync`` wipes a connection's tickets and starts again: the store is a cache.
"""

from __future__ import annotations

import functools
import logging
import random
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import msgspec
import rq

from gateway import context, events, keys, writekinds
from gateway.hub import Hub, bound
from gateway.errors import VendorError, VendorRateLimited
from gateway.locks import try_lock
from gateway.models import Capability, Ticket, TicketQuery, make_ref
from gateway.store import TicketStore

log = logging.getLogger("gateway.sync")

EVENTS_QUEUE = "events"
SYNC_QUEUE = "sync"
DELAYED = keys.SYNC_DELAYED
PAGE_SIZE = 500  # a wish: each vendor caps it (HaloPSA at 100)
JOB_OPTIONS: dict[str, Any] = {"job_timeout": 300, "result_ttl": 0, "failure_ttl": 24 * 3600}


class SyncState(msgspec.Struct, omit_defaults=True):
    """Where a connection's sync stands (``sync:{connection}`` in Redis)."""

    watermark: float | None = None  # newest update time seen
    backfill_done: bool = False
    backfill_cursor: str | None = None
    backfill_started: float | None = None
    poll_cursor: str | None = None
    poll_since: float | None = None
    poll_high: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    errors: int = 0
    pages: int = 0
    tickets: int = 0


class SyncStatus(msgspec.Struct):
    """What ``GET /v1/connections`` shows of a connection's sync."""

    backfill_done: bool
    tickets: int
    last_success: datetime | None
    lag_seconds: float | None
    errors: int
    last_error: str | None
    backlog_pages: int


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(SyncState)


def load_state(gw: Hub, connection: str) -> SyncState:
    raw = gw.redis.get(keys.sync_state(connection))
    return _dec.decode(raw) if raw else SyncState()


def save_state(gw: Hub, connection: str, state: SyncState) -> None:
    gw.redis.set(keys.sync_state(connection), _enc.encode(state))


def synced_connections(gw: Hub) -> list[str]:
    """PSA connections whose tickets the store keeps."""
    return [c.id for c in gw.connections.values() if gw.vendors.has(c.vendor, Capability.TICKET_READ)]


def last_pull(gw: Hub, connection: str) -> float | None:
    """When the connection's last complete pull ended (``None``: never, or not a connection
    whose tickets the store keeps)."""
    if connection not in synced_connections(gw):
        return None
    return load_state(gw, connection).last_success


def status(gw: Hub, connection: str) -> SyncStatus:
    state = load_state(gw, connection)
    last = datetime.fromtimestamp(state.last_success, tz=timezone.utc) if state.last_success else None
    backlog = int(gw.redis.llen(f"rq:queue:{SYNC_QUEUE}") or 0)
    return SyncStatus(
        backfill_done=state.backfill_done,
        tickets=len(gw.store.refs_of_connection(gw.connection(connection).workspace, connection)),
        last_success=last,
        lag_seconds=round(time.time() - state.last_success, 3) if state.last_success else None,
        errors=state.errors,
        last_error=state.last_error,
        backlog_pages=backlog,
    )


# --------------------------------------------------------------------------- scheduling


def schedule(gw: Hub, connection: str, *, at: float | None = None) -> None:
    """Run a sync step of ``connection`` now (or at ``at``)."""
    if at is None or at <= time.time():
        rq.Queue(SYNC_QUEUE, connection=gw.redis).enqueue(run_sync, connection, **JOB_OPTIONS)
    else:
        gw.redis.zadd(DELAYED, {f"sync|{connection}|{uuid.uuid4().hex[:8]}": at})


def fetch_soon(
    gw: Hub, connection: str, ticket_id: str, action: str = "updated", *, at: float | None = None
) -> None:
    """Fetch one ticket again soon (webhooks, landed writes).

    Fetches are coalesced per connection: the ticket joins the connection's refresh set
    (asking twice adds nothing) and one job at a time works through the set. A connection whose
    reads are over budget so costs one waiting job, not one job per ticket retrying on its own.
    """
    gw.redis.sadd(keys.sync_key(connection, "refresh"), f"{action}|{ticket_id}")
    if gw.redis.set(keys.sync_key(connection, "refreshing"), "1", nx=True, ex=JOB_OPTIONS["job_timeout"]):
        _schedule_refresh(gw, connection, at)


def _schedule_refresh(gw: Hub, connection: str, at: float | None = None) -> None:
    if at is None or at <= time.time():
        rq.Queue(EVENTS_QUEUE, connection=gw.redis).enqueue(refresh_tickets, connection, **JOB_OPTIONS)
    else:
        gw.redis.zadd(DELAYED, {f"refresh|{connection}|{uuid.uuid4().hex[:8]}": at})


def promote_due(gw: Hub) -> int:
    """Enqueue delayed sync steps and fetches whose time has come (any worker may run it)."""
    due = gw.redis.zrangebyscore(DELAYED, "-inf", time.time(), start=0, num=100)
    promoted = 0
    for member in due:
        if gw.redis.zrem(DELAYED, member):
            kind, connection, rest = member.decode().split("|", 2)
            if kind == "sync":
                schedule(gw, connection)
            elif kind == "refresh":
                _schedule_refresh(gw, connection)  # its job still holds the refreshing mark
            else:  # a fetch delayed by an older version: it joins the refresh set
                action, _nonce, ticket_id = rest.split("|", 2)
                fetch_soon(gw, connection, ticket_id, action)
            promoted += 1
    return promoted


def install(gw: Hub) -> None:
    """Refetch a ticket when a write to it lands (call once per ``Hub``; repeat calls do
    nothing)."""
    if not any(getattr(listener, "func", None) is after_write for listener in gw.write_listeners):
        gw.write_listeners.append(functools.partial(after_write, gw))


def after_write(gw: Hub, record: Any) -> None:
    """A write landed: fetch its ticket so the queue shows it as the vendor now has it."""
    declared = writekinds.KINDS.get(record.kind)
    ref = record.target if declared is None or declared.refetch else None
    ref = ref or record.result_ref
    if ref and ref.split(":", 1)[0] in synced_connections(gw):
        connection, ticket_id = ref.split(":", 1)
        fetch_soon(gw, connection, ticket_id)


def keep_alive(gw: Hub) -> None:
    """Start sync for every connection that has none running (first start, lost jobs)."""
    for connection in synced_connections(gw):
        poll = _poll_seconds(gw, connection)
        if gw.redis.set(keys.sync_key(connection, "alive"), "1", nx=True, ex=int(poll * 3 + 60)):
            schedule(gw, connection)


def _poll_seconds(gw: Hub, connection: str) -> float:
    found = gw.settings.connection(connection)
    return found[1].poll_seconds if found else 30.0


def _overlap_seconds(gw: Hub, connection: str) -> float:
    found = gw.settings.connection(connection)
    return found[1].poll_overlap_seconds if found else 120.0


# --------------------------------------------------------------------------- jobs


def run_sync(connection: str) -> str:
    """rq job: one page of a connection's backfill or incremental pull."""
    return Syncer(bound()).step(connection)


def refresh_tickets(connection: str) -> str:
    """rq job: fetch the tickets waiting in the connection's refresh set."""
    return Syncer(bound()).refresh(connection)


def fetch_ticket(connection: str, ticket_id: str, action: str = "updated") -> str:
    """rq job of older versions (one ticket): it joins the connection's refresh set."""
    fetch_soon(bound(), connection, ticket_id, action)
    return "queued"


class Syncer:
    def __init__(self, gw: Hub) -> None:
        self.gw = gw
        self.store: TicketStore = gw.store

    def _context(self) -> Any:
        # Sync spends only free budget: it never books ahead of writes.
        return context.current.set(context.CallContext(defer_on_limit=True, book_ahead=False, purpose="sync"))

    # A refresh job works this long at most, then goes to the back of the queue.
    REFRESH_SECONDS = 1.0
    REFRESH_BATCH = 20

    def refresh(self, connection: str) -> str:
        """Fetch the tickets in the connection's refresh set until it is empty, the read budget
        runs out (then once more when the limiter says), or ``REFRESH_SECONDS`` have passed."""
        redis_ = self.gw.redis
        key, mark = keys.sync_key(connection, "refresh"), keys.sync_key(connection, "refreshing")
        deadline = time.monotonic() + self.REFRESH_SECONDS
        fetched = 0
        while True:
            members = redis_.spop(key, self.REFRESH_BATCH)
            if not members:
                redis_.delete(mark)
                # A ticket added after the SPOP found the mark held: look once more.
                if redis_.scard(key) and redis_.set(mark, "1", nx=True, ex=JOB_OPTIONS["job_timeout"]):
                    continue
                return f"refreshed {fetched}"
            for index, member in enumerate(members):
                action, ticket_id = member.decode().split("|", 1)
                wait = self.fetch(connection, ticket_id, action)
                if wait is not None:  # over the read budget: try again when there is some
                    redis_.sadd(key, *members[index:])
                    _schedule_refresh(self.gw, connection, time.time() + wait + random.uniform(0, 0.2))
                    return f"deferred after {fetched}"
                fetched += 1
            if time.monotonic() > deadline:
                _schedule_refresh(self.gw, connection)  # the mark stays ours
                return f"refreshed {fetched}, more queued"

    def fetch(self, connection: str, ticket_id: str, action: str = "updated") -> float | None:
        """Fetch one ticket into the store (or take it out); the seconds to wait when the
        connection's read budget is spent (nothing fetched), else ``None``."""
        conn = self.gw.connection(connection)
        ref = make_ref(connection, ticket_id)
        reset = self._context()
        try:
            ticket = None if action == "deleted" else self.gw.vendor(connection).ticket_get(ticket_id=ticket_id)
        except VendorRateLimited as exc:
            return exc.retry_after or 1.0
        finally:
            context.current.reset(reset)
        if ticket is None:
            self.store.delete(ref)
        else:
            self.store.upsert(ticket, conn.workspace)
            self.gw.redis.delete(keys.ticket_cache(conn.workspace, ref))
        return None

    def step(self, connection: str) -> str:
        """Advance the connection's sync by one page; schedule the next step."""
        gw = self.gw
        conn = gw.connection(connection)
        lock = try_lock(gw.redis, keys.sync_key(connection, "lock"), conn.timeout_seconds * 2 + 10)
        if lock is None:
            return "busy"
        poll = _poll_seconds(gw, connection)
        gw.redis.set(keys.sync_key(connection, "alive"), "1", ex=int(poll * 3 + 60))
        state = load_state(gw, connection)
        reset = self._context()
        try:
            if not state.backfill_done:
                outcome, delay = self._backfill_page(connection, conn.workspace, state)
            else:
                outcome, delay = self._poll_page(connection, conn.workspace, state, poll)
            state.last_error = None
        except VendorRateLimited as exc:
            outcome, delay = "deferred", (exc.retry_after or 1.0) + random.uniform(0, 0.2)
        except VendorError as exc:
            state.errors += 1
            state.last_error = gw.redactor.scrub(str(exc))
            outcome, delay = "error", min(300.0, 2.0 * 2 ** min(state.errors, 7))
            events.sync_failed(gw, connection, exc)
            log.warning("sync of %s failed: %s", connection, state.last_error)
        finally:
            context.current.reset(reset)
            save_state(gw, connection, state)
            lock.release()
        schedule(gw, connection, at=time.time() + delay if delay else None)
        return outcome

    def _store_page(self, tickets: list[Ticket], workspace: str, state: SyncState, seen_key: str | None,
                    *, announce: bool = True) -> float:  # fmt: skip
        high = state.watermark or 0.0
        with self.gw.redis.pipeline(transaction=False) as pipe:
            for ticket in tickets:
                if seen_key:
                    pipe.sadd(seen_key, ticket.ref)
            pipe.execute()
        self.store.upsert_many(tickets, workspace, announce=announce)
        for ticket in tickets:
            if ticket.updated_at:
                high = max(high, ticket.updated_at.timestamp())
        state.pages += 1
        state.tickets += len(tickets)
        return high

    def _backfill_page(self, connection: str, workspace: str, state: SyncState) -> tuple[str, float]:
        if state.backfill_started is None:
            state.backfill_started = time.time()
            self.gw.redis.delete(keys.sync_key(connection, "seen"))
        page = self.gw.vendor(connection).ticket_list(query=TicketQuery(page_size=PAGE_SIZE, cursor=state.backfill_cursor))
        # A backfill loads what exists: no ticket events (tickets gone at the end are announced).
        state.watermark = self._store_page(page.tickets, workspace, state, keys.sync_key(connection, "seen"), announce=False)
        if page.next_cursor:
            state.backfill_cursor = page.next_cursor
            return "backfill", 0.0
        # Done: whatever the vendor no longer returns was deleted or merged there.
        seen = {m.decode() for m in self.gw.redis.smembers(keys.sync_key(connection, "seen"))}
        for ref in self.store.refs_of_connection(workspace, connection) - seen:
            self.store.delete(ref)
        self.gw.redis.delete(keys.sync_key(connection, "seen"))
        state.backfill_done = True
        state.backfill_cursor = None
        state.last_success = time.time()
        state.errors = 0
        return "backfilled", _poll_seconds(self.gw, connection)

    def _poll_page(self, connection: str, workspace: str, state: SyncState, poll: float) -> tuple[str, float]:
        if state.poll_since is None:
            watermark = state.watermark or 0.0
            state.poll_since = max(0.0, watermark - _overlap_seconds(self.gw, connection))
            state.poll_high = watermark
        since = datetime.fromtimestamp(state.poll_since, tz=timezone.utc)
        page = self.gw.vendor(connection).ticket_list(
            query=TicketQuery(updated_since=since, page_size=PAGE_SIZE, cursor=state.poll_cursor),
        )
        state.poll_high = max(state.poll_high or 0.0, self._store_page(page.tickets, workspace, state, None))
        if page.next_cursor:
            state.poll_cursor = page.next_cursor
            return "polling", 0.0
        state.watermark = state.poll_high
        state.poll_cursor = state.poll_since = state.poll_high = None
        state.last_success = time.time()
        state.errors = 0
        return "polled", poll


def resync(gw: Hub, connection: str) -> None:
    """Forget a connection's tickets and sync state, and start a fresh backfill."""
    conn = gw.connection(connection)
    for ref in gw.store.refs_of_connection(conn.workspace, connection):
        gw.store.delete(ref, announce=False)  # the cache is wiped; the tickets are not deleted
    gw.redis.delete(keys.sync_state(connection), keys.sync_key(connection, "seen"))
    schedule(gw, connection)

