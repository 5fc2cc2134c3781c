"""Worker processes: rq ``SimpleWorker`` on the write queue, plus a housekeeping thread.

A ``SimpleWorker`` runs jobs in its own process (no fork per job: about 3.5x the job rate of
rq's forking worker here); a hung job is ended by rq's job timeout, and a dead process is
restarted by the supervisor (``gateway worker --processes N``). The housekeeping thread
promotes delayed sync steps every 20 ms, renews the leases of the write runs this process holds
every few seconds and sweeps for lost writes every 10 s; write runs come from the fair scheduler
(``gateway.scheduler``), which promotes its own delayed runs.

A worker outlives its Redis (a failover, a restart): when Redis goes away the worker loop ends,
and ``run_worker`` starts it again until Redis answers; the write runs it was cut off in the
middle of are handed back then (``jobs.recover_held``), before it takes new ones.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time

from collections.abc import Callable
from typing import Any

import redis
from rq import SimpleWorker
from rq.exceptions import NoSuchJobError, StopRequested
from rq.job import Job
from rq.worker import WorkerStatus

from gateway import delivery, jobs, scheduler, sync
from gateway.core import WRITE_QUEUE, Gateway, build_gateway
from gateway.embedded_redis import EmbeddedRedis
from gateway.hub import bind

log = logging.getLogger("gateway.worker")


class GatewayWorker(SimpleWorker):
    """rq's ``SimpleWorker`` that takes write runs from the fair scheduler.

    Write runs are rq jobs, but they wait per connection in ``gateway.scheduler`` rather than in
    an rq list: ``dequeue_job_and_maintain_ttl`` asks the scheduler first, then rq's lists in
    order (the ``writes`` list only holds jobs requeued with rq's own tools; then ticket
    fetches, sync pages), and when nothing is ready blocks on the scheduler's bell and those
    lists together, until the next delayed or parked run is due.

    It also runs without rq's pub/sub command channel: processes are managed by ``supervise``
    (signals), and with redis-py 8 that channel's thread times out and logs connection errors
    every few seconds.
    """

    gateway: Gateway | None = None
    # Longest a worker blocks before looking again (heartbeats, shutdown, clock drift).
    MAX_BLOCK = 1.0
    # True while this worker looks for its next job. rq's stop signal raises wherever an idle
    # worker is, and here that can be between the scheduler handing out a run (its slot leased,
    # its id off the connection's list) and the run becoming the job rq executes: the run would
    # sit unserved until its lease ran out and the sweep found its write. A stop request that
    # arrives meanwhile is kept for the loop instead (``_shutdown``), as rq does for a busy worker.
    _dequeuing = False

    def _shutdown(self) -> None:
        if self._dequeuing:
            self._stop_requested = True
            return
        super()._shutdown()

    def execute_job(self, job: Job, queue: Any) -> None:
        super().execute_job(job, queue)
        if queue.name == sync.SYNC_QUEUE:
            _return_freed_heap()

    def subscribe(self) -> None:
        return None

    def unsubscribe(self) -> None:
        return None

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        if self.gateway is None:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        self._dequeuing = True
        try:
            return self._next_job(self.gateway, timeout, max_idle_time)
        finally:
            self._dequeuing = False

    def _next_job(self, gw: Gateway, timeout: int | None, max_idle_time: int | None) -> Any:
        if jobs.HELD:
            # Runs this thread was cut off in the middle of (Redis went away): hand them back
            # first. While Redis is still away this raises, and ``run_worker`` tries again.
            jobs.recover_held(gw)
        # rq's own lists still count: ticket fetches and sync pages, and a write job that an
        # operator requeued from rq's failed registry (it finds its write's state and acts on it).
        others = list(self._ordered_queues)
        other_keys = [q.key for q in others]
        by_key = {q.key: q for q in others}
        self.set_state(WorkerStatus.IDLE)
        idle_since = time.monotonic()
        last_beat = 0.0
        while True:
            if self._stop_requested:
                return None  # a stop arrived while looking: rq's loop ends on no job
            if time.monotonic() - last_beat > 5.0:
                last_beat = time.monotonic()
                self.heartbeat()
                if self.should_run_maintenance_tasks:
                    self.run_maintenance_tasks()
            picked = gw.scheduler.pick()
            if picked.run_id is not None:
                job = jobs.run_job(gw, picked.run_id, picked.connection)
                if job is not None:
                    return job, gw.queue
                continue  # waiting for its rate slot in the scheduler, or not a run
            if others:
                found = self.queue_class.dequeue_any(others, None, connection=self.connection,
                                                     job_class=self.job_class, serializer=self.serializer)
                if found is not None:
                    return found
            if timeout is None:  # burst: nothing is ready now
                return None
            waited = time.monotonic() - idle_since
            if max_idle_time is not None and waited >= max_idle_time:
                return None
            block = self.MAX_BLOCK if picked.wake_in is None else min(self.MAX_BLOCK, picked.wake_in)
            popped = gw.scheduler.wait_for_work(block, other_keys)
            if popped is not None and popped[0] in by_key:
                job = self._fetch(popped[1])
                if job is not None:
                    return job, by_key[popped[0]]

    def _fetch(self, job_id: str) -> Job | None:
        try:
            return self.job_class.fetch(job_id, connection=self.connection, serializer=self.serializer)
        except NoSuchJobError:
            return None


def _return_freed_heap() -> None:
    """Give the C heap's free memory back to the system after a sync page.

    A page is up to a thousand tickets: its JSON, decoded records and store entries are freed
    when the job ends, but glibc keeps the freed heap (its trim threshold rises with each large
    buffer freed), so a worker's resident size grew by the largest page it had read, 3-5 MB
    after a backfill, and stayed there. ``malloc_trim`` costs a few milliseconds when it has
    much to give back and ~0.1 ms when not, against the hundreds a page takes.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc: nothing to call
        return None


