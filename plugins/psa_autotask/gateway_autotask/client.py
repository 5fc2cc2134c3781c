"""``AutotaskClient``: one connection's calls to the Autotask REST API (v1.0).

Every call goes through ``gateway.vendor_http.VendorHTTP`` (rate budget, audit span, typed
errors). The client first learns the API user's zone (``zone.ZoneDirectory``) and from then on
sends the credential headers to that zone's host only (``auth.AutotaskAuth``).

Shapes it relies on:

- query: ``GET {Entity}/query?search={json}`` (``POST`` with the JSON as body when it is too
  long for a URL) → ``{"items": [...], "pageDetails":
  {"count", "requestCount", "prevPageUrl", "nextPageUrl"}}``, 500 records at most per page, the
  next page fetched with ``GET nextPageUrl`` (same host only);
- one record: ``GET {Entity}/{id}`` → ``{"item": {...}}`` (``{"item": null}`` when missing);
- create: ``POST {Entity}`` (or a child URL) → ``{"itemId": n}``;
- update: ``PATCH {Entity}`` with ``id`` in the body → ``{"itemId": n}``;
- field metadata: ``GET {Entity}/entityInformation/fields`` → ``{"fields": [...]}``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx

from gateway.errors import ConfigError, VendorAmbiguous, VendorRejected
from gateway.models import Connection
from gateway.vendor_http import VendorHTTP
from gateway_autotask import query as q
from gateway_autotask.auth import AutotaskAuth, origin
from gateway_autotask.constants import ATTACHMENT_CAP_BYTES, ID_SHAPE, MAX_PAGE, MAX_PAGES, MAX_SEARCH_PARAM, VENDOR
from gateway_autotask.errors import classify, error_detail
from gateway_autotask.settings import AutotaskSettings, load_settings
from gateway_autotask.zone import Zone, ZoneDirectory, discovery_root


@dataclass
class QueryPage:
    """One page of a query: its records and the URL of the next page (``None`` on the last)."""

    items: list[dict[str, Any]]
    next_url: str | None = None


class _Expiring:
    """A small in-process cache of values that may go stale (picklists, company names)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._values: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            hit = self._values.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._values[key] = (time.monotonic() + self.seconds, value)


class AutotaskHTTP(VendorHTTP):
    """``VendorHTTP`` that knows Autotask's 500 for refused credentials is not a server fault."""

    def _error(self, response: httpx.Response) -> Any:
        return classify(super()._error(response), response)


