"""Callbacks in the simulator: the registered entries, signed and sent through the base
class's ``WebhookOutbox`` (one background thread), so a request never waits on a receiver.

The signing is written out here again rather than imported from ``webhooks``: the simulator
stands for ConnectWise, so a mistake in the plugin's check must not be repeated on this side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import urllib.parse
import uuid
from typing import Any

from gateway.testing.simulator import WebhookOutbox

from gateway_connectwise.simulator.protocol import now, problem, stamp

SIGNATURE_HEADER = "x-content-signature"
# Where a callback's signing key is served (``Metadata.key_url``), outside the API root.
KEY_PATH = "/v4_6_release/system/callbackkey/index.rails"
# Record types and the levels each may be watched at (objectId names the board, status...).
LEVELS = {
    "ticket": {"owner", "board", "status", "company", "ticket"},
    "company": {"owner", "company"},
    "contact": {"owner", "company", "contact"},
}


def sign(signing_key: str, body: bytes) -> str:
    """base64(HMAC-SHA256(key=SHA256(signing_key), body)), as ConnectWise signs callbacks."""
    key = hashlib.sha256(signing_key.encode()).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


class CallbackRegistry:
    """The callback entries registered with the simulated company, and their delivery.

    Each entry is signed with one signing key, named by id in its ``Metadata.key_url``:
    ``"default"`` for entries registered over the API, a key of its own for ``add_key``.
    Callers hold the simulator's lock.
    """

    def __init__(self, *, company_id: str, member: dict[str, Any], signing_key: str, outbox: WebhookOutbox):
        self.company_id = company_id
        self.member = member
        self.entries: dict[int, dict[str, Any]] = {}
        self.signing_keys: dict[str, str] = {"default": signing_key}
        self.key_of: dict[int, str] = {}
        self.outbox = outbox
        self._ids = itertools.count(26501)

    def problems(self, data: dict[str, Any]) -> list[dict[str, str]]:
        """What ConnectWise would refuse in a new entry (missing field, bad level, duplicate)."""
        errors = [
            problem("MissingRequiredField", f"The {name} field is required.", "callbackEntry", name)
            for name in ("url", "type", "level")
            if not isinstance(data.get(name), str) or not data[name]
        ]
        if errors:
            return errors
        kind, level = data["type"].casefold(), data["level"].casefold()
        if level not in LEVELS.get(kind, set()):
            message = "Unrecognized level for type, see documentation for supported levels for each type"
            return [problem("InvalidField", message, "callbackEntry", "level")]
        same = (data["url"], kind, level, int(data.get("objectId") or 0))
        if any((e["url"], e["type"], e["level"], e["objectId"]) == same for e in self.entries.values()):
            return [problem("ObjectExists", "A matching callback entry already exists", "callbackEntry", "objectId")]
        return []

    def add_key(self, signing_key: str) -> str:
        key_id = uuid.uuid4().hex
        self.signing_keys[key_id] = signing_key
        return key_id

    def register(self, data: dict[str, Any], key_id: str = "default") -> dict[str, Any]:
        """Store an entry (already checked with ``problems``) as ConnectWise answers it."""
        entry = {
            "id": next(self._ids),
            "description": str(data.get("description", "")),
            "url": data["url"],
            "objectId": int(data.get("objectId") or 0),
            "type": str(data["type"]).casefold(),
            "level": str(data["level"]).casefold(),
            "memberId": self.member["id"],
            "payloadVersion": str(data.get("payloadVersion", "3.0.0")),
            "inactiveFlag": bool(data.get("inactiveFlag", False)),
            "isSoapCallbackFlag": False,
            "isSelfSuppressedFlag": bool(data.get("isSelfSuppressedFlag", False)),
            "connectWiseID": str(uuid.uuid4()),
            "_info": {"lastUpdated": stamp(now()), "updatedBy": self.member["identifier"]},
        }
        self.entries[entry["id"]] = entry
        self.key_of[entry["id"]] = key_id
        return entry

    def remove(self, entry_id: int) -> bool:
        self.key_of.pop(entry_id, None)
        return self.entries.pop(entry_id, None) is not None

    @staticmethod
    def _follows(entry: dict[str, Any], ticket: dict[str, Any]) -> bool:
        # Every change in the simulator is the API member's own, which self-suppression hides.
        if entry["type"] != "ticket" or entry["inactiveFlag"] or entry["isSelfSuppressedFlag"]:
            return False
        watched = {
            "owner": None,
            "board": ticket["board"]["id"],
            "status": ticket["status"]["id"],
            "company": ticket["company"]["id"],
            "ticket": ticket["id"],
        }[entry["level"]]
        return watched is None or entry["objectId"] == watched

    def ticket_changed(self, ticket: dict[str, Any], action: str, origin: str) -> None:
        """Queue a signed delivery to every entry following ``ticket``.

        :param action: ``added``, ``updated`` or ``deleted``. :param origin: the simulator's
            own URL as the caller reached it, for ``FromUrl`` and ``Metadata.key_url``.
        """
        for entry in self.entries.values():
            if not self._follows(entry, ticket):
                continue
            key_id = self.key_of[entry["id"]]
            key_query = urllib.parse.urlencode({"companyName": self.company_id, "id": key_id})
            payload = {
                "MessageId": str(uuid.uuid4()),
                "FromUrl": urllib.parse.urlsplit(origin).netloc,
                "CompanyId": self.company_id,
                "MemberId": self.member["identifier"],
                "Action": action,
                "Type": "ticket",
                "ID": ticket["id"],
                "Entity": json.dumps(ticket),
                "Metadata": {"key_url": f"{origin}{KEY_PATH}?{key_query}"},
                "CallbackObjectRecId": entry["id"],
            }
            # ConnectWise appends the record id to a URL ending in "=" ("...?recordId=").
            url = entry["url"] + str(ticket["id"]) if entry["url"].endswith("=") else entry["url"]
            body = json.dumps(payload).encode()
            self.outbox.send(url, body, {SIGNATURE_HEADER: sign(self.signing_keys[key_id], body)})
