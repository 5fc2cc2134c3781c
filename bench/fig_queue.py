"""Figures 5 and 6, on the unified queue (issue 5). Until ``gateway.api.queue`` has routes they
print ``skipped (needs the unified queue)``.

5. Queue reads: p50 and p99 of filtered, paged ``GET /v1/tickets`` over tickets synced from
   three PSA simulators (ConnectWise, Autotask, HaloPSA; 100,000 in all, 1,800 with
   ``--quick``), against the same queries on an indexed SQLite table of the same tickets
   served by a bare Litestar endpoint in the same uvicorn setup (``bench.sqlite_app``): what a
   team would build instead. One request at a time, the query mix alternating between the two
   servers; both must return the same tickets. Target: no slower than SQLite.
6. Freshness: p95 seconds from a change made inside a ConnectWise simulator (its own REST API,
   a new summary) to the ticket showing it in ``GET /v1/tickets``, with webhooks (the
   simulator's signed callbacks) and without (incremental pulls every ``poll_seconds``). The
   baseline is issue 5's promise: 5 s with webhooks, the poll interval plus 2 s without.
"""

from __future__ import annotations

import os
import random
import threading
import time
import urllib.parse
from collections import Counter
from typing import Any

from bench.context import Context
from bench.load import LoadSpec, http_get, start_load
from bench.report import Figure, percentile, summary_ms
from bench.rig import Rig, free_port, stop, wait_http

SKIP = "needs the unified queue"
QUEUE_CONNECTIONS = ("q-cw", "q-at", "q-halo")
WORKSPACE = "bench"
FRESH_HOOK, FRESH_POLL = "fresh-hook", "fresh-poll"
WORDS = ["printer", "vpn", "email", "laptop", "backup"]
# Simulated tickets are all created "now": with the default two-minute overlap, every 30-second
# pull would fetch every one of them again for two minutes, which no real PSA's data does.
OVERLAP = 5.0


def queue_ready() -> bool:
    from gateway.api import queue

    return bool(getattr(queue, "ROUTES", None))


def tickets_per_psa(quick: bool) -> int:
    return 600 if quick else 33_334


def poll_seconds(quick: bool) -> float:
    return 3.0 if quick else 10.0


def add_vendors(rig: Rig, quick: bool, *, per_psa: int | None = None, freshness: bool = True) -> None:
    """The three PSAs of figure 5 (``per_psa`` tickets each) and the two ConnectWise connections
    of figure 6 (unless ``freshness`` is false)."""
    from gateway_autotask.simulator import AutotaskSimulator
    from gateway_connectwise.simulator import ConnectWiseSimulator
    from gateway_halopsa.simulator import HaloSimulator

    rng = random.Random(5)
    cw, at, halo = ConnectWiseSimulator(), AutotaskSimulator(), HaloSimulator()
    for sim in (cw, at, halo):
        sim.seed_demo()
    halo.rate_limit_requests = 10_000_000  # the benchmark measures reads, not the vendors' limits
    at.hourly_threshold = 10_000_000
    for i in range(tickets_per_psa(quick) if per_psa is None else per_psa):
        cw.add_ticket(f"{rng.choice(WORDS)} cw {i}")
        at.add_ticket(title=f"{rng.choice(WORDS)} at {i}", status=rng.choice([1, 5, 7, 8]))
        halo.add_ticket(f"{rng.choice(WORDS)} halo {i}", status_id=rng.choice([1, 2, 9]))
    for name, sim in zip(QUEUE_CONNECTIONS, (cw, at, halo)):
        # Filled by the backfill; hourly pulls keep the simulators (in the benchmark's own
        # process) from filtering 33,000 tickets in the middle of other figures' timings.
        rig.add_sim(name, sim, rate=None, poll_overlap_seconds=OVERLAP, poll_seconds=3600.0)
    for name in (FRESH_HOOK, FRESH_POLL) if freshness else ():
        vendor = rig.add_vendor(name, rate=None, tickets=0)
        vendor.table["poll_seconds"] = poll_seconds(quick)
        vendor.table["poll_overlap_seconds"] = OVERLAP


# --------------------------------------------------------------------------- figure 5


def run_reads(ctx: Context) -> list[Figure]:
    if not queue_ready():
        return [Figure(name="queue_reads_p50", skipped=SKIP)]
    from bench import sqlite_app

    rig = ctx.rig
    gw = rig.prep_gateway()
    tickets = store_tickets(gw.store)
    ctx.shared["store_tickets"] = len(tickets)
    db = str(rig.workdir / "tickets.sqlite")
    sqlite_app.build(db, tickets, WORKSPACE)
    ctx.shared["sqlite_bytes"] = os.path.getsize(db)
    reads = measure_reads(ctx, db, _queries(tickets), count=70 if ctx.quick else 600,
                          rounds=1 if ctx.quick else 2, profile="queue reads (figure 5)")
    return reads.figures("", {"tickets": len(tickets)})


