"""Inbound vendor webhooks: what a plugin's ``gateway_webhook_parse`` returns, and refusing
replays of a correctly signed delivery.

A signature proves who wrote a delivery, not that it is new: anyone who saw one could send it
again, and each copy would cost a vendor fetch. So after the plugin verifies the signature:

- a delivery whose vendor stamps the time it was sent (Autotask's ``EventTime``) is refused
  when that time is more than ``MAX_AGE_SECONDS`` old (or too far ahead);
- a delivery is taken once: by its own id where the vendor gives one (Autotask's ``Guid``,
  ConnectWise's ``MessageId``), else by a digest of its body, with a Redis ``SET NX`` whose
  key expires after a window. A repeat inside the window is acknowledged and does nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Literal

import msgspec
import redis

MAX_AGE_SECONDS = 15 * 60  # a timestamped delivery older than this is refused
CLOCK_SKEW_SECONDS = 5 * 60  # ... and so is one stamped this far in the future
ID_WINDOW_SECONDS = 24 * 3600  # a delivery id is remembered this long
# A body without an id or time is remembered only briefly: two real changes can send the same
# body (Halo's provisional shape), and the second must not wait for the next poll for long.
CONTENT_WINDOW_SECONDS = 10 * 60


class WebhookEvent(msgspec.Struct, frozen=True):
    """One record a vendor says has changed; the gateway fetches it again to learn how."""

    entity: Literal["ticket", "note", "alert", "device", "company"]
    vendor_id: str
    action: Literal["created", "updated", "deleted"] = "updated"


class WebhookDelivery(msgspec.Struct, frozen=True):
    """A verified delivery: the records it names, and what the vendor's scheme says about the
    delivery itself (``delivery_id``: the vendor's id of this delivery, the same on its
    retries; ``sent_at``: when the vendor sent it). Either may be ``None``."""

    events: tuple[WebhookEvent, ...] = ()
    delivery_id: str | None = None
    sent_at: datetime | None = None


def as_delivery(parsed: WebhookDelivery | list[WebhookEvent] | None) -> WebhookDelivery:
    """A plugin's answer as a delivery (a plain list of events carries no id and no time)."""
    if isinstance(parsed, WebhookDelivery):
        return parsed
    return WebhookDelivery(tuple(parsed or ()))


class StaleDelivery(Exception):
    """A signed delivery sent too long ago (or stamped in the future): a replay, or a retry the
    poll has long since covered."""


class ReplayGuard:
    """Takes each delivery of a connection once (see the module docstring)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def first_time(self, connection: str, delivery: WebhookDelivery, body: bytes, *, now: datetime | None = None) -> bool:
        """Whether this is the first time ``delivery`` arrives; raise ``StaleDelivery`` for one
        sent outside the accepted age."""
        now = now or datetime.now(timezone.utc)
        if delivery.sent_at is not None:
            sent_at = delivery.sent_at if delivery.sent_at.tzinfo else delivery.sent_at.replace(tzinfo=timezone.utc)
            age = (now - sent_at).total_seconds()
            if age > MAX_AGE_SECONDS or age < -CLOCK_SKEW_SECONDS:
                raise StaleDelivery(f"the delivery was sent at {sent_at.isoformat()}; deliveries older than "
                                    f"{MAX_AGE_SECONDS // 60} minutes are refused")
        if delivery.delivery_id:
            seen = b"id:" + delivery.delivery_id.encode("utf-8", "replace")
            # Past its age limit a delivery is refused anyway; remember it no longer than that.
            window = MAX_AGE_SECONDS + CLOCK_SKEW_SECONDS if delivery.sent_at else ID_WINDOW_SECONDS
        else:
            seen, window = b"body:" + body, CONTENT_WINDOW_SECONDS
        key = f"webhook:seen:{connection}:{hashlib.sha256(seen).hexdigest()}"
        return bool(self.redis.set(key, 1, nx=True, ex=window))
