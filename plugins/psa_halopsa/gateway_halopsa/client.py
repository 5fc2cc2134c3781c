"""``HaloClient``: one small method per Halo resource, every call through ``VendorHTTP``.

Halo shapes this client relies on (see README for sources):

- lists come as ``{"record_count": N, "<plural>": [...]}`` (``tickets``, ``actions``,
  ``clients``, ``attachments``) or, for small lookups (``Status``, ``Priority``,
  ``TicketType``), as a bare array; ``records()`` accepts both;
- POST bodies are arrays; the answer is the saved object (one posted) or a list of them;
- ``page_size`` is capped at 100 by the server, so the next page is computed from the items
  that actually came back (``TicketCursor``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from gateway.errors import ConfigError, VendorRejected, VendorUnavailable
from gateway.models import Connection
from gateway.oauth import BearerAuth, TokenEndpoint, shared_token, token_http
from gateway.vendor_http import VendorHTTP

from gateway_halopsa import constants
from gateway_halopsa.settings import HaloSettings, load_settings

LOOKUP_CACHE_SECONDS = 300.0
# Halo may answer 429 without Retry-After [U]; its window rolls over 5 minutes, and short
# back-offs are known to be too short (homotechsual/HaloAPI#31).
RETRY_AFTER_WITHOUT_HEADER = 60.0


def api_root(base_url: str) -> str:
    """The host root: the configured base URL without a trailing ``/api``."""
    root = base_url.rstrip("/")
    return root[: -len(constants.API_PREFIX)] if root.endswith(constants.API_PREFIX) else root


def error_detail(response: httpx.Response) -> str:
    """Halo's error message. Halo does not document its error body: take a JSON string, a JSON
    object's message-like field, the ``WWW-Authenticate`` error, or else the text."""
    text = response.text.strip()
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, str):
        return body[:500]
    if isinstance(body, dict):
        if isinstance(body.get("error"), str) and isinstance(body.get("error_description"), str):
            return f"{body['error']}: {body['error_description']}"[:500]  # an OAuth error (RFC 6749 5.2)
        for key in ("message", "Message", "error_description", "error", "title", "detail"):
            if isinstance(body.get(key), str):
                return body[key][:500]
    if not text and response.headers.get("www-authenticate"):
        return response.headers["www-authenticate"][:200]
    return text[:500] or response.reason_phrase


def _retry_after_without_header(response: httpx.Response) -> float:
    return RETRY_AFTER_WITHOUT_HEADER


