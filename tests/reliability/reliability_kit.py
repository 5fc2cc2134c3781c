"""What the reliability suites share: the three PSA simulators with a commit recorder, the
gateway's API and workers as real processes, and counting effects at the simulators.

- ``CommitRecorder`` sits between a simulator's fault switches and its routes, so it sees
  every write the "vendor" committed, including those whose answer the fault layer dropped.
- ``Fleet`` runs ``gateway serve`` and ``gateway worker`` as subprocesses (workers must be
  processes to be SIGKILLed), keeps their output in files for the secret grep, and ends only
  the processes it started, by pid.
- ``count_effects`` reads the simulators' own records in vendor terms: notes and time entries
  by a unique marker in their text, new tickets by the external reference the dedup key
  became, status changes by the committed requests that set a ticket's status.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from gateway_autotask.simulator import AutotaskSimulator
from gateway_connectwise.simulator import ConnectWiseSimulator
from gateway_halopsa.simulator import HaloSimulator

from gateway.testing.harness import connection_config, to_toml, workspace_config
from gateway.testing.simulator import RunningServer, Simulator

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PSA_SIMULATORS: dict[str, type[Simulator]] = {
    "cw": ConnectWiseSimulator,
    "at": AutotaskSimulator,
    "halo": HaloSimulator,
}


# --------------------------------------------------------------------------- the vendor side


class CommitRecorder:
    """ASGI middleware: keeps ``(method, path, json body)`` of every write answered 2xx."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.entries: list[tuple[str, str, Any]] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        status: list[int] = []

        async def recording_receive() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def recording_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, recording_receive, recording_send)
        finally:
            if status and 200 <= status[0] < 300:
                raw = b"".join(chunks)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                with self.lock:
                    self.entries.append((scope["method"], scope["path"], body))

    def snapshot(self) -> list[tuple[str, str, Any]]:
        with self.lock:
            return list(self.entries)


def status_set_on(vendor: str, method: str, path: str, body: Any) -> str | None:
    """The ticket whose status a committed request set, in each vendor's own contract."""
    if vendor == "connectwise" and method == "PATCH":
        match = re.search(r"/service/tickets/(\d+)$", path)
        if match and isinstance(body, list) and any(
            isinstance(op, dict) and str(op.get("path", "")).strip("/") in {"status", "status/id"} for op in body
        ):
            return match.group(1)
    if vendor == "autotask" and method == "PATCH" and path.rstrip("/").lower().endswith("/tickets"):
        if isinstance(body, dict) and "status" in body:
            return str(body.get("id"))
    if vendor == "halopsa" and method == "POST" and path.rstrip("/").lower().endswith("/api/actions"):
        items = body if isinstance(body, list) else [body]
        for item in items:
            if isinstance(item, dict) and item.get("new_status") not in (None, "", 0):
                return str(item.get("ticket_id"))
    return None


@dataclass
class SimHandle:
    """One served PSA simulator and the connection id the gateway knows it by."""

    connection: str
    sim: Simulator
    server: RunningServer
    recorder: CommitRecorder

    @property
    def vendor(self) -> str:
        return self.sim.vendor

    def stop(self) -> None:
        self.server.stop()
        stop_webhooks = getattr(self.sim, "stop_webhooks", None)
        if callable(stop_webhooks):
            stop_webhooks()


def serve_psas(names: list[str] | None = None) -> list[SimHandle]:
    """Seed and serve the PSA simulators (ConnectWise, Autotask, HaloPSA) with recorders."""
    handles = []
    for name in names or list(PSA_SIMULATORS):
        sim = PSA_SIMULATORS[name]()
        if hasattr(sim, "rate_limit_requests"):
            # HaloPSA's own 300-per-5-minutes window would make a 2,000-write run take an
            # hour; the injected 429s (and the connection's configured limit) stand in for it.
            sim.rate_limit_requests = 1_000_000
        sim.seed_demo()
        faults_layer = sim.app  # FaultMiddleware around the vendor routes
        recorder = CommitRecorder(faults_layer.app)
        faults_layer.app = recorder
        handles.append(SimHandle(name, sim, sim.serve_in_thread(), recorder))
    return handles


