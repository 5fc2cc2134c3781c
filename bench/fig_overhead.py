"""Figure 3: write overhead. Caller-to-vendor latency of a write through the gateway (API,
Redis, rq, worker, plugin) against the same vendor call made directly with httpx.

Both are timed from the moment the caller sends until the simulator receives the vendor call
(``VendorTap``), on an idle gateway, one write at a time; the direct call replays, byte for
byte, the request the plugin made (same path, headers and body) over a kept-alive httpx
client, as the plugin's own client is. The two alternate, so machine noise hits both alike.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.probe import Prober
from bench.report import Figure, percentile, summary_ms

HOP_HEADERS = {b"host", b"content-length", b"connection", b"transfer-encoding"}


def run(ctx: Context) -> list[Figure]:
    rig = ctx.rig
    vendor = ctx.vendor("cw-other")
    count = 40 if ctx.quick else 300
    prober = Prober(rig, vendor)
    try:
        vendor.tap.capture_next()
        prober.run(12)  # every worker makes its vendor client; the API warms up
        captured = vendor.tap.captured()
        if captured is None:
            raise RuntimeError("no vendor call was captured to replay")
        headers = [(k.decode(), v.decode()) for k, v in captured.headers if k.lower() not in HOP_HEADERS]
        path = captured.path + (f"?{captured.query.decode()}" if captured.query else "")
        direct_to_vendor: list[float] = []
        direct_round_trip: list[float] = []
        probes = []
        with ctx.http(vendor.server.base_url) as direct:
            direct.request(captured.method, path, headers=headers, content=captured.body)  # connect
            ctx.profile_start()
            for _ in range(count):
                probes.append(prober.write())
                time.sleep(0.01)
                before = vendor.tap.ok
                sent = time.monotonic()
                response = direct.request(captured.method, path, headers=headers, content=captured.body)
                answered = time.monotonic()
                if response.status_code >= 300:
                    raise RuntimeError(f"direct call failed: {response.status_code}")
                vendor.tap.wait_for(before + 1, 10)
                direct_to_vendor.append(vendor.tap.ok_calls()[before].arrived - sent)
                direct_round_trip.append(answered - sent)
                time.sleep(0.01)
            ctx.profile_stop("write overhead (figure 3)")
        time.sleep(0.3)
        succeeded = prober.succeeded(probes)
    finally:
        prober.close()
    through = [p.to_vendor for p in probes if p.to_vendor is not None]
    details = {
        "writes": count,
        "succeeded": succeeded,
        "timed_out": count - len(through),
        "gateway_to_vendor": summary_ms(through),
        "gateway_accept_202": summary_ms([p.to_accept for p in probes]),
        "gateway_202_to_vendor": summary_ms([p.queue_to_vendor for p in probes if p.queue_to_vendor is not None]),
        "direct_to_vendor": summary_ms(direct_to_vendor),
        "direct_round_trip": summary_ms(direct_round_trip),
        "measured": "caller sends -> simulator receives the vendor call; idle gateway, one write at a time",
    }
    figures = []
    for pct in (50, 99):
        figures.append(Figure(
            name=f"write_overhead_p{pct}",
            value=round(percentile(through, pct) * 1000, 3),
            unit="ms",
            note="caller to vendor",
            baseline=round(percentile(direct_to_vendor, pct) * 1000, 3),
            baseline_label="direct httpx",
            target_note="none (report)",
            details=details,
        ))
    return figures
