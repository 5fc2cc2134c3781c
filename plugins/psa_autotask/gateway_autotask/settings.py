"""The connection settings of an Autotask connection (the ``settings`` table in config)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from gateway_autotask.constants import DEFAULT_NOTE_TYPE, PUBLISH_ALL_USERS, PUBLISH_INTERNAL_ONLY

Category = Literal["new", "in_progress", "awaiting_customer", "resolved", "closed"]


class AutotaskSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How to reach one Autotask database and how to write to it.

    The connection's ``base_url`` is the zone-discovery host (``https://webservices.autotask.net``);
    the API user's zone is looked up from it. Secrets (``secret``, ``integration_code``) live
    in the connection's ``secrets`` table, never here.
    """

    # The API user's user name (an e-mail address). Sent as the ``UserName`` header and used
    # for zone discovery.
    username: str
    # Skip zone discovery and use this API root (``https://webservices5.autotask.net/atservicesrest/``).
    zone_url: str | None = None
    # ``publish`` value of internal notes. Autotask's picklist calls it "Internal Only"; 2 in
    # the installs we know of (see the README). Check ``TicketNotes/entityInformation/fields``.
    internal_publish: int = PUBLISH_INTERNAL_ONLY
    # ``publish`` value of public replies: 1 = "All Autotask Users".
    public_publish: int = PUBLISH_ALL_USERS
    # ``noteType`` of the notes the gateway creates (a per-database picklist).
    note_type: int = DEFAULT_NOTE_TYPE
    # Canonical category per status id, overriding the label-based defaults ({"7": "awaiting_customer"}).
    status_categories: dict[str, Category] = {}
    # Resource and role that time entries are logged as when the caller names no member.
    # When unset, the API user's own resource and its default service-desk role are looked up.
    time_resource_id: int | None = None
    time_role_id: int | None = None
    # Optional ``ImpersonationResourceId`` header: writes appear as made by this resource.
    impersonation_resource_id: int | None = None
    # Seconds that picklists (statuses, form fields) and company names are cached in-process.
    metadata_cache_seconds: float = 300.0


def load_settings(value: Any) -> AutotaskSettings:
    """The settings as an ``AutotaskSettings``, whether given converted or as a table."""
    if isinstance(value, AutotaskSettings):
        return value
    return msgspec.convert(value or {}, AutotaskSettings)
