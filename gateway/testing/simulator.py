"""What every vendor simulator shares: fault switches, call counts and a loopback server.

A vendor plugin ships a ``Simulator`` subclass whose ``routes()`` serve the vendor's real
contract (paths, auth, paging, fields, error bodies). This base wraps those routes in
``FaultMiddleware``, which can, per request and at set rates:

- answer 5xx (``error_rate``) or 429 with Retry-After (``throttle_rate``, or a hard
  ``limit_per_second``) in the vendor's own error shape;
- add latency (``latency_ms``) or hang past the client's timeout (``slow_rate`` /
  ``slow_seconds``);
- drop the connection before the vendor sees the request (``reset_rate``);
- commit a write and then drop the connection instead of answering (``drop_after_commit_rate``).

Faults are switched over HTTP (``POST /_sim/faults``) or in-process (``sim.set_faults``);
``GET /_sim/stats`` counts what happened.

Three things several vendors need come with the base, so no simulator splices the app or
writes its own counters and threads:

- ``gate(scope, forward)``: a vendor's own layer between the fault switches and the routes
  (auth checks answered in the vendor's shape, path spelling, rate limits, thread caps);
- ``RollingWindow``: amounts (calls, bytes) spent in the last N seconds, and the wait until
  more fits (Halo's 300 per rolling 5 minutes, Autotask's hourly threshold);
- ``WebhookOutbox`` (``sim.outbox``): signed deliveries posted in order from one daemon thread,
  so a change only enqueues and a slow receiver never holds up an API call. The simulator runs standalone
(``gateway simulator VENDOR --port P``) or in a thread for tests (``sim.serve_in_thread()``).

The inspection methods at the bottom read the simulator's own records in vendor terms, so the
conformance suite can check effects at the "vendor" without going through the plugin.
"""

from __future__ import annotations

import asyncio
import queue
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
from litestar import get, post
from litestar.params import JSONBody


class Faults(msgspec.Struct, omit_defaults=True):
    """Fault switches; every rate is a share of requests from 0 to 1."""

    error_rate: float = 0.0
    error_status: int = 500
    throttle_rate: float = 0.0
    limit_per_second: float | None = None
    retry_after: float = 1.0
    latency_ms: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 35.0
    reset_rate: float = 0.0
    drop_after_commit_rate: float = 0.0
    # Faults touch only writes (POST, PUT, PATCH, DELETE) when true; only these methods when set.
    writes_only: bool = False
    methods: list[str] = []
    seed: int | None = None


