"""The settings table of a Hudu connection."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import ConfigError
from gateway_hudu.constants import DEFAULT_INTEGRATION_VENDORS, PAGE_SIZE


class HuduSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-connection settings (``[workspaces.connections.settings]`` in the config file).

    :param web_url: the address people open Hudu at, used to complete an article ``url`` that
        Hudu answers as a path. Defaults to the connection's ``base_url``.
    :param page_size: rows asked for per page (``page_size``); Hudu's own default is 25.
    :param integration_vendors: Hudu integration slug (``integrator_name``) to gateway vendor
        name, for ``Customer.integration_ids``. Integrations not listed are left out.
    :param include_archived: list archived companies as customers too.
    :param include_drafts: list draft articles as runbooks too.
    """

    web_url: str | None = None
    page_size: int = PAGE_SIZE
    integration_vendors: dict[str, str] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_INTEGRATION_VENDORS)
    )
    include_archived: bool = False
    include_drafts: bool = False


def coerce_settings(value: Any) -> HuduSettings:
    """The connection's settings as ``HuduSettings`` (it may arrive as ``None`` or a table)."""
    if isinstance(value, HuduSettings):
        settings = value
    elif value is None:
        settings = HuduSettings()
    else:
        try:
            settings = msgspec.convert(value, type=HuduSettings)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"hudu settings: {exc}") from None
    if settings.page_size < 1:
        raise ConfigError("hudu settings.page_size: must be at least 1")
    if settings.web_url is not None and not settings.web_url.startswith(("http://", "https://")):
        raise ConfigError(f"hudu settings.web_url: {settings.web_url!r} must be an http(s) URL")
    return settings
