"""Figure 9: many tenants (issue 11). A gateway of its own, configured with many connections.

A fleet is ``connections`` ConnectWise connections spread over workspaces of ten, each with its
own rate limit (20 calls a second, not reached here), all pointing at a few simulators that
share their tickets; plus one probe connection with a simulator of its own behind a
``VendorTap``. Sync polls every 10 minutes (its first backfill is waited out).

- ``throughput_per_worker``: with the workers stopped, writes (one note each, spread over every
  connection and ticket) are accepted; then two worker processes start and drain them. Writes a
  second per worker process, against a bare rq ``SimpleWorker`` running, per job, the same
  single httpx call to the same simulators (the request the plugin made, replayed).
- ``scale_1000_connections``: probe writes, one at a time, on the probe connection: accept p50
  and accept-to-vendor p50 with the large fleet configured, over the same with ten connections.
- ``idle_cost_per_connection``: Redis keys and bytes, and worker CPU per 10 idle seconds (measured over 10, 2 quick), per
  configured connection (the large fleet against the ten).

The full run uses 1,000 connections (100 workspaces); the quick run 50 (5 workspaces).
"""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.fig_overhead import HOP_HEADERS
from bench.load import LoadSpec, http_post, start_load
from bench.probe import Prober
from bench.report import Figure, percentile, summary_ms
from bench.rig import Rig, add_tickets, cpu_seconds, stop, stop_servers
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, to_toml, workspace_config

PROBE = "probe"
SIMS = 3
TICKETS_PER_SIM = 20
BODY = b'{"text":"Benchmark fleet","internal":true}'


def fleet_size(quick: bool) -> int:
    return 50 if quick else 1000


def writes_for(quick: bool) -> int:
    return 250 if quick else 3000


class Fleet:
    """A rig with ``size`` connections over workspaces of ten, on ``SIMS`` shared simulators."""

    def __init__(self, workdir: Path, size: int) -> None:
        from gateway_connectwise.simulator import ConnectWiseSimulator

        workdir.mkdir(parents=True, exist_ok=True)
        self.rig = Rig(workdir)
        self.rig.start_redis()
        self.size = size
        self.sims = []
        for _ in range(SIMS):
            sim = ConnectWiseSimulator()
            sim.seed_demo()
            ticket_ids = add_tickets(sim, TICKETS_PER_SIM, prefix="Fleet ticket")
            server = _serve(sim)
            self.sims.append((sim, server, ticket_ids))
        probe = self.rig.add_vendor(PROBE, rate=None, tickets=200, poll_seconds=600)
        self.keys: dict[str, str] = {}
        self.targets: list[tuple[str, str]] = []  # (workspace key, ticket ref) per fleet write
        workspaces: dict[str, list[dict[str, Any]]] = {}
        for index in range(size - 1):
            sim, server, ticket_ids = self.sims[index % SIMS]
            connection = f"c{index}"
            table = connection_config(connection, sim.demo_connection(server.base_url),
                                      rate_limit=[{"requests": 20, "per_seconds": 1}], poll_seconds=600)
            workspace = f"ws{index // 10}"
            workspaces.setdefault(workspace, []).append(table)
            self.targets += [(workspace, f"{connection}:{t}") for t in ticket_ids]
        workspaces.setdefault("ws0", []).append(probe.table)
        tables = {"gateway": {"data_dir": str(workdir / "data"), "durability": "everysec"}, "workspaces": []}
        for workspace, connections in workspaces.items():
            key = self.rig.key if workspace == "ws0" else new_api_key()
            self.keys[workspace] = key
            tables["workspaces"].append(workspace_config(workspace, connections, {key: ALL_SCOPES}))
        self.rig.tables = tables
        self.rig.config_path.write_text(to_toml(tables))

    def start(self, workers: int, *, sync_timeout: float) -> bool:
        self.rig.start_api()
        self.rig.start_workers(workers)
        self.rig.wait_ready(timeout=120)
        return self.rig.wait_synced(timeout=sync_timeout)

    def close(self) -> None:
        self.rig.close()
        stop_servers(server for _sim, server, _ids in self.sims)


def _serve(sim: Any) -> Any:
    from gateway.testing.simulator import serve_asgi_in_thread

    server = serve_asgi_in_thread(sim.app)
    sim.base_url = server.base_url
    return server


