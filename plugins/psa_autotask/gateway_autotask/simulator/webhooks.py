"""The simulator's webhook sender: Autotask's signed POSTs, delivered from a background thread.

Changes enqueue an event and return at once (a slow or dead receiver never holds up an API
call); one daemon thread POSTs each event to every registered URL with
``x-hook-signature: sha1=<base64 HMAC-SHA1(secret, raw body)>``.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from gateway_autotask.constants import WEBHOOK_SIGNATURE_HEADER
from gateway_autotask.webhooks import signature


@dataclass(frozen=True)
class Subscription:
    url: str
    secret: str


class WebhookSender:
    """Queues events and delivers them in order, one thread for the simulator."""

    def __init__(self, count: Callable[[str], None], timeout: float = 5.0) -> None:
        self.subscriptions: list[Subscription] = []
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._count = count
        self._timeout = timeout
        self._sequence = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.delivered: list[dict[str, Any]] = []

    def add(self, url: str, secret: str) -> None:
        with self._lock:
            self.subscriptions.append(Subscription(url, secret))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="autotask-sim-webhooks", daemon=True)
                self._thread.start()

    def clear(self) -> None:
        """Drop every subscription and queued event."""
        with self._lock:
            self.subscriptions.clear()
            self.delivered.clear()
            self._sequence = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self._queue.task_done()

    def emit(self, action: str, entity_type: str, record_id: int, fields: dict[str, Any], person_id: int | None) -> None:
        """Queue one event (``Action`` is Create, Update or Delete)."""
        if not self.subscriptions:
            return
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        self._queue.put(
            {
                "Action": action,
                "Guid": str(uuid.uuid4()),
                "EntityType": entity_type,
                "Id": record_id,
                "Fields": fields,
                "EventTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "SequenceNumber": sequence,
                "PersonID": person_id,
            }
        )

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event has been delivered (or given up on)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while True:
                event = self._queue.get()
                try:
                    body = json.dumps(event).encode()
                    for sub in list(self.subscriptions):
                        self._deliver(client, sub, body)
                    self.delivered.append(event)
                finally:
                    self._queue.task_done()

    def _deliver(self, client: httpx.Client, sub: Subscription, body: bytes) -> None:
        headers = {"content-type": "application/json", WEBHOOK_SIGNATURE_HEADER: signature(sub.secret, body)}
        try:
            response = client.post(sub.url, content=body, headers=headers)
            self._count("webhooks_sent" if response.status_code < 400 else "webhooks_refused")
        except httpx.HTTPError:
            self._count("webhooks_failed")
