"""Connection health for the console: sync lag and backlog, rate budget, 429 pauses, errors,
and the last hour of vendor calls per minute.

The per-minute samples come from ``audit.usage_key``: the audit exporter counts every vendor
call as it stores its span (reads, writes, 429s), so nothing here asks a vendor anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgspec

from gateway import audit, events, keys, sync
from gateway.api.auth import Principal
from gateway.core import Gateway
from gateway.models import RateLimitPolicy
from gateway.writes import WriteRecord

MINUTES = 60
CHART_WIDTH = 600.0
CHART_HEIGHT = 80.0
ACTIVE_SCAN = 5000  # unfinished writes read to count each connection's backlog


@dataclass(frozen=True)
class Minute:
    """One minute of vendor calls, with its bar geometry in the chart."""

    minute: int
    reads: int
    writes: int
    throttled: int
    x: float
    read_height: float
    write_height: float

    @property
    def label(self) -> str:
        return time.strftime("%H:%M", time.gmtime(self.minute * 60))


@dataclass
class Usage:
    """The last hour of one connection's calls, scaled to the chart."""

    minutes: list[Minute] = field(default_factory=list)
    budget_per_minute: int | None = None
    limit_y: float | None = None  # where the per-minute budget line is drawn
    peak: int = 0
    bar_width: float = CHART_WIDTH / MINUTES

    @property
    def reads(self) -> int:
        return sum(m.reads for m in self.minutes)

    @property
    def writes(self) -> int:
        return sum(m.writes for m in self.minutes)

    @property
    def throttled(self) -> int:
        return sum(m.throttled for m in self.minutes)

    @property
    def last_minute(self) -> int:
        return (self.minutes[-1].reads + self.minutes[-1].writes) if self.minutes else 0


TROUBLE_TEXT = {"auth_failed": "credentials refused", "sync_failed": "sync failing"}


@dataclass
class ConnectionHealth:
    id: str
    vendor: str
    title: str
    kind: str
    synced: bool
    sync: sync.SyncStatus | None
    writes_in_flight: int
    dead_letters: int
    paused_seconds: float
    rate_limit: str
    budget_used_percent: float | None
    usage: Usage
    last_error: str | None
    trouble: str | None  # as the event log last announced it: auth_failed, sync_failed, paused

    @property
    def trouble_text(self) -> str | None:
        """The trouble in words; a pause shows as its countdown instead, while it lasts."""
        return TROUBLE_TEXT.get(self.trouble or "")


def budget_per_minute(policy: RateLimitPolicy) -> int | None:
    """The most calls any minute may hold under ``policy`` (the tightest window, scaled)."""
    if not policy.windows:
        return None
    return min(int(max(1, int(w.requests * policy.headroom)) * 60 / w.per_seconds) for w in policy.windows)


def describe(policy: RateLimitPolicy) -> str:
    if not policy.windows:
        return "no limit"
    parts = [f"{w.requests} per {w.per_seconds:g} s" for w in policy.windows]
    if policy.concurrency:
        parts.append(f"{policy.concurrency} at once")
    return ", ".join(parts)


def usage(gw: Gateway, connection: str, policy: RateLimitPolicy, now: float | None = None) -> Usage:
    """The last ``MINUTES`` minutes of calls on ``connection``, oldest first."""
    current = int((now or time.time()) // 60)
    minutes = list(range(current - MINUTES + 1, current + 1))
    with gw.redis.pipeline(transaction=False) as pipe:
        for minute in minutes:
            pipe.hgetall(audit.usage_key(connection, minute))
        samples = pipe.execute()
    counts = [{k.decode(): int(v) for k, v in sample.items()} for sample in samples]
    budget = budget_per_minute(policy)
    peak = max([c.get("read", 0) + c.get("write", 0) for c in counts] + [1])
    # Scaled to the busiest minute (a budget of 600 would flatten 7 calls to nothing); the
    # budget line is drawn only when it falls inside the chart.
    top = peak * 1.25
    scale = CHART_HEIGHT / top
    bar = CHART_WIDTH / MINUTES
    result = Usage(budget_per_minute=budget, peak=peak, bar_width=bar)
    for index, (minute, c) in enumerate(zip(minutes, counts)):
        reads, writes = c.get("read", 0), c.get("write", 0)
        result.minutes.append(Minute(minute, reads, writes, c.get("throttled", 0), round(index * bar, 2),
                                     round(reads * scale, 2), round(writes * scale, 2)))
    if budget and budget <= top:
        result.limit_y = round(CHART_HEIGHT - budget * scale, 2)
    return result


def _active_by_connection(gw: Gateway) -> dict[str, int]:
    ids = [i.decode() for i in gw.redis.zrange(keys.ACTIVE_WRITES, 0, ACTIVE_SCAN - 1)]
    counts: dict[str, int] = {}
    decoder = msgspec.json.Decoder(WriteRecord)
    for raw in gw.redis.mget([f"write:{i}" for i in ids]) if ids else []:
        if raw:
            connection = decoder.decode(raw).connection
            counts[connection] = counts.get(connection, 0) + 1
    return counts


def connections(gw: Gateway, principal: Principal) -> list[ConnectionHealth]:
    """The health of every connection of ``principal``'s workspace."""
    synced = set(sync.synced_connections(gw))
    active = _active_by_connection(gw)
    dead: dict[str, int] = {}
    for record in gw.writes.dead_letters(principal.workspace, 500):
        dead[record.connection] = dead.get(record.connection, 0) + 1
    own = sorted((c for c in gw.connections.values() if c.workspace == principal.workspace), key=lambda c: c.id)
    trouble = events.troubles(gw.redis, [c.id for c in own])
    result = []
    for conn in own:
        info = gw.vendors.info(conn.vendor)
        status = sync.status(gw, conn.id) if conn.id in synced else None
        used = usage(gw, conn.id, conn.rate_limit)
        budget = used.budget_per_minute
        result.append(ConnectionHealth(
            id=conn.id, vendor=conn.vendor, title=info.title or conn.vendor, kind=str(getattr(info.kind, "value", info.kind)),
            synced=conn.id in synced, sync=status, writes_in_flight=active.get(conn.id, 0),
            dead_letters=dead.get(conn.id, 0), paused_seconds=round(gw.limiter.paused_for(conn.id), 1),
            rate_limit=describe(conn.rate_limit),
            budget_used_percent=round(100 * used.last_minute / budget, 1) if budget else None,
            usage=used, last_error=status.last_error if status else None, trouble=trouble.get(conn.id),
        ))
    return result
