"""Figure 7: memory. Resident size (VmRSS) of the API process and of each worker process with
the tickets synced (100,000 of them in the queue's three PSAs in a full run, 1,800 with
``--quick``, plus the other figures' connections), after they have carried the other figures'
load, against the same framework doing nothing of ours: a bare Litestar app in the same uvicorn
setup (after figure 4's load) for the API, and an idle rq ``SimpleWorker`` for the workers.
Target (issue 12): 1.5 times each baseline.

The tickets themselves live in Redis, not in these processes, so a third line gives what the
ticket store takes in Redis per ticket (Redis's memory with the store, less its memory once the
store's keys are deleted) against the SQLite file of the same tickets with its indexes (figure
5's baseline), per ticket. Target: 1.5 times SQLite. Figure 5b (``fig_queue.run_growth``) gives
the same at 10,000, 100,000 and 1,000,000 tickets.
"""

from __future__ import annotations

from bench.context import Context
from bench.report import Figure

MB = 1024 * 1024


def _store_count(ctx: Context) -> int:
    return ctx.rig.prep_gateway().store.count("bench")


def measure_workers(ctx: Context) -> None:
    """Call while the workers still run, after they have done their work."""
    rig = ctx.rig
    ctx.shared["worker_rss"] = [child.rss_bytes() for child in rig.workers if child.process.poll() is None]
    ctx.shared["worker_tickets"] = _store_count(ctx)
    bare = ctx.shared.get("bare_worker")
    if bare is not None:
        ctx.shared["bare_worker_rss"] = bare.rss_bytes()  # type: ignore[attr-defined]


def measure_api(ctx: Context) -> None:
    """Call after the queue has been read (figure 5), before Redis is emptied."""
    rig = ctx.rig
    if rig.api is not None:
        ctx.shared["api_rss_synced"] = rig.api.rss_bytes()
    ctx.shared["api_tickets"] = _store_count(ctx)
    ctx.shared["redis_used_memory"] = rig.redis.info("memory")["used_memory"]  # type: ignore[union-attr]


def measure_store(ctx: Context) -> None:
    """Call after ``measure_api``: deletes the ticket store and measures what that freed."""
    from bench.fig_queue import drop_store

    rig = ctx.rig
    before = rig.settled_used_memory()
    ctx.shared["store_keys"] = drop_store(rig)
    ctx.shared["store_bytes"] = before - rig.settled_used_memory()  # the indexes are freed in the background


def run(ctx: Context) -> list[Figure]:
    rig = ctx.rig
    figures = []
    bare_api = ctx.shared.get("bare_api_rss")
    if rig.api is not None and bare_api:
        synced = ctx.shared.get("api_rss_synced")
        after_writes = rig.api.rss_bytes()
        figures.append(Figure(
            name="memory_api",
            value=round(max(synced or 0, after_writes) / MB, 1),  # type: ignore[call-overload]
            unit="MB",
            baseline=round(bare_api / MB, 1),  # type: ignore[operator]
            baseline_label="bare Litestar under uvicorn",
            target=1.5,
            details={
                "after_queue_reads_mb": round(synced / MB, 1) if synced else None,  # type: ignore[operator]
                "after_api_cost_mb": round(after_writes / MB, 1),
                "tickets_synced": ctx.shared.get("api_tickets"),
            },
        ))
    workers = ctx.shared.get("worker_rss")
    bare_worker = ctx.shared.get("bare_worker_rss")
    if workers and bare_worker:
        figures.append(Figure(
            name="memory_worker",
            value=round(max(workers) / MB, 1),  # type: ignore[arg-type]
            unit="MB",
            note=f"largest of {len(workers)} workers",  # type: ignore[arg-type]
            baseline=round(bare_worker / MB, 1),  # type: ignore[operator]
            baseline_label="idle rq SimpleWorker",
            target=1.5,
            details={"workers_mb": [round(w / MB, 1) for w in workers],  # type: ignore[union-attr]
                     "tickets_synced": ctx.shared.get("worker_tickets")},
        ))
    store_bytes = ctx.shared.get("store_bytes")
    sqlite_bytes = ctx.shared.get("sqlite_bytes")
    tickets = ctx.shared.get("store_tickets")
    if store_bytes and sqlite_bytes and tickets:
        figures.append(Figure(
            name="memory_store",
            value=round(store_bytes / tickets),  # type: ignore[operator]
            unit="B/ticket",
            note=f"Redis, {tickets} tickets synced",
            baseline=round(sqlite_bytes / tickets),  # type: ignore[operator]
            baseline_label="SQLite file of the same tickets with its indexes",
            target=1.5,
            details={"store_bytes": store_bytes, "store_keys": ctx.shared.get("store_keys"),
                     "redis_used_memory_bytes": ctx.shared.get("redis_used_memory"),
                     "sqlite_bytes": sqlite_bytes, "tickets": tickets},
        ))
    return figures