class Housekeeping(threading.Thread):
    def __init__(self, gw: Gateway, *, tick: float = 0.02, sweep_every: float = 10.0, stale_after: float = 60.0) -> None:
        super().__init__(name="gateway-housekeeping", daemon=True)
        self.gw = gw
        self.tick = tick
        self.sweep_every = sweep_every
        self.stale_after = stale_after
        self.stopping = threading.Event()

    def run(self) -> None:
        last_sweep = last_keepalive = last_renewal = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() - last_renewal > scheduler.RENEW_SECONDS:
                    last_renewal = time.monotonic()
                    jobs.renew_held(self.gw)
                sync.promote_due(self.gw)
                delivery.promote_due(self.gw)
                if time.monotonic() - last_keepalive > 5.0:
                    last_keepalive = time.monotonic()
                    sync.keep_alive(self.gw)
                if time.monotonic() - last_sweep > self.sweep_every:
                    last_sweep = time.monotonic()
                    revived = jobs.sweep(self.gw, self.stale_after)
                    if revived:
                        log.warning("re-enqueued %d writes whose jobs were lost", revived)
            except Exception:  # Redis restarting: keep trying
                log.exception("housekeeping failed; retrying")
                self.stopping.wait(1.0)
            self.stopping.wait(self.tick)


def run_worker(gw: Gateway, *, burst: bool = False, name: str | None = None) -> None:
    """Run one worker in this process until stopped (or until idle, with ``burst``)."""
    bind(gw)
    housekeeping = Housekeeping(gw)
    housekeeping.start()
    worker: GatewayWorker | None = None
    try:
        for attempt in itertools.count():
            try:
                # Order matters: rq takes from the first non-empty queue, so writes always go first.
                # (rq names the worker in Redis as it starts: that too waits for Redis to answer.)
                worker = GatewayWorker([WRITE_QUEUE, delivery.QUEUE, sync.EVENTS_QUEUE, sync.SYNC_QUEUE],
                                       connection=gw.redis, name=f"{name}-{attempt}" if name and attempt else name)
                worker.gateway = gw
                worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
                if burst:
                    return
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                # Redis went away mid-job (rq's own bookkeeping raised): keep this process
                # serving once Redis is back; the runs it was cut off in are handed back then.
                log.warning("lost Redis while working; starting again in 1 s", exc_info=True)
            if _stopping(worker):
                return  # asked to stop (SIGTERM/SIGINT): a missing Redis is no reason to stay
            # rq's loop also ends, without raising, on an error it does not handle (Redis gone
            # while it filed a job): this process serves on, as after a raise.
            try:
                time.sleep(1.0)
            except StopRequested:  # SIGTERM now: the last worker's handler says stop
                return
            if _stopping(worker):
                return
    finally:
        housekeeping.stopping.set()


def _stopping(worker: GatewayWorker | None) -> bool:
    return worker is not None and getattr(worker, "_shutdown_requested_date", None) is not None


def _child(config_path: str | None, index: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started: list[EmbeddedRedis] = []  # a server this child had to start lives as long as it
    gw = build_gateway(config_path, started, service="msp-gateway-worker")
    run_worker(gw, name=f"gateway-{os.getpid()}-{index}")


def supervise(config_path: str | None, processes: int) -> None:
    """Keep ``processes`` worker processes alive, restarting any that die."""
    ctx = multiprocessing.get_context("spawn")
    children: dict[int, multiprocessing.process.BaseProcess] = {}
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping.is_set():
        for index in range(processes):
            proc = children.get(index)
            if proc is None or not proc.is_alive():
                if proc is not None:
                    log.warning("worker %d exited with %s; restarting", index, proc.exitcode)
                proc = ctx.Process(target=_child, args=(config_path, index), daemon=False)
                proc.start()
                children[index] = proc
        stopping.wait(0.5)
    for proc in children.values():
        proc.terminate()
    for proc in children.values():
        proc.join(timeout=10)