def store_tickets(store: Any) -> list[Any]:
    """Every ticket the store holds for the workspace, through its own query (the SQLite
    baseline is built from them and the queries pick their values from them)."""
    from gateway.store import TicketFilter

    tickets, cursor = [], None
    while True:
        page = store.query(WORKSPACE, TicketFilter(), limit=500, cursor=cursor)
        tickets += page.tickets
        cursor = page.next_cursor
        if not cursor:
            return tickets


class Reads:
    """Latencies of the same queries through the gateway and through SQLite."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {"gateway": [], "sqlite": []}
        self.statuses: dict[str, Counter[int]] = {"gateway": Counter(), "sqlite": Counter()}
        self.mismatches: list[str] = []
        self.labels: list[str] = []
        self.lua = [0, 0]  # Lua script calls and the microseconds Redis spent running them
        self.count = 0

    def figures(self, suffix: str, details: dict[str, Any]) -> list[Figure]:
        per_query = {}
        for index, label in enumerate(self.labels):
            per_query[label] = {
                name: round(percentile(values[index::len(self.labels)], 50) * 1000, 2)
                for name, values in self.latencies.items()
            }
        details = {
            **details,
            "p50_ms_by_query": per_query,
            "gateway": summary_ms(self.latencies["gateway"]),
            "sqlite": summary_ms(self.latencies["sqlite"]),
            "statuses": {k: dict(v) for k, v in self.statuses.items()},
            # Redis runs one script at a time: this is the part of each read spent inside Redis.
            "redis_script_ms_per_read": round(self.lua[1] / 1000 / max(1, self.lua[0]), 3),
            "requests_per_server": self.count,
            "concurrency": 1,
        }
        figures = []
        for pct in (50, 99):
            figures.append(Figure(
                name=f"queue_reads_p{pct}{suffix}",
                value=round(percentile(self.latencies["gateway"], pct) * 1000, 3),
                unit="ms",
                baseline=round(percentile(self.latencies["sqlite"], pct) * 1000, 3),
                baseline_label="indexed SQLite behind Litestar",
                target=1.0,
                details=details,
            ))
        if self.mismatches:
            figures.append(Figure(name=f"queue_reads_agree{suffix}",
                                  error=f"different tickets for: {', '.join(self.mismatches)}"))
        return figures


def measure_reads(ctx: Context, db: str, queries: list[tuple[str, dict[str, Any], int]], *, count: int,
                  rounds: int, profile: str | None = None) -> Reads:
    """Serve ``db`` from the SQLite endpoint, check that both sides answer every query with the
    same tickets, then time ``count`` requests a side per round, one at a time."""
    rig = ctx.rig
    port = free_port()
    server = rig.spawn_other("sqlite", "--db", db, "--port", str(port))
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/tickets?limit=1", server, time.monotonic() + 60)
        reads = Reads()
        reads.labels = [label for label, _, _ in queries]
        reads.count = count * rounds
        gateway_paths, sqlite_paths = [], []
        with ctx.http(rig.api_url) as api, ctx.http(f"http://127.0.0.1:{port}") as lite:
            api.headers.update(rig.headers)
            for label, params, page in queries:
                paths = []
                for client in (api, lite):
                    path = "/v1/tickets?" + urllib.parse.urlencode(params, doseq=True)
                    body = client.get(path).json()
                    for _ in range(page - 1):
                        path = "/v1/tickets?" + urllib.parse.urlencode(
                            [*_pairs(params), ("cursor", body["next_cursor"])], doseq=True)
                        body = client.get(path).json()
                    paths.append((path, [t["ref"] for t in body["tickets"]]))
                (g_path, g_refs), (s_path, s_refs) = paths
                if g_refs != s_refs:
                    reads.mismatches.append(label)
                gateway_paths.append(g_path)
                sqlite_paths.append(s_path)
        for round_no in range(rounds):
            for name, target, paths, headers in (
                ("gateway", rig.api_port, gateway_paths, rig.headers),
                ("sqlite", port, sqlite_paths, {}),
            ):
                requests = [http_get("127.0.0.1", target, p, headers) for p in paths]
                if profile and name == "gateway" and round_no == 0:
                    ctx.profile_start()
                scripts_before = _script_stats(rig)
                result = start_load(LoadSpec("127.0.0.1", target, requests, concurrency=1, count=count)).result()
                if name == "gateway":
                    calls, usec = (a - b for a, b in zip(_script_stats(rig), scripts_before))
                    reads.lua[0] += calls
                    reads.lua[1] += usec
                if profile and name == "gateway" and round_no == 0:
                    ctx.profile_stop(profile)
                reads.latencies[name] += result.latencies
                reads.statuses[name].update(result.statuses)
        return reads
    finally:
        stop(server)
        rig.others.remove(server)


# --------------------------------------------------------------------------- growth (figure 5b)


def growth_sizes(quick: bool) -> tuple[int, ...]:
    return (10_000,) if quick else (10_000, 100_000, 1_000_000)


def _size_label(size: int) -> str:
    return f"{size // 1_000_000}m" if size % 1_000_000 == 0 else f"{size // 1000}k"


def run_growth(ctx: Context, sizes: tuple[int, ...] | None = None) -> list[Figure]:
    """Figure 5 at 10,000, 100,000 and 1,000,000 tickets (10,000 with ``--quick``): the store is
    emptied, then filled through its own write path (``TicketStore.upsert_many``) with generated
    tickets shaped like the simulators' (``bench.tickets``), and each size is read through the
    API against SQLite holding the same tickets. Also the store's bytes per ticket at each size
    against SQLite's (``memory_store_<size>``)."""
    if not queue_ready():
        return [Figure(name="queue_reads_growth", skipped=SKIP)]
    from bench import sqlite_app
    from bench.tickets import generated, sample, stream

    rig = ctx.rig
    gw = rig.prep_gateway()
    drop_store(rig)
    empty = rig.settled_used_memory()
    figures: list[Figure] = []
    loaded = 0
    queries = _queries(sample(20_000))
    for size in sizes or growth_sizes(ctx.quick):
        began = time.monotonic()
        for start in range(loaded, size, 1000):
            # as a backfill loads them: tickets that exist are no news (no ticket.created
            # events, whose stream would be counted as the store's memory)
            gw.store.upsert_many(generated(start, min(size, start + 1000)), WORKSPACE, announce=False)
        load_s = time.monotonic() - began
        loaded = size
        print(f"growth: {size} tickets in the store ({load_s:.0f} s to load)", flush=True)
        store_bytes = rig.settled_used_memory() - empty
        db = str(rig.workdir / f"growth-{size}.sqlite")
        began = time.monotonic()
        sqlite_app.build(db, stream(0, size), WORKSPACE)
        build_s = time.monotonic() - began
        sqlite_bytes = os.path.getsize(db)
        label = _size_label(size)
        reads = measure_reads(ctx, db, queries, count=70 if ctx.quick else 300, rounds=1 if ctx.quick else 2)
        details = {"tickets": size, "store_load_s": round(load_s, 1), "sqlite_build_s": round(build_s, 1)}
        at_size = reads.figures(f"_{label}", details)
        at_size.append(Figure(
            name=f"memory_store_{label}", value=round(store_bytes / size), unit="B/ticket",
            note=f"Redis, {size} tickets", baseline=round(sqlite_bytes / size),
            baseline_label="SQLite file with its indexes", target=1.5,
            details={"redis_bytes": store_bytes, "sqlite_bytes": sqlite_bytes, "tickets": size},
        ))
        for figure in at_size:
            print(figure.line(), flush=True)  # a long run shows each size as it is done
        figures += at_size
        os.remove(db)
    return figures


