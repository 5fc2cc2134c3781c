"""Running the gateway's background work in the test's own process, until it is done.

A real deployment runs ``gateway worker`` processes; tests and benchmarks call these instead,
so each test decides when the queued work runs and can assert on what it did.
"""

from __future__ import annotations

import time

import rq

from gateway import delivery, jobs, sync
from gateway.hub import WRITE_QUEUE, Hub, bind
from gateway.worker import GatewayWorker


def drain(gw: Hub, *, timeout: float = 60.0, idle_grace: float = 0.0) -> bool:
    """Run every write to completion in this process.

    Loops: run what the scheduler and the events queue have ready (writes, then the ticket
    fetches they trigger), sleep until the next delayed or parked run. Sync polling is not run
    here. Returns True when no write is left unfinished, False on timeout.
    """
    bind(gw)
    worker = GatewayWorker([WRITE_QUEUE, sync.EVENTS_QUEUE], connection=gw.redis)
    worker.gateway = gw
    events = rq.Queue(sync.EVENTS_QUEUE, connection=gw.redis)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
        wait = gw.scheduler.next_due_in()
        if gw.writes.active_count() == 0 and events.count == 0 and not gw.scheduler.has_ready():
            return True
        if wait is None:
            jobs.sweep(gw, older_than=max(idle_grace, 0.0))
            wait = 0.05
        time.sleep(min(max(wait, 0.001), 0.25, max(0.0, deadline - time.monotonic())))
    return False


def sync_until_idle(gw: Hub, connection: str, *, max_steps: int = 100_000) -> None:
    """Run a connection's sync in this process until its pull is done.

    Waits out rate-limit deferrals rather than scheduling them."""
    syncer = sync.Syncer(gw)
    for _ in range(max_steps):
        outcome = syncer.step(connection)
        # This loop is the scheduler here: drop the step it just scheduled.
        for member in gw.redis.zrange(sync.DELAYED, 0, -1):
            if member.decode().startswith(f"sync|{connection}|"):
                gw.redis.zrem(sync.DELAYED, member)
        rq.Queue(sync.SYNC_QUEUE, connection=gw.redis).empty()
        if outcome in {"backfilled", "polled"}:
            return
        if outcome in {"deferred", "error"}:
            time.sleep(0.05)
    raise RuntimeError(f"sync of {connection} did not settle")


def run_deliveries(gw: Hub, *, timeout: float = 30.0) -> bool:
    """Run queued and due deliveries in this process until none is left: the worker's own
    loop, on the deliveries queue only. Returns False on timeout."""
    bind(gw)
    worker = GatewayWorker([delivery.QUEUE], connection=gw.redis)
    queue = rq.Queue(delivery.QUEUE, connection=gw.redis)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery.promote_due(gw)
        worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
        if queue.count == 0 and gw.redis.zcard(delivery.DELAYED) == 0:
            return True
        time.sleep(0.02)
    return False
