"""Figure 4: API cost. Throughput of ``POST /v1/tickets/{ref}/replies`` (the 202 path) against
a bare Litestar endpoint that answers 202 (``bench.bare_app``), both served by uvicorn exactly
as ``gateway serve`` runs (one process, same loop and protocol), on the same cores, driven by
the same load generator (``bench.load``, its own process, 16 keep-alive connections).

The ticket cache is warm: every write goes to a ticket whose facts the API already holds
(``gateway.intake.cached_ticket``), as in steady use; each goes to a different ticket, so each
heads its ticket's chain and is enqueued to rq, as writes are when workers keep up. Workers are
stopped, so the API does not share the cores with them. Rounds alternate (gateway, bare, ...)
so noise from other work on the machine hits both alike. Redis's AOF is rewritten before the
rounds and its own rewrites are held during them (``Rig.aof_rewrites_held``: a rewrite that
landed in one round moved the ratio); the details give the AOF bytes a write appended. CPU
time per request (API process and redis-server) comes from /proc and is steadier than
throughput on a shared machine.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.load import LoadSpec, http_post, start_load
from bench.report import Figure, percentile
from bench.rig import Rig, cpu_seconds, wait_http

CONNECTION = "cw-api"


def tickets_for(quick: bool) -> int:
    # Each write must head its chain: a full run takes about 25,000 writes, a quick one up to
    # 3,700 (two rounds of 1.3 s at 1,400 a second; 1,200 tickets ran out in its second round).
    return 4000 if quick else 30_000


def run(ctx: Context) -> list[Figure]:
    rig = ctx.rig
    vendor = ctx.vendor(CONNECTION)
    rounds = 2 if ctx.quick else 3
    seconds = 1.0 if ctx.quick else 8.0
    warmup = 0.3 if ctx.quick else 1.0
    rig.warm_ticket_cache(vendor)
    bare, bare_port = ctx.shared["bare_api"]  # type: ignore[misc]
    wait_http(f"http://127.0.0.1:{bare_port}/", bare, time.monotonic() + 60)
    body = b'{"text":"Benchmark API cost","internal":true}'
    refs = vendor.refs
    redis_pid = rig.redis_server.process.pid  # type: ignore[union-attr]
    assert rig.api is not None
    # per server: [measured requests, measured seconds, API CPU s, redis CPU s, redis commands, all requests]
    totals = {"gateway": [0, 0.0, 0.0, 0.0, 0, 0], "bare": [0, 0.0, 0.0, 0.0, 0, 0]}
    latencies: dict[str, list[float]] = {"gateway": [], "bare": []}
    statuses: dict[str, dict[int, int]] = {"gateway": {}, "bare": {}}
    offset = 0
    by_name: dict[str, int] = {}
    wrapped: list[int] = []
    with rig.aof_rewrites_held() as aof:
        for round_no in range(rounds):
            for name, port, pid in (("gateway", rig.api_port, rig.api.pid), ("bare", bare_port, bare.pid)):
                # Every request of the gateway's rounds names a ticket no earlier write used.
                requests = [http_post("127.0.0.1", port, f"/v1/tickets/{ref}/replies", body, rig.headers)
                            for ref in refs[offset:] + refs[:offset]]
                cpu_before, redis_before = cpu_seconds(pid), cpu_seconds(redis_pid)
                commands_before = rig.redis.info("stats")["total_commands_processed"]  # type: ignore[union-attr]
                by_name_before = _command_counts(rig)
                if name == "gateway" and round_no == 0:
                    ctx.profile_start()
                result = start_load(LoadSpec("127.0.0.1", port, requests, concurrency=16,
                                             duration=seconds, warmup=warmup)).result()
                if name == "gateway" and round_no == 0:
                    ctx.profile_stop("API cost, POST reply (figure 4)")
                total = totals[name]
                total[0] += result.completed
                total[1] += result.measured_seconds
                total[2] += cpu_seconds(pid) - cpu_before
                total[3] += cpu_seconds(redis_pid) - redis_before
                total[4] += rig.redis.info("stats")["total_commands_processed"] - commands_before  # type: ignore[union-attr]
                total[5] += result.answered
                if name == "gateway":
                    for command, calls in _command_counts(rig).items():
                        by_name[command] = by_name.get(command, 0) + calls - by_name_before.get(command, 0)
                latencies[name] += result.latencies
                for status, n in result.statuses.items():
                    statuses[name][status] = statuses[name].get(status, 0) + n
                if name == "gateway":
                    offset += result.answered + 50
                    if offset >= len(refs):  # later writes would wait behind earlier ones (no rq job)
                        wrapped.append(round_no)
                        offset %= len(refs)
    ctx.shared["bare_api_rss"] = bare.rss_bytes()
    rates = {name: t[0] / t[1] for name, t in totals.items()}
    all_requests = {name: t[5] for name, t in totals.items()}
    details = {
        "rounds": rounds,
        "seconds_per_round": seconds,
        "connections": 16,
        "warm_ticket_cache": True,
        "workers_running": False,
        "statuses": statuses,
        "requests_per_second": {k: round(v, 1) for k, v in rates.items()},
        "latency_ms": {
            name: {"p50": round(percentile(v, 50) * 1000, 2), "p99": round(percentile(v, 99) * 1000, 2)}
            for name, v in latencies.items()
        },
        # The API process is the bottleneck of both, and CPU time per request is steadier than
        # throughput on a shared machine: this is the throughput ratio an idle machine would give.
        "cpu_ratio": round((totals["bare"][2] / max(1, totals["bare"][5])) / max(1e-9, totals["gateway"][2] / max(1, totals["gateway"][5])), 3),
        "api_cpu_ms_per_request": {
            name: round(1000 * t[2] / max(1, all_requests[name]), 3) for name, t in totals.items()
        },
        "redis_cpu_ms_per_request": {
            name: round(1000 * t[3] / max(1, all_requests[name]), 3) for name, t in totals.items()
        },
        "redis_commands_per_request": {
            name: round(t[4] / max(1, all_requests[name]), 1) for name, t in totals.items()
        },
    }
    details["redis_commands_per_gateway_request"] = {
        k: round(v / max(1, all_requests["gateway"]), 2) for k, v in sorted(by_name.items(), key=lambda kv: -kv[1]) if v > 0
    }
    # What the rounds appended to Redis's AOF, whose rewrite they held (``Rig.aof_rewrites_held``).
    details["aof_bytes_per_gateway_request"] = round(aof["aof_bytes"] / max(1, all_requests["gateway"]))
    if wrapped:
        details["ran_out_of_fresh_tickets_in_rounds"] = wrapped
    non_202 = {s: n for s, n in statuses["gateway"].items() if s != 202}
    if non_202:
        details["gateway_non_202"] = non_202
    return [Figure(
        name="api_cost",
        value=round(rates["gateway"], 1),
        unit="req/s",
        baseline=round(rates["bare"], 1),
        baseline_label="bare Litestar 202",
        target=0.5,
        comparison=">=",
        details=details,
    )]


def _command_counts(rig: Rig) -> dict[str, int]:
    """Calls per Redis command so far (INFO commandstats)."""
    stats = rig.redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


# --------------------------------------------------------------------------- durability modes


def run_modes(ctx: Context) -> list[Figure]:
    """``api_cost`` per durability mode: the same POST reply load on an API configured for
    ``fsync`` (Redis fsyncs before each answer) and for ``replicated`` (one replica, WAIT after
    each accept), in rounds alternating with the ``everysec`` API of ``run`` (the rig's), on the
    same Redis. Each figure's baseline is that ``everysec`` rate, from the same rounds."""
    return [_run_mode(ctx, "fsync"), _run_mode(ctx, "replicated")]


def _run_mode(ctx: Context, mode: str) -> Figure:
    import copy

    from gateway.embedded_redis import EmbeddedRedis

    from bench.rig import free_port, stop, to_toml

    rig = ctx.rig
    assert rig.redis is not None and rig.api is not None and rig.redis_server is not None
    rig.redis.flushall()
    vendor = ctx.vendor(CONNECTION)
    replica = None
    if mode == "replicated":
        replica = EmbeddedRedis(rig.workdir / "replica",
                                extra_args=["--replicaof", "127.0.0.1", str(rig.redis_server.port)]).start()
        _wait_replica_up(replica)
    appendfsync = {"everysec": "everysec", mode: "always" if mode == "fsync" else "everysec"}
    rig.redis.config_set("appendfsync", appendfsync[mode])  # the API checks it at start-up
    tables = copy.deepcopy(rig.tables)
    tables["gateway"]["durability"] = mode
    config = rig.workdir / f"gateway-{mode}.toml"
    config.write_text(to_toml(tables))
    port = free_port()
    api = rig.spawn_other("serve", "--config", str(config), "--port", str(port))
    try:
        rig.warm_ticket_cache(vendor)  # while the API starts
        wait_http(f"http://127.0.0.1:{port}/health", api, time.monotonic() + 60)
        rounds = 1 if ctx.quick else 3  # quick: one round a side (the modes carry no target)
        seconds = 1.0 if ctx.quick else 6.0
        body = b'{"text":"Benchmark API cost","internal":true}'
        refs = vendor.refs
        offset = 0
        totals = {name: [0, 0.0, 0.0, 0] for name in ("everysec", mode)}  # requests, seconds, API CPU, answered
        latencies: dict[str, list[float]] = {"everysec": [], mode: []}
        statuses: dict[str, dict[int, int]] = {"everysec": {}, mode: {}}
        with rig.aof_rewrites_held():
            for _ in range(rounds):
                for name, api_port, pid in (("everysec", rig.api_port, rig.api.pid), (mode, port, api.pid)):
                    rig.redis.config_set("appendfsync", appendfsync[name])
                    requests = [http_post("127.0.0.1", api_port, f"/v1/tickets/{ref}/replies", body, rig.headers)
                                for ref in refs[offset:] + refs[:offset]]
                    cpu_before = cpu_seconds(pid)
                    result = start_load(LoadSpec("127.0.0.1", api_port, requests, concurrency=16,
                                                 duration=seconds, warmup=0.3)).result()
                    total = totals[name]
                    total[0] += result.completed
                    total[1] += result.measured_seconds
                    total[2] += cpu_seconds(pid) - cpu_before
                    total[3] += result.answered
                    latencies[name] += result.latencies
                    for status, n in result.statuses.items():
                        statuses[name][status] = statuses[name].get(status, 0) + n
                    offset = (offset + result.answered + 50) % len(refs)
    finally:
        stop(api)
        rig.redis.config_set("appendfsync", "everysec")
        if replica is not None:
            replica.stop()
    rates = {name: t[0] / t[1] if t[1] else 0.0 for name, t in totals.items()}
    details = {
        "rounds": rounds,
        "seconds_per_round": seconds,
        "connections": 16,
        "statuses": statuses,
        "requests_per_second": {k: round(v, 1) for k, v in rates.items()},
        "latency_ms": {
            name: {"p50": round(percentile(v, 50) * 1000, 2), "p99": round(percentile(v, 99) * 1000, 2)}
            for name, v in latencies.items() if v
        },
        "api_cpu_ms_per_request": {name: round(1000 * t[2] / max(1, t[3]), 3) for name, t in totals.items()},
    }
    if mode == "replicated":
        details["replicas"] = 1
    return Figure(
        name=f"api_cost_{mode}",
        value=round(rates[mode], 1),
        unit="req/s",
        baseline=round(rates["everysec"], 1),
        baseline_label="the same API under everysec",
        details=details,
        note=f"durability {mode}",
    )


def _wait_replica_up(replica: object) -> None:
    import redis

    client = redis.Redis.from_url(replica.url)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while client.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            raise RuntimeError("the benchmark's replica did not connect")
        time.sleep(0.05)