def run(ctx: Context) -> list[Figure]:
    quick = ctx.quick
    size = fleet_size(quick)
    base = ctx.rig.workdir / "fleet"
    large = Fleet(base / f"n{size}", size)
    try:
        synced = large.start(2, sync_timeout=120 if quick else 900)
        probes_large = _probes(large, 20 if quick else 100)
        idle_large = _idle(large, idle_seconds(quick), quiet_timeout=5 if quick else 30)
        throughput = _throughput(large, writes_for(quick), quiet_timeout=5 if quick else 30)
    finally:
        large.close()
    small = Fleet(base / "n10", 10)
    try:
        small.start(2, sync_timeout=120)
        probes_small = _probes(small, 20 if quick else 100)
        idle_small = _idle(small, idle_seconds(quick), quiet_timeout=5 if quick else 30)
    finally:
        small.close()

    def p50(probes: list[Any], attr: str) -> float:
        return percentile([getattr(p, attr) for p in probes if getattr(p, attr) is not None], 50)

    extra = size - 10
    per_connection = {
        "redis_keys": round((idle_large["keys"] - idle_small["keys"]) / extra, 2),
        "redis_bytes": round((idle_large["bytes"] - idle_small["bytes"]) / extra),
        "worker_cpu_ms_per_10s": round((idle_large["cpu"] - idle_small["cpu"]) / extra * 1000, 3),
    }
    label = f"the same at 10 connections ({size:,} here)"
    return [
        Figure(name="throughput_per_worker", value=throughput["gateway"], unit="writes/s",
               note=f"per worker process over {size:,} connections",
               baseline=throughput["bare"], baseline_label="bare rq SimpleWorker, one httpx call a job",
               target=0.5, comparison=">=", details={**throughput, "synced": synced}),
        Figure(name="scale_1000_connections", value=round(p50(probes_large, "to_accept") * 1000, 3), unit="ms",
               note="accept p50", baseline=round(p50(probes_small, "to_accept") * 1000, 3), baseline_label=label,
               target=1.2, details={"large": summary_ms([p.to_accept for p in probes_large]),
                                    "small": summary_ms([p.to_accept for p in probes_small])}),
        Figure(name="scale_1000_connections_to_vendor", value=round(p50(probes_large, "queue_to_vendor") * 1000, 3),
               unit="ms", note="accept-to-vendor p50",
               baseline=round(p50(probes_small, "queue_to_vendor") * 1000, 3), baseline_label=label, target=1.2),
        Figure(name="idle_cost_per_connection", value=per_connection["redis_bytes"], unit="bytes of Redis",
               note=f"{per_connection['redis_keys']} keys, {per_connection['worker_cpu_ms_per_10s']} ms worker CPU "
                    "per 10 idle s", baseline_label="reported", details={"large": idle_large, "small": idle_small,
                                                                          "per_connection": per_connection}),
    ]


def _probes(fleet: Fleet, count: int) -> list[Any]:
    prober = Prober(fleet.rig, fleet.rig.vendors[PROBE])
    try:
        prober.run(4)
        return prober.run(count, gap=0.02)
    finally:
        prober.close()


def idle_seconds(quick: bool) -> float:
    return 2.0 if quick else 10.0


def _idle(fleet: Fleet, seconds: float, *, quiet_timeout: float) -> dict[str, float]:
    """What the idle fleet holds in Redis, and its workers' CPU over ``seconds`` (given per 10 s),
    once the probes' refetches are done (``quiet``: 1.0) or ``quiet_timeout`` has passed."""
    rig = fleet.rig
    quiet = rig.wait_quiet(timeout=quiet_timeout)
    before = sum(cpu_seconds(w.pid) for w in rig.workers)
    time.sleep(seconds)
    cpu = (sum(cpu_seconds(w.pid) for w in rig.workers) - before) * 10.0 / seconds
    info = rig.redis.info("memory")  # type: ignore[union-attr]
    # The ticket store's records are the tickets synced, not the cost of a connection.
    tickets = sum(1 for _ in rig.redis.scan_iter("tk:*", count=5000))  # type: ignore[union-attr]
    store_bytes = sum(rig.redis.memory_usage(k) or 0 for k in rig.redis.scan_iter("tk:*", count=5000))  # type: ignore[union-attr]
    return {"keys": float(rig.redis.dbsize() - tickets), "bytes": float(info["used_memory"] - store_bytes),  # type: ignore[union-attr]
            "cpu": cpu, "tickets": tickets, "quiet": float(quiet)}


