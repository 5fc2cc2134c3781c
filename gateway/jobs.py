"""The write pipeline's worker side: rq job functions and the runner behind them.

Jobs take only a write id: the record in Redis is the truth, the rq job is a trigger. A run:

1. takes the write's lock (a second copy of the job finds it held and leaves);
2. checks the write heads its ticket's chain (writes to one ticket apply in acceptance order);
3. walks the write's steps: a ``done`` step is skipped; a ``sending`` step (an earlier call
   whose outcome is unknown) is first *reconciled* through the plugin, and only sent again if
   the vendor shows no trace of it; a step is marked ``sending`` in Redis before its call;
4. on a rate limit, defers itself to the moment the limiter booked (no sleeping); on a
   transient failure, retries with exponential backoff and jitter; on a rejection (4xx), or
   when attempts run out, dead-letters the write with every attempt;
5. when the write is finished, pops it off its chain and enqueues the next write of the ticket.

``sweep`` re-enqueues writes whose job was lost (crash between accept and enqueue, a worker
killed mid-job, a Redis restart); the lock and the step states make a duplicate job harmless.

``HELD`` is what one worker process has taken from the scheduler and not yet handed back: the
process renews those runs' leases while it is alive, and a run that Redis went away under (a
failover, a restart) is handed back by ``recover_held`` as soon as Redis answers again: its write
lock released, its slot freed, the write queued again at the front of its connection. Without
that the write would wait for its lock and the sweeper (a minute or more), and its slot for its
lease.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

import redis
from rq.job import Job
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway import context, durability, events, keys, metrics
from gateway.hub import Hub, bound
from gateway.errors import (
    NotSupported,
    VendorAmbiguous,
    VendorError,
    VendorRateLimited,
    VendorRejected,
    VendorUnavailable,
    VendorUnreachable,
)
from gateway.models import (
    Effect,
    ReconcileContext,
    make_ref,
    split_ref,
)
from gateway.intake import new_run
from gateway.locks import OwnedLock
from gateway.writekinds import STEPS, step_kind
from gateway.writes import Attempt, WriteRecord, WriteStep, now

# How a write carries its request's trace into its jobs (``intake`` writes it): W3C traceparent.
W3C = TraceContextTextMapPropagator()
log = logging.getLogger("gateway.jobs")
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 120.0


# --------------------------------------------------------------------------- job functions


def run_write(write_id: str, prepaid: bool = False, run_id: str | None = None, connection: str | None = None) -> str:
    """rq job: advance one write as far as it can go now (``connection``: whose scheduler slot
    the run holds, freed even when the write is gone)."""
    return WriteRunner(bound()).run(write_id, prepaid=prepaid, run_id=run_id, connection=connection)


JOB_OPTIONS: dict[str, Any] = {"timeout": 600, "result_ttl": 0, "failure_ttl": 7 * 24 * 3600}
# How far ahead a connection's runs book rate-limit slots before the connection is parked.
BOOK_AHEAD_SECONDS = 1.0


# Redis itself went away (a failover, a restart): no fault of the write's, which is neither
# retried nor dead-lettered for it; the run is handed back once Redis answers (``recover_held``).
REDIS_LOST = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@dataclass
class _Held:
    hub: Hub  # one per worker process; a test process builds many
    run_id: str
    write_id: str
    connection: str
    thread: threading.Thread
    lock: OwnedLock | None = None


class HeldRuns:
    """The write runs this process took from the scheduler and has not handed back yet.

    A run is held from its pick until its slot is freed (``Scheduler.finish`` or ``park``). One
    still held when its thread asks for the next run, or whose thread is gone, was cut short by
    Redis going away: ``recover_held`` hands it back.
    """

    def __init__(self) -> None:
        self._runs: dict[str, _Held] = {}
        self._mutex = threading.Lock()

    def take(self, gw: Hub, run_id: str, write_id: str, connection: str) -> None:
        with self._mutex:
            self._runs[run_id] = _Held(gw, run_id, write_id, connection, threading.current_thread())

    def locked(self, run_id: str | None, lock: OwnedLock) -> None:
        """The run took its write's lock: a recovery releases it."""
        with self._mutex:
            held = self._runs.get(run_id or "")
            if held is not None:
                held.lock = lock

    def handed_back(self, run_id: str | None) -> None:
        with self._mutex:
            self._runs.pop(run_id or "", None)

    def leases(self, gw: Hub) -> list[tuple[str, str]]:
        """``(connection, run id)`` of every run held through ``gw``, for renewing their leases."""
        with self._mutex:
            return [(h.connection, h.run_id) for h in self._runs.values() if h.hub is gw]

    def cut_short(self, gw: Hub) -> list[_Held]:
        """Runs held through ``gw`` that no thread is running any more: this thread's (it runs
        one at a time, and is asking for the next) and those of threads that ended."""
        me = threading.current_thread()
        with self._mutex:
            return [h for h in self._runs.values() if h.hub is gw and (h.thread is me or not h.thread.is_alive())]

    def __bool__(self) -> bool:
        return bool(self._runs)


