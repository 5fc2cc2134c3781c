"""Webhook subscriptions and their delivery: the event log pushed to callers, signed.

A subscription is a URL, the event types it wants (none: all) and its own secret. Each one
keeps a *cursor* into its workspace's event log: the last event it has been sent (or skipped
as not wanted). Delivery is an rq job on its own queue (``deliveries``, which workers take after
writes) that sends the events after the cursor one by one, in log order, and moves the cursor
after each 2xx. So delivery is at least once and in order per subscription, and a receiver
that was down gets everything it missed from the log when it is back.

Keys, per subscription ``sid`` of workspace ``ws``:

- ``subs:{ws}``: subscriptions by id (JSON, secret included: it signs every delivery);
  ``subs:{ws}:active``: ids of those not disabled (the log's append nudges these).
- ``sub:{sid}:state``: cursor, consecutive failures, failing since, retry at, last error.
- ``sub:{sid}:lock``: the one run sending for ``sid`` (token-checked: a run whose lease ran
  out cannot move the cursor), so never more than one delivery is in flight per subscription.
- ``deliveries:pending``: subscriptions with a job queued (by when), so an append enqueues at
  most one job per subscription however many events it writes.
- ``deliveries:delayed``: subscriptions waiting out a backoff or a Retry-After, by when.

Every failed attempt (non-2xx, timeout, connection error) waits with exponential backoff and
jitter, or the receiver's Retry-After on a 429; the run ends there, so a failing receiver never
holds a worker. A subscription failing for ``subscription_disable_after_hours`` is disabled
with a ``subscription.disabled`` event; enabling it again sends what is pending from its cursor.
Every attempt is an audit record (``gateway.kind = webhook_delivery``: host, status, duration;
never the body or the secret). Signing follows Standard Webhooks (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``) through the ``standardwebhooks`` package.
"""

from __future__ import annotations

import base64
import logging
import random
import secrets
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import msgspec
import rq
from standardwebhooks.webhooks import Webhook

from gateway import events, keys
from gateway.hub import Hub, bound
from gateway.vendor_http import _tls_context, parse_retry_after

log = logging.getLogger("gateway.delivery")

QUEUE = "deliveries"
PENDING = keys.DELIVERIES_PENDING
DELAYED = keys.DELIVERIES_DELAYED
JOB_OPTIONS: dict[str, Any] = {"job_timeout": 300, "result_ttl": 0, "failure_ttl": 24 * 3600}
# One run sends for at most this long (or this many events), then queues the next run: other
# subscriptions and writes get the worker in between.
RUN_SECONDS = 1.0
RUN_EVENTS = 200
RETRY_MAX_SECONDS = 300.0
SWEEP_SECONDS = 10.0
# A pending mark older than this with nothing running is re-queued (the enqueue was lost).
STALE_PENDING_SECONDS = 60.0


active_key = keys.active_subscriptions
_subs_key = keys.subscriptions
_state_key = keys.subscription_state
_lock_key = keys.subscription_lock


class Subscription(msgspec.Struct, omit_defaults=True):
    id: str
    workspace: str
    url: str
    types: list[str]
    secret: str
    created_at: datetime
    status: Literal["active", "disabled"] = "active"
    disabled_at: datetime | None = None


class SubscriptionState(msgspec.Struct):
    """Where a subscription's delivery stands."""

    cursor: str = "0"
    failures: int = 0
    failing_since: float | None = None
    retry_at: float | None = None
    last_error: str | None = None
    last_status: int | None = None
    delivered: int = 0


_sub_dec = msgspec.json.Decoder(Subscription)
_enc = msgspec.json.Encoder()


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# --------------------------------------------------------------------------- subscriptions


def create(gw: Hub, workspace: str, url: str, types: list[str]) -> Subscription:
    """A new subscription; it starts at the newest event (it is sent what happens from now)."""
    sub = Subscription(id="sub_" + uuid.uuid4().hex, workspace=workspace, url=url, types=sorted(set(types)),
                       secret=new_secret(), created_at=datetime.now(timezone.utc))  # fmt: skip
    state = SubscriptionState(cursor=gw.events.last_id(workspace))
    with gw.redis.pipeline() as pipe:
        pipe.hset(_subs_key(workspace), sub.id, _enc.encode(sub))
        pipe.hset(_state_key(sub.id), mapping=_state_fields(state))
        pipe.sadd(active_key(workspace), sub.id)
        pipe.execute()
    return sub


