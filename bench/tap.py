"""``VendorTap``: when a simulator sees each vendor call, on the benchmark's clock.

Wraps a simulator's ASGI app (outside its fault middleware, so simulated 429s are seen too).
For every write request it matches (by default a ConnectWise note, ``POST .../notes``) it keeps
the arrival time (``time.monotonic``, which on Linux is one clock for every process) and the
status the simulator answered; it counts reads. ``wait_for`` blocks until some number of writes
have been answered, without polling anything over HTTP. ``capture_next`` keeps the next
matched request (method, path, headers, body) so a baseline can replay exactly that call.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def is_note_post(method: str, path: str) -> bool:
    return method == "POST" and path.endswith("/notes")


@dataclass
class Call:
    arrived: float
    answered: float
    status: int


@dataclass
class CapturedRequest:
    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


class VendorTap:
    def __init__(self, app: Any, *, match: Callable[[str, str], bool] = is_note_post) -> None:
        self.app = app
        self.match = match
        self.cond = threading.Condition()
        self.calls: list[Call] = []
        self.statuses: Counter[int] = Counter()
        self.reads = 0
        self.read_paths: Counter[str] = Counter()
        self.ok = 0
        self._capture: CapturedRequest | None = None
        self._want_capture = False

    # -- inspection (any thread) -----------------------------------------------------------

    def reset(self) -> None:
        with self.cond:
            self.calls.clear()
            self.statuses.clear()
            self.reads = 0
            self.read_paths.clear()
            self.ok = 0

    def wait_for(self, ok_count: int, timeout: float) -> bool:
        """Wait until ``ok_count`` matched writes have been answered with a 2xx."""
        with self.cond:
            return self.cond.wait_for(lambda: self.ok >= ok_count, timeout=timeout)

    def ok_calls(self) -> list[Call]:
        with self.cond:
            return [c for c in self.calls if 200 <= c.status < 300]

    def capture_next(self) -> None:
        with self.cond:
            self._capture = None
            self._want_capture = True

    def captured(self, timeout: float = 10.0) -> CapturedRequest | None:
        with self.cond:
            self.cond.wait_for(lambda: self._capture is not None, timeout=timeout)
            return self._capture

    # -- the ASGI app -----------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()
        method, path = scope["method"], scope["path"]
        if not self.match(method, path):
            if method == "GET":
                with self.cond:
                    self.reads += 1
                    self.read_paths[path.rsplit("/", 1)[0] if path[-1:].isdigit() else path] += 1
            await self.app(scope, receive, send)
            return
        if self._want_capture:
            receive = self._capturing(scope, receive)

        async def observe(message: dict) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                with self.cond:
                    self.calls.append(Call(arrived, time.monotonic(), status))
                    self.statuses[status] += 1
                    if 200 <= status < 300:
                        self.ok += 1
                    self.cond.notify_all()
            await send(message)

        await self.app(scope, receive, observe)

    def _capturing(self, scope: dict, receive: Callable) -> Callable:
        chunks: list[bytes] = []

        async def wrapped() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    with self.cond:
                        if self._want_capture:
                            self._want_capture = False
                            self._capture = CapturedRequest(
                                scope["method"], scope["path"], scope.get("query_string", b""),
                                list(scope["headers"]), b"".join(chunks),
                            )
                            self.cond.notify_all()
            return message

        return wrapped
