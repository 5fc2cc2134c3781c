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
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

import msgspec
from opentelemetry import propagate
from opentelemetry.trace import Status, StatusCode

from gateway import context, durability, metrics
from gateway.core import Gateway
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
    AttachmentUpload,
    Effect,
    ReconcileContext,
    ReplyStep,
    TicketCreate,
    TimeEntryCreate,
    make_ref,
    split_ref,
)
from gateway.writes import Attempt, WriteRecord, WriteStep, now

log = logging.getLogger("gateway.jobs")
_bound: Gateway | None = None
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 120.0


def bind(gateway: Gateway | None) -> None:
    """Give this process's jobs their gateway (the worker does this at start-up)."""
    global _bound
    _bound = gateway


def bound() -> Gateway:
    if _bound is None:
        raise RuntimeError("no gateway bound in this worker process (gateway.jobs.bind)")
    return _bound


# --------------------------------------------------------------------------- job functions


def run_write(write_id: str, prepaid: bool = False) -> str:
    """rq job: advance one write as far as it can go now."""
    return WriteRunner(bound()).run(write_id, prepaid=prepaid)


JOB_OPTIONS: dict[str, Any] = {"job_timeout": 600, "result_ttl": 0, "failure_ttl": 7 * 24 * 3600}
DELAYED = "writes:delayed"


def enqueue_write(gw: Gateway, write_id: str, *, at: datetime | None = None, prepaid: bool = False) -> None:
    """Enqueue the job that runs ``write_id`` now, or at ``at``.

    Delayed runs wait in ``writes:delayed`` (a sorted set scored by float seconds) rather than
    rq's scheduler, whose registry keeps whole seconds and has one lock holder: a rate-limit
    slot booked for 12:00:00.250 must not run at 12:00:00, and a killed worker must not stall
    every delayed write until its scheduler lock expires. ``promote_due`` moves them to rq.
    """
    if at is None:
        gw.queue.enqueue(run_write, write_id, prepaid, **JOB_OPTIONS)
    else:
        member = f"{write_id}|{int(prepaid)}|{uuid.uuid4().hex[:8]}"
        gw.redis.zadd(DELAYED, {member: at.timestamp()})


def promote_due(gw: Gateway, limit: int = 500) -> int:
    """Enqueue delayed runs whose time has come; safe to run in every worker at once."""
    due = gw.redis.zrangebyscore(DELAYED, "-inf", time.time(), start=0, num=limit)
    promoted = 0
    for member in due:
        if gw.redis.zrem(DELAYED, member):  # only the process that removes it enqueues it
            write_id, prepaid, _ = member.decode().split("|")
            gw.queue.enqueue(run_write, write_id, prepaid == "1", **JOB_OPTIONS)
            promoted += 1
    return promoted


def next_due_in(gw: Gateway) -> float | None:
    """Seconds until the next delayed run, or ``None`` when none is waiting."""
    first = gw.redis.zrange(DELAYED, 0, 0, withscores=True)
    return max(0.0, first[0][1] - time.time()) if first else None


def sweep(gw: Gateway, older_than: float = 60.0) -> int:
    """Re-enqueue unfinished writes that have shown no activity for ``older_than`` seconds."""
    revived = 0
    for write_id in gw.writes.stale_active(older_than):
        if gw.writes.is_locked(write_id):
            continue
        record = gw.writes.get(write_id)
        if record is None:
            gw.redis.zrem("writes:active", write_id)
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
            enqueue_write(gw, record.id)
            revived += 1
    return revived


# --------------------------------------------------------------------------- the runner