HELD = HeldRuns()


def recover_held(gw: Hub) -> int:
    """Hand back the runs Redis went away under (``HeldRuns.cut_short``): release the write's
    lock (owner-checked: no call of ours is in flight, the run's thread is here or gone), free
    the slot and queue the write again at the front of its connection. The write's record says
    what landed; a step left ``sending`` is reconciled. Raises while Redis is still away."""
    recovered = 0
    for held in HELD.cut_short(gw):
        if held.lock is not None:
            held.lock.release()
        gw.scheduler.finish(held.connection, held.run_id)
        conn = gw.connections.get(held.connection)
        if conn is not None:
            gw.scheduler.push(conn.id, conn.workspace, gw.connection_cap(conn.id), new_run(held.write_id), front=True)
        HELD.handed_back(held.run_id)
        recovered += 1
    if recovered:
        log.warning("handed back %d write run(s) cut short by a lost Redis connection", recovered)
    return recovered


def renew_held(gw: Hub) -> None:
    """Renew the leases of the runs this process holds (the housekeeping thread, while the
    process lives): a process that dies stops renewing, and its slots come free."""
    for connection, run_id in HELD.leases(gw):
        gw.scheduler.renew(connection, run_id)


def _parse_run(run_id: str) -> tuple[str, bool] | None:
    parts = run_id.split("-")
    if len(parts) != 4 or parts[0] != "run":
        return None
    return parts[1], parts[2] == "1"


def run_job(gw: Hub, run_id: str, connection: str | None = None) -> Job | None:
    """The rq job that executes a run a worker just took (rq then executes, times out and
    registers it as any job), or ``None`` when there is nothing to run now.

    On a rate-limited connection the run first books its vendor call's slot: when the slot is
    later, the run waits for it in the scheduler (prepaid) instead of starting a job only to
    find out. The connection's next runs book the slots after it, up to BOOK_AHEAD_SECONDS
    ahead; past that the connection is parked until then.
    """
    parsed = _parse_run(run_id)
    if parsed is None:
        return None
    write_id, prepaid = parsed
    conn = gw.connections.get(connection or "")
    if connection:
        HELD.take(gw, run_id, write_id, connection)
    if conn is not None and not prepaid and conn.rate_limit.windows:
        wait = gw.limiter.reserve(conn.id, conn.rate_limit)
        prepaid = True
        if wait > 0:
            due = time.time() + wait
            gw.scheduler.defer(conn.id, conn.workspace, gw.connection_cap(conn.id), new_run(write_id, True), due)
            if wait > BOOK_AHEAD_SECONDS:
                gw.scheduler.park(conn.id, due - BOOK_AHEAD_SECONDS, run_id)
            else:
                gw.scheduler.finish(conn.id, run_id)
            HELD.handed_back(run_id)
            return None
    job = gw.queue.create_job(run_write, args=(write_id, prepaid, run_id, connection), job_id=run_id, **JOB_OPTIONS)
    job.save()
    return job


