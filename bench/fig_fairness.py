"""Figure 2b: isolation from a paused connection and from a hanging vendor; reads that cannot
starve writes (issue 11).

The same probe writes as figure 2 (one internal note at a time on ``cw-other``, timed from the
caller to the vendor) while another connection is in trouble, against the idle gateway:

- ``isolation_paused``: ``cw-paused`` answered a write with 429 and a 60 s Retry-After, and
  1,000 writes (100 quick) wait on it. The scheduler parks the connection: its writes hold no
  worker and are not run again until the pause ends.
- ``isolation_slow_vendor``: ``cw-slow``'s vendor answers writes only after the connection's
  client timeout (5 s), with 40 writes (8 quick) queued. Each run holds a worker until the
  timeout; the connection's cap (``writes_per_connection``, 2) leaves the other workers free.
- ``halo_reads_budget``: a HaloPSA connection at the vendor's rolling limit (300 calls in 5
  minutes; 20 in 10 s quick, enforced by the simulator too), polled by sync every 2 s and read
  by a caller's ticket detail views every 0.3 s, takes 100 replies (8 quick): none may be
  refused and every one must land. Reads stop at their share of the window (``read_share``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from bench.context import Context
from bench.load import LoadSpec, http_post, start_load
from bench.probe import Prober
from bench.report import Figure, percentile, summary_ms

PAUSED = "cw-paused"
SLOW = "cw-slow"
OTHER = "cw-other"
SLOW_TIMEOUT = 5.0


def backlog_for(quick: bool) -> int:
    return 100 if quick else 1000


def slow_writes_for(quick: bool) -> int:
    return 8 if quick else 40


HALO = "halo-budget"


def halo_window(quick: bool) -> tuple[int, float]:
    return (20, 10.0) if quick else (300, 300.0)


def halo_replies(quick: bool) -> int:
    return 8 if quick else 100


def add_vendors(rig: Any, quick: bool) -> None:
    from gateway_halopsa.simulator import HaloSimulator

    rig.add_vendor(PAUSED, rate=None, tickets=backlog_for(quick))
    rig.add_vendor(SLOW, rate=None, tickets=slow_writes_for(quick), timeout_seconds=SLOW_TIMEOUT)
    sim = HaloSimulator()
    sim.seed_demo()
    sim.rate_limit_requests, sim.rate_limit_seconds = halo_window(quick)
    ids = [sim.add_ticket(f"Budget ticket {i}") for i in range(40)]
    vendor = rig.add_sim(HALO, sim, rate=None, poll_seconds=2.0,
                         rate_limit=[{"requests": sim.rate_limit_requests, "per_seconds": sim.rate_limit_seconds}])
    vendor.refs = [f"{HALO}:{i}" for i in ids]


def run_halo_budget(ctx: Context) -> list[Figure]:
    rig = ctx.rig
    vendor = ctx.vendor(HALO)
    count = halo_replies(ctx.quick)
    requests, seconds = halo_window(ctx.quick)
    reads: Counter[int] = Counter()
    stop = threading.Event()

    def detail_views() -> None:
        with rig.client() as client:
            index = 0
            while not stop.is_set():
                reads[client.get(f"/v1/tickets/{vendor.refs[index % len(vendor.refs)]}").status_code] += 1
                index += 1
                stop.wait(0.3)

    reader = threading.Thread(target=detail_views, daemon=True)
    reader.start()
    accepted: list[str] = []
    refused: Counter[int] = Counter()
    began = time.monotonic()
    try:
        with rig.client() as client:
            for i in range(count):
                answer = client.post(f"/v1/tickets/{vendor.refs[i % len(vendor.refs)]}/replies",
                                     json={"text": f"Benchmark budget {i}", "internal": True})
                if answer.status_code == 202:
                    accepted.append(answer.json()["write_id"])
                else:
                    refused[answer.status_code] += 1
                time.sleep(seconds / requests)  # replies at the window's own pace
            deadline = time.monotonic() + seconds * 3 + 30
            landed = 0
            while time.monotonic() < deadline:
                landed = sum(1 for w in accepted if client.get(f"/v1/writes/{w}").json()["status"] == "succeeded")
                if landed == len(accepted):
                    break
                time.sleep(0.5)
    finally:
        stop.set()
        reader.join(timeout=15)
    lost = sum(refused.values()) + len(accepted) - landed
    return [Figure(
        name="halo_reads_budget", value=lost, unit="replies refused or not landed", note=f"of {count}",
        baseline_label="0: every reply accepted and landed", target=0, comparison="<=", target_on="value",
        details={"window": f"{requests} calls / {seconds:g} s", "accepted": len(accepted), "landed": landed,
                 "refused": dict(refused), "detail_reads": dict(reads), "seconds": round(time.monotonic() - began, 1),
                 "vendor_stats": dict(vendor.sim.stats)},
    )]


def run(ctx: Context) -> list[Figure]:
    held = 3.0 if ctx.quick else 15.0
    figures = _isolated(
        ctx, "isolation_paused", PAUSED, backlog_for(ctx.quick), held,
        faults={"throttle_rate": 1.0, "retry_after": 60, "writes_only": True},
        label="another connection paused by a 60 s Retry-After",
    )
    figures += _isolated(
        ctx, "isolation_slow_vendor", SLOW, slow_writes_for(ctx.quick), held,
        faults={"slow_rate": 1.0, "slow_seconds": SLOW_TIMEOUT + 5, "writes_only": True},
        label="another connection's vendor answering after the client timeout",
    )
    return figures


def _isolated(ctx: Context, name: str, connection: str, count: int, held_seconds: float, *,
              faults: dict[str, Any], label: str) -> list[Figure]:
    rig = ctx.rig
    troubled = ctx.vendor(connection)
    rig.warm_ticket_cache(troubled, troubled.refs[:count])
    troubled.set_faults(**faults)
    troubled.tap.reset()
    body = b'{"text":"Benchmark trouble","internal":true}'
    requests = [http_post("127.0.0.1", rig.api_port, f"/v1/tickets/{ref}/replies", body, rig.headers)
                for ref in troubled.refs[:count]]
    prober = Prober(rig, ctx.vendor(OTHER))
    try:
        prober.run(4)
        loaded = start_load(LoadSpec("127.0.0.1", rig.api_port, requests, concurrency=8, count=count)).result()
        time.sleep(0.5)  # the first run meets the fault
        ctx.profile_start()
        probes = prober.run(seconds=held_seconds, gap=0.05)
        ctx.profile_stop(f"{name} (figure 2b)")
        with rig.client() as client:
            view = next((c for c in client.get("/v1/connections").json() if c["id"] == connection), {})
    finally:
        prober.close()
        troubled.set_faults()
    idle = [p.to_vendor for p in ctx.shared["isolation_idle"] if p.to_vendor is not None]  # type: ignore[attr-defined]
    during = [p.to_vendor for p in probes if p.to_vendor is not None]
    details = {
        "writes_waiting": count,
        "api_statuses": loaded.statuses,
        "troubled_vendor_statuses": dict(troubled.tap.statuses),
        "troubled_connection": view.get("writes"),
        "idle": summary_ms(idle),
        "during": summary_ms(during),
        "probe_timeouts": sum(1 for p in probes if p.arrived is None),
    }
    figure = {"unit": "ms", "baseline_label": f"idle gateway; {label}", "target": 1.5}
    return [
        Figure(name=name, value=round(percentile(during, 50) * 1000, 3), note="p50",
               baseline=round(percentile(idle, 50) * 1000, 3), details=details, **figure),
        Figure(name=f"{name}_p95", value=round(percentile(during, 95) * 1000, 3), note="p95",
               baseline=round(percentile(idle, 95) * 1000, 3), **figure),
    ]