def drop_store(rig: Rig) -> int:
    """Delete every key of the ticket store (any format); return how many."""
    dropped = 0
    for pattern in ("tk:*", "tf:*", "th:*", "ix:*", "cnt:*"):
        batch: list[bytes] = []
        for key in rig.redis.scan_iter(match=pattern, count=1000):  # type: ignore[union-attr]
            batch.append(key)
            if len(batch) >= 1000:
                dropped += int(rig.redis.unlink(*batch))  # type: ignore[union-attr]
                batch = []
        if batch:
            dropped += int(rig.redis.unlink(*batch))  # type: ignore[union-attr]
    return dropped


def _script_stats(rig: Rig) -> tuple[int, int]:
    """Lua script calls so far and the microseconds Redis spent in them (INFO commandstats)."""
    stats = rig.redis.info("commandstats")  # type: ignore[union-attr]
    calls = usec = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        if name in stats:
            calls += int(stats[name]["calls"])
            usec += int(stats[name]["usec"])
    return calls, usec


def _pairs(params: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, values in params.items() for v in (values if isinstance(values, list) else [values])]


def _queries(tickets: list[Any]) -> list[tuple[str, dict[str, Any], int]]:
    """A mix of what a dispatcher asks, with values that occur in the data."""
    from gateway.store import index_fields

    fields = [index_fields(t, WORKSPACE) for t in tickets]
    categories = [c for c, _ in Counter(f["cat"] for f in fields).most_common()]
    customers = [c for c, _ in Counter(f["customer"] for f in fields if f["customer"]).most_common()]
    at_categories = [c for c, _ in Counter(f["cat"] for f in fields if f["conn"] == "q-at").most_common()]
    base = {"limit": 50}
    return [
        ("one category", {**base, "category": categories[0]}, 1),
        ("another category, page 2", {**base, "category": categories[min(1, len(categories) - 1)]}, 2),
        ("one connection and category", {**base, "connection": "q-at", "category": at_categories[-1]}, 1),
        ("one customer", {**base, "customer": customers[0]}, 1),
        ("two categories, page 3", {**base, "category": categories[:2]}, 3),
        ("text", {**base, "q": "printer"}, 1),
        ("vendor and text", {**base, "vendor": "halopsa", "q": "vpn"}, 1),
    ]


