"""Inbound Halo webhooks: signature check and parsing (PROVISIONAL shapes).

Halo's webhook configuration has HMAC options (``authentication_header``, ``algorithm``,
``digest``, ``signature_prefix``) but no public source shows a signed delivery or the payload
of a ticket event. Until one does, the plugin and the simulator agree on:

- header ``X-Halo-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>``
  (header, prefix and hex/base64 digest are per-connection settings);
- body ``{"event": "ticket.created" | "ticket.updated" | "action.created" | "ticket.deleted",
  "id": <ticket id>, "ticket": {...}}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from gateway.errors import BadSignature
from gateway.webhooks import WebhookEvent

from gateway_halopsa.settings import HaloSettings

_ACTIONS = {"created": "created", "updated": "updated", "deleted": "deleted"}


def sign(body: bytes, secret: str, *, prefix: str = "sha256=", encoding: str = "hex") -> str:
    """The signature header value for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    text = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    return f"{prefix}{text}"


def verify(headers: dict[str, str], body: bytes, secret: str | None, settings: HaloSettings) -> None:
    """Raise ``BadSignature`` unless the delivery carries the right signature."""
    if not secret:
        raise BadSignature("halopsa: no webhook secret is configured for this connection")
    header = settings.webhook_signature_header.lower()
    given = {k.lower(): v for k, v in headers.items()}.get(header)
    if not given:
        raise BadSignature(f"halopsa: webhook without the {settings.webhook_signature_header} header")
    expected = sign(
        body, secret, prefix=settings.webhook_signature_prefix, encoding=settings.webhook_signature_encoding
    )
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise BadSignature("halopsa: webhook signature does not match")


def parse(body: bytes) -> list[WebhookEvent]:
    """The ticket a verified delivery is about; an unreadable body names nothing."""
    try:
        payload = json.loads(body)
    except ValueError:
        return []
    items = payload if isinstance(payload, list) else [payload]
    events: list[WebhookEvent] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        ticket = item.get("ticket") if isinstance(item.get("ticket"), dict) else {}
        ticket_id = item.get("id") or ticket.get("id") or item.get("ticket_id")
        if ticket_id in (None, ""):
            continue
        event = str(item.get("event") or "")
        # An action (note) event changes its ticket: "updated".
        verb = event.rsplit(".", 1)[-1]
        action = _ACTIONS.get(verb, "updated") if event.startswith("ticket.") else "updated"
        events.append(WebhookEvent(entity="ticket", vendor_id=str(ticket_id), action=action))
    return events
