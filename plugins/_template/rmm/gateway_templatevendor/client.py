"""``TemplateVendorClient``: one connection's Template Vendor API, one small method per resource.

Every call goes through ``gateway.vendor_http.VendorHTTP``, which spends the connection's rate
budget, opens the audit span, maps statuses and transport failures to ``gateway.errors`` and
honours 429 Retry-After. The client is what ``gateway_connect`` returns and every hook receives.

Paging: lists answer ``{"items": [...], "next_page": 2}``; ``next_page`` is ``null`` on the
last page. The client sends its own request for each page (it never follows a URL the vendor
names, so credentials stay on the configured host).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import msgspec
from gateway.errors import ConfigError, VendorError, VendorRejected
from gateway.models import Connection
from gateway.vendor_http import VendorHTTP

from gateway_templatevendor.auth import TemplateVendorApiKey
from gateway_templatevendor.constants import API_KEY_SETTING, API_PREFIX, MAX_PAGE_SIZE, MAX_PAGES, VENDOR
from gateway_templatevendor.errors import error_detail
from gateway_templatevendor.mapping import Alert, Device, Organization
from gateway_templatevendor.settings import TemplateVendorSettings

T = TypeVar("T")


class Page(msgspec.Struct, frozen=True):
    items: list[Any]
    next_page: int | None = None


def settings_of(connection: Connection) -> TemplateVendorSettings:
    """The connection's settings (the gateway converts them; a dict is accepted for scripts)."""
    if isinstance(connection.settings, TemplateVendorSettings):
        return connection.settings
    try:
        return msgspec.convert(connection.settings or {}, TemplateVendorSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{connection.id}.settings: {exc}") from None


def record_id(value: str | int) -> int | None:
    """A vendor record id, or ``None`` for anything else (kept out of URL paths)."""
    text = str(value).rpartition(":")[2]
    return int(text) if text.isdigit() else None


class TemplateVendorClient:
    """The Template Vendor API of one connection.

    :param connection: base URL, ``TemplateVendorSettings`` and the secret ``api_key``.
    :param transport: an httpx transport for narrow unit tests (respx); ``None`` in real use.
    """

    def __init__(self, connection: Connection, *, transport: httpx.BaseTransport | None = None) -> None:
        api_key = connection.secrets.get(API_KEY_SETTING)
        if not api_key:
            raise ConfigError(f"{connection.id}.secrets: {API_KEY_SETTING} not set")
        self.connection = connection
        self.settings = settings_of(connection)
        self.web_url = (self.settings.web_url or connection.base_url).rstrip("/")
        self.http = VendorHTTP(
            connection,
            base_url=connection.base_url.rstrip("/") + API_PREFIX,
            auth=TemplateVendorApiKey(api_key),
            headers={"Accept": "application/json"},
            error_detail=error_detail,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    # -- decoding and paging -------------------------------------------------------------

    def _decode(self, response: httpx.Response, type_: type[T]) -> T:
        try:
            return msgspec.json.decode(response.content, type=type_)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise VendorError(
                f"{VENDOR} answered {response.request.url.path} with an unexpected body: {exc}",
                connection=self.connection.id,
                status=response.status_code,
            ) from None

    def all(self, path: str, type_: type[T], *, params: dict[str, Any] | None = None) -> Iterator[T]:
        """Every record of the list at ``path``, page after page."""
        size = max(1, min(self.settings.page_size, MAX_PAGE_SIZE))
        number: int | None = 1
        for _ in range(MAX_PAGES):
            if number is None:
                return
            query = {**(params or {}), "page": number, "page_size": size}
            page = self._decode(self.http.get(path, params=query), Page)
            yield from msgspec.convert(page.items, list[type_])  # type: ignore[valid-type]
            number = page.next_page
        raise VendorError(f"{VENDOR} kept answering pages past {MAX_PAGES}", connection=self.connection.id)

    def _get_one(self, path: str, type_: type[T]) -> T | None:
        try:
            return self._decode(self.http.get(path), type_)
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise

    # -- resources -----------------------------------------------------------------------

    def organizations(self) -> list[Organization]:
        return list(self.all("/organizations", Organization))

    def device(self, device_id: str | int) -> Device | None:
        number = record_id(device_id)
        return self._get_one(f"/devices/{number}", Device) if number is not None else None

    def devices(self, *, serial: str | None = None, hostname: str | None = None) -> list[Device]:
        params = {k: v for k, v in {"serial_number": serial, "hostname": hostname}.items() if v}
        return list(self.all("/devices", Device, params=params))

    def alerts(self, organization_id: str | int | None = None) -> list[Alert]:
        """Active alerts (open or acknowledged), all or one organization's."""
        params: dict[str, Any] = {"active": "true"}
        if organization_id is not None:
            params["organization_id"] = organization_id
        return list(self.all("/alerts", Alert, params=params))

    def alert(self, alert_id: str | int) -> Alert | None:
        number = record_id(alert_id)
        return self._get_one(f"/alerts/{number}", Alert) if number is not None else None

    def alert_action(self, alert_id: str | int, action: str) -> Alert:
        """``acknowledge`` or ``resolve`` the alert."""
        number = record_id(alert_id)
        if number is None:
            raise VendorRejected(f"{alert_id!r} is not a {VENDOR} alert id", status=404)
        return self._decode(self.http.post(f"/alerts/{number}/{action}"), Alert)