# --------------------------------------------------------------------------- figure 6


def run_freshness(ctx: Context) -> list[Figure]:
    if not queue_ready():
        return [Figure(name="freshness_webhook_p95", skipped=SKIP), Figure(name="freshness_poll_p95", skipped=SKIP)]
    from gateway_connectwise.auth import ConnectWiseAuth
    from gateway_connectwise.simulator import API_ROOT

    rig = ctx.rig
    hook, poll = ctx.vendor(FRESH_HOOK), ctx.vendor(FRESH_POLL)
    interval = poll_seconds(ctx.quick)
    samples = 6 if ctx.quick else 25
    secret = os.environ[hook.table["webhook_secret_env"]]
    hook.sim.add_webhook(f"{rig.api_url}/v1/webhooks/{FRESH_HOOK}", secret)
    ids = {name: sorted(v.sim.tickets)[:samples] for name, v in ((FRESH_HOOK, hook), (FRESH_POLL, poll))}
    changed: dict[str, float] = {}
    seen: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def watch() -> None:
        with ctx.http(rig.api_url) as api:
            api.headers.update(rig.headers)
            while not stop.is_set():
                for name in (FRESH_HOOK, FRESH_POLL):
                    body = api.get("/v1/tickets", params={"connection": name, "limit": 100}).json()
                    now = time.monotonic()
                    with lock:
                        for ticket in body.get("tickets", []):
                            token = ticket["summary"]
                            if token in changed and token not in seen:
                                seen[token] = now
                stop.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        clients = {}
        for name, vendor in ((FRESH_HOOK, hook), (FRESH_POLL, poll)):
            sim = vendor.sim
            auth = ConnectWiseAuth(sim.company_id, sim.public_key, sim.private_key, sim.client_id)
            clients[name] = ctx.http(vendor.server.base_url + API_ROOT)
            clients[name].auth = auth
        ctx.profile_start()
        for i in range(samples):  # spread over one poll interval, so the pulls' phase varies
            for name in (FRESH_HOOK, FRESH_POLL):
                token = f"fresh {name} {i} {time.monotonic():.3f}"
                response = clients[name].patch(
                    f"/service/tickets/{ids[name][i]}", json=[{"op": "replace", "path": "summary", "value": token}]
                )
                if response.status_code != 200:
                    raise RuntimeError(f"the simulator refused the change: {response.status_code}")
                with lock:
                    changed[token] = time.monotonic()
            time.sleep(interval / samples)
        deadline = time.monotonic() + interval + 2 + 15
        while time.monotonic() < deadline:
            with lock:
                if len(seen) == len(changed):
                    break
            time.sleep(0.1)
        ctx.profile_stop("freshness (figure 6)")
        for client in clients.values():
            client.close()
    finally:
        stop.set()
        watcher.join(timeout=5)

    figures = []
    for name, label, promise in (
        (FRESH_HOOK, "webhook", 5.0),
        (FRESH_POLL, "poll", interval + 2.0),
    ):
        tokens = [t for t in changed if t.startswith(f"fresh {name} ")]
        delays = [seen[t] - changed[t] for t in tokens if t in seen]
        missing = len(tokens) - len(delays)
        figure = Figure(
            name=f"freshness_{label}_p95",
            value=round(percentile(delays, 95), 2) if delays else None,
            unit="s",
            baseline=promise,
            baseline_label="promised" + ("" if label == "webhook" else f" (poll every {interval:g} s + 2)"),
            target=1.0,
            details={"changes": len(tokens), "not_seen": missing, "delays": summary_ms(delays),
                     "poll_seconds": interval, "watch_interval_s": 0.1},
        )
        if missing:
            figure.error = f"{missing} of {len(tokens)} changes never showed in the queue"
        figures.append(figure)
    return figures
