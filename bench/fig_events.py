"""Events for callers (issue 13): latency to an open stream and to a webhook receiver, delivery
under receiver faults, and write isolation from a dead subscription.

All against the rig's API and worker processes, with a real receiving HTTP server in this
process (``gateway.testing.receiver``: verifies every signature).

- ``event_latency_stream`` / ``event_latency_webhook``: probe writes on ``cw-other``; from the
  vendor answering the write's call (the simulator's tap) to its ``write.succeeded`` arriving on
  an open ``GET /v1/events/stream``, and to the receiver answering 2xx to its delivery.
- ``event_delivery_under_faults``: N events appended to the log (the real append and nudge path)
  for a receiver that fails 20 % (after reading the event), throttles 10 % (Retry-After) and is
  down for a while in the middle. Lost events must be 0, their order kept, repeats only of the
  same webhook-id and body.
- ``event_isolation``: write latency (caller to vendor, p50) with one subscription down and
  10,000 deliveries pending for it, over the same probe without it (half before, half after).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from typing import Any

import httpx

from bench.context import Context
from bench.probe import Prober
from bench.report import Figure, percentile, summary_ms
from bench.rig import free_port
from gateway import events
from gateway.testing.receiver import Receiver

CONNECTION = "cw-other"


def _subscribe(ctx: Context, url: str, types: list[str]) -> tuple[str, str]:
    with ctx.rig.client() as api:
        answer = api.post("/v1/admin/subscriptions", json={"url": url, "types": types})
    answer.raise_for_status()
    body = answer.json()
    return body["subscription"]["id"], body["secret"]


def _unsubscribe(ctx: Context, sid: str) -> None:
    with ctx.rig.client() as api:
        api.delete(f"/v1/admin/subscriptions/{sid}")


class StreamWatch(threading.Thread):
    """Follows ``/v1/events/stream`` and notes when each write's ``write.succeeded`` arrives."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(name="bench-sse", daemon=True)
        self.url = f"{ctx.rig.api_url}/v1/events/stream"
        self.headers = ctx.rig.headers
        self.arrived: dict[str, float] = {}
        self.ready = threading.Event()
        self.stopping = False
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._follow()
        except Exception as exc:  # reported in the figure, not as a thread traceback
            self.error = f"{type(exc).__name__}: {exc}"

    def _follow(self) -> None:
        # The stream's heartbeat (every 2 s in the bench config) keeps a live stream from timing out.
        with httpx.Client(timeout=httpx.Timeout(60.0)) as client:
            with client.stream("GET", self.url, headers=self.headers, params={"type": "write.succeeded"}) as stream:
                self.ready.set()
                for line in stream.iter_lines():
                    if self.stopping:
                        return
                    if line.startswith("data:"):
                        event = json.loads(line[5:])
                        self.arrived[event["write"]] = time.monotonic()


def run(ctx: Context) -> list[Figure]:
    figures = run_latency(ctx)
    figures.append(run_faults(ctx))
    figures.append(run_isolation(ctx))
    return figures


def run_latency(ctx: Context) -> list[Figure]:
    rig = ctx.rig
    vendor = ctx.vendor(CONNECTION)
    receiver = Receiver().start()
    sid, receiver.secret = _subscribe(ctx, receiver.url, ["write.succeeded"])
    watch = StreamWatch(ctx)
    watch.start()
    watch.ready.wait(10)
    prober = Prober(rig, vendor)
    try:
        prober.run(3)
        time.sleep(0.5)
        start = len(vendor.tap.ok_calls())
        probes = prober.run(20 if ctx.quick else 100, gap=0.05)
        deadline = time.monotonic() + 15
        wanted = {p.write_id for p in probes}
        while time.monotonic() < deadline:
            got = {d.event["write"] for d in receiver.accepted}
            if wanted <= got and wanted <= set(watch.arrived):
                break
            time.sleep(0.05)
    finally:
        prober.close()
        watch.stopping = True
        _unsubscribe(ctx, sid)
        receiver.stop()
    calls = vendor.tap.ok_calls()[start:]
    landed = {}
    for probe, call in zip(probes, calls):
        landed[probe.write_id] = call.answered
    hooks = {d.event["write"]: d.received_at for d in receiver.accepted}
    stream_lat = [watch.arrived[w] - t for w, t in landed.items() if w in watch.arrived]
    hook_lat = [hooks[w] - t for w, t in landed.items() if w in hooks]
    missing = {"stream": len(landed) - len(stream_lat), "webhook": len(landed) - len(hook_lat)}
    return [
        Figure(name="event_latency_stream", value=round(percentile(stream_lat, 95) * 1000, 1), unit="ms",
               note="p95", baseline_label="absolute target", target=250, target_on="value",
               details={"vendor_answer_to_sse": summary_ms(stream_lat), "missing": missing["stream"],
                        "stream_error": watch.error},
               error=f"{missing['stream']} events never reached the stream" if missing["stream"] else None),
        Figure(name="event_latency_webhook", value=round(percentile(hook_lat, 95) * 1000, 1), unit="ms",
               note="p95", baseline_label="absolute target", target=500, target_on="value",
               details={"vendor_answer_to_receiver": summary_ms(hook_lat), "missing": missing["webhook"]},
               error=f"{missing['webhook']} events never reached the receiver" if missing["webhook"] else None),
    ]  # fmt: skip