def _throughput(fleet: Fleet, count: int, *, quiet_timeout: float) -> dict[str, Any]:
    rig = fleet.rig
    # The probes' writes make their tickets be fetched again a few seconds later; a quick run
    # waits at most 5 s for that here and before measuring the idle fleet (30 s each was a
    # quarter of its two minutes).
    quiet = rig.wait_quiet(timeout=quiet_timeout)
    workers = len(rig.workers)
    rig.stop_workers()
    by_workspace: dict[str, list[bytes]] = {}
    for index in range(count):  # every ticket of every connection, then round again
        workspace, ref = fleet.targets[index % len(fleet.targets)]
        headers = {"Authorization": f"Bearer {fleet.keys[workspace]}"}
        by_workspace.setdefault(workspace, []).append(
            http_post("127.0.0.1", rig.api_port, f"/v1/tickets/{ref}/replies", BODY, headers))
    # Interleave the workspaces, as many tenants' callers would.
    requests = [r for group in itertools.zip_longest(*by_workspace.values()) for r in group if r is not None]
    loaded = start_load(LoadSpec("127.0.0.1", rig.api_port, requests, concurrency=8, count=count)).result()
    accepted = loaded.statuses.get(202, 0)
    rig.start_workers(workers)
    # Timed from when the workers have registered with rq (their start-up is not throughput):
    # the writes still unfinished then, over the time to finish them.
    rig.wait_ready(timeout=120)
    began, remaining = time.monotonic(), rig.pending_writes()
    deadline = began + 600
    while rig.pending_writes() and time.monotonic() < deadline:
        time.sleep(0.02)
    seconds = time.monotonic() - began
    drained = rig.pending_writes() == 0
    gateway_rate = remaining / seconds / workers if drained else 0.0
    bare = _bare(fleet, min(count, 2000), workers)
    return {"gateway": round(gateway_rate, 1), "bare": bare["rate"], "writes": accepted, "timed_writes": remaining,
            "seconds": round(seconds, 2),
            "workers": workers, "drained": drained, "quiet_before": quiet, "api_statuses": loaded.statuses,
            "bare_detail": bare}


def _bare(fleet: Fleet, count: int, workers: int) -> dict[str, Any]:
    """The baseline: rq ``SimpleWorker`` processes running jobs that each replay the note POST
    the plugin made, over a kept-alive httpx client, to the same simulators."""
    from rq import Queue, Worker
    from rq.registry import StartedJobRegistry

    from bench import bare_jobs

    rig = fleet.rig
    probe = rig.vendors[PROBE]
    probe.tap.capture_next()
    with rig.client() as client:
        client.post(f"/v1/tickets/{probe.refs[-1]}/replies", json={"text": "capture", "internal": True})
    captured = probe.tap.captured(timeout=30)
    if captured is None:
        raise RuntimeError("no vendor call was captured to replay")
    queue = Queue(bare_jobs.QUEUE, connection=rig.redis)
    headers = [(k.decode(), v.decode()) for k, v in captured.headers if k.lower() not in HOP_HEADERS]
    path = captured.path + (f"?{captured.query.decode()}" if captured.query else "")
    sims = [server.base_url for _sim, server, _ids in fleet.sims]
    with rig.redis.pipeline(transaction=False) as pipe:  # type: ignore[union-attr]
        for i in range(count):
            queue.enqueue(bare_jobs.replay, sims[i % len(sims)], captured.method, path, headers, captured.body,
                          result_ttl=0, pipeline=pipe)
        pipe.execute()
    children = [rig.spawn_other("bare-drain") for _ in range(workers)]
    deadline = time.monotonic() + 600
    while Worker.count(queue=queue) < workers and time.monotonic() < deadline:  # timed from here, as above
        time.sleep(0.02)
    began, remaining = time.monotonic(), queue.count
    started = StartedJobRegistry(queue=queue)
    while (queue.count or started.count) and time.monotonic() < deadline:
        time.sleep(0.02)
    seconds = time.monotonic() - began
    # Burst workers leave once the queue is empty, but about one start in three here hangs in
    # rq's teardown joining its pub/sub thread (rq/rq#1613; rq 3.0, redis-py 8.2), and waiting
    # 30 s for it was a quarter of bench-quick's budget. The figure is taken: stop those.
    lingering = 0
    for child in children:
        try:
            child.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            lingering += 1
            stop(child, timeout=2)
    return {"rate": round(remaining / seconds / workers, 1), "jobs": count, "timed_jobs": remaining,
            "seconds": round(seconds, 2), "workers_stopped_after_draining": lingering}
