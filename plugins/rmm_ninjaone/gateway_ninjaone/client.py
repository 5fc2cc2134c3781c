"""``NinjaOneClient``: the NinjaOne API v2 calls the plugin makes, one small method each.

Every call goes through ``VendorHTTP`` (rate limit, audit span, typed errors); the token call
too, through a second ``VendorHTTP`` without auth. Methods return the vendor's JSON; turning
it into canonical models is ``gateway_ninjaone.mapping``' job.

Paging, per the spec and what clients saw live:

- bare-array lists (``/v2/organizations``, ``/v2/devices``) page with ``pageSize`` and
  ``after=<last id>``; a page shorter than ``pageSize`` is the last one, and there is no total;
- ``/v2/queries/*`` reports answer ``{"cursor": {"name", "offset", "count", "expires"},
  "results": [...]}``; the next page is asked for with ``cursor=<name>`` (the name may stay the
  same from page to page, so progress is judged by the rows, not by the name);
- ``/v2/alerts`` is not paged: it answers every active alert at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from gateway.errors import ConfigError, VendorRejected, VendorUnavailable
from gateway.models import Connection
from gateway.oauth import BearerAuth, TokenEndpoint, shared_token, token_http
from gateway.vendor_http import VendorHTTP, default_error_detail
from gateway_ninjaone.constants import (
    ALERT,
    ALERTS,
    COMPUTER_SYSTEMS,
    DEVICE,
    DEVICE_DASHBOARD,
    DEVICE_SEARCH,
    ID_SHAPE,
    MAX_PAGES,
    ORGANIZATIONS,
    SEARCH_LIMIT,
    TOKEN_REFRESH_MARGIN,
    VENDOR,
)
from gateway_ninjaone.settings import load_settings


def ninjaone_error_detail(response: httpx.Response) -> str:
    """NinjaOne's message from its two error shapes.

    OAuth and auth failures: ``{"error", "error_description", "error_code"}``; other API
    errors: ``{"resultCode": "FAILURE", "errorMessage", "incidentId"}``.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("errorMessage"), str):
            incident = body.get("incidentId")
            return f"{body['errorMessage']} (incident {incident})" if incident else body["errorMessage"]
        if isinstance(body.get("error"), str):
            description = body.get("error_description")
            return f"{body['error']}: {description}" if description else body["error"]
    return default_error_detail(response)


def json_of(response: httpx.Response, connection_id: str) -> Any:
    """The response's JSON; a page that is not JSON (a login page, a proxy) means the
    connection points at the wrong host, which retrying will not fix."""
    try:
        return response.json()
    except ValueError:
        raise VendorRejected(
            f"{VENDOR} answered {response.request.url.path} with {response.headers.get('content-type', 'no type')}, "
            "not JSON: is base_url the NinjaOne instance host (https://<region>.ninjarmm.com)?",
            connection=connection_id,
            status=response.status_code,
        ) from None


def is_alert_uid(value: str) -> bool:
    """Alert uids are UUIDs (spec: ``uid`` ``format: uuid``)."""
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def is_device_id(value: str) -> bool:
    """Device ids are int32s."""
    return ID_SHAPE.as_int(value) is not None


