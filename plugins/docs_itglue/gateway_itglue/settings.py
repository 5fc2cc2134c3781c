"""The settings table of an IT Glue connection, and which API host it talks to.

The gateway converts ``[workspaces.connections.settings]`` to ``ITGlueSettings`` at start-up
(the ``settings_type`` in ``VendorInfo``), so a misspelt or out-of-range setting stops start-up
with one message naming it. The API key is a secret setting, read from the environment.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

import msgspec

from gateway.errors import ConfigError
from gateway_itglue.constants import DEFAULT_PSA_VENDORS, ITGLUE_DOMAIN, MAX_PAGE_SIZE, PAGE_SIZE, REGION_HOSTS

Region = Literal["us", "eu", "au"]


class ITGlueSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-connection settings.

    :param region: the account's data center (``us``, ``eu``, ``au``). Checked against the
        connection's ``base_url`` when that is an IT Glue address; see ``api_root``.
    :param web_url: the account's address (``https://acme.itglue.com``), used only to build a
        document link when IT Glue answers a document without ``resource-url``.
    :param page_size: rows asked for per page (``page[size]``), 1 to 1000.
    :param include_folders: list documents inside document folders too, not only the
        organization's root documents (which is all IT Glue lists by default).
    :param include_archived: list archived documents as runbooks too.
    :param organization_types: only organizations of these types are customers
        (``organization-type-name``, e.g. ``["Customer"]``); empty means every organization.
    :param psa_vendors: IT Glue PSA integration type (``manage``, ``autotask``...) to this
        gateway's vendor name, for ``Customer.integration_ids``.
    """

    region: Region | None = None
    web_url: str | None = None
    page_size: int = PAGE_SIZE
    include_folders: bool = True
    include_archived: bool = False
    organization_types: list[str] = []
    psa_vendors: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_PSA_VENDORS))

    def __post_init__(self) -> None:
        # msgspec turns these into a ValidationError the gateway reports as a ConfigError.
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if self.web_url is not None and not self.web_url.startswith(("http://", "https://")):
            raise ValueError(f"web_url {self.web_url!r} must be an http(s) URL")


def coerce_settings(value: object) -> ITGlueSettings:
    """The connection's settings as ``ITGlueSettings`` (``None`` or a plain table in unit tests)."""
    if isinstance(value, ITGlueSettings):
        return value
    try:
        return msgspec.convert(value or {}, type=ITGlueSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"itglue settings: {exc}") from None


def region_of_host(host: str) -> Region | None:
    """The data center an IT Glue host belongs to (``None`` for a host outside itglue.com).

    ``api.eu.itglue.com`` and an account address such as ``acme.eu.itglue.com`` are both EU.
    """
    host = host.lower().rstrip(".")
    if host != ITGLUE_DOMAIN and not host.endswith("." + ITGLUE_DOMAIN):
        return None
    labels = host[: -len(ITGLUE_DOMAIN)].rstrip(".").split(".")
    if "eu" in labels:
        return "eu"
    if "au" in labels:
        return "au"
    return "us"


def api_root(base_url: str, region: Region | None) -> str:
    """The API root to call for a connection.

    - ``base_url`` on itglue.com (the API host, or the account address people open in a
      browser, ``https://acme.eu.itglue.com``): the API host of that data center. ``region``,
      when set, must agree, because a key sent to the wrong data center is refused with 403.
    - any other ``base_url`` (a proxy, the simulator): used as given; ``region`` then has no
      meaning and is refused, so a config cannot look like it targets EU while it does not.
    """
    host = urlsplit(base_url).hostname or ""
    detected = region_of_host(host)
    if detected is None:
        if region is not None:
            raise ConfigError(
                f"itglue settings.region {region!r}: base_url {base_url!r} is not an IT Glue "
                f"address; set base_url to {REGION_HOSTS[region]} or drop region"
            )
        return base_url.rstrip("/")
    if region is not None and region != detected:
        raise ConfigError(
            f"itglue settings.region {region!r} does not match base_url {base_url!r} "
            f"({detected}); the {region} API is {REGION_HOSTS[region]}"
        )
    return REGION_HOSTS[detected]