class AutotaskClient:
    """The Autotask API as this connection's API user sees it."""

    def __init__(self, connection: Connection, *, transport: httpx.BaseTransport | None = None) -> None:
        self.connection = connection
        self.settings: AutotaskSettings = load_settings(connection.settings)
        missing = [name for name in ("secret", "integration_code") if not connection.secrets.get(name)]
        if missing:
            raise ConfigError(f"{connection.id}: autotask needs the secret settings {', '.join(missing)}")
        self.auth = AutotaskAuth(
            self.settings.username,
            connection.secrets["secret"],
            connection.secrets["integration_code"],
            impersonation_resource_id=self.settings.impersonation_resource_id,
        )
        self.http = AutotaskHTTP(
            connection,
            base_url=discovery_root(connection.base_url),
            auth=self.auth,
            headers={"Accept": "application/json"},
            error_detail=error_detail,
            transport=transport,
        )
        self.zones = ZoneDirectory(self.http, self.settings.username, self.settings.zone_url)
        self._cache = _Expiring(self.settings.metadata_cache_seconds)

    def close(self) -> None:
        self.http.close()

    # -- where to send ----------------------------------------------------------------------

    @property
    def zone(self) -> Zone:
        zone = self.zones.get()
        self.auth.trust(zone.api_root)
        return zone

    def url(self, path: str) -> str:
        """The absolute URL of an entity path (``Tickets/query``) in this user's zone."""
        return f"{self.zone.api_root}/{path.lstrip('/')}"

    def ticket_url(self, ticket_id: str | int) -> str | None:
        """The link that opens a ticket in the Autotask web UI."""
        web = self.zone.web_url
        if not web:
            return None
        return f"{web.rstrip('/')}/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID={ticket_id}"

    # -- generic entity calls -----------------------------------------------------------------

    def query_page(
        self,
        entity: str,
        filters: list[q.Condition],
        *,
        max_records: int = MAX_PAGE,
        include_fields: list[str] | None = None,
    ) -> QueryPage:
        """The first page of a query (at most ``max_records``, capped at 500)."""
        size = max(1, min(MAX_PAGE, max_records))
        return self._page(self._search(f"{entity}/query", q.body(filters, max_records=size, include_fields=include_fields)))

    def next_page(self, next_url: str) -> QueryPage:
        """The page a ``nextPageUrl`` points at; refused when it leaves the zone's host."""
        if not self._in_zone(next_url):
            raise VendorRejected(
                f"{self.connection.id}: refusing to follow a paging URL outside the Autotask zone",
                connection=self.connection.id,
                status=400,
            )
        return self._page(self.http.get(next_url))

    def _in_zone(self, url: str) -> bool:
        root = self.zone.api_root
        try:
            same_origin = origin(url) == origin(root)
        except httpx.InvalidURL:
            return False
        return same_origin and url.lower().startswith(root.lower() + "/")

    def query_all(self, entity: str, filters: list[q.Condition], **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every record matching the filters, following ``nextPageUrl`` page after page."""
        page = self.query_page(entity, filters, **kwargs)
        for _ in range(MAX_PAGES):
            yield from page.items
            if not page.next_url:
                return
            page = self.next_page(page.next_url)
        raise VendorRejected(f"{self.connection.id}: {entity} query ran past {MAX_PAGES} pages", connection=self.connection.id)

    def count(self, entity: str, filters: list[q.Condition]) -> int:
        return int(self._search(f"{entity}/query/count", q.body(filters)).json().get("queryCount", 0))

    def record_id(self, value: str | int) -> int:
        """A record id as Autotask takes it; anything but digits is refused as not found."""
        record_id = ID_SHAPE.as_int(value)
        if record_id is None:
            raise VendorRejected(f"{self.connection.id}: {str(value)[:40]!r} is not an Autotask record id",
                                 connection=self.connection.id, status=404)
        return record_id

    def get_item(self, entity: str, item_id: str | int) -> dict[str, Any] | None:
        """One record by id, or ``None`` (Autotask answers ``{"item": null}``; some proxies 404)."""
        if ID_SHAPE.as_int(item_id) is None:
            return None
        try:
            response = self.http.get(self.url(f"{entity}/{self.record_id(item_id)}"))
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise
        return response.json().get("item")

    def create(self, path: str, body: dict[str, Any]) -> int:
        """POST a new record; return its ``itemId``."""
        return self._item_id(self.http.post(self.url(path), json=body))

    def update(self, entity: str, item_id: str | int, changes: dict[str, Any]) -> int:
        """PATCH only the given fields (``id`` goes in the body, not the URL)."""
        return self._item_id(self.http.patch(self.url(entity), json={"id": self.record_id(item_id), **changes}))

    def fields(self, entity: str) -> list[dict[str, Any]]:
        """The entity's field metadata (names, types, required flags, picklists), cached."""
        key = ("fields", entity.lower())
        cached = self._cache.get(key)
        if cached is None:
            cached = self.http.get(self.url(f"{entity}/entityInformation/fields")).json().get("fields", [])
            self._cache.put(key, cached)
        return cached

    def threshold(self) -> dict[str, Any]:
        """This database's API usage: ``externalRequestThreshold``, ``currentTimeframeRequestCount``."""
        return self.http.get(self.url("ThresholdInformation")).json()

    # -- tickets ------------------------------------------------------------------------------

    def ticket(self, ticket_id: str | int) -> dict[str, Any] | None:
        return self.get_item("Tickets", ticket_id)

    def create_ticket(self, body: dict[str, Any]) -> int:
        return self.create("Tickets", body)

    def configuration_item(self, item_id: str | int) -> dict[str, Any] | None:
        """The configuration item (asset) a ticket's ``configurationItemID`` names."""
        return self.get_item("ConfigurationItems", item_id)

    def set_ticket_status(self, ticket_id: str | int, status: int) -> int:
        return self.update("Tickets", ticket_id, {"status": status})

    def tickets_with_external_id(self, external_id: str) -> list[dict[str, Any]]:
        return list(self.query_all("Tickets", [q.eq("externalID", external_id)]))

    # -- notes -------------------------------------------------------------------------------

    def notes(self, ticket_id: str | int, since: datetime | None = None) -> list[dict[str, Any]]:
        """The ticket's notes, oldest first (Autotask orders query results by id)."""
        filters = [q.eq("ticketID", self.record_id(ticket_id))]
        if since is not None:
            filters.append(q.gte("createDateTime", since))
        return list(self.query_all("TicketNotes", filters))

    def add_note(self, ticket_id: str | int, *, title: str, description: str, publish: int) -> int:
        body = {
            "ticketID": self.record_id(ticket_id),
            "title": title,
            "description": description,
            "noteType": self.settings.note_type,
            "publish": publish,
        }
        return self.create(f"Tickets/{self.record_id(ticket_id)}/Notes", body)

    # -- time entries -------------------------------------------------------------------------

    def time_entries(self, ticket_id: str | int, since: datetime | None = None) -> list[dict[str, Any]]:
        filters = [q.eq("ticketID", self.record_id(ticket_id))]
        if since is not None:
            filters.append(q.gte("createDateTime", since))
        return list(self.query_all("TimeEntries", filters))

    def add_time_entry(
        self,
        ticket_id: str | int,
        *,
        minutes: int,
        notes: str,
        started_at: datetime | None,
        member: str | None,
        billable: bool,
    ) -> int:
        resource_id = self.resource_id(member)
        role_id = self.role_id(resource_id, explicit_member=member is not None)
        start = started_at or datetime.now(timezone.utc) - timedelta(minutes=minutes)
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        end = start + timedelta(minutes=minutes)
        body: dict[str, Any] = {
            "ticketID": self.record_id(ticket_id),
            "resourceID": resource_id,
            "dateWorked": q.format_datetime(start.replace(hour=0, minute=0, second=0, microsecond=0)),
            "startDateTime": q.format_datetime(start),
            "endDateTime": q.format_datetime(end),
            "hoursWorked": round(minutes / 60, 4),
            "summaryNotes": notes or "Time entry",
            "isNonBillable": not billable,
        }
        if role_id is not None:
            body["roleID"] = role_id
        return self.create("TimeEntries", body)

    def resource_id(self, member: str | None) -> int:
        """The resource a time entry is logged as: ``member`` (an id, user name or e-mail),
        else the configured resource, else the API user's own resource."""
        if member is None and self.settings.time_resource_id is not None:
            return self.settings.time_resource_id
        wanted = member if member is not None else self.settings.username
        if wanted.isdigit():
            return int(wanted)
        key = ("resource", wanted.lower())
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        matches = self.query_page(
            "Resources", [q.any_of(q.eq("userName", wanted), q.eq("email", wanted))], max_records=2
        ).items
        if not matches:
            raise VendorRejected(
                f"{self.connection.id}: no Autotask resource has the user name or e-mail {wanted!r}",
                connection=self.connection.id,
            )
        resource_id = int(matches[0]["id"])
        self._cache.put(key, resource_id)
        return resource_id

    def role_id(self, resource_id: int, *, explicit_member: bool = False) -> int | None:
        """The role for a time entry: the configured one (for the default resource), else the
        resource's default service-desk role; ``None`` when it has none."""
        if self.settings.time_role_id is not None and not explicit_member:
            return self.settings.time_role_id
        key = ("role", resource_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached or None
        roles = self.query_page(
            "ResourceServiceDeskRoles",
            [q.eq("resourceID", resource_id), q.eq("isDefault", True), q.eq("isActive", True)],
            max_records=1,
        ).items
        role = int(roles[0]["roleID"]) if roles else 0
        self._cache.put(key, role)
        return role or None

    # -- attachments --------------------------------------------------------------------------

    def attachment_cap(self) -> int:
        return self.connection.attachment_cap_bytes or ATTACHMENT_CAP_BYTES

    def add_attachment(self, ticket_id: str | int, *, filename: str, content_type: str, data: bytes, publish: int) -> int:
        """Upload a file as base64 JSON; files over the cap are refused before any upload."""
        cap = self.attachment_cap()
        if len(data) > cap:
            raise VendorRejected(
                f"{self.connection.id}: {filename} is {len(data)} bytes; Autotask accepts at most {cap} per file",
                connection=self.connection.id,
                status=413,
            )
        body = {
            "id": 0,
            "attachmentType": "FILE_ATTACHMENT",
            "fullPath": filename,
            "title": filename,
            "contentType": content_type,
            "publish": publish,
            "data": base64.b64encode(data).decode("ascii"),
        }
        return self.create(f"Tickets/{self.record_id(ticket_id)}/Attachments", body)

    def attachments(self, ticket_id: str | int, since: datetime | None = None) -> list[dict[str, Any]]:
        """The ticket's own attachments (metadata only; the data is never queried).

        Queried by ``ticketID``: Autotask's 2021.1 release made it required on attachment
        queries. Attachments of the ticket's notes and time entries are left out."""
        filters = [q.eq("ticketID", self.record_id(ticket_id))]
        if since is not None:
            filters.append(q.gte("attachDate", since))
        return [
            a for a in self.query_all("TicketAttachments", filters)
            if not a.get("ticketNoteID") and not a.get("timeEntryID")
        ]

    # -- companies ----------------------------------------------------------------------------

    def companies(self) -> list[dict[str, Any]]:
        return list(self.query_all("Companies", [q.exist("id")], include_fields=["id", "companyName", "isActive"]))

    def company_names(self, ids: set[int]) -> dict[int, str]:
        return self.names("Companies", ids, ["companyName"])

    def resource_names(self, ids: set[int]) -> dict[int, str]:
        return self.names("Resources", ids, ["firstName", "lastName"])

    def contact_names(self, ids: set[int]) -> dict[int, str]:
        return self.names("Contacts", ids, ["firstName", "lastName"])

    def names(self, entity: str, ids: set[int], name_fields: list[str]) -> dict[int, str]:
        """Display names of records by id: cached ones, plus one ``in`` query for the rest."""
        names: dict[int, str] = {}
        missing = []
        for wanted in ids:
            cached = self._cache.get((entity, wanted))
            if cached is None:
                missing.append(wanted)
            else:
                names[wanted] = cached
        for start in range(0, len(missing), MAX_PAGE):
            chunk = sorted(missing[start : start + MAX_PAGE])
            records = self.query_all(entity, [q.in_("id", chunk)], include_fields=["id", *name_fields])
            for record in records:
                name = " ".join(str(record.get(f) or "").strip() for f in name_fields).strip()
                names[int(record["id"])] = name
                self._cache.put((entity, int(record["id"])), name)
        return names

    # -- helpers ------------------------------------------------------------------------------

    def _search(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """Run a query as ``GET ?search=`` (a read, retried as one), or as ``POST`` when the
        filter is too long for a URL (large ``in`` lists)."""
        search = json.dumps(body, separators=(",", ":"))
        if len(quote(search)) <= MAX_SEARCH_PARAM:
            return self.http.get(self.url(path), params={"search": search})
        return self.http.post(self.url(path), json=body)

    def _page(self, response: httpx.Response) -> QueryPage:
        body = response.json()
        details = body.get("pageDetails") or {}
        return QueryPage(items=list(body.get("items") or []), next_url=details.get("nextPageUrl") or None)

    def _item_id(self, response: httpx.Response) -> int:
        body = response.json()
        item_id = body.get("itemId") if isinstance(body, dict) else None
        if item_id is None:
            # The write was accepted but we cannot tell what it made: reconcile before resending.
            raise VendorAmbiguous(
                f"{VENDOR} answered {response.status_code} without an itemId",
                connection=self.connection.id,
                status=response.status_code,
            )
        return int(item_id)

    # -- attachments read back ------------------------------------------------------------------

    def ticket_attachment_infos(self, ticket_id: str | int) -> list[dict[str, Any]]:
        """Metadata of every attachment of the ticket, its notes and its time entries: a
        ``TicketAttachments`` query on ``ticketID``, which attachment queries require since
        2021.1 (AttachmentChanges.htm). ``data`` never comes with a query."""
        return list(self.query_all("TicketAttachments", [q.eq("ticketID", self.record_id(ticket_id))]))

    def attachment_with_data(self, parent_entity: str, parent_id: str | int, attachment_id: str | int) -> dict[str, Any] | None:
        """One attachment with its base64 ``data``, from its parent's child URL
        (``GET Tickets/{parentId}/Attachments/{id}``), or ``None`` when there is none. The
        answer is ``{"items": [...]}``; a single ``{"item": ...}`` is read too."""
        path = f"{parent_entity}/{self.record_id(parent_id)}/Attachments/{self.record_id(attachment_id)}"
        try:
            body = self.http.get(self.url(path)).json()
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(body, dict):
            return None
        items = body.get("items")
        if isinstance(items, list):
            return items[0] if items and isinstance(items[0], dict) else None
        item = body.get("item")
        return item if isinstance(item, dict) else None