def secrets_of(handles: list[SimHandle]) -> list[str]:
    """Every secret value the gateway is configured with for these simulators."""
    values = []
    for h in handles:
        conn = h.sim.demo_connection(h.server.base_url)
        values += [str(v) for v in conn.get("secrets", {}).values()]
        if conn.get("webhook_secret"):
            values.append(str(conn["webhook_secret"]))
    return [v for v in values if len(v) >= 4]


# --------------------------------------------------------------------------- the gateway side


def gateway_tables(
    handles: list[SimHandle],
    keys: dict[str, list[str]],
    *,
    workspace: str = "chaos",
    timeout_seconds: float = 1.0,
    requests_per_second: int = 500,
    gateway: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Settings tables: one workspace with a connection per simulator; secrets in env vars."""
    connections = [
        connection_config(
            h.connection, h.sim.demo_connection(h.server.base_url),
            timeout_seconds=timeout_seconds,
            rate_limit=[{"requests": requests_per_second, "per_seconds": 1}],
        )
        for h in handles
    ]
    return {
        # Test Redis servers fsync once a second; tests/test_durability.py covers "fsync".
        "gateway": {"retry_base_seconds": 0.2, "max_attempts": 8, "durability": "everysec", **(gateway or {})},
        "workspaces": [workspace_config(workspace, connections, keys)],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path


@dataclass
class Fleet:
    """The gateway's API and workers as subprocesses sharing one config and one Redis."""

    config: Path
    redis_url: str
    log_dir: Path
    workers: dict[int, Proc] = field(default_factory=dict)
    api: Proc | None = None
    api_url: str = ""
    started: Counter = field(default_factory=Counter)
    kills: int = 0
    crashes: int = 0
    crashed: list[str] = field(default_factory=list)  # "log name: exit code" of each self-exit

    def _spawn(self, name: str, args: list[str]) -> Proc:
        self.started[name] += 1
        log = self.log_dir / f"{name}-{self.started[name]}.log"
        env = {**os.environ, "REDIS_URL": self.redis_url, "PYTHONUNBUFFERED": "1"}
        env.pop("GATEWAY_CONFIG", None)
        handle = open(log, "wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(self.config), *args],
            stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        handle.close()
        return Proc(name, popen, log)

    def start_api(self) -> str:
        port = free_port()
        self.api = self._spawn("api", ["serve", "--port", str(port)])
        self.api_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.api.popen.poll() is not None:
                raise RuntimeError(f"the API exited: {self.api.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200:
                    return self.api_url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the API did not start")

    def start_worker(self, index: int) -> None:
        self.workers[index] = self._spawn(f"worker{index}", ["worker"])

    def start_workers(self, count: int) -> None:
        for index in range(count):
            self.start_worker(index)

    def kill_worker(self, index: int) -> None:
        """SIGKILL one worker (by its pid) and start a new one in its place."""
        proc = self.workers[index]
        if proc.popen.poll() is None:
            os.kill(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(timeout=10)
            self.kills += 1
        self.start_worker(index)

    def revive_crashed(self) -> None:
        """Restart workers that exited by themselves (counted: none should)."""
        for index, proc in list(self.workers.items()):
            if proc.popen.poll() is not None:
                self.crashes += 1
                self.crashed.append(f"{proc.log.name}: exit {proc.popen.returncode}")
                self.start_worker(index)

    def procs(self) -> list[Proc]:
        return [p for p in [self.api, *self.workers.values()] if p is not None]

    def stop(self) -> None:
        for proc in self.procs():
            if proc.popen.poll() is None:
                os.kill(proc.popen.pid, signal.SIGTERM)
        for proc in self.procs():
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(timeout=5)

    def outputs(self) -> str:
        """Every line every process of this fleet ever printed (all incarnations)."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


def write_config(tables: dict[str, Any], path: Path) -> Path:
    path.write_text(to_toml(tables))
    return path


# --------------------------------------------------------------------------- the workload


@dataclass
class Planned:
    """One write the load generator sends, and how to find its effect at the vendor."""

    marker: str
    kind: str  # reply | note | status | time_entry | create | reply_status
    handle: SimHandle
    path: str
    body: dict[str, Any]
    key: str
    ticket: str | None = None
    status_id: str | None = None
    write_id: str | None = None
    submit_tries: int = 0
    refused: str | None = None

    @property
    def changes_status(self) -> bool:
        return self.status_id is not None


def submit(client: httpx.Client, planned: Planned, headers: dict[str, str], *, tries: int = 60) -> None:
    """POST until the gateway accepts (202) with the same Idempotency-Key; a 4xx is a refusal."""
    for _ in range(tries):
        planned.submit_tries += 1
        try:
            response = client.post(planned.path, json=planned.body, headers={**headers, "Idempotency-Key": planned.key})
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        if response.status_code == 202:
            planned.write_id = response.json()["write_id"]
            return
        if 400 <= response.status_code < 500 and response.status_code != 429:
            planned.refused = f"{response.status_code} {response.text[:300]}"
            return
        time.sleep(0.2 if response.status_code != 503 else float(response.headers.get("retry-after", "1")))
    planned.refused = "the gateway never accepted it"


def count_effects(planned: list[Planned]) -> dict[str, int]:
    """marker -> how many times its effect is at the vendor."""
    found: dict[str, int] = {}
    notes_cache: dict[tuple[int, str], list[dict[str, Any]]] = {}
    time_cache: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for p in planned:
        sim = p.handle.sim
        if p.kind in {"reply", "note", "reply_status"}:
            key = (id(sim), p.ticket or "")
            if key not in notes_cache:
                notes_cache[key] = sim.ticket_notes(p.ticket)
            hits = [n for n in notes_cache[key] if p.marker in (n.get("text") or "")]
            assert all(n["internal"] is (p.kind == "note") for n in hits), f"{p.marker}: wrong visibility {hits}"
            found[p.marker] = len(hits)
        elif p.kind == "time_entry":
            key = (id(sim), p.ticket or "")
            if key not in time_cache:
                time_cache[key] = sim.time_entries(p.ticket)
            found[p.marker] = sum(1 for e in time_cache[key] if p.marker in (e.get("notes") or ""))
        elif p.kind == "create":
            found[p.marker] = len(sim.tickets_created_with(p.key))
    return found


def status_sets(handles: list[SimHandle]) -> Counter[tuple[str, str]]:
    """(connection, ticket) -> committed status-setting requests at the vendor."""
    sets: Counter[tuple[str, str]] = Counter()
    for h in handles:
        for method, path, body in h.recorder.snapshot():
            ticket = status_set_on(h.vendor, method, path, body)
            if ticket is not None:
                sets[(h.connection, ticket)] += 1
    return sets


def expected_status_sets(planned: list[Planned], only: set[str] | None = None) -> Counter[tuple[str, str]]:
    expected: Counter[tuple[str, str]] = Counter()
    for p in planned:
        if p.changes_status and p.write_id and (only is None or p.write_id in only):
            expected[(p.handle.connection, p.ticket or "")] += 1
    return expected


def last_status_by_ticket(planned: list[Planned]) -> dict[tuple[str, str], str]:
    """The status each ticket must end in: that of its last accepted status-changing write."""
    last: dict[tuple[str, str], str] = {}
    for p in planned:
        if p.changes_status and p.write_id:
            last[(p.handle.connection, p.ticket or "")] = p.status_id or ""
    return last


def group_by_ticket(planned: list[Planned]) -> dict[tuple[str, str | None], list[Planned]]:
    groups: dict[tuple[str, str | None], list[Planned]] = defaultdict(list)
    for p in planned:
        groups[(p.handle.connection, p.ticket if p.ticket else p.marker)].append(p)
    return groups


class HangAfterCommit:
    """ASGI middleware: the first write whose body contains ``needle`` is committed by the
    simulator, then its answer is held for ``hang`` seconds and the connection dropped. The
    test kills the worker while it waits: the vendor has the effect, the worker never heard."""

    def __init__(self, app: Any, needle: bytes, hang: float = 30.0) -> None:
        self.app = app
        self.needle = needle
        self.hang = hang
        self.fired = False
        self.committed = threading.Event()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS or self.fired:
            await self.app(scope, receive, send)
            return
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        replay = iter(messages)

        async def replayed() -> dict:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        if self.needle not in body:
            await self.app(scope, replayed, send)
            return
        self.fired = True

        async def swallow(message: dict) -> None:
            return None

        import asyncio

        await self.app(scope, replayed, swallow)
        self.committed.set()
        await asyncio.sleep(self.hang)
        raise ConnectionAbortedError("held answer dropped")


def wait_for(predicate: Any, timeout: float, what: str, tick: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(tick)
