"""The benchmark rig: a redis-server, vendor simulators, the API and worker processes.

Everything runs on 127.0.0.1. Simulators are served from threads of the benchmark process,
each behind a ``VendorTap`` that times the vendor calls; the API (``gateway serve``) and the
workers (``gateway worker``, one process each) are child processes started through
``bench.proc`` from a TOML config that ``gateway.testing.harness`` writes, as an operator's
would be. A second, in-process ``Gateway`` with unlimited budgets prepares fixtures (warming
the API's ticket cache) without spending the measured connections' budgets.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from rq import Queue, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError

from bench.tap import VendorTap
from gateway import intake, keys, scheduler
from gateway.core import Gateway
from gateway.embedded_redis import EmbeddedRedis
from gateway.models import TicketQuery
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, settings_from, to_toml, workspace_config
from gateway.testing.simulator import Faults, RunningServer, serve_asgi_in_thread

REPO = Path(__file__).resolve().parent.parent
RQ_ERRORS = (InvalidJobOperation, NoSuchJobError)
UNLIMITED = [{"requests": 100_000, "per_seconds": 1}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Vendor:
    """One connection and the simulator behind it."""

    connection: str
    sim: Any
    tap: VendorTap
    server: RunningServer
    table: dict[str, Any]
    refs: list[str] = field(default_factory=list)

    def set_faults(self, **faults: Any) -> None:
        self.sim.set_faults(Faults(**faults))


@dataclass
class Child:
    role: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_bytes(self) -> int:
        return rss_bytes(self.process.pid)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Rig:
    def __init__(self, workdir: Path, *, profile_dir: Path | None = None) -> None:
        self.workdir = workdir
        self.profile_dir = profile_dir
        self.redis_server: EmbeddedRedis | None = None
        self.redis: redis.Redis | None = None
        self.vendors: dict[str, Vendor] = {}
        self.key = new_api_key()
        self.config_path = workdir / "gateway.toml"
        self.tables: dict[str, Any] = {}
        self.api: Child | None = None
        self.api_port = 0
        self.workers: list[Child] = []
        self.others: list[Child] = []
        self._prep: Gateway | None = None

    # -- redis and simulators ---------------------------------------------------------------

    def start_redis(self) -> None:
        # The embedded Redis as the gateway starts it under durability "everysec" (AOF on, fsync
        # every second); figure 4 also measures the API under "fsync" and "replicated".
        self.redis_server = EmbeddedRedis(self.workdir / "redis").start()
        os.environ["REDIS_URL"] = self.redis_server.url
        self.redis = redis.Redis.from_url(self.redis_server.url)

    def add_vendor(self, connection: str, *, rate: int | None, tickets: int = 0, **overrides: Any) -> Vendor:
        """A ConnectWise simulator (demo data plus ``tickets`` open tickets) and its connection,
        limited to ``rate`` calls a second (unlimited for the benchmark when ``None``)."""
        from gateway_connectwise.simulator import ConnectWiseSimulator

        sim = ConnectWiseSimulator()
        sim.seed_demo()
        vendor = self.add_sim(connection, sim, rate=rate, poll_overlap_seconds=5.0, **overrides)
        if tickets:
            vendor.refs = [f"{connection}:{i}" for i in add_tickets(sim, tickets)]
        return vendor

    def add_sim(self, connection: str, sim: Any, *, rate: int | None, **overrides: Any) -> Vendor:
        """Serve any vendor simulator behind a ``VendorTap`` and configure its connection."""
        tap = VendorTap(sim.app)
        server = serve_asgi_in_thread(tap)
        sim.base_url = server.base_url
        limit = overrides.pop("rate_limit", None) or ([{"requests": rate, "per_seconds": 1}] if rate else UNLIMITED)
        table = connection_config(connection, sim.demo_connection(server.base_url), rate_limit=limit, **overrides)
        vendor = Vendor(connection, sim, tap, server, table)
        self.vendors[connection] = vendor
        return vendor

    def write_config(self) -> None:
        self.tables = {
            # Deliveries retry fast: the faults figure must finish in minutes, not hours.
            "gateway": {"data_dir": str(self.workdir / "data"), "delivery_retry_base_seconds": 0.02,
                        "events_heartbeat_seconds": 2.0, "durability": "everysec"},
            "workspaces": [workspace_config(
                "bench", [v.table for v in self.vendors.values()], {self.key: ALL_SCOPES},
            )],
        }
        self.config_path.write_text(to_toml(self.tables))

    @contextlib.contextmanager
    def aof_rewrites_held(self) -> Iterator[dict[str, int]]:
        """Rewrite Redis's append-only file now, and hold its own rewrites while the block runs.

        Redis rewrites the AOF by itself, in a forked child, once the file has doubled since
        the last rewrite and is past 64 MB: about a second of a core at the sizes a benchmark
        run reaches. Figure 4 compares rounds of the gateway with rounds of a bare endpoint that
        does not use Redis. In a quick run watched with INFO persistence, the first rewrite
        started in the first gateway round and was still running in the bare round after it,
        so the figure depended on where the rewrite landed. The dict the block gets says how
        many bytes it appended (``aof_bytes``): the rewrite work it put off is reported.
        """
        assert self.redis is not None
        client = self.redis
        if not client.info("persistence").get("aof_enabled"):
            yield {"aof_bytes": 0}
            return
        setting = "auto-aof-rewrite-percentage"
        previous = client.config_get(setting)[setting]
        if not client.info("persistence")["aof_rewrite_in_progress"]:
            try:
                client.bgrewriteaof()
            except redis.ResponseError:  # one was scheduled meanwhile
                pass
        self.wait_settled()
        client.config_set(setting, 0)
        appended = {"aof_bytes": 0}
        before = int(client.info("persistence")["aof_current_size"])
        try:
            yield appended
        finally:
            appended["aof_bytes"] = int(client.info("persistence")["aof_current_size"]) - before
            client.config_set(setting, previous)

    def wait_settled(self, timeout: float = 300.0) -> None:
        """Wait until Redis frees nothing in the background (keys an ``UNLINK`` or an
        asynchronous ``FLUSHALL`` left) and runs no AOF rewrite, nor has one due: work of its
        own that shares the CPUs with a measurement, and memory that ``used_memory`` counts
        (a large sorted set is freed in a background thread; a rewrite's buffer holds every
        write made since it began)."""
        client = self.redis
        assert client is not None
        deadline = time.monotonic() + timeout
        while True:
            memory, persistence = client.info("memory"), client.info("persistence")
            if not (int(memory.get("lazyfree_pending_objects", 0)) or persistence.get("aof_rewrite_in_progress")
                    or persistence.get("aof_rewrite_scheduled")):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis was still freeing keys or rewriting its AOF after {timeout:.0f} s")
            time.sleep(0.05)

    def settled_used_memory(self) -> int:
        """Redis's ``used_memory`` once nothing it counts is in flight (``wait_settled``):
        caught at one end of a difference and not the other, either moves ``memory_store``."""
        self.wait_settled()
        assert self.redis is not None
        return int(self.redis.info("memory")["used_memory"])

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, role: str, *args: str) -> Child:
        env = os.environ.copy()
        if self.profile_dir:
            env["BENCH_PROFILE_DIR"] = str(self.profile_dir)
        log = self.workdir / f"{role}-{len(self.workers) + len(self.others)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.proc", role, *args],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        return Child(role, process, log)

    def start_api(self) -> None:
        self.api_port = free_port()
        self.api = self._spawn("serve", "--config", str(self.config_path), "--port", str(self.api_port))

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            self.workers.append(self._spawn("worker", "--config", str(self.config_path)))

    def spawn_other(self, role: str, *args: str) -> Child:
        child = self._spawn(role, *args)
        self.others.append(child)
        return child

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for the API's /health and for every worker to register with rq."""
        deadline = time.monotonic() + timeout
        if self.api:
            wait_http(f"http://127.0.0.1:{self.api_port}/health", self.api, deadline)
        while len(self.workers) and Worker.count(connection=self.redis) < len(self.workers):
            for child in self.workers:
                if child.process.poll() is not None:
                    raise RuntimeError(f"a worker exited: see {child.log}")
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not register in time")
            time.sleep(0.05)

    def stop_workers(self) -> None:
        stop_all(self.workers)
        self.workers.clear()

    # -- API calls --------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers=self.headers, timeout=30.0)

    # -- fixtures ---------------------------------------------------------------------------

    def prep_gateway(self) -> Gateway:
        """A gateway in this process whose connections have no budget to speak of."""
        if self._prep is None:
            tables = copy.deepcopy(self.tables)
            for workspace in tables["workspaces"]:
                for conn in workspace["connections"]:
                    conn["rate_limit"] = UNLIMITED
            assert self.redis is not None
            self._prep = Gateway(settings_from(tables), self.redis, service="msp-gateway-bench")
        return self._prep

    def warm_ticket_cache(self, vendor: Vendor, refs: list[str] | None = None) -> int:
        """Put the vendor's tickets in the API's ticket cache, as a first read of each would.

        Uses the plugin's list hook (a few pages instead of one read per ticket), then clears
        the connection's rate-limit log so the measured connection starts with its whole budget.
        """
        gw = self.prep_gateway()
        wanted = set(refs if refs is not None else vendor.refs)
        cursor = None
        warmed = 0
        with self.redis.pipeline(transaction=False) as pipe:  # type: ignore[union-attr]
            while True:
                page = gw.call(vendor.connection, "gateway_ticket_list",
                               query=TicketQuery(open_only=True, page_size=1000, cursor=cursor))
                for ticket in page.tickets:
                    if ticket.ref in wanted:
                        intake.TICKETS.put(pipe, keys.ticket_cache(gw.connection(vendor.connection).workspace, ticket.ref), ticket)
                        warmed += 1
                if not page.next_cursor or not page.tickets:
                    break
                cursor = page.next_cursor
            pipe.execute()
        self.redis.delete(*[k for k in self.redis.scan_iter(f"rl:{vendor.connection}:*")] or ["-"])  # type: ignore[union-attr]
        return warmed

    def wait_synced(self, timeout: float = 300.0) -> bool:
        """Wait until the workers' sync has backfilled every connection (the steady state the
        figures measure, rather than a first backfill competing with them)."""
        from gateway import sync

        gw = self.prep_gateway()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(sync.load_state(gw, c).backfill_done for c in sync.synced_connections(gw)):
                return True
            time.sleep(0.1)
        return False

    def wait_quiet(self, timeout: float = 30.0) -> bool:
        """Wait until no write or ticket fetch is queued (what one figure leaves behind must not
        be measured by the next)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queued = int(self.redis.llen("rq:queue:events")) + scheduled_runs(self.redis)  # type: ignore[arg-type,union-attr]
            fetches = sum(1 for m in self.redis.zrange("sync:delayed", 0, -1) if m.startswith((b"fetch|", b"refresh|")))  # type: ignore[union-attr]
            if not queued and not fetches and not self.pending_writes():
                return True
            time.sleep(0.1)
        return False

    def drop_fetches(self, connection: str) -> int:
        """Drop the ticket fetches queued for ``connection`` (the refreshes its landed writes
        asked for); return how many. Used between figures, never inside one."""
        dropped = 0
        dropped += int(self.redis.scard(f"sync:{connection}:refresh"))  # type: ignore[union-attr]
        self.redis.delete(f"sync:{connection}:refresh", f"sync:{connection}:refreshing")  # type: ignore[union-attr]
        prefix = f"fetch|{connection}|".encode()
        for member in self.redis.zrange("sync:delayed", 0, -1):  # type: ignore[union-attr]
            if member.startswith(prefix):
                dropped += int(self.redis.zrem("sync:delayed", member))  # type: ignore[union-attr]
        events = Queue("events", connection=self.redis)
        for job in events.get_jobs():
            if job.args and job.args[0] == connection:
                if not events.remove(job.id):  # a worker took it meanwhile
                    continue
                dropped += 1
                try:
                    job.delete(remove_from_queue=False)
                except RQ_ERRORS:
                    pass
        return dropped

    def pending_writes(self) -> int:
        return int(self.redis.zcard("writes:active"))  # type: ignore[union-attr]

    # -- profiles -----------------------------------------------------------------------------

    def profile_signal(self, sig: int) -> None:
        if not self.profile_dir:
            return
        for child in [c for c in [self.api, *self.workers] if c is not None]:
            if child.process.poll() is None:
                os.kill(child.pid, sig)

    # -- teardown -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything the rig started. Its figures are taken by now: workers are killed
        rather than asked to stop (a warm stop waits out the worker's block on the scheduler's
        bell, a second a process, three times in a quick run)."""
        for child in [*self.workers, *self.others]:
            if child.process.poll() is None:
                child.process.kill()
        stop_all([*self.workers, *self.others, *([self.api] if self.api else [])])
        self.workers.clear()
        self.others.clear()
        self.api = None
        if self._prep is not None:
            self._prep.close()
            self._prep = None
        stop_servers(vendor.server for vendor in self.vendors.values())
        if self.redis is not None:
            self.redis.close()
        if self.redis_server is not None:
            self.redis_server.stop()