class _Dropped(Exception):
    """Raised inside the ASGI app so the server closes the connection mid-answer."""


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class FaultMiddleware:
    """ASGI middleware applying ``Faults`` to the vendor routes (not to ``/_sim``)."""

    def __init__(self, app: Any, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        sim = self.sim
        if scope["type"] != "http" or scope["path"].startswith(("/_sim", *sim.fault_exempt_paths)):
            await self.app(scope, receive, send)
            return
        faults = sim.faults
        method = scope["method"]
        sim.count("requests")
        applies = (method in WRITE_METHODS or not faults.writes_only) and (
            not faults.methods or method in faults.methods
        )
        roll = sim.random.random
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if applies and faults.slow_rate and roll() < faults.slow_rate:
            sim.count("slow")
            await asyncio.sleep(faults.slow_seconds)
        if applies and faults.reset_rate and roll() < faults.reset_rate:
            sim.count("reset")
            await self._drop(send)
        if self._over_limit(faults) or (applies and faults.throttle_rate and roll() < faults.throttle_rate):
            sim.count("throttled")
            status, body, headers = sim.rate_limited_response(faults.retry_after)
            await send_answer(send, status, body, headers)
            return
        if applies and faults.error_rate and roll() < faults.error_rate:
            sim.count("errors")
            status, body, headers = sim.error_response(faults.error_status, "Simulated server error")
            await send_answer(send, status, body, headers)
            return
        if method in WRITE_METHODS and faults.drop_after_commit_rate and roll() < faults.drop_after_commit_rate:
            sent: list[dict] = []

            async def swallow(message: dict) -> None:
                sent.append(message)

            await self.app(scope, receive, swallow)
            sim.count("dropped_after_commit")
            await self._drop(send)
        await self.app(scope, receive, send)

    def _over_limit(self, faults: Faults) -> bool:
        if not faults.limit_per_second:
            return False
        return not self.sim.take_token(faults.limit_per_second)

    @staticmethod
    async def _drop(send: Callable) -> None:
        # Promise a body, send none, and fail: the server must close the connection, and the
        # client sees an incomplete answer, never a status it could trust.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
        raise _Dropped("simulated dropped connection")


Answer = tuple[int, bytes, dict[str, str]]


async def send_answer(send: Callable, status: int, body: bytes, headers: dict[str, str]) -> None:
    """Send a whole HTTP answer on an ASGI ``send``."""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class GateMiddleware:
    """ASGI middleware giving every vendor request to ``Simulator.gate`` (not ``/_sim``)."""

    def __init__(self, app: Any, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return

        async def forward(forwarded: dict) -> None:
            await self.app(forwarded, receive, send)

        answer = await self.sim.gate(scope, forward)
        if answer is not None:
            await send_answer(send, *answer)


class RollingWindow:
    """Amounts (calls, bytes) spent in the last ``seconds``: a vendor's rolling limit.

    Not thread-safe on its own: callers hold the simulator's lock.
    """

    def __init__(self) -> None:
        self._spent: deque[tuple[float, float]] = deque()

    def used(self, seconds: float, now: float | None = None) -> float:
        """What was spent in the ``seconds`` before ``now`` (older spending is forgotten)."""
        now = time.monotonic() if now is None else now
        while self._spent and self._spent[0][0] <= now - seconds:
            self._spent.popleft()
        return sum(amount for _, amount in self._spent)

    def wait_for(self, amount: float, limit: float, seconds: float, now: float | None = None) -> float:
        """0 when ``amount`` more fits under ``limit``, else the seconds until the oldest
        spending leaves the window (at least a millisecond)."""
        now = time.monotonic() if now is None else now
        if self.used(seconds, now) + amount <= limit:
            return 0.0
        return max(0.001, self._spent[0][0] + seconds - now) if self._spent else 0.001

    def spend(self, amount: float = 1.0, now: float | None = None) -> None:
        self._spent.append((time.monotonic() if now is None else now, amount))

    def reset(self) -> None:
        self._spent.clear()


class WebhookOutbox:
    """Webhook deliveries posted in order from one daemon thread; ``send`` only enqueues.

    :param count: the simulator's counter; after each attempt it is called with
        ``{stat}_delivered``, ``{stat}_refused`` (the receiver answered 4xx/5xx) or
        ``{stat}_failed`` (no answer).
    :param stat: the prefix of those counters (``webhooks``, ConnectWise's ``callbacks``).
    """

    def __init__(self, count: Callable[[str], None], stat: str = "webhooks", timeout: float = 5.0) -> None:
        self._queue: queue.Queue[tuple[str, bytes, dict[str, str]] | None] = queue.Queue()
        self._count = count
        self.stat = stat
        self._timeout = timeout
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        # What was sent: {"url", "status" (None when there was no answer), "body"}.
        self.sent: list[dict[str, Any]] = []

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        """Queue one delivery of ``body`` to ``url`` with ``headers`` (signature included)."""
        self._queue.put((url, body, {"content-type": "application/json", **headers}))
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"sim-{self.stat}", daemon=True)
                self._thread.start()

    def wait(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued has been attempted; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def clear(self) -> None:
        """Drop what is queued and what was sent."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
        self.sent.clear()

    def stop(self) -> None:
        """End the delivery thread once what is queued has been attempted."""
        with self._start:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=5)

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as http:
            while True:
                item = self._queue.get()
                if item is None:
                    self._queue.task_done()
                    return
                url, body, headers = item
                status: int | None = None
                try:
                    status = http.post(url, content=body, headers=headers).status_code
                    self._count(f"{self.stat}_delivered" if status < 400 else f"{self.stat}_refused")
                except httpx.HTTPError:
                    self._count(f"{self.stat}_failed")
                finally:
                    self.sent.append({"url": url, "status": status, "body": body})
                    self._queue.task_done()


@dataclass
class RunningServer:
    """A simulator (or any ASGI app) served on loopback from a background thread."""

    base_url: str
    port: int
    _server: Any
    _thread: threading.Thread

    def begin_stop(self) -> None:
        """Ask the server to stop and return at once (``stop`` waits for it): servers asked
        together stop together, each in about uvicorn's tick of 0.1 s."""
        self._server.should_exit = True

    def stop(self) -> None:
        self.begin_stop()
        self._thread.join(timeout=10)


def serve_asgi_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``app`` with uvicorn on ``host``; return once it accepts connections."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it every reused loopback connection waits
    # ~40 ms on Nagle plus delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level="critical", lifespan="off", access_log=False, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("simulator server did not start")
        time.sleep(0.01)
    bound = sock.getsockname()[1]
    return RunningServer(base_url=f"http://{host}:{bound}", port=bound, _server=server, _thread=thread)


class Simulator:
    """Base of every vendor simulator. Subclasses set ``vendor`` and implement ``routes``,
    the error shapes, demo seeding and the inspection methods."""

    vendor: str = ""
    # Paths the fault switches leave alone (an OAuth token endpoint), so faults aimed at writes
    # hit the write, not the login before it.
    fault_exempt_paths: tuple[str, ...] = ()
    # The prefix of the outbox's delivery counters (``webhooks_delivered``...).
    outbox_stat: str = "webhooks"

    def __init__(self, faults: Faults | None = None) -> None:
        self.lock = threading.RLock()
        self.stats: Counter[str] = Counter()
        self.faults = faults or Faults()
        self.random = random.Random(self.faults.seed)
        self._bucket_level = 0.0
        self._bucket_time = time.monotonic()
        self._app: Any = None
        self.base_url = ""
        self.outbox = WebhookOutbox(self.count, self.outbox_stat)

    # -- faults and stats -------------------------------------------------------------------

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        if faults.seed is not None:
            self.random = random.Random(faults.seed)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.stats[name] += n

    def take_token(self, per_second: float) -> bool:
        """A token bucket of one second's worth of calls; False means answer 429."""
        with self.lock:
            now = time.monotonic()
            self._bucket_level = max(0.0, self._bucket_level - (now - self._bucket_time) * per_second)
            self._bucket_time = now
            if self._bucket_level + 1 > max(1.0, per_second):
                return False
            self._bucket_level += 1
            return True

    # -- the vendor's shapes (override) -------------------------------------------------------

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        """The vendor's error body for ``status``."""
        body = msgspec.json.encode({"message": message})
        return status, body, {"content-type": "application/json"}

    def rate_limited_response(self, retry_after: float) -> tuple[int, bytes, dict[str, str]]:
        status, body, headers = self.error_response(429, "Rate limit exceeded")
        return status, body, {**headers, "retry-after": str(max(1, round(retry_after)))}

    def routes(self) -> list[Any]:
        """The Litestar route handlers of the vendor's API."""
        raise NotImplementedError

    async def gate(self, scope: dict, forward: Callable[[dict], Awaitable[None]]) -> Answer | None:
        """Every vendor request (after the fault switches, before the routes): answer it here
        with ``(status, body, headers)``, or ``await forward(scope)`` (a changed scope may be
        forwarded, e.g. a case-folded path) and return ``None``. The default forwards."""
        await forward(scope)
        return None

    def seed_demo(self) -> None:
        """Fill the simulator with demo records."""

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        """The connection table (config) that points the gateway at this simulator:
        ``{"vendor", "base_url", "settings", "secrets": {name: value}}``."""
        raise NotImplementedError

    # -- the app ---------------------------------------------------------------------------

    def control_routes(self) -> list[Any]:
        sim = self

        @post("/_sim/faults", status_code=200, sync_to_thread=False)
        def set_faults(data: JSONBody[Faults]) -> Faults:
            sim.set_faults(data)
            return sim.faults

        @get("/_sim/stats", sync_to_thread=False)
        def stats() -> dict[str, int]:
            return dict(sim.stats)

        return [set_faults, stats]

    @property
    def app(self) -> Any:
        """The ASGI app: vendor routes behind the fault middleware and the vendor's ``gate``,
        plus ``/_sim`` controls."""
        if self._app is None:
            from litestar import Litestar

            inner = Litestar(
                route_handlers=[*self.routes(), *self.control_routes()],
                openapi_config=None,
                logging_config=None,
                request_max_body_size=64 * 1024 * 1024,
                exception_handlers={Exception: self._exception_handler},
            )
            self._app = FaultMiddleware(GateMiddleware(inner, self), self)
        return self._app

    def _exception_handler(self, request: Any, exc: Exception) -> Any:
        from litestar import Response
        from litestar.exceptions import HTTPException

        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Internal error"
        code, body, headers = self.error_response(status, str(detail))
        return Response(content=body, status_code=code, headers=headers, media_type=headers.get("content-type"))

    def serve_in_thread(self, port: int = 0) -> RunningServer:
        running = serve_asgi_in_thread(self.app, port=port)
        self.base_url = running.base_url
        return running

    # -- inspection, in vendor terms (override) ----------------------------------------------

    def sample_ticket_id(self) -> str:
        """An open ticket the conformance suite may write to."""
        raise NotImplementedError

    def ticket_notes(self, ticket_id: str) -> list[dict[str, Any]]:
        """Every note or action on the ticket as ``{"id", "text", "internal"}``."""
        raise NotImplementedError

    def ticket_status_id(self, ticket_id: str) -> str:
        raise NotImplementedError

    def valid_status_ids(self, ticket_id: str) -> list[str]:
        raise NotImplementedError

    def time_entries(self, ticket_id: str) -> list[dict[str, Any]]:
        """Time logged on the ticket as ``{"id", "minutes", "notes"}``."""
        raise NotImplementedError

    def attachments(self, ticket_id: str) -> list[dict[str, Any]]:
        """Files on the ticket as ``{"id", "filename", "size"}``."""
        raise NotImplementedError

    def tickets_created_with(self, dedup_key: str) -> list[str]:
        """Ids of tickets whose external reference is ``dedup_key``."""
        raise NotImplementedError

    def minimal_create_fields(self) -> dict[str, Any]:
        """Form values (by field name) that make a valid new ticket."""
        raise NotImplementedError

    # RMM simulators (``RmmConformanceSuite``)

    def sample_alert_id(self) -> str:
        """An active alert the conformance suite may act on."""
        raise NotImplementedError

    def alert_exists(self, alert_id: str) -> bool:
        """Whether the alert is still active (not resolved or reset)."""
        raise NotImplementedError

    def alert_resolve_count(self, alert_id: str) -> int:
        """How many times a resolve (reset) was applied to the alert."""
        raise NotImplementedError