class _Stop(Exception):
    """Internal: the run ends here (deferred, retrying or dead)."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome


class WriteRunner:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.store = gw.writes

    def run(self, write_id: str, *, prepaid: bool = False) -> str:
        record = self.store.get(write_id)
        if record is None:
            return "missing"
        conn = self.gw.connection(record.connection)
        lock_seconds = int(conn.timeout_seconds * 2 + 10)
        token = self.store.lock(write_id, lock_seconds)
        if token is None:
            return "locked"
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
                outcome = self._execute(record, prepaid, lock_seconds)
            else:
                outcome = record.status
        finally:
            self.store.unlock(write_id, token)
        if record.terminal:
            nxt = self.store.advance(record)
            if nxt:
                enqueue_write(self.gw, nxt)
        return outcome

    # -- one run ------------------------------------------------------------------------

    def _execute(self, record: WriteRecord, prepaid: bool, lock_seconds: int) -> str:
        ctx = context.CallContext(
            write_id=record.id,
            dedup_key=record.dedup_key,
            workspace=record.workspace,
            ticket_ref=record.target or record.result_ref,
            prepaid=prepaid,
            defer_on_limit=True,
        )
        reset = context.current.set(ctx)
        parent = propagate.extract(record.trace_context) if record.trace_context else None
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
                    for step in record.steps:
                        if step.state != "done":
                            self.store.redis.expire(f"lock:write:{record.id}", lock_seconds)
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
        try:
            if step.state == "sending":
                effect = self._reconcile(record, step, ticket_id)
                if effect is not None:
                    self._done(record, step, effect, ticket_id, outcome="reconciled")
                    return
                step.state = "pending"  # the vendor shows no trace of it: safe to send
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
            # Our own limiter booked a slot for this write when it refused: the next run owns it.
            enqueue_write(
                self.gw, record.id, at=datetime.now(timezone.utc) + timedelta(seconds=wait),
                prepaid=exc.status is None,
            )
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
        except _Stop:
            raise
        except Exception as exc:  # a plugin bug or a job timeout: the outcome is unknown
            self._attempt(record, step, "error", exc)
            self._retry_or_dead(record, exc)
        else:
            self._done(record, step, effect, ticket_id, outcome="sent")

    def _ticket_id(self, record: WriteRecord) -> str | None:
        if record.target:
            return split_ref(record.target)[1]
        for step in record.steps:
            if step.name == "create" and step.effect and step.effect.vendor_id:
                return step.effect.vendor_id
        return None

    def _send(self, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect:
        p = step.payload
        key = record.dedup_key
        call = self.gw.call
        conn = record.connection
        if step.name == "reply":
            reply = ReplyStep(text=p["text"], internal=p.get("internal", False), status_id=p.get("status_id"))
            effect = call(conn, "gateway_reply", ticket_id=ticket_id, reply=reply, dedup_key=key)
        elif step.name == "status":
            effect = call(conn, "gateway_status_change", ticket_id=ticket_id, status_id=p["status_id"])
        elif step.name == "time_entry":
            entry = msgspec.convert(p, TimeEntryCreate)
            effect = call(conn, "gateway_time_entry", ticket_id=ticket_id, entry=entry, dedup_key=key)
        elif step.name == "create":
            ticket = msgspec.convert(p, TicketCreate)
            effect = call(conn, "gateway_ticket_create", ticket=ticket, dedup_key=key)
        elif step.name == "attachment":
            data = self.store.get_blob(record.id, p["index"])
            upload = AttachmentUpload(p["filename"], p["content_type"], p["size"], data)
            effect = call(
                conn, "gateway_attachment_add", ticket_id=ticket_id, attachment=upload,
                dedup_key=f"{key}:{p['index']}",
            )
        elif step.name == "alert":
            alert_id = split_ref(record.target or "")[1]
            effect = call(conn, "gateway_alert_action", alert_id=alert_id, action=p["action"], dedup_key=key)
        else:
            raise NotSupported(record.vendor, step.name, f"unknown write step {step.name!r}")
        if not isinstance(effect, Effect):
            raise NotSupported(record.vendor, step.name, f"the {record.vendor} plugin returned no effect")
        return effect

    def _reconcile(self, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect | None:
        payload = {k: v for k, v in step.payload.items() if k != "data"}
        reconcile_ticket = ticket_id if step.name != "alert" else split_ref(record.target or "")[1]
        context_ = ReconcileContext(
            step=step.name,
            ticket_id=reconcile_ticket,
            payload=payload,
            dedup_key=record.dedup_key if step.name != "attachment" else f"{record.dedup_key}:{payload['index']}",
            since=step.started_at or record.created_at,
            claimed=self.store.claimed(record.connection, reconcile_ticket, step.name),
        )
        try:
            return self.gw.call(record.connection, "gateway_reconcile", context=context_)
        except NotSupported:
            self._dead(
                record,
                f"the outcome of step {step.name!r} is unknown and {record.vendor} cannot reconcile it: "
                "check the vendor before retrying",
            )

    def _done(self, record: WriteRecord, step: WriteStep, effect: Effect, ticket_id: str | None, *, outcome: str) -> None:
        step.state = "done"
        step.effect = effect
        claim_ticket = ticket_id if step.name != "alert" else split_ref(record.target or "")[1]
        if step.name == "create" and effect.vendor_id:
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
        failures = sum(1 for a in record.attempts if a.outcome not in {"rate_limited", "sent", "reconciled"})
        if failures >= self.gw.settings.gateway.max_attempts:
            self._dead(record, f"gave up after {failures} failed attempts: {self.gw.redactor.scrub(str(exc))}")
        delay = min(RETRY_MAX_SECONDS, self.gw.retry_base_seconds * 2 ** (failures - 1))
        delay *= random.uniform(0.5, 1.0)
        if isinstance(exc, VendorError) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        record.status = "queued"
        self.store.save(record, due=time.time() + delay)
        enqueue_write(self.gw, record.id, at=datetime.now(timezone.utc) + timedelta(seconds=delay))
        raise _Stop("retrying")

    def _dead(self, record: WriteRecord, reason: str) -> NoReturn:
        record.status = "dead"
        record.error = self.gw.redactor.scrub(reason)
        record.dead_at = now()
        self.store.save(record)
        log.warning("write %s dead-lettered: %s", record.id, record.error)
        metrics.write_finished(self.gw.redis, record)
        raise _Stop("dead")
