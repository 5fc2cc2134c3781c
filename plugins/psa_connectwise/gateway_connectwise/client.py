"""``ConnectWiseClient``: one connection's ConnectWise API, one small method per resource.

Every call goes through ``gateway.vendor_http.VendorHTTP`` (rate limit, audit span, typed
errors). The client is what ``gateway_connect`` returns and every hook receives.

Where the API lives: ``connection.base_url`` is either the API root
``https://{site}/{codebase}/apis/3.0``, used as it is, or the bare site URL
``https://{site}``; then the codebase is asked of ``GET {site}/login/companyinfo/{company_id}``
on first use and kept in Redis (``plugin:{connection}:codebase``) for every worker.

Paging: lists are bare JSON arrays with a ``Link`` header whose ``rel="next"`` names the next
page. The client takes only the page number from that link and sends its own request again,
with the same ``conditions``: credentials never follow a link to another host, and the filter
is never lost on page two (pyconnectwise issue #14 lost it).
"""

from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx
import msgspec
from gateway.errors import ConfigError, VendorError, VendorRejected
from gateway.models import Connection
from gateway.vendor_http import VendorHTTP

from gateway_connectwise import conditions as cond
from gateway_connectwise.auth import ConnectWiseAuth
from gateway_connectwise.constants import (
    API_SUFFIX,
    CHARGE_TO_TICKET,
    CODEBASE_TTL_SECONDS,
    COMPANY_INFO_PATH,
    DEFAULT_PAGE_SIZE,
    DOCUMENT_RECORD_TYPE,
    MAX_PAGE_SIZE,
    VENDOR,
)
from gateway_connectwise.errors import error_detail
from gateway_connectwise.records import (
    Board,
    BoardStatus,
    BoardType,
    Company,
    CompanyInfo,
    Configuration,
    ConfigurationReference,
    ConnectWiseSettings,
    Document,
    Note,
    Priority,
    Ticket,
    TimeEntry,
)

SECRET_SETTINGS = ("public_key", "private_key", "client_id")

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``next_page`` is ``None`` on the last one."""

    items: list[T]
    next_page: int | None


def next_page(response: httpx.Response, current: int) -> int | None:
    """The page number in the ``Link`` header's ``rel="next"``, or ``None`` when there is none."""
    link = response.links.get("next")
    if not link or not link.get("url"):
        return None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link["url"]).query)
    pages = {k.casefold(): v for k, v in query.items()}.get("page")
    try:
        return int(pages[0]) if pages else current + 1
    except ValueError:
        return current + 1


