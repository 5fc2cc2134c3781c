"""Prometheus metrics: counted in Redis where facts happen, rendered at scrape time.

The API and every worker process count into Redis, so one scrape of any API process shows the
whole gateway (no per-process registries to sum). Counters are fields of one hash per metric
and workspace, ``metrics:{<workspace>}:<metric>`` (the braces are a Redis Cluster hash tag:
a workspace's metrics live on its shard), bumped with ``HINCRBY``; gauges are computed from
Redis state at scrape time. Counting is best effort: a Redis error while counting is swallowed,
so a metric can never fail a write.

Facts (one call each where they happen):

- ``write_accepted`` (counted by the accept script) / ``write_retried`` (API), ``write_finished`` (worker: succeeded or dead)
- ``vendor_request`` (``VendorHTTP``: every answer or transport failure), ``vendor_paused``
  (a 429 paused the connection)

``render(gw, workspace)`` is the text of ``GET /metrics`` for one workspace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import redis

from gateway import keys
from gateway.aio import Channel

if TYPE_CHECKING:
    from prometheus_client.core import Metric

log = logging.getLogger("gateway.metrics")

# Accept-to-vendor latency buckets (seconds): a healthy write lands in well under a second; a
# rate-limited or retried one takes minutes.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
WRITES, LATENCY, VENDOR, PAUSES = "writes", "write_latency", "vendor_requests", "pauses"


def key(workspace: str, metric: str) -> str:
    """The hash holding one metric of one workspace."""
    return f"metrics:{{{workspace}}}:{metric}"


# --------------------------------------------------------------------------- facts


def count(client: redis.Redis, hash_key: str, field: str, by: int = 1) -> None:
    """Count one fact in its hash (best effort: a Redis error is logged and swallowed)."""
    try:
        client.hincrby(hash_key, field, by)
    except redis.RedisError:
        log.debug("could not count %s %s", hash_key, field, exc_info=True)


async def count_async(client: Channel, hash_key: str, field: str, by: int = 1) -> None:
    """``count`` on an asyncio client."""
    try:
        await client.hincrby(hash_key, field, by)
    except redis.RedisError:
        log.debug("could not count %s %s", hash_key, field, exc_info=True)


def _count(client: redis.Redis, workspace: str, metric: str, field: str, by: int = 1) -> None:
    count(client, key(workspace, metric), field, by)


def write_accepted(record: Any) -> tuple[str, str]:
    """A new write was answered 202: the (hash, field) ``WriteStore.accept`` counts it in, in
    the step that stores it."""
    return key(record.workspace, WRITES), f"{record.connection}|{record.kind}|accepted"


def write_retried(client: redis.Redis, record: Any) -> None:
    """An operator sent a dead letter again (it is backlog once more)."""
    _count(client, record.workspace, WRITES, f"{record.connection}|{record.kind}|retried")


def write_finished(client: redis.Redis, record: Any) -> None:
    """A write ended ``succeeded`` or ``dead``; a success also observes accept-to-vendor latency."""
    fields = [(WRITES, f"{record.connection}|{record.kind}|{record.status}")]
    if record.status == "succeeded":
        seconds = max(0.0, time.time() - record.created_at.timestamp())
        bucket = next((i for i, le in enumerate(LATENCY_BUCKETS) if seconds <= le), len(LATENCY_BUCKETS))
        fields += [(LATENCY, f"{record.connection}|b{bucket}"), (LATENCY, f"{record.connection}|count")]
    try:
        with client.pipeline(transaction=False) as pipe:
            for metric, field in fields:
                pipe.hincrby(key(record.workspace, metric), field, 1)
            if record.status == "succeeded":
                pipe.hincrbyfloat(key(record.workspace, LATENCY), f"{record.connection}|sum", seconds)
            pipe.execute()
    except redis.RedisError:
        log.debug("could not count the outcome of %s", record.id, exc_info=True)


def vendor_request(connection: Any, status: int | None) -> None:
    """A vendor call was answered with ``status`` (``None``: no answer, a transport failure)."""
    if connection.runtime is not None:
        label = str(status) if status is not None else "no_answer"
        _count(connection.runtime.redis, connection.workspace, VENDOR, f"{connection.id}|{label}")


def vendor_paused(connection: Any) -> None:
    """A vendor's 429 paused every call on the connection."""
    if connection.runtime is not None:
        _count(connection.runtime.redis, connection.workspace, PAUSES, connection.id)


# --------------------------------------------------------------------------- scrape

# Count unfinished writes by connection, a chunk of ``writes:active`` at a time (no transfer of
# records, and Redis is blocked for one chunk only). A record's JSON starts with its id,
# workspace and connection, so the first bytes name the connection.
_BACKLOG = """
local ids = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2])
local counts = {}
for _, id in ipairs(ids) do
  local head = redis.call('GETRANGE', 'write:' .. id, 0, 255)
  local connection = string.match(head, '"connection":"([^"]*)"')
  if connection then counts[connection] = (counts[connection] or 0) + 1 end
end
local out = {}
for connection, n in pairs(counts) do
  table.insert(out, connection)
  table.insert(out, n)
end
return out
"""
BACKLOG_CHUNK = 2000