def records(body: Any, key: str) -> list[dict[str, Any]]:
    """The records of a list answer, bare array or ``{"<key>": [...]}`` envelope."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        found = body.get(key)
        if isinstance(found, list):
            return found
    return []


def saved(body: Any) -> dict[str, Any]:
    """The one object a POST saved (Halo answers an object, or a list when given several)."""
    if isinstance(body, list):
        return body[0] if body else {}
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True)
class TicketCursor:
    """Where the next ticket page starts: ``offset`` items consumed, pages of ``size``."""

    offset: int
    size: int

    def encode(self) -> str:
        return f"{self.offset}:{self.size}"

    @classmethod
    def decode(cls, raw: str | None, wish: int) -> TicketCursor:
        if not raw:
            return cls(0, max(1, min(wish, constants.MAX_PAGE_SIZE)))
        try:
            offset, size = (int(part) for part in raw.split(":", 1))
        except ValueError:
            raise VendorRejected(f"halopsa: bad page cursor {raw!r}", status=400) from None
        return cls(max(0, offset), max(1, min(size, constants.MAX_PAGE_SIZE)))


@dataclass
class TicketPageResult:
    tickets: list[dict[str, Any]]
    record_count: int
    next_cursor: TicketCursor | None


class HaloClient:
    """The Halo API for one connection. ``close()`` releases its HTTP clients."""

    def __init__(self, connection: Connection, *, transport: httpx.BaseTransport | None = None) -> None:
        self.connection = connection
        self.settings: HaloSettings = load_settings(connection.settings)
        self.client_id = connection.secrets.get("client_id") or self.settings.client_id
        if not self.client_id:
            raise ConfigError(f"{connection.id}: halopsa settings.client_id is required")
        if not connection.secrets.get("client_secret"):
            raise ConfigError(f"{connection.id}: halopsa secrets.client_secret is required")
        self.root = api_root(connection.base_url)
        # Discovery and the token request carry no bearer token of their own (``token_http``).
        self.auth_http = token_http(
            connection,
            base_url=self.root,
            error_detail=error_detail,
            retry_after=_retry_after_without_header,
            transport=transport,
        )
        endpoint = TokenEndpoint(
            self.auth_http,
            lambda: self.auth_url() + constants.TOKEN_SUFFIX,
            client_id=self.client_id,
            client_secret=connection.secrets["client_secret"],
            scope=self.settings.scope,
            params={"tenant": self.settings.tenant} if self.settings.tenant else None,
        )
        self.tokens = shared_token(connection, endpoint, refresh_margin=constants.TOKEN_REFRESH_MARGIN)
        self.http = VendorHTTP(
            connection,
            base_url=self.root,
            auth=BearerAuth(self.tokens),
            headers={"Accept": "application/json"},
            error_detail=error_detail,
            retry_after=_retry_after_without_header,
            transport=transport,
        )
        self._auth_url = self.settings.auth_url
        self._lookups: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    def __repr__(self) -> str:
        return f"HaloClient({self.connection.id!r})"

    def close(self) -> None:
        self.http.close()
        self.auth_http.close()

    # -- auth -------------------------------------------------------------------------------

    def auth_url(self) -> str:
        """The authorisation server, from ``GET /api/authinfo`` unless configured."""
        if not self._auth_url:
            info = self.auth_http.get(constants.AUTHINFO_PATH).json()
            found = info.get("auth_url") if isinstance(info, dict) else None
            if not isinstance(found, str) or not found:
                raise VendorUnavailable("halopsa: /api/authinfo did not name an auth_url")
            self._auth_url = urljoin(self.root + "/", found)
        return self._auth_url.rstrip("/")

    # -- tickets ----------------------------------------------------------------------------

    def ticket_page(self, cursor: TicketCursor, **filters: Any) -> TicketPageResult:
        """One page of tickets, ordered by id so offsets stay stable while tickets change.

        The next cursor is computed from the items that came back: when Halo returns fewer
        than asked while ``record_count`` says more exist, its cap is smaller than our page
        and later pages are asked in that size.
        """
        page_no = cursor.offset // cursor.size + 1
        params = {
            "pageinate": "true",
            "page_size": cursor.size,
            "page_no": page_no,
            "order": "id",
            "orderdesc": "false",
            **{k: v for k, v in filters.items() if v is not None},
        }
        body = self.http.get("/api/Tickets", params=params).json()
        items = records(body, "tickets")
        total = int(body.get("record_count") or 0) if isinstance(body, dict) else len(items)
        consumed = cursor.offset + len(items)
        next_cursor = None
        if items and consumed < total:
            size = cursor.size if len(items) >= cursor.size else len(items)
            next_cursor = TicketCursor(consumed, size)
        return TicketPageResult(items, total, next_cursor)

    def iter_tickets(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every ticket matching ``filters``, page after page."""
        cursor: TicketCursor | None = TicketCursor(0, constants.MAX_PAGE_SIZE)
        while cursor is not None:
            page = self.ticket_page(cursor, **filters)
            yield from page.tickets
            cursor = page.next_cursor

    def ticket(self, ticket_id: str | int) -> dict[str, Any] | None:
        """One ticket with its details, or ``None`` when Halo has no such ticket (Halo's ids
        are whole numbers, so anything else is no ticket, without asking)."""
        if constants.ID_SHAPE.as_int(ticket_id) is None:
            return None
        try:
            response = self.http.get(f"/api/Tickets/{int(ticket_id)}", params={"includedetails": "true"})
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise
        body = response.json()
        return body if isinstance(body, dict) and body.get("id") else None

    def save_ticket(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create (no ``id``) or update a ticket: ``POST /api/Tickets`` with a one-item array."""
        return saved(self.http.post("/api/Tickets", json=[fields]).json())

    # -- actions ----------------------------------------------------------------------------

    def actions(self, ticket_id: str | int) -> list[dict[str, Any]]:
        """Every action on the ticket, oldest first."""
        body = self.http.get("/api/Actions", params={"ticket_id": int(ticket_id)}).json()
        found = records(body, "actions")
        return sorted(found, key=lambda a: (str(a.get("datetime") or ""), int(a.get("id") or 0)))

    def add_action(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/Actions`` with a one-item array; the saved action."""
        return saved(self.http.post("/api/Actions", json=[fields]).json())

    # -- attachments ------------------------------------------------------------------------

    def attachments(self, ticket_id: str | int) -> list[dict[str, Any]]:
        body = self.http.get("/api/Attachment", params={"ticket_id": int(ticket_id)}).json()
        return records(body, "attachments")

    def add_attachment(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/Attachment`` with a one-item array (``data_base64``)."""
        return saved(self.http.post("/api/Attachment", json=[fields]).json())

    # -- lookups ----------------------------------------------------------------------------

    def _cached(self, name: str, load: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        hit = self._lookups.get(name)
        if hit and time.monotonic() - hit[0] < LOOKUP_CACHE_SECONDS:
            return hit[1]
        value = load()
        self._lookups[name] = (time.monotonic(), value)
        return value

    def statuses(self, tickettype_id: int | None = None, *, fresh: bool = False) -> list[dict[str, Any]]:
        """Halo's global statuses (``GET /api/Status``), optionally those of one ticket type."""
        name = f"statuses:{tickettype_id}"
        if fresh:
            self._lookups.pop(name, None)

        def load() -> list[dict[str, Any]]:
            params = {"tickettype_id": tickettype_id} if tickettype_id else None
            found = records(self.http.get("/api/Status", params=params).json(), "statuses")
            return sorted(found, key=lambda s: (int(s.get("sequence") or 0), int(s.get("id") or 0)))

        return self._cached(name, load)

    def ticket_types(self) -> list[dict[str, Any]]:
        return self._cached(
            "tickettypes",
            lambda: [
                t
                for t in records(self.http.get("/api/TicketType").json(), "tickettypes")
                if not t.get("inactive")
            ],
        )

    def priorities(self) -> list[dict[str, Any]]:
        return self._cached(
            "priorities",
            lambda: [
                p for p in records(self.http.get("/api/Priority").json(), "priorities") if not p.get("ishidden")
            ],
        )

    def clients(self) -> list[dict[str, Any]]:
        """Every active client (Halo's customers), page after page."""
        found: list[dict[str, Any]] = []
        page_no, size = 1, constants.MAX_PAGE_SIZE
        while True:
            body = self.http.get(
                "/api/Client",
                params={"pageinate": "true", "page_size": size, "page_no": page_no, "includeactive": "true"},
            ).json()
            items = records(body, "clients")
            found.extend(items)
            total = int(body.get("record_count") or 0) if isinstance(body, dict) else len(items)
            if not items or len(found) >= total:
                return found
            if len(items) < size:  # the server's cap is smaller: continue in its size
                size = len(items)
                page_no = len(found) // size
            page_no += 1

    # -- attachment files -------------------------------------------------------------------

    def attachment_file(self, attachment_id: str | int) -> httpx.Response | None:
        """One attachment's bytes: ``GET /api/Attachment/{id}`` answers the file itself, with
        ``Content-Disposition`` naming it [C homotechsual/HaloAPI ``Get-HaloAttachment``, which
        writes the raw answer to disk]; ``None`` when Halo has no such attachment."""
        try:
            # Any type: the answer is the file, not JSON.
            return self.http.get(f"/api/Attachment/{int(attachment_id)}", headers={"Accept": "*/*"})
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise
