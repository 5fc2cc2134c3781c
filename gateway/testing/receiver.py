"""A webhook receiver on loopback for tests and benchmarks: a real HTTP server that verifies
every Standard Webhooks signature with the subscription's secret (``standardwebhooks``),
records what it accepted, and can be told to be down, fail or throttle."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    webhook_id: str
    event: dict[str, Any]
    received_at: float  # time.monotonic()
    status: int = 204


@dataclass
class Receiver:
    """Start with ``start()``; ``secret`` must be set before deliveries arrive."""

    secret: str | None = None
    fail_rate: float = 0.0  # answer 500 (after reading the body: the event may count as seen)
    throttle_rate: float = 0.0  # answer 429 with Retry-After
    retry_after: str = "1"
    down: bool = False  # answer 503 to everything
    seed: int = 7
    accepted: list[Delivery] = field(default_factory=list)  # answered 2xx, in arrival order
    seen: list[Delivery] = field(default_factory=list)  # every verified delivery, whatever the answer
    attempts: int = 0
    bad_signatures: int = 0
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self
        rng = random.Random(self.seed)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, extra = receiver._answer(self.headers, body, rng)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, headers: Any, body: bytes, rng: random.Random) -> tuple[int, dict[str, str]]:
        with self.lock:
            self.attempts += 1
            if self.down:
                return self._record(503, {})
            try:
                Webhook(self.secret or "").verify(body, {k.lower(): v for k, v in headers.items()})
            except WebhookVerificationError:
                self.bad_signatures += 1
                return self._record(400, {})
            roll = rng.random()
            delivery = Delivery(headers["webhook-id"], json.loads(body), time.monotonic())
            self.seen.append(delivery)
            if roll < self.throttle_rate:
                delivery.status = 429
                return self._record(429, {"Retry-After": self.retry_after})
            if roll < self.throttle_rate + self.fail_rate:
                delivery.status = 500  # as if it handled the event and failed before answering
                return self._record(500, {})
            self.accepted.append(delivery)
            return self._record(204, {})

    def _record(self, status: int, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        self.statuses.append(status)
        return status, headers

    def ids(self) -> list[str]:
        """Webhook ids accepted, in arrival order, repeats included."""
        with self.lock:
            return [d.webhook_id for d in self.accepted]