class NinjaOneClient:
    """One NinjaOne tenant, reached through the connection's ``VendorHTTP``."""

    def __init__(self, connection: Connection, *, transport: httpx.BaseTransport | None = None) -> None:
        self.connection = connection
        self.settings = load_settings(connection.settings)
        secret = connection.secrets.get("client_secret", "")
        if not self.settings.client_id or not secret:
            raise ConfigError(
                f"connection {connection.id}: NinjaOne needs settings.client_id and the secret "
                "client_secret (an 'API Services (machine-to-machine)' client app)"
            )
        self.base_url = connection.base_url.rstrip("/")
        self.web_url = (self.settings.web_url or self.base_url).rstrip("/")
        self.page_size = max(1, self.settings.page_size)
        self.token_http = token_http(
            connection, base_url=self.base_url, error_detail=ninjaone_error_detail, transport=transport
        )
        endpoint = TokenEndpoint(
            self.token_http,
            self.settings.token_path,
            client_id=self.settings.client_id,
            client_secret=secret,
            scope=self.settings.scope,
        )
        self.token = shared_token(connection, endpoint, refresh_margin=TOKEN_REFRESH_MARGIN)
        self.http = VendorHTTP(
            connection,
            base_url=self.base_url,
            auth=BearerAuth(self.token),
            headers={"Accept": "application/json"},
            error_detail=ninjaone_error_detail,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()
        self.token_http.close()

    # -- organizations --------------------------------------------------------------------

    def organizations(self) -> list[dict[str, Any]]:
        """Every organization (brief mode: id, name, description, nodeApprovalMode)."""
        return list(self._after_pages(ORGANIZATIONS))

    # -- devices --------------------------------------------------------------------------

    def device(self, device_id: str) -> dict[str, Any] | None:
        """One device in detail (agents carry ``system.serialNumber``), or ``None``."""
        if not is_device_id(device_id):
            return None
        try:
            return self._get(DEVICE.format(id=device_id))
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise

    def search_devices(self, query: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
        """Devices whose name (system, DNS, NetBIOS, display...) matches ``query``."""
        body = self._get(DEVICE_SEARCH, params={"q": query, "limit": limit})
        return list(body.get("devices") or []) if isinstance(body, dict) else []

    def computer_systems(self) -> Iterator[dict[str, Any]]:
        """Every row of the computer-systems report (``deviceId``, ``serialNumber``, ...)."""
        cursor: str | None = None
        seen: set[Any] = set()
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"pageSize": self.page_size}
            if cursor:
                params["cursor"] = cursor
            body = self._get(COMPUTER_SYSTEMS, params=params)
            rows = list(body.get("results") or [])
            keys = {(row.get("deviceId"), row.get("timestamp")) for row in rows}
            if keys <= seen:  # nothing new: the last page, or a cursor going nowhere
                return
            seen |= keys
            yield from rows
            cursor = (body.get("cursor") or {}).get("name")
            if len(rows) < self.page_size or not cursor:
                return

    def device_url(self, device_id: str | int) -> str:
        """The device's page in the NinjaOne console (built locally: no call, never expires)."""
        return DEVICE_DASHBOARD.format(web=self.web_url, id=device_id)

    # -- alerts ---------------------------------------------------------------------------

    def alerts(self, organization_id: str | None = None) -> list[dict[str, Any]]:
        """Active alerts, all of them or one organization's (device filter ``org = <id>``)."""
        if organization_id is not None and not organization_id.isdigit():
            return []  # organization ids are int32s; nothing else can have alerts
        params = {"df": f"org = {organization_id}"} if organization_id else None
        body = self._get(ALERTS, params=params)
        return list(body) if isinstance(body, list) else []

    def reset_alert(self, uid: str) -> None:
        """Reset (clear) an alert: ``DELETE /v2/alert/{uid}``, 204 with no body."""
        if not is_alert_uid(uid):
            raise VendorRejected(
                f"{uid!r} is not a NinjaOne alert uid (a UUID)", connection=self.connection.id, status=None
            )
        self.http.delete(ALERT.format(uid=uid))

    # -- plumbing -------------------------------------------------------------------------

    def _get(self, path: str, **kwargs: Any) -> Any:
        return json_of(self.http.get(path, **kwargs), self.connection.id)

    def _after_pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        after: int | None = None
        while True:
            query = {**(params or {}), "pageSize": self.page_size}
            if after is not None:
                query["after"] = after
            page = self._get(path, params=query)
            if not isinstance(page, list):
                raise VendorUnavailable(
                    f"{VENDOR} answered {path} with {type(page).__name__}, not a list",
                    connection=self.connection.id,
                )
            yield from page
            if len(page) < self.page_size:
                return
            last = int(page[-1]["id"])
            if after is not None and last <= after:
                # A full page that does not move the cursor would loop forever (or truncate).
                raise VendorUnavailable(
                    f"{VENDOR} paging of {path} did not advance past id {after}",
                    connection=self.connection.id,
                )
            after = last