def _append(ctx: Context, count: int, label: str) -> list[str]:
    """Append ``count`` events to the bench workspace's log the way the gateway does."""
    gw = ctx.rig.prep_gateway()
    ids = []
    for n in range(count):
        event = events.ConnectionRecovered(
            workspace="bench", occurred_at=datetime.now(timezone.utc), connection=CONNECTION,
            data=events.ConnectionRecoveredData("connectwise", f"{label} {n}"),
        )  # fmt: skip
        ids.append(gw.events.emit(event))
    return ids


def run_faults(ctx: Context) -> Figure:
    count = 60 if ctx.quick else 5000
    down_seconds = 1.0 if ctx.quick else 30.0
    receiver = Receiver(fail_rate=0.2, throttle_rate=0.1, retry_after="0.2").start()
    sid, receiver.secret = _subscribe(ctx, receiver.url, ["connection.recovered"])
    started = time.monotonic()
    try:
        ids = _append(ctx, count // 2, "faults")
        time.sleep(0.5)
        receiver.down = True  # down in the middle of the run, while events keep coming
        ids += _append(ctx, count - count // 2, "faults")
        time.sleep(down_seconds)
        receiver.down = False
        deadline = time.monotonic() + (120 if ctx.quick else 900)
        while time.monotonic() < deadline and len({d.webhook_id for d in receiver.accepted}) < len(ids):
            time.sleep(0.2)
        seconds = time.monotonic() - started
    finally:
        _unsubscribe(ctx, sid)
        receiver.stop()
    accepted = receiver.ids()
    first: list[str] = []
    seen_ids: set[str] = set()
    wanted = set(ids)
    for webhook_id in accepted:
        # Other events of the workspace (a sync's ticket.updated, a connection's recovery) may
        # be delivered between the figure's own: the order is checked on the figure's events.
        if webhook_id in wanted and webhook_id not in seen_ids:
            seen_ids.add(webhook_id)
            first.append(webhook_id)
    lost = len(set(ids) - seen_ids)
    ordered = first == ids[: len(first)]
    bodies: dict[str, Any] = {}
    mismatched = 0  # a repeat that is not the same event under the same id
    for delivery in receiver.seen:
        body = json.dumps(delivery.event, sort_keys=True)
        if bodies.setdefault(delivery.webhook_id, body) != body or delivery.event["id"] != delivery.webhook_id:
            mismatched += 1
    details = {
        "events": len(ids), "seconds": round(seconds, 1), "receiver_down_seconds": down_seconds,
        "attempts": receiver.attempts, "statuses": {str(s): receiver.statuses.count(s) for s in set(receiver.statuses)},
        "accepted": len(accepted), "duplicate_deliveries": len(receiver.seen) - len(set(d.webhook_id for d in receiver.seen)),
        "ordered": ordered, "repeats_not_same_event": mismatched, "bad_signatures": receiver.bad_signatures,
    }  # fmt: skip
    error = None
    if not ordered or mismatched or receiver.bad_signatures:
        error = f"ordered={ordered}, repeats of another event={mismatched}, bad signatures={receiver.bad_signatures}"
    return Figure(name="event_delivery_under_faults", value=lost, unit="lost", note=f"of {len(ids)}",
                  baseline_label="absolute target", target=0, comparison="==", target_on="value",
                  details=details, error=error)  # fmt: skip


def run_isolation(ctx: Context) -> Figure:
    rig = ctx.rig
    pending = 400 if ctx.quick else 10_000
    dead_url = f"http://127.0.0.1:{free_port()}/down"  # nothing listens: every attempt is refused
    probes = 20 if ctx.quick else 100
    prober = Prober(rig, ctx.vendor(CONNECTION))
    sid = ""
    try:
        prober.run(4)
        idle = prober.run(probes // 2, gap=0.05)
        sid, _secret = _subscribe(ctx, dead_url, [])
        _append(ctx, pending, "pending")
        time.sleep(0.5)
        held = prober.run(probes, gap=0.05)
        with rig.client() as api:
            view = api.get(f"/v1/admin/subscriptions/{sid}").json()
        _unsubscribe(ctx, sid)
        sid = ""
        # The baseline is taken before and after, so drift on a shared machine hits both sides.
        idle += prober.run(probes // 2, gap=0.05)
    finally:
        prober.close()
        if sid:
            _unsubscribe(ctx, sid)
    idle_lat = [p.to_vendor for p in idle if p.to_vendor is not None]
    held_lat = [p.to_vendor for p in held if p.to_vendor is not None]
    return Figure(
        name="event_isolation", value=round(percentile(held_lat, 50) * 1000, 3), unit="ms", note="p50",
        baseline=round(percentile(idle_lat, 50) * 1000, 3), baseline_label="no subscription", target=1.5,
        details={"idle": summary_ms(idle_lat), "held": summary_ms(held_lat), "pending_deliveries": pending,
                 "subscription": {k: view.get(k) for k in ("pending", "failing_since", "last_error", "retry_at")},
                 "p95_ratio": round(percentile(held_lat, 95) / percentile(idle_lat, 95), 3)},
    )  # fmt: skip