def enqueue_write(
    gw: Hub,
    write_id: str,
    *,
    connection: str | None = None,
    workspace: str | None = None,
    at: datetime | None = None,
    prepaid: bool = False,
) -> None:
    """Queue a run of ``write_id`` on its connection in the fair scheduler, now or at ``at``.

    The scheduler decides when a worker takes it (``gateway.scheduler``); a delayed run (a
    retry) joins the front of its connection's runs when it is due.
    """
    if connection is None or workspace is None:
        record = gw.writes.get(write_id)
        if record is None:
            return
        connection, workspace = record.connection, record.workspace
    cap = gw.connection_cap(connection)
    if at is None:
        gw.scheduler.push(connection, workspace, cap, new_run(write_id, prepaid))
    else:
        gw.scheduler.defer(connection, workspace, cap, new_run(write_id, prepaid), at.timestamp())


def park_write(gw: Hub, record: WriteRecord, run_id: str | None, seconds: float, *, prepaid: bool) -> None:
    """Hold the write's connection for ``seconds`` (vendor pause or our own budget) and put
    this write back at the front of its connection's runs: no worker waits, nothing spins."""
    gw.scheduler.park(record.connection, time.time() + seconds, run_id or "", requeue=new_run(record.id, prepaid))


def sweep(gw: Hub, older_than: float = 60.0) -> int:
    """Re-enqueue unfinished writes that have shown no activity for ``older_than`` seconds."""
    revived = 0
    for write_id in gw.writes.stale_active(older_than):
        if gw.writes.is_locked(write_id):
            continue
        record = gw.writes.get(write_id)
        if record is None:
            gw.redis.zrem(keys.ACTIVE_WRITES, write_id)
            continue
        if record.terminal:
            gw.writes.save(record)
            continue
        head = gw.writes.chain_head(record.chain)
        while head is not None and head != record.id:
            head_record = gw.writes.get(head)
            if head_record is not None and not head_record.terminal:
                break
            # The head finished (or expired) but its run died before popping it off the chain
            # (a worker killed between saving the outcome and advancing): without this the
            # ticket's later writes would wait behind it forever.
            head = gw.writes.advance_chain(record.chain, head)
        if head is None:
            gw.writes.rejoin(record)
            head = record.id
        if head == record.id:
            gw.writes.touch(record.id)
            enqueue_write(gw, record.id, connection=record.connection, workspace=record.workspace)
            revived += 1
    return revived


# --------------------------------------------------------------------------- the runner


