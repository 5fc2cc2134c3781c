"""Figure 2: isolation. One connection (``cw-busy``) gets a backlog of N writes (one per
ticket) at its limit of R calls a second; meanwhile single writes on another connection
(``cw-other``) are timed from the caller to the vendor, and compared with the same writes on
the idle gateway.

Three windows: *idle* (measured earlier in the run, while the gateway is quiet), *intake*
(while the backlog is being accepted and each backlog write takes its first run, which books
a slot and defers itself) and *held* (the backlog accepted and waiting on its budget: the
state the issue names). The figure is the held window; the intake window is reported beside
it, timed from the 202 so that the API being busy with the backlog's own requests does not
count against the workers.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.load import LoadSpec, http_post, start_load
from bench.probe import Prober
from bench.report import Figure, percentile, summary_ms
from bench.rig import QueueWatch, Rig, scheduled_runs

BUSY = "cw-busy"
OTHER = "cw-other"


def backlog_for(quick: bool) -> int:
    return 200 if quick else 10_000


def measure_idle(ctx: Context) -> None:
    """The baseline: the same probe writes on the idle gateway (before figure 1 leaves its
    tail of ticket fetches behind)."""
    prober = Prober(ctx.rig, ctx.vendor(OTHER))
    try:
        prober.run(8)
        ctx.shared["isolation_idle"] = prober.run(20 if ctx.quick else 100)
    finally:
        prober.close()


def run(ctx: Context) -> list[Figure]:
    rig = ctx.rig
    busy = ctx.vendor(BUSY)
    other = ctx.vendor(OTHER)
    rate = ctx.options.rate
    count = backlog_for(ctx.quick)
    held_seconds = 2.0 if ctx.quick else 20.0
    phases: dict[str, float] = {}
    mark = time.monotonic()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = round(now - mark, 2)
        mark = now

    rig.warm_ticket_cache(busy, busy.refs[:count])
    busy.set_faults(limit_per_second=rate)
    prober = Prober(rig, other)
    try:
        if "isolation_idle" not in ctx.shared:
            measure_idle(ctx)
        idle = ctx.shared["isolation_idle"]
        prober.run(4)
        lap("prepare")
        busy.tap.reset()
        body = b'{"text":"Benchmark backlog","internal":true}'
        requests = [http_post("127.0.0.1", rig.api_port, f"/v1/tickets/{ref}/replies", body, rig.headers)
                    for ref in busy.refs[:count]]
        intake_started = time.monotonic()
        with QueueWatch(rig) as watch:
            intake = start_load(LoadSpec("127.0.0.1", rig.api_port, requests, concurrency=8, count=count))
            during = prober.run(until=intake.done, gap=0.05)
        loaded = intake.result()
        intake_seconds = time.monotonic() - intake_started
        lap("intake")
        # The backlog's first runs (book a slot, defer) may still be queued behind the API.
        queue_settled = _wait_queue_below(rig, 20, timeout=120)
        lap("first_runs")
        ctx.profile_start()
        held = prober.run(seconds=held_seconds, gap=0.05)
        ctx.profile_stop("isolation, backlog held (figure 2)")
        lap("held")
        busy_calls = busy.tap.ok
        time.sleep(0.3)
        succeeded = prober.succeeded(idle + during + held)
        lap("check")
    finally:
        prober.close()
    throttled = busy.tap.statuses.get(429, 0)
    busy.set_faults()

    def lat(probes: list, attr: str = "to_vendor") -> list[float]:
        return [getattr(p, attr) for p in probes if getattr(p, attr) is not None]

    idle_lat, held_lat = lat(idle), lat(held)
    details = {
        "backlog_writes": count,
        "quiet_before": ctx.shared.get("quiet_before_isolation"),
        "fetches_dropped_after_figure_1": ctx.shared.get("fetches_dropped_after_figure_1"),
        "phase_seconds": phases,
        "rate_per_second": rate,
        "idle": summary_ms(idle_lat),
        "held": summary_ms(held_lat),
        "intake_to_vendor": summary_ms(lat(during)),
        "intake_202_to_vendor": summary_ms(lat(during, "queue_to_vendor")),
        "idle_202_to_vendor": summary_ms(lat(idle, "queue_to_vendor")),
        "intake_seconds": round(intake_seconds, 2),
        "api_intake_per_second": round(loaded.rate, 1),
        "api_statuses": loaded.statuses,
        "first_runs_settled": queue_settled,
        "intake_queue": watch.summary(),
        "busy_vendor_calls_ok": busy_calls,
        "busy_vendor_429s": throttled,
        "probe_writes": len(idle) + len(during) + len(held),
        "probe_writes_succeeded": succeeded,
        "probe_timeouts": sum(1 for p in idle + during + held if p.arrived is None),
    }
    figures = [
        Figure(
            name="isolation",
            value=round(percentile(held_lat, 50) * 1000, 3),
            unit="ms",
            note="p50",
            baseline=round(percentile(idle_lat, 50) * 1000, 3),
            baseline_label="idle gateway",
            target=1.5,
            details=details,
        ),
        Figure(
            name="isolation_p95",
            value=round(percentile(held_lat, 95) * 1000, 3),
            unit="ms",
            note="p95",
            baseline=round(percentile(idle_lat, 95) * 1000, 3),
            baseline_label="idle gateway",
            target=1.5,
            details={"held": details["held"], "idle": details["idle"]},
        ),
    ]
    during_q = lat(during, "queue_to_vendor")
    if during_q:
        figures.append(Figure(
            name="isolation_during_intake",
            value=round(percentile(during_q, 50) * 1000, 3),
            unit="ms",
            note="p50, 202 to vendor",
            baseline=round(percentile(lat(idle, "queue_to_vendor"), 50) * 1000, 3),
            baseline_label="idle gateway",
            target=1.5,
            details={"intake_202_to_vendor": details["intake_202_to_vendor"], "probes": len(during)},
        ))
    return figures


def _wait_queue_below(rig: Rig, jobs: int, timeout: float) -> bool:
    """Wait until fewer than ``jobs`` write runs are queued (the backlog's first runs are done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scheduled_runs(rig.redis) < jobs:  # type: ignore[arg-type]
            return True
        time.sleep(0.1)
    return False
