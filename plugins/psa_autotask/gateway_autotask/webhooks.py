"""Autotask webhooks: checking a delivery's signature and reading what changed.

A delivery is a JSON POST ``{"Action": "Create"|"Update"|"Delete", "Guid", "EntityType":
"Ticket"|"TicketNote"|..., "Id", "Fields": {...}, "EventTime", "SequenceNumber", "PersonID"}``
signed with the webhook's ``SecretKey``: header ``x-hook-signature: sha1=<base64(HMAC-SHA1(key,
raw body))>``. ``Fields`` holds only the subscribed and display-always fields, so the gateway
fetches the record again rather than trusting the payload.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from gateway.errors import BadSignature
from gateway.webhooks import WebhookDelivery, WebhookEvent
from gateway_autotask.constants import WEBHOOK_SIGNATURE_HEADER

ACTIONS = {"create": "created", "update": "updated", "delete": "deleted"}
ENTITIES = {"ticket": "ticket", "tickets": "ticket", "ticketnote": "note", "ticketnotes": "note", "company": "company", "companies": "company"}


def signature(secret: str, body: bytes) -> str:
    """The ``x-hook-signature`` value for ``body``: ``sha1=`` and the base64 HMAC-SHA1."""
    digest = hmac.new(secret.encode(), body, hashlib.sha1).digest()
    return "sha1=" + base64.b64encode(digest).decode("ascii")


def verify(headers: dict[str, str], body: bytes, secret: str | None) -> None:
    """Raise ``BadSignature`` unless the delivery is signed with ``secret``."""
    if not secret:
        raise BadSignature("autotask webhook: no webhook secret is configured for this connection")
    given = next((v for k, v in headers.items() if k.lower() == WEBHOOK_SIGNATURE_HEADER), None)
    if not given:
        raise BadSignature(f"autotask webhook: the {WEBHOOK_SIGNATURE_HEADER} header is missing")
    if not hmac.compare_digest(given.strip().encode(), signature(secret, body).encode()):
        raise BadSignature(f"autotask webhook: the {WEBHOOK_SIGNATURE_HEADER} signature does not match")


def parse(body: bytes) -> list[WebhookEvent]:
    """The records a delivery names (none for a body that is not an Autotask event). A note
    event also names its ticket (as updated), so the gateway refreshes that conversation."""
    try:
        payload = json.loads(body)
    except ValueError:
        return []
    if not isinstance(payload, dict):
        return []
    entity = ENTITIES.get(str(_get(payload, "EntityType") or "").lower())
    record_id = _get(payload, "Id")
    if entity is None or record_id is None:
        return []
    action = ACTIONS.get(str(_get(payload, "Action") or "").lower(), "updated")
    events = [WebhookEvent(entity=entity, vendor_id=str(record_id), action=action)]  # type: ignore[arg-type]
    if entity == "note":
        ticket_id = _get(_get(payload, "Fields") or {}, "TicketID")
        if ticket_id is not None:
            events.append(WebhookEvent(entity="ticket", vendor_id=str(ticket_id), action="updated"))
    return events


def delivery(body: bytes) -> WebhookDelivery:
    """The records a delivery names, with its ``Guid`` (the same on Autotask's retries) and its
    ``EventTime``, so the gateway refuses replays."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    guid = _get(payload, "Guid")
    return WebhookDelivery(tuple(parse(body)), str(guid) if guid else None, _time(_get(payload, "EventTime")))


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _get(mapping: Any, key: str) -> Any:
    """A key looked up case-insensitively (Autotask payloads mix ``PersonID``/``PersonId``)."""
    if not isinstance(mapping, dict):
        return None
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    return next((v for k, v in mapping.items() if str(k).lower() == lowered), None)
