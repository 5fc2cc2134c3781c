"""The connection settings of a NinjaOne connection (the ``settings`` table in config)."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway_ninjaone.constants import DEFAULT_SCOPE, PAGE_SIZE, TOKEN_PATH


class NinjaOneSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How to reach one NinjaOne tenant.

    ``base_url`` of the connection is the instance host (``https://eu.ninjarmm.com``); the
    token endpoint lives on the same host. ``client_secret`` is a secret setting.
    """

    client_id: str = ""
    # Space-separated OAuth scopes. Never add ``offline_access``: the EU token server
    # answers 400 to it with client_credentials.
    scope: str = DEFAULT_SCOPE
    # The console host people open, for device links; defaults to the connection's base_url.
    web_url: str | None = None
    token_path: str = TOKEN_PATH
    page_size: int = PAGE_SIZE


def load_settings(value: Any) -> NinjaOneSettings:
    """The settings as a ``NinjaOneSettings``, whether given converted, as a table, or not at all."""
    if isinstance(value, NinjaOneSettings):
        return value
    if value is None:
        return NinjaOneSettings()
    return msgspec.convert(value, NinjaOneSettings)
