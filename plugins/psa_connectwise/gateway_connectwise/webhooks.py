"""ConnectWise callbacks: checking their signature and reading what changed.

A callback is a JSON POST (``Type``, ``Action``, ``ID``, ``Entity`` as a JSON string,
``Metadata.key_url``...) signed in ``x-content-signature`` with
``base64(HMAC-SHA256(key=SHA256(signing_key), raw body))``. The signing key is served at
``Metadata.key_url``; the gateway never fetches a URL named by an unverified request, so the
key is configured as the connection's webhook secret (``ConnectWiseClient.signing_key`` fetches
it once for the operator).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

import msgspec
from gateway.errors import BadSignature
from gateway.webhooks import WebhookDelivery, WebhookEvent

from gateway_connectwise.constants import SIGNATURE_HEADER
from gateway_connectwise.records import Callback

_ACTIONS = {"added": "created", "updated": "updated", "deleted": "deleted"}
_ENTITIES = {"ticket": "ticket", "company": "company"}


def signature(signing_key: str, body: bytes) -> str:
    """The ``x-content-signature`` ConnectWise sends with ``body``."""
    key = hashlib.sha256(signing_key.encode()).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def verify(headers: Mapping[str, str], body: bytes, signing_key: str | None) -> None:
    """Raise ``BadSignature`` unless ``body`` carries a valid signature by ``signing_key``."""
    if not signing_key:
        raise BadSignature("no signing key is configured for this connection's callbacks")
    sent = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
    if not sent:
        raise BadSignature(f"the callback has no {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(sent.strip().encode(), signature(signing_key, body).encode()):
        raise BadSignature(f"the callback's {SIGNATURE_HEADER} does not match its body")


def events(body: bytes) -> list[WebhookEvent]:
    """The record a (verified) callback names; other record types are ignored.

    Raise ``ValueError`` for a body that is not a callback at all.
    """
    return list(delivery(body).events)


def delivery(body: bytes) -> WebhookDelivery:
    """The record a (verified) callback names, with its ``MessageId`` so the gateway takes each
    callback once (ConnectWise stamps no send time). ``ValueError`` for a body that is not a
    callback at all."""
    try:
        callback = msgspec.json.decode(body, type=Callback)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # Signed by ConnectWise yet unreadable: a format change to hear about, not to drop.
        raise ValueError(f"the callback body is not a ConnectWise callback: {exc}") from None
    entity = _ENTITIES.get(callback.type.casefold())
    action = _ACTIONS.get(callback.action.casefold())
    found = () if entity is None or action is None else (
        WebhookEvent(entity=entity, vendor_id=str(callback.id), action=action),  # type: ignore[arg-type]
    )
    return WebhookDelivery(found, callback.message_id or None)
