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
from datetime import datetime
from typing import Any, TypeVar

import httpx
import msgspec
from gateway.errors import ConfigError, VendorError, VendorRejected
from gateway.models import Connection
from gateway.vendor_http import VendorHTTP

from gateway_templatevendor.auth import TemplateVendorApiKey
from gateway_templatevendor.constants import API_KEY_SETTING, API_PREFIX, MAX_PAGE_SIZE, MAX_PAGES, VENDOR
from gateway_templatevendor.errors import error_detail
from gateway_templatevendor.mapping import Attachment, Company, Note, Status, Ticket, TimeEntry
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


def record_id(value: str | int, what: str = "ticket") -> int:
    """A vendor record id; anything else is refused before it reaches a URL path."""
    text = str(value).rpartition(":")[2]  # a reference ("conn:12") names the same record
    if not text.isdigit():
        raise VendorRejected(f"{value!r} is not a {VENDOR} {what} id", status=422)
    return int(text)


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

    def page(self, path: str, type_: type[T], *, page: int = 1, page_size: int | None = None,
             params: dict[str, Any] | None = None) -> tuple[list[T], int | None]:
        """One page of the list at ``path`` and the number of the next one (``None``: last)."""
        size = max(1, min(page_size or self.settings.page_size, MAX_PAGE_SIZE))
        query = {**(params or {}), "page": page, "page_size": size}
        result = self._decode(self.http.get(path, params=query), Page)
        return msgspec.convert(result.items, list[type_]), result.next_page  # type: ignore[valid-type]

    def all(self, path: str, type_: type[T], *, params: dict[str, Any] | None = None) -> Iterator[T]:
        """Every record of the list at ``path``, page after page."""
        number: int | None = 1
        for _ in range(MAX_PAGES):
            if number is None:
                return
            items, number = self.page(path, type_, page=number, params=params)
            yield from items
        raise VendorError(f"{VENDOR} kept answering pages past {MAX_PAGES}", connection=self.connection.id)

    def _get_one(self, path: str, type_: type[T]) -> T | None:
        try:
            return self._decode(self.http.get(path), type_)
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise

    # -- tickets -------------------------------------------------------------------------

    def tickets(self, *, updated_since: datetime | None = None, open_only: bool = False, page: int = 1,
                page_size: int | None = None) -> tuple[list[Ticket], int | None]:
        """One page of tickets, oldest change first."""
        params: dict[str, Any] = {"order": "updated_at"}
        if updated_since is not None:
            params["updated_since"] = updated_since.isoformat()
        if open_only:
            params["open"] = "true"
        return self.page("/tickets", Ticket, page=page, page_size=page_size, params=params)

    def ticket(self, ticket_id: str | int) -> Ticket | None:
        """The ticket, or ``None`` when the vendor has no such ticket."""
        return self._get_one(f"/tickets/{record_id(ticket_id)}", Ticket)

    def tickets_with_external_ref(self, external_ref: str) -> list[Ticket]:
        return list(self.all("/tickets", Ticket, params={"external_ref": external_ref}))

    def create_ticket(self, body: dict[str, Any]) -> Ticket:
        return self._decode(self.http.post("/tickets", json=body), Ticket)

    def set_status(self, ticket_id: str | int, status_id: int) -> Ticket:
        return self._decode(self.http.patch(f"/tickets/{record_id(ticket_id)}", json={"status_id": status_id}), Ticket)

    def statuses(self) -> list[Status]:
        return list(self.all("/statuses", Status))

    def companies(self) -> list[Company]:
        return list(self.all("/companies", Company))

    # -- notes, time, attachments --------------------------------------------------------

    def notes(self, ticket_id: str | int) -> list[Note]:
        return list(self.all(f"/tickets/{record_id(ticket_id)}/notes", Note))

    def add_note(self, ticket_id: str | int, text: str, *, internal: bool) -> Note:
        body = {"text": text, "internal": internal}
        return self._decode(self.http.post(f"/tickets/{record_id(ticket_id)}/notes", json=body), Note)

    def time_entries(self, ticket_id: str | int) -> list[TimeEntry]:
        return list(self.all(f"/tickets/{record_id(ticket_id)}/time_entries", TimeEntry))

    def add_time_entry(self, ticket_id: str | int, body: dict[str, Any]) -> TimeEntry:
        return self._decode(self.http.post(f"/tickets/{record_id(ticket_id)}/time_entries", json=body), TimeEntry)

    def attachments(self, ticket_id: str | int) -> list[Attachment]:
        return list(self.all(f"/tickets/{record_id(ticket_id)}/attachments", Attachment))

    def attachment(self, ticket_id: str | int, attachment_id: str | int) -> Attachment | None:
        return self._get_one(f"/tickets/{record_id(ticket_id)}/attachments/{record_id(attachment_id, 'attachment')}",
                             Attachment)

    def attachment_content(self, ticket_id: str | int, attachment_id: str | int) -> bytes:
        path = f"/tickets/{record_id(ticket_id)}/attachments/{record_id(attachment_id, 'attachment')}/content"
        return self.http.get(path, headers={"Accept": "*/*"}).content

    def add_attachment(self, ticket_id: str | int, filename: str, content_type: str, data: bytes) -> Attachment:
        files = {"file": (filename, data, content_type)}
        return self._decode(self.http.post(f"/tickets/{record_id(ticket_id)}/attachments", files=files), Attachment)
