"""The settings table of an Atera connection (``[workspaces.connections.settings]``).

The gateway converts the table to ``AteraSettings`` at start-up (it is the ``settings_type``
in ``VendorInfo``), so a misspelt or mistyped setting stops start-up with one message naming
it. The API key is not a setting: it is the secret ``api_key``, read from the environment.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import ConfigError

from gateway_atera.constants import PAGE_SIZE


class AteraSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-connection settings.

    :param web_url: the console people open, for device links built when an agent carries no
        ``AppViewUrl``; defaults to the scheme and host of the connection's ``base_url``
        (``https://app.atera.com``).
    :param page_size: ``itemsInPage`` asked for on every list (Atera's default is 20).
    """

    web_url: str | None = None
    page_size: int = PAGE_SIZE


def load_settings(connection_id: str, value: Any) -> AteraSettings:
    """The settings as ``AteraSettings`` (the gateway converts them; a table is accepted for
    scripts and tests, and no table means the defaults)."""
    if isinstance(value, AteraSettings):
        return value
    try:
        return msgspec.convert(value or {}, AteraSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{connection_id}.settings: {exc}") from None
