"""The simulator's webhooks: Autotask's signed event POSTs, sent through the base outbox.

Changes build an event and return at once (a slow or dead receiver never holds up an API call);
the simulator's ``WebhookOutbox`` POSTs each event to every registered URL, in order, with
``x-hook-signature: sha1=<base64 HMAC-SHA1(secret, raw body)>``.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from gateway.testing.simulator import WebhookOutbox

from gateway_autotask.constants import WEBHOOK_SIGNATURE_HEADER
from gateway_autotask.webhooks import signature


@dataclass(frozen=True)
class Subscription:
    url: str
    secret: str


class WebhookSender:
    """The webhook subscriptions and the events they receive, numbered in order."""

    def __init__(self, outbox: WebhookOutbox) -> None:
        self.subscriptions: list[Subscription] = []
        self.outbox = outbox
        self._sequence = 0
        self._lock = threading.Lock()

    def add(self, url: str, secret: str) -> None:
        with self._lock:
            self.subscriptions.append(Subscription(url, secret))

    def clear(self) -> None:
        """Drop every subscription and queued event."""
        with self._lock:
            self.subscriptions.clear()
            self._sequence = 0
        self.outbox.clear()

    def emit(self, action: str, entity_type: str, record_id: int, fields: dict[str, Any], person_id: int | None) -> None:
        """Queue one event (``Action`` is Create, Update or Delete) for every subscription."""
        with self._lock:
            if not self.subscriptions:
                return
            self._sequence += 1
            sequence, subscriptions = self._sequence, list(self.subscriptions)
        event = {
            "Action": action,
            "Guid": str(uuid.uuid4()),
            "EntityType": entity_type,
            "Id": record_id,
            "Fields": fields,
            "EventTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "SequenceNumber": sequence,
            "PersonID": person_id,
        }
        body = json.dumps(event).encode()
        for sub in subscriptions:
            self.outbox.send(sub.url, body, {WEBHOOK_SIGNATURE_HEADER: signature(sub.secret, body)})
