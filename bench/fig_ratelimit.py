"""Figure 1: rate-limit utilisation. N writes (one per ticket) go in through the API against a
connection limited to R calls a second, while the simulator itself answers 429 past R a second
(its ``limit_per_second`` fault); the workers drain them. Drain time (the caller's first send
to the vendor's last answer) over the ideal N/R; and the 429s the simulator answered.

A limit of R "in any one second" lets the first R calls go at once, so the floor is (N-R)/R
and the ratio can sit a little under 1.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.load import LoadSpec, http_post, start_load
from bench.report import Figure
from bench.rig import QueueWatch

CONNECTION = "cw-rate"


def writes_for(quick: bool) -> int:
    return 120 if quick else 2000


def run(ctx: Context) -> list[Figure]:
    rig = ctx.rig
    vendor = ctx.vendor(CONNECTION)
    rate = ctx.options.rate
    count = writes_for(ctx.quick)
    refs = vendor.refs[:count]
    rig.warm_ticket_cache(vendor, refs)
    vendor.set_faults(limit_per_second=rate)  # the simulator counts calls from here on
    vendor.tap.reset()
    body = b'{"text":"Benchmark rate limit","internal":true}'
    requests = [http_post("127.0.0.1", rig.api_port, f"/v1/tickets/{ref}/replies", body, rig.headers) for ref in refs]
    ideal = count / rate
    ctx.profile_start()
    with QueueWatch(rig) as watch:
        intake = start_load(LoadSpec("127.0.0.1", rig.api_port, requests, concurrency=8, count=count))
        drained = vendor.tap.wait_for(count, timeout=ideal * 3 + 60)
    ctx.profile_stop("rate-limit utilisation (figure 1)")
    loaded = intake.result()
    calls = vendor.tap.ok_calls()
    last = calls[-1].answered if calls else time.monotonic()
    drain = last - loaded.first_sent
    deadline = time.monotonic() + 10
    while rig.pending_writes() and time.monotonic() < deadline:
        time.sleep(0.05)
    throttled = vendor.tap.statuses.get(429, 0)
    vendor.set_faults()
    details = {
        "writes": count,
        "rate_per_second": rate,
        "workers": ctx.options.workers,
        "drained": drained,
        "vendor_calls_ok": len(calls),
        "vendor_429s": throttled,
        "vendor_statuses": dict(vendor.tap.statuses),
        "vendor_reads_during_run": vendor.tap.reads,
        "api_intake_per_second": round(loaded.rate, 1),
        "api_statuses": loaded.statuses,
        "intake_seconds": round(loaded.last_answered - loaded.first_sent, 2),
        "unfinished_writes_after": rig.pending_writes(),
        "floor_seconds": round((count - rate) / rate, 2),
        **watch.summary(),
    }
    return [
        Figure(
            name="rate_limit_utilisation",
            value=round(drain, 2),
            unit="s",
            baseline=round(ideal, 2),
            baseline_label=f"ideal {count}/{rate:g}",
            target=1.05,
            comparison="<=",
            details=details,
        ),
        Figure(
            name="rate_limit_429s",
            value=throttled,
            unit="responses",
            note=f"of {len(calls) + throttled} vendor calls",
            baseline_label="0 when the configured limit is the vendor's",
            target=0,
            comparison="<=",
            target_on="value",
            details={"vendor_statuses": dict(vendor.tap.statuses)},
        ),
    ]