def get(gw: Hub, workspace: str, sid: str) -> Subscription | None:
    raw = gw.redis.hget(_subs_key(workspace), sid)
    return _sub_dec.decode(raw) if raw else None


def all_of(gw: Hub, workspace: str) -> list[Subscription]:
    subs = [_sub_dec.decode(v) for v in gw.redis.hvals(_subs_key(workspace))]
    return sorted(subs, key=lambda s: s.created_at)


def delete(gw: Hub, workspace: str, sid: str) -> bool:
    with gw.redis.pipeline() as pipe:
        pipe.hdel(_subs_key(workspace), sid)
        pipe.srem(active_key(workspace), sid)
        pipe.delete(_state_key(sid))
        pipe.zrem(DELAYED, f"{workspace}|{sid}")
        removed = pipe.execute()[0]
    return bool(removed)


def enable(gw: Hub, workspace: str, sid: str, *, after: str | None = None) -> Subscription | None:
    """Enable a subscription again (failure state cleared) and send what is pending; ``after``
    rewinds (or moves) its cursor to replay from the log."""
    sub = get(gw, workspace, sid)
    if sub is None:
        return None
    sub = msgspec.structs.replace(sub, status="active", disabled_at=None)
    state = load_state(gw, sid)
    state = msgspec.structs.replace(state, failures=0, failing_since=None, retry_at=None,
                                    cursor=after if after is not None else state.cursor)  # fmt: skip
    with gw.redis.pipeline() as pipe:
        pipe.hset(_subs_key(workspace), sid, _enc.encode(sub))
        pipe.delete(_state_key(sid))
        pipe.hset(_state_key(sid), mapping=_state_fields(state))
        pipe.sadd(active_key(workspace), sid)
        pipe.zrem(DELAYED, f"{workspace}|{sid}")
        pipe.execute()
    nudge(gw, workspace, [sid])
    return sub


def load_state(gw: Hub, sid: str) -> SubscriptionState:
    raw = {k.decode(): v.decode() for k, v in gw.redis.hgetall(_state_key(sid)).items()}
    return msgspec.convert(raw, SubscriptionState, strict=False)


def _state_fields(state: SubscriptionState) -> dict[str, str]:
    return {k: str(v) for k, v in msgspec.to_builtins(state).items() if v is not None}


def pending_count(gw: Hub, sub: Subscription, cursor: str, cap: int = 1000) -> int:
    """Events of the subscription's types after ``cursor`` (looking at up to ``cap``)."""
    entries = gw.redis.xrange(events.stream_key(sub.workspace), min=f"({cursor}", count=cap)
    wanted = frozenset(sub.types)
    return sum(1 for i, f in entries if events.matches(events.decode(i.decode(), f[b"e"]), wanted, None))


# --------------------------------------------------------------------------- scheduling


def install(gw: Hub) -> None:
    """Let the event log queue deliveries when it nudges subscriptions."""
    gw.events.on_nudge = lambda sids: _enqueue(gw, sids)


def _enqueue(gw: Hub, members: list[str]) -> None:
    queue = rq.Queue(QUEUE, connection=gw.redis)
    for member in members:
        queue.enqueue(deliver, member, **JOB_OPTIONS)


_NUDGE = """
local out = {}
for i, member in ipairs(ARGV) do
  if i > 1 and redis.call('ZADD', KEYS[1], 'NX', ARGV[1], member) == 1 then out[#out + 1] = member end
end
return out
"""


def nudge(gw: Hub, workspace: str, sids: list[str]) -> None:
    """Queue a delivery run for each subscription that has none queued."""
    members = [f"{workspace}|{sid}" for sid in sids]
    if not members:
        return
    queued = gw.redis.eval(_NUDGE, 1, PENDING, time.time(), *members)
    _enqueue(gw, [m.decode() for m in queued])


def promote_due(gw: Hub, limit: int = 200) -> int:
    """Queue runs whose backoff is over; every ``SWEEP_SECONDS`` also re-queue subscriptions
    left behind (a lost job or a lock whose holder died). Safe in every worker at once."""
    promoted = 0
    for member in gw.redis.zrangebyscore(DELAYED, "-inf", time.time(), start=0, num=limit):
        if gw.redis.zrem(DELAYED, member):  # only the process that removes it queues it
            workspace, sid = member.decode().split("|", 1)
            nudge(gw, workspace, [sid])
            promoted += 1
    # Called every housekeeping tick: ask Redis for the sweep turn only when it may be due.
    if time.monotonic() - _last_sweep.get(id(gw), float("-inf")) >= SWEEP_SECONDS:
        _last_sweep[id(gw)] = time.monotonic()
        if gw.redis.set(keys.DELIVERIES_SWEEP, "1", nx=True, px=int(SWEEP_SECONDS * 1000)):
            sweep(gw)
    return promoted