def stop(child: Child, timeout: float = 10.0) -> None:
    if child.process.poll() is None:
        child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait(timeout=5)


def scheduled_runs(client: redis.Redis) -> int:
    """Write runs waiting in the fair scheduler, over every connection."""
    keys = list(client.scan_iter(f"{scheduler.PREFIX}list:*", count=1000))
    if not keys:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.llen(key)
        return sum(pipe.execute())


class QueueWatch:
    """Samples the write runs waiting in the scheduler in the background (``with QueueWatch(rig):``)."""

    def __init__(self, rig: Rig, interval: float = 0.25) -> None:
        self.rig = rig
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        began = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((round(time.monotonic() - began, 2), scheduled_runs(client)))
            self._stop.wait(self.interval)
        client.close()

    def __enter__(self) -> QueueWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def summary(self) -> dict[str, Any]:
        lengths = [n for _, n in self.samples]
        busy = [t for t, n in self.samples if n > 20]
        return {
            "max_queued_jobs": max(lengths, default=0),
            "seconds_with_over_20_queued": round(len(busy) * self.interval, 2),
        }


def stop_servers(servers: Iterable[RunningServer]) -> None:
    """Stop simulator servers together rather than one after another."""
    servers = list(servers)
    for server in servers:
        server.begin_stop()
    for server in servers:
        server.stop()


def stop_all(children: list[Child], timeout: float = 10.0) -> None:
    """SIGTERM every child at once (rq finishes the job in hand), then wait; kill stragglers."""
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        stop(child, timeout)


def wait_http(url: str, child: Child, deadline: float) -> None:
    while True:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.role} exited: see {child.log}\n{child.log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.role} did not answer {url} in time")
        time.sleep(0.05)


def add_tickets(sim: Any, count: int, *, prefix: str = "Bench ticket") -> list[str]:
    """Open tickets in the simulator (its ``add_ticket``), spread over its demo companies."""
    from gateway_connectwise.simulator import seed

    return [
        sim.add_ticket(f"{prefix} {i}", company_id=seed.COMPANIES[i % len(seed.COMPANIES)][0])
        for i in range(count)
    ]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
