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
from gateway.errors import ConfigError, VendorError
from gateway.models import Connection
from gateway.vendor_http import VendorHTTP

from gateway_templatevendor.auth import TemplateVendorApiKey
from gateway_templatevendor.constants import API_KEY_SETTING, API_PREFIX, MAX_PAGE_SIZE, MAX_PAGES, VENDOR
from gateway_templatevendor.errors import error_detail
from gateway_templatevendor.mapping import Article, Company
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

    def companies(self) -> list[Company]:
        return list(self.all("/companies", Company))

    def articles(self, company_id: int) -> list[Article]:
        return list(self.all("/articles", Article, params={"company_id": company_id}))