_last_sweep: dict[int, float] = {}  # per gateway in this process: when it last tried to sweep


def sweep(gw: Hub) -> int:
    """Re-queue active subscriptions behind their log with no run queued, running or waiting."""
    stale = gw.redis.zrangebyscore(PENDING, "-inf", time.time() - STALE_PENDING_SECONDS)
    for member in stale:
        if not gw.redis.exists(_lock_key(member.decode().split("|", 1)[1])):
            gw.redis.zrem(PENDING, member)
    revived = 0
    for workspace in gw.settings.workspaces:
        tip = gw.events.last_id(workspace.id)
        for raw in gw.redis.smembers(active_key(workspace.id)):
            sid, member = raw.decode(), f"{workspace.id}|{raw.decode()}"
            if gw.redis.zscore(PENDING, member) is not None or gw.redis.zscore(DELAYED, member) is not None:
                continue
            if gw.redis.exists(_lock_key(sid)):
                continue
            if _after(tip, load_state(gw, sid).cursor):
                nudge(gw, workspace.id, [sid])
                revived += 1
    return revived


def _after(a: str, b: str) -> bool:
    """Stream id ``a`` is later than ``b``."""

    def parts(x: str) -> tuple[int, int]:
        ms, _, seq = x.partition("-")
        return int(ms), int(seq or 0)

    return parts(a) > parts(b)


# --------------------------------------------------------------------------- the job


def deliver(member: str) -> str:
    """rq job: send a subscription's pending events, in order, until caught up, failing or
    out of its turn."""
    return Courier(bound()).run(member)


