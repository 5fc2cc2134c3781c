"""``AteraClient``: the Atera API v3 calls the plugin makes, one small method each.

Every call goes through ``VendorHTTP`` (rate limit, audit span, typed errors) with the
``X-API-KEY`` header from ``AteraApiKey``. Methods return records from ``gateway_atera.mapping``;
turning them into canonical models is the hooks' job.

Paging (spec ``*PagedResult``): lists take ``page`` (1-based) and ``itemsInPage`` and answer
``{"items", "page", "itemsInPage", "totalItemCount", "totalPages", "prevLink", "nextLink"}``.
The client asks for page after page up to ``totalPages``. It does not follow ``nextLink``: that
is an absolute ``https://app.atera.com/...`` URL, which would bypass a configured base URL
(a proxy, the simulator), and PSAtera's sample shows it can point at page 0. A page that adds
no record the client has not seen stops with an error instead of looping or truncating.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import msgspec
from gateway.errors import ConfigError, VendorRejected, VendorUnavailable
from gateway.models import Connection
from gateway.vendor_http import VendorHTTP

from gateway_atera import mapping
from gateway_atera.auth import AteraApiKey
from gateway_atera.constants import (
    AGENT,
    AGENT_PAGE,
    AGENTS,
    AGENTS_ON_MACHINE,
    ALERT,
    ALERTS,
    API_KEY_SETTING,
    API_ROOT,
    CUSTOMERS,
    ID_SHAPE,
    MAX_PAGES,
    OPEN,
    VENDOR,
)
from gateway_atera.errors import error_detail
from gateway_atera.mapping import AteraAgent, AteraAlert, AteraCustomer
from gateway_atera.settings import load_settings

R = TypeVar("R")


def api_root(base_url: str) -> str:
    """The API root: ``base_url`` as given when it ends in ``/api/v3``, else with it added
    (``https://app.atera.com`` and ``https://app.atera.com/api/v3`` both work)."""
    root = base_url.rstrip("/")
    return root if root.lower().endswith(API_ROOT) else root + API_ROOT


def is_atera_id(value: str) -> bool:
    """Atera ids (agents, alerts, customers) are int64s."""
    return isinstance(value, str) and ID_SHAPE.as_int(value) is not None


class AteraClient:
    """One Atera account, reached through the connection's ``VendorHTTP``."""

    def __init__(self, connection: Connection, *, transport: httpx.BaseTransport | None = None) -> None:
        self.connection = connection
        self.settings = load_settings(connection.id, connection.settings)
        api_key = connection.secrets.get(API_KEY_SETTING, "")
        if not api_key:
            raise ConfigError(
                f"{connection.id}.secrets: {API_KEY_SETTING} not set (an Atera API key, made under "
                "Admin > API in the Atera console)"
            )
        self.base_url = api_root(connection.base_url)
        origin = urlsplit(self.base_url)
        self.web_url = (self.settings.web_url or f"{origin.scheme}://{origin.netloc}").rstrip("/")
        self.page_size = max(1, self.settings.page_size)
        self.http = VendorHTTP(
            connection,
            base_url=self.base_url + "/",
            auth=AteraApiKey(api_key),
            headers={"Accept": "application/json"},
            error_detail=error_detail,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    # -- customers --------------------------------------------------------------------------

    def customers(self) -> Iterator[AteraCustomer]:
        """Every customer (``GET /customers``, all pages)."""
        return self._pages(CUSTOMERS, AteraCustomer)

    # -- agents (devices) -------------------------------------------------------------------

    def agent(self, agent_id: str) -> AteraAgent | None:
        """One agent (``GET /agents/{agentId}``), or ``None`` when Atera has no such agent."""
        if not is_atera_id(agent_id):
            return None
        try:
            response = self.http.get(AGENT.format(agent_id=agent_id))
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise
        body = self._json(response)
        return self._decode(body, AteraAgent, response) if isinstance(body, dict) and body else None

    def agents(self) -> Iterator[AteraAgent]:
        """Every agent of the account (``GET /agents``, all pages)."""
        return self._pages(AGENTS, AteraAgent)

    def agents_on_machine(self, machine_name: str) -> Iterator[AteraAgent]:
        """Agents installed on a machine of this name (``GET /agents/machine/{machineName}``)."""
        return self._pages(AGENTS_ON_MACHINE.format(machine_name=quote(machine_name, safe="")), AteraAgent)

    def agent_url(self, agent: AteraAgent) -> str | None:
        """The agent's page in the Atera console: Atera's own ``AppViewUrl``, else the console's
        device page built from ``DeviceGuid`` (assumed format), else ``None``."""
        given = (agent.app_view_url or "").strip()
        if given.startswith(("https://", "http://")):
            return given
        if agent.device_guid:
            return AGENT_PAGE.format(web=self.web_url, guid=agent.device_guid)
        return None

    # -- alerts -----------------------------------------------------------------------------

    def alerts(self, status: str = OPEN) -> Iterator[AteraAlert]:
        """Alerts in one state (``GET /alerts?alertStatus=Open``, all pages)."""
        return self._pages(ALERTS, AteraAlert, {"alertStatus": status})

    def alert(self, alert_id: str) -> AteraAlert | None:
        """One alert, open or resolved (``GET /alerts/{alertId}``); ``None`` on 404."""
        if not is_atera_id(alert_id):
            return None
        try:
            response = self.http.get(ALERT.format(alert_id=alert_id))
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise
        body = self._json(response)
        return self._decode(body, AteraAlert, response) if isinstance(body, dict) and body else None

    def resolve_alert(self, alert_id: str) -> None:
        """Resolve an alert: ``PUT /alerts/{alertId}`` with no body; Atera answers 204."""
        if not is_atera_id(alert_id):
            raise VendorRejected(
                f"{alert_id!r} is not an Atera alert id (an integer)", connection=self.connection.id, status=None
            )
        self.http.put(ALERT.format(alert_id=alert_id))

    # -- plumbing ---------------------------------------------------------------------------

    def _json(self, response: httpx.Response) -> Any:
        """The response's JSON; a page that is not JSON (a login page, a proxy) means the
        connection points at the wrong place, which retrying will not fix."""
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise VendorRejected(
                f"{VENDOR} answered {response.request.url.path} with "
                f"{response.headers.get('content-type', 'no content type')}, not JSON: is base_url "
                "the Atera API root (https://app.atera.com/api/v3)?",
                connection=self.connection.id,
                status=response.status_code,
            ) from None

    def _decode(self, raw: Any, record_type: type[R], response: httpx.Response) -> R:
        try:
            return mapping.decode(raw, record_type)
        except msgspec.ValidationError as exc:
            raise VendorRejected(
                f"{VENDOR} answered {response.request.url.path} with a record the plugin cannot read: {exc}",
                connection=self.connection.id,
                status=response.status_code,
            ) from None

    def _pages(self, path: str, record_type: type[R], params: dict[str, Any] | None = None) -> Iterator[R]:
        """Every item of a paged list, page by page (lazily: a caller may stop early)."""
        seen: set[int] = set()  # hashes of the records seen, to spot a page that repeats
        for page in range(1, MAX_PAGES + 1):
            response = self.http.get(path, params={**(params or {}), "page": page, "itemsInPage": self.page_size})
            body = self._json(response)
            if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
                raise VendorRejected(
                    f"{VENDOR} answered {response.request.url.path} without its paged envelope "
                    "({items, page, totalPages, ...}): is base_url the Atera API root?",
                    connection=self.connection.id,
                    status=response.status_code,
                )
            items = body.get("items") or []
            fresh = {hash(msgspec.json.encode(item)): item for item in items}
            fresh = {key: item for key, item in fresh.items() if key not in seen}
            if items and not fresh:
                raise VendorUnavailable(
                    f"{VENDOR} paging of {path} did not advance at page {page}",
                    connection=self.connection.id,
                )
            seen |= fresh.keys()
            # A record created while paging shifts the next page by one; its repeat is skipped.
            for item in fresh.values():
                yield self._decode(item, record_type, response)
            total_pages = body.get("totalPages")
            if not items or (isinstance(total_pages, int) and page >= total_pages):
                return
        raise VendorUnavailable(
            f"{VENDOR} list {path} has more than {MAX_PAGES} pages", connection=self.connection.id
        )