class _Stop(Exception):
    """Internal: the run ends here (deferred, retrying or dead)."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome


class WriteRunner:
    def __init__(self, gw: Hub) -> None:
        self.gw = gw
        self.store = gw.writes

    def run(self, write_id: str, *, prepaid: bool = False, run_id: str | None = None,
            connection: str | None = None) -> str:
        """One run of a write; always hands its scheduler slot back (or parks it), also when
        the write is gone (withdrawn by the API after its run was queued). When Redis goes
        away mid-run, the slot stays held here for ``recover_held``."""
        self.run_id = run_id
        self.parked = False
        if connection is None:
            # A job an operator requeued with rq's own tools names no connection: read the
            # write for it. A run from the scheduler reads the write once, under its lock.
            record = self.store.get(write_id)
            connection = record.connection if record is not None else None
        try:
            outcome = self._run(write_id, connection, prepaid)
        except REDIS_LOST:
            raise  # the slot and the write's lock are handed back once Redis answers
        except BaseException:
            self._hand_back(connection)
            raise
        self._hand_back(connection)
        return outcome

    def _hand_back(self, connection: str | None) -> None:
        if connection is not None and self.run_id is not None and not self.parked:
            self.gw.scheduler.finish(connection, self.run_id)
        HELD.handed_back(self.run_id)

    def _run(self, write_id: str, connection: str | None, prepaid: bool) -> str:
        if connection is None:
            return "missing"
        conn = self.gw.connection(connection)
        lock_seconds = int(conn.timeout_seconds * 2 + 10)
        lock = self.store.lock(write_id, lock_seconds)
        if lock is None:
            return "locked"
        HELD.locked(self.run_id, lock)
        try:
            record = self.store.get(write_id)
            if record is None:
                return "missing"
            if not record.terminal:
                head = self.store.chain_head(record.chain)
                if head is None:
                    self.store.rejoin(record)
                elif head != record.id:
                    return "waiting"
                outcome = self._execute(record, prepaid, lock, lock_seconds)
            else:
                outcome = record.status
        finally:
            self.store.unlock(write_id, lock)
        if record.terminal:
            nxt = self.store.advance(record)
            if nxt:
                enqueue_write(self.gw, nxt, connection=record.connection, workspace=record.workspace)
        return outcome

    # -- one run ------------------------------------------------------------------------

    def _execute(self, record: WriteRecord, prepaid: bool, lock: OwnedLock, lock_seconds: int) -> str:
        ctx = context.CallContext(
            write_id=record.id,
            dedup_key=record.dedup_key,
            workspace=record.workspace,
            ticket_ref=record.target or record.result_ref,
            prepaid=prepaid,
            defer_on_limit=True,
        )
        reset = context.current.set(ctx)
        parent = W3C.extract(record.trace_context) if record.trace_context else None
        attributes = {
            "gateway.kind": "write_job",
            "gateway.write_id": record.id,
            "gateway.dedup_key": record.dedup_key,
            "gateway.connection": record.connection,
            "gateway.workspace": record.workspace,
            "gateway.write_kind": record.kind,
        }
        if record.target:
            attributes["gateway.ticket"] = record.target
        try:
            with self.gw.tracer.start_as_current_span(
                f"write {record.kind}", context=parent, attributes=attributes
            ) as span:
                try:
                    fresh = True  # taken for lock_seconds just before this run read its write
                    for step in record.steps:
                        if step.state != "done":
                            if not fresh:
                                lock.extend(lock_seconds)
                            fresh = False
                            self._step(record, step, ctx)
                except _Stop as stop:
                    span.set_attribute("gateway.outcome", stop.outcome)
                    if stop.outcome == "dead":
                        span.set_status(Status(StatusCode.ERROR, record.error or "dead-lettered"))
                    return stop.outcome
                record.status = "succeeded"
                record.error = None
                self.store.save(record)
                metrics.write_finished(self.gw.redis, record)
                self.store.delete_blobs(record.id, sum(1 for s in record.steps if s.name == "attachment"))
                events.write_succeeded(self.gw, record)
                self.gw.after_write(record)
                span.set_attribute("gateway.outcome", "succeeded")
                return "succeeded"
        finally:
            context.current.reset(reset)

    def _step(self, record: WriteRecord, step: WriteStep, ctx: context.CallContext) -> None:
        """Reconcile the step if its last call has no known outcome, then send it.

        ``sent`` marks that a call for this step went out in this run: an error proving the
        vendor did not apply it (a 429, a connect failure, a 4xx) returns the step to
        ``pending``; any other failure leaves it ``sending``, to be reconciled next time.
        """
        ticket_id = self._ticket_id(record)
        sent = False
        requests_before = ctx.requests
        try:
            if step.state == "sending":
                effect = self._reconcile(record, step, ticket_id)
                if effect is not None:
                    self._done(record, step, effect, ticket_id, outcome="reconciled")
                    return
                step.state = "pending"  # the vendor shows no trace of it: safe to send
            if self._superseded(record, step, ticket_id):
                return
            step.state = "sending"
            step.started_at = step.started_at or now()
            record.status = "running"
            self.store.save(record)
            sent = True
            durability.confirm_before_send(self.gw)  # replicated: the sending mark survives a failover
            effect = self._send(record, step, ticket_id)
        except VendorRateLimited as exc:
            if sent:
                step.state = "pending"
            if exc.status == 429:
                self._attempt(record, step, "rate_limited", exc)
            wait = exc.retry_after if exc.retry_after is not None else 1.0
            record.status = "queued"
            self.store.save(record, due=time.time() + wait)
            if exc.booked:
                # Our own limiter booked this write's slot: the run waits for it (holding no
                # worker) while the connection's next runs book the slots after it, up to
                # BOOK_AHEAD_SECONDS ahead; past that the connection waits too.
                enqueue_write(self.gw, record.id, connection=record.connection, workspace=record.workspace,
                              at=datetime.now(timezone.utc) + timedelta(seconds=wait), prepaid=True)
                if wait > BOOK_AHEAD_SECONDS:
                    self.gw.scheduler.park(record.connection, time.time() + wait - BOOK_AHEAD_SECONDS,
                                           self.run_id or "")
                    self.parked = True
            else:
                # A vendor pause (429 Retry-After): the connection waits, not a worker, and this
                # write goes back in front of the connection's other runs.
                park_write(self.gw, record, self.run_id, wait, prepaid=False)
                self.parked = True
            raise _Stop("deferred") from None
        except (VendorAmbiguous, VendorUnavailable) as exc:
            self._attempt(record, step, "ambiguous" if isinstance(exc, VendorAmbiguous) else "unavailable", exc)
            self._retry_or_dead(record, exc)
        except VendorUnreachable as exc:
            if sent:
                step.state = "pending"
            self._attempt(record, step, "unreachable", exc)
            self._retry_or_dead(record, exc)
        except (VendorRejected, NotSupported) as exc:
            if sent:
                step.state = "pending"
            self._attempt(record, step, "rejected" if isinstance(exc, VendorRejected) else "not_supported", exc)
            self._dead(record, str(exc))
        except durability.NotReplicated as exc:
            # The sending mark is not on the replicas (a failover left the primary without
            # one): nothing went out. Like a vendor outage, the write is tried again later.
            step.state = "pending"
            self._attempt(record, step, "not_replicated", exc)
            self._retry_or_dead(record, exc)
        except (_Stop, *REDIS_LOST):
            raise
        except Exception as exc:
            if ctx.requests == requests_before:
                # Nothing reached the vendor: the plugin could not build the call (a value it
                # cannot convert, a bug). Retrying cannot help, and the write would hold its
                # ticket through every attempt: dead-letter it now, with the cause.
                if sent:
                    step.state = "pending"
                self._attempt(record, step, "error", exc)
                self._dead(record, f"the {record.vendor} plugin failed before calling the vendor: "
                                   f"{type(exc).__name__}: {exc}")
            # A job timeout or a bug after the request went out: the outcome is unknown.
            self._attempt(record, step, "error", exc)
            self._retry_or_dead(record, exc)
        else:
            self._done(record, step, effect, ticket_id, outcome="sent")

    def _superseded(self, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> bool:
        """Skip a status that a later status write to the ticket already replaced (an
        operator's retry of an old dead letter must not move the ticket backwards)."""
        if "status_id" not in step.payload or ticket_id is None:
            return False
        order = self.store.status_order(record.id)
        if order is None:
            return False
        later = self.store.status_superseded(record.connection, ticket_id, order)
        if later is None:
            return False
        if step.name == "status":
            self._done(record, step, Effect(detail=f"superseded by {later}, a later status change that landed"),
                       ticket_id, outcome="superseded")
            return True
        # A reply carrying the status (one call at this vendor): send the reply alone.
        step.payload = {k: v for k, v in step.payload.items() if k != "status_id"}
        record.attempts.append(Attempt(at=now(), step=step.name, outcome="superseded",
                                       error=f"status left out: {later} set a later one"))
        return False

    def _ticket_id(self, record: WriteRecord) -> str | None:
        if record.target:
            return split_ref(record.target)[1]
        for step in record.steps:
            if step.name in STEPS and STEPS[step.name].creates_ticket and step.effect and step.effect.vendor_id:
                return step.effect.vendor_id
        return None

    def _send(self, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect:
        effect = step_kind(record, step).send(self.gw, record, step, ticket_id)
        if not isinstance(effect, Effect):
            raise NotSupported(record.vendor, step.name, f"the {record.vendor} plugin returned no effect")
        return effect

    def _reconcile(self, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect | None:
        payload = {k: v for k, v in step.payload.items() if k != "data"}
        kind = step_kind(record, step)
        reconcile_ticket = kind.subject(record, ticket_id)
        context_ = ReconcileContext(
            step=step.name,
            ticket_id=reconcile_ticket,
            payload=payload,
            dedup_key=kind.dedup_key(record, payload),
            since=step.started_at or record.created_at,
            claimed=self.store.claimed(record.connection, reconcile_ticket, step.name),
        )
        try:
            return self.gw.vendor(record.connection).reconcile(context=context_)
        except NotSupported:
            self._dead(
                record,
                f"the outcome of step {step.name!r} is unknown and {record.vendor} cannot reconcile it: "
                "check the vendor before retrying",
            )

    def _done(self, record: WriteRecord, step: WriteStep, effect: Effect, ticket_id: str | None, *, outcome: str) -> None:
        step.state = "done"
        step.effect = effect
        if "status_id" in step.payload and ticket_id is not None and outcome != "superseded":
            order = self.store.status_order(record.id)
            if order is not None:
                self.store.status_landed(record.connection, ticket_id, order, record.id)
        kind = step_kind(record, step)
        claim_ticket = kind.subject(record, ticket_id)
        if kind.creates_ticket and effect.vendor_id:
            record.result_ref = make_ref(record.connection, effect.vendor_id)
            claim_ticket = None
        if effect.vendor_id:
            self.store.claim(record.connection, claim_ticket, step.name, effect.vendor_id)
        record.attempts.append(Attempt(at=now(), step=step.name, outcome=outcome))
        self.store.save(record)

    def _attempt(self, record: WriteRecord, step: WriteStep, outcome: str, exc: BaseException) -> None:
        status = exc.status if isinstance(exc, VendorError) else None
        error = self.gw.redactor.scrub(str(exc) or type(exc).__name__)
        record.attempts.append(Attempt(at=now(), step=step.name, outcome=outcome, status=status, error=error))

    def _retry_or_dead(self, record: WriteRecord, exc: BaseException) -> NoReturn:
        failures = sum(1 for a in record.attempts if a.outcome not in {"rate_limited", "sent", "reconciled", "superseded"})
        if failures >= self.gw.settings.gateway.max_attempts:
            self._dead(record, f"gave up after {failures} failed attempts: {self.gw.redactor.scrub(str(exc))}")
        delay = min(RETRY_MAX_SECONDS, self.gw.retry_base_seconds * 2 ** (failures - 1))
        delay *= random.uniform(0.5, 1.0)
        if isinstance(exc, VendorError) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        record.status = "queued"
        self.store.save(record, due=time.time() + delay)
        enqueue_write(
            self.gw, record.id, connection=record.connection, workspace=record.workspace,
            at=datetime.now(timezone.utc) + timedelta(seconds=delay),
        )
        raise _Stop("retrying")

    def _dead(self, record: WriteRecord, reason: str) -> NoReturn:
        record.status = "dead"
        record.error = self.gw.redactor.scrub(reason)
        record.dead_at = now()
        self.store.save(record)
        events.write_dead_lettered(self.gw, record)
        log.warning("write %s dead-lettered: %s", record.id, record.error)
        metrics.write_finished(self.gw.redis, record)
        raise _Stop("dead")