def settings_of(connection: Connection) -> ConnectWiseSettings:
    """The connection's settings as ``ConnectWiseSettings`` (the gateway converts them already;
    a plain dict is accepted for scripts and tests)."""
    if isinstance(connection.settings, ConnectWiseSettings):
        return connection.settings
    try:
        return msgspec.convert(connection.settings or {}, ConnectWiseSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{connection.id}.settings: {exc}") from None


class ConnectWiseClient:
    """The ConnectWise API of one connection.

    :param connection: base URL, ``ConnectWiseSettings`` and the secrets ``public_key``,
        ``private_key`` and ``client_id``.
    :param transport: an httpx transport for narrow unit tests (respx); ``None`` in real use.
    """

    def __init__(self, connection: Connection, *, transport: httpx.BaseTransport | None = None) -> None:
        self.connection = connection
        self.settings = settings_of(connection)
        missing = [name for name in SECRET_SETTINGS if not connection.secrets.get(name)]
        if missing:
            raise ConfigError(f"{connection.id}.secrets: {', '.join(missing)} not set")
        self._client_id = connection.secrets["client_id"]
        self._auth = ConnectWiseAuth(
            self.settings.company_id,
            connection.secrets["public_key"],
            connection.secrets["private_key"],
            self._client_id,
        )
        self._headers = {"Accept": "application/json"}
        if self.settings.api_version:
            self._headers["Accept"] = f"application/vnd.connectwise.com+json; version={self.settings.api_version}"
        self._transport = transport
        base = connection.base_url.rstrip("/")
        self._api_root: str | None = base if base.endswith(API_SUFFIX) else None
        self._http: VendorHTTP | None = None
        self._lock = threading.Lock()

    # -- where the API lives -------------------------------------------------------------

    @property
    def api_root(self) -> str:
        """``https://{site}/{codebase}/apis/3.0``, discovering the codebase if needed."""
        if self._api_root is None:
            with self._lock:
                if self._api_root is None:
                    self._api_root = self._discover_api_root()
        return self._api_root

    @property
    def http(self) -> VendorHTTP:
        """The signed, rate-limited HTTP client of the API root (built on first use)."""
        if self._http is None:
            root = self.api_root
            with self._lock:
                if self._http is None:
                    self._http = self._vendor_http(root, auth=self._auth, headers=self._headers)
        return self._http

    def _vendor_http(self, base_url: str, **kwargs: Any) -> VendorHTTP:
        return VendorHTTP(
            self.connection, base_url=base_url, error_detail=error_detail, transport=self._transport, **kwargs
        )

    def _discover_api_root(self) -> str:
        site = self.connection.base_url.rstrip("/")
        runtime = self.connection.runtime
        key = f"plugin:{self.connection.id}:codebase"
        cached = runtime.redis.get(key) if runtime is not None else None
        if cached:
            codebase = cached.decode() if isinstance(cached, bytes) else str(cached)
        else:
            # companyinfo is public: no credentials go with it.
            site_http = self._vendor_http(site, headers={"Accept": "application/json"})
            try:
                path = COMPANY_INFO_PATH.format(company_id=urllib.parse.quote(self.settings.company_id, safe=""))
                codebase = self._decode(site_http.get(path), CompanyInfo).codebase
            finally:
                site_http.close()
            if runtime is not None:
                runtime.redis.set(key, codebase, ex=CODEBASE_TTL_SECONDS)
        return f"{site}/{codebase.strip('/')}{API_SUFFIX}"

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

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

    def page(
        self,
        path: str,
        type_: type[T],
        *,
        conditions: str | None = None,
        order_by: str | None = None,
        page: int = 1,
        page_size: int = DEFAULT_PAGE_SIZE,
        params: dict[str, Any] | None = None,
    ) -> Page[T]:
        """One page of the list at ``path``."""
        query: dict[str, Any] = dict(params or {})
        if conditions:
            query["conditions"] = conditions
        if order_by:
            query["orderBy"] = order_by
        query["page"] = page
        query["pageSize"] = max(1, min(page_size, MAX_PAGE_SIZE))
        response = self.http.get(path, params=query)
        return Page(self._decode(response, list[type_]), next_page(response, page))  # type: ignore[valid-type]

    def all(
        self,
        path: str,
        type_: type[T],
        *,
        conditions: str | None = None,
        order_by: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[T]:
        """Every record of the list at ``path``, following ``rel="next"`` in pages of 1000."""
        items: list[T] = []
        number: int | None = 1
        while number is not None:
            result = self.page(
                path,
                type_,
                conditions=conditions,
                order_by=order_by,
                page=number,
                page_size=MAX_PAGE_SIZE,
                params=params,
            )
            items.extend(result.items)
            number = result.next_page
        return items

    # -- tickets -------------------------------------------------------------------------

    @staticmethod
    def _ticket_path(ticket_id: str | int, suffix: str = "") -> str:
        # Ids are integers; refusing anything else keeps a caller's text out of the URL path.
        if not str(ticket_id).isdigit():
            raise VendorRejected(f"{ticket_id!r} is not a ConnectWise ticket id", status=404)
        return f"/service/tickets/{int(ticket_id)}{suffix}"

    def tickets(
        self,
        *,
        conditions: str | None = None,
        order_by: str | None = None,
        page: int = 1,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Page[Ticket]:
        return self.page(
            "/service/tickets", Ticket, conditions=conditions, order_by=order_by, page=page, page_size=page_size
        )

    def ticket(self, ticket_id: str | int) -> Ticket | None:
        """The ticket, or ``None`` when ConnectWise has no such ticket."""
        try:
            return self._decode(self.http.get(self._ticket_path(ticket_id)), Ticket)
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise

    def tickets_with_external_ref(self, external_ref: str) -> list[Ticket]:
        return self.all(
            "/service/tickets", Ticket, conditions=f"externalXRef = {cond.quote(external_ref)}", order_by="id asc"
        )

    def create_ticket(self, body: dict[str, Any]) -> Ticket:
        return self._decode(self.http.post("/service/tickets", json=body), Ticket)

    def patch_ticket(self, ticket_id: str | int, operations: list[dict[str, Any]]) -> Ticket:
        """Apply a JSON Patch (``[{"op": "replace", "path": "status/id", "value": "17"}]``)."""
        return self._decode(self.http.patch(self._ticket_path(ticket_id), json=operations), Ticket)

    def ticket_configurations(self, ticket_id: str | int) -> list[Configuration]:
        """The configuration items named on the ticket, in full (two calls when there are any:
        the ticket's references, then the items themselves for their serial numbers)."""
        refs = self.all(self._ticket_path(ticket_id, "/configurations"), ConfigurationReference)
        if not refs:
            return []
        ids = ", ".join(str(int(r.id)) for r in refs)
        found = {c.id: c for c in self.all("/company/configurations", Configuration, conditions=f"id in ({ids})")}
        # A reference whose item is gone (deleted) still names the device it was.
        return [found.get(r.id) or Configuration(id=r.id, name=r.device_identifier or "") for r in refs]

    # -- notes ---------------------------------------------------------------------------

    def notes(self, ticket_id: str | int) -> list[Note]:
        return self.all(self._ticket_path(ticket_id, "/notes"), Note, order_by="id asc")

    def add_note(self, ticket_id: str | int, text: str, *, internal: bool) -> Note:
        """A Discussion note (customer-visible, e-mailed per the ticket's settings) or an
        Internal note."""
        body = {
            "text": text,
            "detailDescriptionFlag": not internal,
            "internalAnalysisFlag": internal,
            "resolutionFlag": False,
            "processNotifications": not internal,
        }
        return self._decode(self.http.post(self._ticket_path(ticket_id, "/notes"), json=body), Note)

    # -- setup tables --------------------------------------------------------------------

    def boards(self) -> list[Board]:
        return [b for b in self.all("/service/boards", Board, order_by="name asc") if not b.inactive]

    def board_statuses(self, board_id: int) -> list[BoardStatus]:
        """The board's statuses in ConnectWise's order (status ids are per board)."""
        statuses = self.all(f"/service/boards/{int(board_id)}/statuses", BoardStatus)
        return sorted((s for s in statuses if not s.inactive), key=lambda s: (s.sort_order, s.id))

    def board_types(self, board_id: int) -> list[BoardType]:
        types = self.all(f"/service/boards/{int(board_id)}/types", BoardType, order_by="name asc")
        return [t for t in types if not t.inactive]

    def priorities(self) -> list[Priority]:
        return sorted(self.all("/service/priorities", Priority), key=lambda p: (p.sort_order, p.id))

    def companies(self) -> list[Company]:
        return self.all("/company/companies", Company, conditions="deletedFlag = false", order_by="name asc")

    # -- time ----------------------------------------------------------------------------

    def time_entries(self, ticket_id: str | int, *, time_start: datetime | None = None) -> list[TimeEntry]:
        """Time charged to the ticket, optionally only entries starting at ``time_start``."""
        self._ticket_path(ticket_id)
        conditions = cond.all_of(
            f"chargeToId = {int(ticket_id)}",
            f"chargeToType = {cond.quote(CHARGE_TO_TICKET)}",
            f"timeStart = {cond.when(time_start)}" if time_start else None,
        )
        return self.all("/time/entries", TimeEntry, conditions=conditions, order_by="id asc")

    def add_time_entry(self, body: dict[str, Any]) -> TimeEntry:
        return self._decode(self.http.post("/time/entries", json=body), TimeEntry)

    # -- documents -----------------------------------------------------------------------

    def documents(self, ticket_id: str | int) -> list[Document]:
        self._ticket_path(ticket_id)
        params = {"recordType": DOCUMENT_RECORD_TYPE, "recordId": int(ticket_id)}
        return self.all("/system/documents", Document, params=params)

    def upload_document(self, ticket_id: str | int, filename: str, content_type: str, data: bytes) -> Document:
        """Attach a file to the ticket (``multipart/form-data``)."""
        self._ticket_path(ticket_id)
        form = {"recordType": DOCUMENT_RECORD_TYPE, "recordId": str(int(ticket_id)), "title": filename}
        files = {"file": (filename, data, content_type or "application/octet-stream")}
        return self._decode(self.http.post("/system/documents", data=form, files=files), Document)

    # -- callbacks -----------------------------------------------------------------------

    def signing_key(self, key_url: str) -> str:
        """Fetch a callback's signing key from its ``Metadata.key_url`` (to configure it as the
        connection's webhook secret). Only a URL on this connection's host, or on a
        ``myconnectwise.net`` host when the API is there, is asked."""
        host = (urllib.parse.urlsplit(key_url).hostname or "").casefold()
        own = (urllib.parse.urlsplit(self.connection.base_url).hostname or "").casefold()
        cloud = ".myconnectwise.net"
        if not host or not (host == own or (host.endswith(cloud) and own.endswith(cloud))):
            raise VendorRejected(f"refusing to fetch a signing key from {host or key_url!r}", status=400)
        parts = urllib.parse.urlsplit(key_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        key_http = self._vendor_http(origin, headers={"clientId": self._client_id, "Accept": "application/json"})
        try:
            response = key_http.get(parts.path, params=urllib.parse.parse_qsl(parts.query))
            body = self._decode(response, dict[str, Any])
        finally:
            key_http.close()
        if not isinstance(body.get("signing_key"), str):
            raise VendorError(f"{VENDOR} key_url answered without a signing_key", connection=self.connection.id)
        return body["signing_key"]

    # -- document files ------------------------------------------------------------------

    def download_document(self, document_id: int) -> httpx.Response:
        """One document's file: ``GET /system/documents/{id}/download`` (the bytes, with the
        server's ``Content-Type`` and ``Content-Disposition``)."""
        # Any type: the file is not JSON, and a JSON-only Accept could be refused.
        return self.http.get(f"/system/documents/{int(document_id)}/download", headers={"Accept": "*/*"})