def backlog(client: redis.Redis) -> dict[str, int]:
    """Unfinished writes (queued, running, waiting on a retry or a rate limit) per connection."""
    script = client.register_script(_BACKLOG)
    counts: dict[str, int] = {}
    start = 0
    while True:
        found = script(keys=[keys.ACTIVE_WRITES], args=[start, start + BACKLOG_CHUNK - 1])
        for connection, n in zip(found[::2], found[1::2]):
            counts[connection.decode()] = counts.get(connection.decode(), 0) + int(n)
        if start + BACKLOG_CHUNK > int(client.zcard(keys.ACTIVE_WRITES)):
            return counts
        start += BACKLOG_CHUNK


class _WorkspaceCollector:
    """Reads one workspace's figures from Redis when the registry is collected."""

    def __init__(self, gw: Any, workspace: str, last_pull: Callable[[str], float | None]) -> None:
        self.gw = gw
        self.workspace = workspace
        self.last_pull = last_pull

    def _hash(self, metric: str) -> dict[str, float]:
        raw = self.gw.redis.hgetall(key(self.workspace, metric))
        return {k.decode(): float(v) for k, v in raw.items()}

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        gw, workspace = self.gw, self.workspace
        connections = sorted(c.id for c in gw.connections.values() if c.workspace == workspace)

        writes = CounterMetricFamily("gateway_writes", "Writes by outcome: accepted (202), retried (a dead letter sent again), succeeded, dead.",
                                     labels=["connection", "kind", "outcome"])
        for field, value in sorted(self._hash(WRITES).items()):
            writes.add_metric(field.split("|", 2), value)
        yield writes

        latency = HistogramMetricFamily("gateway_write_latency_seconds", "From the 202 to the write's last vendor call, for writes that succeeded.",
                                        labels=["connection"])
        observed = self._hash(LATENCY)
        for connection in sorted({f.split("|", 1)[0] for f in observed}):
            cumulative, buckets = 0.0, []
            for index, le in enumerate((*LATENCY_BUCKETS, float("inf"))):
                cumulative += observed.get(f"{connection}|b{index}", 0.0)
                buckets.append(("+Inf" if le == float("inf") else repr(le), cumulative))
            latency.add_metric([connection], buckets, observed.get(f"{connection}|sum", 0.0))
        yield latency

        vendor = CounterMetricFamily("gateway_vendor_requests", "Vendor calls by answer status (no_answer: the call got none).",
                                     labels=["connection", "status"])
        for field, value in sorted(self._hash(VENDOR).items()):
            vendor.add_metric(field.split("|", 1), value)
        yield vendor

        pauses = CounterMetricFamily("gateway_rate_limit_pauses", "Times a vendor's 429 paused every call on the connection.",
                                     labels=["connection"])
        paused = GaugeMetricFamily("gateway_rate_limit_paused_seconds", "Seconds left on the connection's current 429 pause.",
                                   labels=["connection"])
        backlog_family = GaugeMetricFamily("gateway_write_backlog", "Unfinished writes: queued, running, or waiting on a retry or the rate limit.",
                                           labels=["connection"])
        counted_pauses = self._hash(PAUSES)
        waiting = backlog(gw.redis)
        for connection in connections:
            pauses.add_metric([connection], counted_pauses.get(connection, 0.0))
            paused.add_metric([connection], round(gw.limiter.paused_for(connection), 3))
            backlog_family.add_metric([connection], waiting.get(connection, 0))
        yield pauses
        yield paused
        yield backlog_family

        dead = GaugeMetricFamily("gateway_dead_letters", "Dead-lettered writes waiting for an operator (retry or discard).",
                                 labels=["workspace"])
        dead.add_metric([workspace], int(gw.redis.zcard(f"deadletters:{workspace}")))
        yield dead

        lag = GaugeMetricFamily("gateway_sync_lag_seconds", "Seconds since the connection's last complete pull from the PSA.",
                                labels=["connection"])
        now = time.time()
        for connection in connections:
            last = self.last_pull(connection)
            if last:
                lag.add_metric([connection], round(now - last, 3))
        yield lag


def render(gw: Any, workspace: str, last_pull: Callable[[str], float | None]) -> bytes:
    """The Prometheus text exposition of one workspace's metrics. ``last_pull(connection)``:
    when the connection's last complete pull from its PSA ended (``None``: never, or a
    connection sync does not keep; ``gateway.sync.last_pull``).

    prometheus_client is imported here, at the first scrape: worker processes count facts
    but never render them, and importing it cost each of them 0.7-0.8 MB."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_WorkspaceCollector(gw, workspace, last_pull))  # type: ignore[arg-type]
    return generate_latest(registry)