# Move the cursor (and the state) only while holding the lock.
_SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Courier:
    """One run of one subscription's delivery."""

    def __init__(self, gw: Hub) -> None:
        self.gw = gw
        self.config = gw.settings.gateway

    def run(self, member: str) -> str:
        gw = self.gw
        workspace, sid = member.split("|", 1)
        gw.redis.zrem(PENDING, member)  # from here on, a new event queues another run
        sub = get(gw, workspace, sid)
        if sub is None or sub.status != "active":
            return "inactive"
        lease = int(self.config.delivery_timeout_seconds * 2 + RUN_SECONDS + 10)
        token = uuid.uuid4().hex
        if not gw.redis.set(_lock_key(sid), token, nx=True, ex=lease):
            return "busy"  # the holder looks at the log again before it lets go
        try:
            state = load_state(gw, sid)
            if state.retry_at and state.retry_at > time.time():
                return "waiting"  # the delayed run comes at retry_at
            outcome = self._send_pending(sub, state, token)
        finally:
            gw.redis.eval(_UNLOCK, 1, _lock_key(sid), token)
        if outcome in ("caught_up", "turn_over") and _after(gw.events.last_id(workspace), load_state(gw, sid).cursor):
            nudge(gw, workspace, [sid])  # events came while this run held the lock
        return outcome

    def _save(self, sid: str, token: str, state: SubscriptionState) -> bool:
        flat = [x for kv in _state_fields(state).items() for x in kv]
        for name in ("failing_since", "retry_at", "last_error", "last_status"):
            if getattr(state, name) is None:
                self.gw.redis.hdel(_state_key(sid), name)
        return bool(self.gw.redis.eval(_SAVE, 2, _lock_key(sid), _state_key(sid), token, *flat))

    def _send_pending(self, sub: Subscription, state: SubscriptionState, token: str) -> str:
        gw = self.gw
        started = time.monotonic()
        sent = 0
        wanted = frozenset(sub.types)
        signer = Webhook(sub.secret)
        timeout = self.config.delivery_timeout_seconds
        # The shared TLS context: loading the CA bundle per client costs ~0.2 s a run.
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), follow_redirects=False,
                          verify=_tls_context()) as client:  # fmt: skip
            while True:
                batch = gw.redis.xrange(events.stream_key(sub.workspace), min=f"({state.cursor}", count=50)
                if not batch:
                    return "caught_up"
                for entry_id, fields in batch:
                    if time.monotonic() - started > RUN_SECONDS or sent >= RUN_EVENTS:
                        return "turn_over"
                    event_id = entry_id.decode()
                    event = events.decode(event_id, fields[b"e"])
                    if not wanted or events.type_of(event) in wanted:
                        ok, status, error, retry_after = self._attempt(client, signer, sub, event)
                        sent += 1
                        if not ok:
                            return self._failed(sub, state, token, status, error, retry_after)
                        state.delivered += 1
                        state.failures, state.failing_since, state.last_error, state.last_status = 0, None, None, status
                    state.cursor = event_id
                    state.retry_at = None
                    if not self._save(sub.id, token, state):
                        return "lost_lock"

    def _attempt(self, client: httpx.Client, signer: Webhook, sub: Subscription,
                 event: events.Event) -> tuple[bool, int | None, str, float | None]:  # fmt: skip
        """POST one event; (delivered, status, error, Retry-After seconds)."""
        body = events.encode(event).decode()
        sent_at = datetime.now(timezone.utc)
        headers = {
            "content-type": "application/json",
            "user-agent": "msp-gateway-webhooks/1",
            "webhook-id": event.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signer.sign(event.id, sent_at, body),
        }
        host = urlsplit(sub.url).hostname or ""
        attributes = {
            "gateway.kind": "webhook_delivery", "gateway.workspace": sub.workspace, "gateway.subscription": sub.id,
            "gateway.event_id": event.id, "gateway.event_type": events.type_of(event), "server.address": host,
        }  # fmt: skip
        if event.ticket:
            attributes["gateway.ticket"] = event.ticket
        if event.write:
            attributes["gateway.write_id"] = event.write
        with self.gw.tracer.start_as_current_span(f"webhook POST {host}", attributes=attributes) as span:
            try:
                response = client.post(sub.url, content=body.encode(), headers=headers)
            except httpx.TimeoutException:
                span.set_attribute("gateway.outcome", "timeout")
                return False, None, "the receiver did not answer in time", None
            except httpx.HTTPError as exc:
                span.set_attribute("gateway.outcome", "unreachable")
                return False, None, f"could not reach the receiver ({type(exc).__name__})", None
            span.set_attribute("http.response.status_code", response.status_code)
            if 200 <= response.status_code < 300:
                span.set_attribute("gateway.outcome", "delivered")
                return True, response.status_code, "", None
            span.set_attribute("gateway.outcome", "refused")
            retry_after = None
            if response.status_code == 429 or response.headers.get("retry-after"):
                retry_after = parse_retry_after(response.headers.get("retry-after"), default=0.0) or None
            return False, response.status_code, f"the receiver answered {response.status_code}", retry_after

    def _failed(self, sub: Subscription, state: SubscriptionState, token: str, status: int | None, error: str,
                retry_after: float | None) -> str:  # fmt: skip
        gw = self.gw
        at = time.time()
        state.failures += 1
        state.failing_since = state.failing_since or at
        state.last_error, state.last_status = error, status
        disable_after = self.config.subscription_disable_after_hours * 3600
        if at - state.failing_since >= disable_after:
            state.retry_at = None
            self._save(sub.id, token, state)
            self._disable(sub, state)
            return "disabled"
        base = self.config.delivery_retry_base_seconds
        delay = min(RETRY_MAX_SECONDS, base * 2 ** min(state.failures - 1, 20)) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = min(max(retry_after, 0.0), RETRY_MAX_SECONDS * 4)
        state.retry_at = at + delay
        if not self._save(sub.id, token, state):
            return "lost_lock"
        gw.redis.zadd(DELAYED, {f"{sub.workspace}|{sub.id}": state.retry_at})
        return "retrying"

    def _disable(self, sub: Subscription, state: SubscriptionState) -> None:
        gw = self.gw
        disabled = msgspec.structs.replace(sub, status="disabled", disabled_at=datetime.now(timezone.utc))
        with gw.redis.pipeline() as pipe:
            pipe.hset(_subs_key(sub.workspace), sub.id, _enc.encode(disabled))
            pipe.srem(active_key(sub.workspace), sub.id)
            pipe.execute()
        log.warning("webhook subscription %s disabled after failing since %s", sub.id, state.failing_since)
        data = events.SubscriptionDisabledData(
            sub.id, urlsplit(sub.url).hostname or "",
            datetime.fromtimestamp(state.failing_since or time.time(), tz=timezone.utc), state.last_error or "",
        )  # fmt: skip
        gw.events.emit(events.SubscriptionDisabled(workspace=sub.workspace, occurred_at=events.now(), data=data))

