"""Figure 8: audit verification. One workspace's audit hash chain of N records (100,000; 20,000
in quick mode: hashing 10,000 records' 8.6 MB ran twice as fast per byte, likely from the CPU
cache, which flattered the baseline), each a vendor-call record as the gateway writes it;
``gateway audit verify``'s walk (``audit_chain.verify``: paged reads from Redis, checking each
record's seq and link, hashing it) against hashing the same stored bytes with hashlib alone,
already in memory. The ratio is what reading from Redis and checking the links cost on top of
the hashing no verifier can skip.

The chain is written in pipelined batches with the gateway's own record format
(``audit_chain.entry_bytes``), not through the append script: the figure is about verifying.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone

import redis

from bench.context import Context
from bench.report import Figure
from gateway import audit, audit_chain

WORKSPACE = "bench-audit"
ROUNDS = 3  # each side measured this many times; the best counts (least disturbed by neighbours)


def records_for(quick: bool) -> int:
    return 20_000 if quick else 100_000


def _body(i: int, started: datetime) -> bytes:
    record = audit.AuditRecord(
        trace_id=f"{i * 7919:032x}",
        span_id=f"{i * 104729:016x}",
        parent_span_id=f"{i * 1299709:016x}",
        name="connectwise POST /v4_6_release/apis/3.0/service/tickets/48213/notes",
        kind="vendor_call",
        started_at=started + timedelta(milliseconds=37 * i),
        duration_ms=41.372,
        attributes={
            "gateway.kind": "vendor_call", "gateway.vendor": "connectwise", "gateway.connection": "cw-main",
            "gateway.workspace": WORKSPACE, "http.request.method": "POST",
            "url.path": "/v4_6_release/apis/3.0/service/tickets/48213/notes",
            "gateway.write_id": f"w_{i:012x}", "gateway.dedup_key": f"k_{i:024x}", "gateway.ticket": "cw-main:48213",
            "gateway.request_payload": '{"text": "Replaced the failing PSU, monitoring for 24h", "internalAnalysisFlag": false}',
            "http.response.status_code": 201,
        },
    )
    return audit._encoder.encode(record)


def seed(client: redis.Redis, count: int) -> list[bytes]:
    """Write a ``count``-record chain for ``WORKSPACE``; return its stored bytes in order."""
    clear(client)
    started = datetime(2026, 11, 30, tzinfo=timezone.utc)
    entries: list[bytes] = []
    prev = audit_chain.GENESIS
    key = audit_chain.chain_key(WORKSPACE)
    with client.pipeline(transaction=False) as pipe:
        for seq in range(1, count + 1):
            entry = audit_chain.entry_bytes(seq, prev, _body(seq, started))
            prev = audit_chain.digest(entry)
            entries.append(entry)
            pipe.zadd(key, {entry: seq})
            if seq % 5000 == 0:
                pipe.execute()
        pipe.hset(audit_chain.head_key(WORKSPACE), mapping={"seq": count, "digest": prev})
        pipe.execute()
    return entries


def clear(client: redis.Redis) -> None:
    client.delete(audit_chain.chain_key(WORKSPACE), audit_chain.head_key(WORKSPACE), audit_chain.anchor_key(WORKSPACE))


def _best(step: object, rounds: int = ROUNDS) -> float:
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        step()  # type: ignore[operator]
        best = min(best, time.perf_counter() - began)
    return best


def measure(client: redis.Redis, count: int) -> Figure:
    """Seed, time both sides, check the walk found every record intact, clean up."""
    entries = seed(client, count)
    try:
        hashed = _best(lambda: [hashlib.sha256(e).hexdigest() for e in entries])
        reports: list[audit_chain.ChainReport] = []
        verified = _best(lambda: reports.append(audit_chain.verify(client, WORKSPACE)))
    finally:
        clear(client)
    report = reports[-1]
    if not report.ok or report.records != count:
        raise RuntimeError(f"the seeded chain did not verify: {report.describe()}")
    megabytes = sum(len(e) for e in entries) / 1e6
    return Figure(
        name="audit_verify",
        value=round(verified, 3),
        unit="s",
        note=f"for {count:,} records",
        baseline=round(hashed, 4),
        baseline_label="hashlib sha256 of the same bytes",
        target=10.0,
        comparison="<=",
        details={
            "records": count,
            "megabytes": round(megabytes, 1),
            "records_per_second": round(count / verified),
            "page": audit_chain.PAGE,
            "rounds_best_of": ROUNDS,
        },
    )


def run(ctx: Context) -> list[Figure]:
    assert ctx.rig.redis is not None
    return [measure(ctx.rig.redis, records_for(ctx.quick))]
