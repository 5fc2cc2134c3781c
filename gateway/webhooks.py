"""Inbound vendor webhooks: what a plugin's ``gateway_webhook_parse`` returns."""

from __future__ import annotations

from typing import Literal

import msgspec


class WebhookEvent(msgspec.Struct, frozen=True):
    """One record a vendor says has changed; the gateway fetches it again to learn how."""

    entity: Literal["ticket", "note", "alert", "device", "company"]
    vendor_id: str
    action: Literal["created", "updated", "deleted"] = "updated"
