"""``HuduClient``: one connection's calls to the Hudu API v1, each a small method.

Every call goes through ``gateway.vendor_http.VendorHTTP`` (rate budget, audit span, typed
errors). Hudu-specific behaviour lives here:

- lists come wrapped (``{"companies": [...]}``) and paged with ``page`` (1-based) and
  ``page_size``; paging stops on an empty page, a short page, or a page with nothing new
  (some Hudu versions ignore ``page_size``);
- a missing article is ``200 null`` and a missing company ``404``: both read as ``None``;
- a ``429 Retry later`` without Retry-After waits for the next 5-minute window
  (``gateway_hudu.rate_window``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
import msgspec

from gateway.errors import ConfigError, VendorError, VendorRejected
from gateway.models import Connection
from gateway.vendor_http import VendorHTTP
from gateway_hudu.auth import HuduApiKey
from gateway_hudu.constants import API_KEY_SETTING, API_PATH, ID_SHAPE, MAX_PAGES, PAGE_SIZE, VENDOR
from gateway_hudu.rate_window import retry_after_filler
from gateway_hudu.records import (
    Article,
    ArticleEnvelope,
    ArticleList,
    Company,
    CompanyEnvelope,
    CompanyList,
)
from gateway_hudu.settings import HuduSettings, coerce_settings

Row = TypeVar("Row", Company, Article)

# A list answer: the documented envelope, a bare array (seen on other Hudu resources), or null.
_COMPANY_PAGE: Any = CompanyList | list[Company] | None
_ARTICLE_PAGE: Any = ArticleList | list[Article] | None


def instance_root(base_url: str) -> str:
    """The Hudu instance address without a trailing ``/`` or ``/api/v1``."""
    root = base_url.rstrip("/")
    if root.endswith(API_PATH):
        root = root[: -len(API_PATH)]
    return root


def hudu_id(value: str | int) -> int | None:
    """A Hudu record id as an int, or ``None`` when ``value`` cannot be one."""
    return ID_SHAPE.as_int(str(value).strip())


class HuduClient:
    """The client object ``gateway_connect`` returns for one Hudu connection.

    :param connection: the connection; ``base_url`` is the instance address
        (``https://docs.example.com``), ``secrets["api_key"]`` the API key.
    :param clock: epoch seconds, to place a 429 in Hudu's 5-minute window (tests freeze it).
    """

    def __init__(self, connection: Connection, *, clock: Callable[[], float] = time.time) -> None:
        api_key = connection.secrets.get(API_KEY_SETTING)
        if not api_key:
            raise ConfigError(f"{connection.id}: the hudu secret {API_KEY_SETTING!r} is not set")
        self.connection = connection
        self.settings: HuduSettings = coerce_settings(connection.settings)
        root = instance_root(connection.base_url)
        self.web_url = instance_root(self.settings.web_url or root)
        self.http = VendorHTTP(
            connection,
            base_url=root + API_PATH,
            auth=HuduApiKey(api_key),
            headers={"accept": "application/json"},
        )
        hooks = self.http.client.event_hooks
        self.http.client.event_hooks = {
            "request": hooks.get("request", []),
            "response": [*hooks.get("response", []), retry_after_filler(clock)],
        }

    def close(self) -> None:
        self.http.close()

    # -- companies ------------------------------------------------------------------------

    def companies(self, **filters: str | int) -> Iterator[Company]:
        """Every company matching the spec's list filters (``name``, ``search``,
        ``id_in_integration``...), across all pages."""
        return self._rows("/companies", filters, _COMPANY_PAGE, CompanyList, "companies")

    def companies_in_integration(self, external_id: str | int) -> list[Company]:
        """Companies matched to ``external_id`` in a PSA/RMM integration (a NinjaOne org id)."""
        return list(self.companies(id_in_integration=str(external_id)))

    def company(self, company_id: str | int) -> Company | None:
        """One company, or ``None`` when Hudu has none with that id."""
        number = hudu_id(company_id)
        if number is None:
            return None
        try:
            response = self.http.get(f"/companies/{number}")
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise
        envelope = self._decode(response, CompanyEnvelope | None, "/companies/{id}")
        return envelope.company if envelope is not None else None

    # -- articles -------------------------------------------------------------------------

    def articles(self, **filters: str | int | bool) -> Iterator[Article]:
        """Every knowledge-base article matching the filters (``company_id``, ``name``,
        ``draft``...), across all pages."""
        params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items()}
        return self._rows("/articles", params, _ARTICLE_PAGE, ArticleList, "articles")

    def article(self, article_id: str | int) -> Article | None:
        """One article, or ``None``: Hudu answers a missing article with ``200 null``."""
        number = hudu_id(article_id)
        if number is None:
            return None
        try:
            response = self.http.get(f"/articles/{number}")
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise
        envelope = self._decode(response, ArticleEnvelope | None, "/articles/{id}")
        return envelope.article if envelope is not None else None

    def api_info(self) -> dict[str, Any]:
        """``GET /api_info``: the instance's version and date (a cheap credentials check)."""
        response = self.http.get("/api_info")
        info = self._decode(response, dict[str, Any] | None, "/api_info")
        return info or {}

    # -- links ----------------------------------------------------------------------------

    def absolute_url(self, url: str | None) -> str | None:
        """``url`` as Hudu gave it when absolute; joined to the web address when a path."""
        if not url:
            return None
        if urlsplit(url).scheme in ("http", "https"):
            return url
        return urljoin(self.web_url + "/", url)

    # -- paging and decoding --------------------------------------------------------------

    def _rows(
        self, path: str, filters: dict[str, Any], page_type: Any, envelope: type, key: str
    ) -> Iterator[Any]:
        size = self.settings.page_size
        # Hudu may ignore page_size and serve its default 25, so only a page shorter than both
        # is known to be the last one.
        last_page_below = min(size, PAGE_SIZE)
        seen: set[int] = set()
        for page in range(1, MAX_PAGES + 1):
            response = self.http.get(path, params={**filters, "page": page, "page_size": size})
            answer = self._decode(response, page_type, path)
            rows = getattr(answer, key) if isinstance(answer, envelope) else (answer or [])
            fresh = [row for row in rows if row.id not in seen]
            seen.update(row.id for row in fresh)
            yield from fresh
            if not fresh or len(rows) < last_page_below:
                return
        raise VendorError(
            f"{self.connection.id}: {path} still had rows after {MAX_PAGES} pages",
            connection=self.connection.id,
        )

    def _decode(self, response: httpx.Response, type_: Any, what: str) -> Any:
        try:
            return msgspec.json.decode(response.content, type=type_)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise VendorError(
                f"{VENDOR} answered {what} with an unexpected body: {exc}",
                connection=self.connection.id,
                status=response.status_code,
            ) from None
