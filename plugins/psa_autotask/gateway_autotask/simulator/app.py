"""``AutotaskSimulator``: the Autotask REST API (v1.0) as the plugin's contract describes it.

Served paths (under ``/atservicesrest/v1.0/``, any spelling of the prefix and entity names):

- ``zoneInformation?user=`` (no credentials) → ``{"zoneName", "url", "webUrl", "ci"}``; an
  unknown user is a 500 ``{"errors": ["Zone information could not be determined"]}``
- credentials as Autotask checks them: an unknown ``UserName`` or ``ApiIntegrationCode`` is a
  500 with an ``errors`` body, a known user's wrong ``Secret`` a 401
- ``ThresholdInformation`` → ``{"externalRequestThreshold", "requestThresholdTimeframe",
  "currentTimeframeRequestCount"}``
- ``{Entity}/entityInformation[/fields|/userDefinedFields]``
- ``{Entity}/query`` (``POST`` body or ``GET ?search=``), ``/query/count``, ``/query/next?paging=``
  → ``{"items", "pageDetails": {"count", "requestCount", "prevPageUrl", "nextPageUrl"}}``
- ``{Entity}/{id}`` → ``{"item": {...}}`` (``{"item": null}`` when there is none)
- ``POST Tickets``, ``PATCH``/``PUT Tickets`` (id in the body) → ``{"itemId"}``
- ``Tickets/{id}/Notes`` (GET, POST, PATCH), ``POST TicketNotes``
- ``POST TimeEntries`` (and ``Tickets/{id}/TimeEntries``)
- ``Tickets/{id}/Attachments`` (base64 JSON; GET, POST), ``Tickets/{id}/Attachments/{aid}``
  (GET with data, DELETE), ``AttachmentInfo``/``TicketAttachments`` queries (no data)

Entities: Tickets, TicketNotes, TimeEntries, TicketAttachments, AttachmentInfo, Companies,
Contacts, Resources, ResourceServiceDeskRoles. Errors are ``{"errors": ["..."]}``.

Knobs for tests (attributes): ``hourly_threshold``, ``threshold_window_seconds``,
``latency_scale``, ``thread_limit``, ``processing_seconds`` (time every call holds its thread),
``attachment_cap_bytes``, ``attachment_window_bytes``/``_seconds``, ``require_note_titles``,
``page_url_origin`` (hand out nextPageUrls on another host).
"""

from __future__ import annotations

import base64
import hmac
import json
from datetime import datetime, timedelta, timezone
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get, route
from litestar.params import FromPath

from gateway.testing.simulator import Answer, Faults, RollingWindow, Simulator
from gateway_autotask.constants import (
    INTEGRATION_CODE_INVALID,
    USERNAME_INVALID,
    ZONE_UNKNOWN_USER,
    ATTACHMENT_CAP_BYTES,
    ATTACHMENT_WINDOW_BYTES,
    ATTACHMENT_WINDOW_SECONDS,
    HOURLY_THRESHOLD,
    MAX_PAGE,
    PUBLISH_ALL_USERS,
    THREAD_LIMIT,
    VENDOR,
    external_id_for,
)
from gateway_autotask.simulator import seed
from gateway_autotask.simulator.fields import ENTITY_FIELDS, field_names, meta, picklist_values
from gateway_autotask.simulator.filters import Filter, QueryError
from gateway_autotask.simulator.gate import AutotaskGate
from gateway_autotask.simulator.store import ApiError, Store, decode_attachment, stamp
from gateway_autotask.simulator.webhooks import WebhookSender

ENTITIES = {name.lower(): name for name in ENTITY_FIELDS}
JSON = "application/json"

Answer = tuple[int, Any, dict[str, str]]


class AutotaskSimulator(Simulator):
    """An in-memory Autotask database behind the REST API's contract."""

    vendor = VENDOR

    DEMO_USERNAME = "api-user@demo-msp.example"
    DEMO_SECRET = "sim-secret-7Hq2"
    DEMO_INTEGRATION_CODE = "SIM-TRACKING-ID-0001"
    # The SecretKey of webhooks added without one (and handed to the gateway by demo_connection).
    DEMO_WEBHOOK_SECRET = "sim-webhook-key-5Rt8"

    def __init__(self, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.webhooks = WebhookSender(self.outbox)
        self.limits = AutotaskGate(self)
        self._fresh_database()

    def _fresh_database(self) -> None:
        self.store = Store()
        # API users by lower-cased user name: secret and the resource they act as.
        self.api_users: dict[str, dict[str, Any]] = {}
        self.integration_codes: set[str] = {self.DEMO_INTEGRATION_CODE}
        self.hourly_threshold = HOURLY_THRESHOLD
        self.threshold_window_seconds = 3600.0
        self.latency_scale = 1.0
        self.thread_limit = THREAD_LIMIT
        self.processing_seconds = 0.0
        self.attachment_cap_bytes = ATTACHMENT_CAP_BYTES
        self.attachment_window_bytes = ATTACHMENT_WINDOW_BYTES
        self.attachment_window_seconds = float(ATTACHMENT_WINDOW_SECONDS)
        self.require_note_titles = False
        self.page_url_origin: str | None = None
        self._attachment_bytes = RollingWindow()
        self._ticket_numbers: dict[str, int] = {}
        seed.essentials(self)

    def reset(self) -> None:
        """Back to a fresh database: records, knobs, usage counters, faults, stats, webhooks."""
        with self.lock:
            self._fresh_database()
            self.webhooks.clear()
            self.limits.reset()
            self.set_faults(Faults())
            self.stats.clear()

    # -- the app ---------------------------------------------------------------------------

    async def gate(self, scope: dict, forward: Callable[[dict], Awaitable[None]]) -> Answer | None:
        """Path spelling, credentials, the hourly threshold and the thread cap (``AutotaskGate``)."""
        return await self.limits(scope, forward)

    def routes(self) -> list[Any]:
        sim = self

        @route("/atservicesrest/v1.0/{rest:path}", http_method=["GET", "POST", "PATCH", "PUT", "DELETE"])
        async def api(request: Request, rest: FromPath[str]) -> Response:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            origin = str(request.base_url).rstrip("/")
            status, payload, extra = sim.handle(request.method, rest, dict(request.query_params), body, headers, origin)
            return Response(content=json.dumps(payload).encode(), status_code=status, media_type=JSON, headers=extra)

        @get("/atservicesrest/versioninformation", sync_to_thread=False)
        def versions() -> dict[str, Any]:
            return {"apiVersions": ["1.0"]}

        return [api, versions]

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        return status, json.dumps({"errors": [message]}).encode(), {"content-type": JSON}

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {
            "vendor": VENDOR,
            "base_url": base_url,
            "settings": {"username": self.DEMO_USERNAME},
            "secrets": {"secret": self.DEMO_SECRET, "integration_code": self.DEMO_INTEGRATION_CODE},
            "webhook_secret": self.DEMO_WEBHOOK_SECRET,
        }

    def seed_demo(self) -> None:
        seed.demo(self)

    # -- test helpers ----------------------------------------------------------------------

    def auth_refusal(self, code: str | None, username: str | None, secret: str | None) -> tuple[int, str] | None:
        """``None`` when the three headers are right, else the status and message Autotask answers:
        500 for an unknown UserName or ApiIntegrationCode, 401 for a known user's wrong Secret
        (``constants.AUTH_FAILURE_MESSAGES`` has the sources)."""
        user = self.api_users.get((username or "").lower())
        if user is None:
            return 500, USERNAME_INVALID
        if not secret or not hmac.compare_digest(secret.encode(), str(user["secret"]).encode()):
            return 401, "Unauthorized: check the UserName, Secret and ApiIntegrationCode headers."
        if code not in self.integration_codes:
            return 500, INTEGRATION_CODE_INVALID
        return None

    def add_webhook(self, url: str, secret: str | None = None) -> None:
        """Send a delivery signed with ``secret`` (default: the demo connection's webhook
        secret) to ``url`` after every ticket and ticket-note change."""
        self.webhooks.add(url, secret or self.DEMO_WEBHOOK_SECRET)

    def wait_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every queued webhook delivery has been attempted."""
        return self.outbox.wait(timeout)

    def calls_in_window(self) -> int:
        """Calls counted against the hourly threshold right now."""
        return self.limits.calls_in_window()

    def add_ticket(self, **fields: Any) -> int:
        """Store a ticket directly (no checks, no webhook); sensible defaults for the rest."""
        with self.lock:
            now = datetime.now(timezone.utc)
            record = {
                "title": "Simulated ticket",
                "status": 1,
                "priority": 2,
                "queueID": 5,
                "companyID": 175,
                "ticketType": 1,
                "ticketCategory": 3,
                "dueDateTime": stamp(now + timedelta(days=2)),
                "createDate": stamp(now),
                "lastActivityDate": stamp(now),
                "creatorResourceID": self.api_resource_id(),
            }
            record.update(fields)
            created = record["createDate"]
            record.setdefault("ticketNumber", None)
            ticket = self.store.insert("Tickets", record)
            if not ticket["ticketNumber"]:
                ticket["ticketNumber"] = self._ticket_number(created)
            return ticket["id"]

    def add_configuration_item(
        self, company_id: int, title: str, *, serial: str = "", hostname: str | None = None,
        ticket_id: int | None = None,
    ) -> int:  # fmt: skip
        """A configuration item (asset) of the company, optionally set on a ticket; its id."""
        with self.lock:
            item = self.store.insert("ConfigurationItems", {
                "companyID": company_id, "productID": 1, "referenceTitle": title, "serialNumber": serial,
                "rmmDeviceAuditHostname": hostname, "isActive": True, "createDate": stamp(), "lastActivityDate": stamp(),
            })  # fmt: skip
            if ticket_id is not None:
                self.store.records["Tickets"][ticket_id]["configurationItemID"] = item["id"]
            return item["id"]

    def add_tickets(self, count: int, **fields: Any) -> list[int]:
        return [self.add_ticket(title=f"Bulk ticket {i + 1}", **fields) for i in range(count)]

    def add_note(self, ticket_id: int, description: str, *, publish: int = PUBLISH_ALL_USERS, **fields: Any) -> int:
        with self.lock:
            record = {
                "ticketID": ticket_id,
                "title": description.splitlines()[0][:250] if description else "Note",
                "description": description,
                "noteType": 1,
                "publish": publish,
                "createDateTime": stamp(),
                "lastActivityDate": stamp(),
            }
            if "createdByContactID" not in fields:
                record["creatorResourceID"] = self.api_resource_id()
            record.update(fields)
            return self.store.insert("TicketNotes", record)["id"]

    def api_resource_id(self, username: str | None = None) -> int | None:
        user = self.api_users.get((username or self.DEMO_USERNAME).lower())
        return user["resource_id"] if user else None

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, method: str, rest: str, params: dict[str, Any], raw: bytes, headers: dict[str, str], origin: str) -> Answer:
        """Answer one API call: ``(status, JSON payload, extra headers)``."""
        try:
            with self.lock:
                return self._dispatch(method.upper(), [p for p in rest.split("/") if p], params, raw, headers, origin)
        except ApiError as exc:
            self.count("errors_answered")
            extra = {"retry-after": str(exc.retry_after)} if isinstance(exc, _RetryLater) else {}
            return exc.status, {"errors": exc.messages}, extra
        except QueryError as exc:
            self.count("errors_answered")
            return 400, {"errors": [str(exc)]}, {}

    def _dispatch(self, method: str, parts: list[str], params: dict[str, Any], raw: bytes, headers: dict[str, str], origin: str) -> Answer:
        low = [p.lower() for p in parts]
        if low == ["zoneinformation"] and method == "GET":
            return self._zone(params, headers, origin)
        if low == ["thresholdinformation"] and method == "GET":
            return 200, self._threshold(), {}
        if not parts or low[0] not in ENTITIES:
            raise ApiError(404, f"The requested resource '{'/'.join(parts)}' does not exist.")
        entity = ENTITIES[low[0]]
        actor = self._actor(headers)
        tail = low[1:]
        if not tail:
            return self._collection(method, entity, self._json(raw), actor)
        if tail[0] == "query":
            return self._query_call(method, entity, tail[1:], params, raw, origin)
        if tail[0] == "entityinformation":
            return 200, self._entity_information(entity, tail[1:]), {}
        if not tail[0].isdigit():
            raise ApiError(404, f"The requested resource '{'/'.join(parts)}' does not exist.")
        record_id = int(tail[0])
        if len(tail) == 1:
            if method != "GET":
                raise ApiError(405, f"{method} is not supported on {entity}/{{id}}.")
            record = self.store.get(entity, record_id)
            return 200, {"item": self._public(entity, record) if record else None}, {}
        if entity != "Tickets":
            raise ApiError(404, f"{entity} has no child collection '{tail[1]}'.")
        return self._ticket_child(method, record_id, tail[1:], self._json(raw) if raw else None, actor)

    @staticmethod
    def _json(raw: bytes) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON.") from None

    def _actor(self, headers: dict[str, str]) -> int | None:
        impersonated = headers.get("impersonationresourceid")
        if impersonated and impersonated.isdigit() and int(impersonated) in self.store.records["Resources"]:
            return int(impersonated)
        return self.api_resource_id(headers.get("username"))

    # -- zone, usage, metadata ---------------------------------------------------------------

    def _zone(self, params: dict[str, Any], headers: dict[str, str], origin: str) -> Answer:
        self.count("zone_lookups")
        user = str(params.get("user") or "")
        if user.lower() not in self.api_users:
            raise ApiError(500, ZONE_UNKNOWN_USER)
        # The lookup needs no credentials, but one that sends a wrong integration code is told so.
        code = headers.get("apiintegrationcode")
        if code is not None and code not in self.integration_codes:
            raise ApiError(500, INTEGRATION_CODE_INVALID)
        return 200, {"zoneName": "Simulator Zone", "url": f"{origin}/atservicesrest/", "webUrl": f"{origin}/", "ci": 1}, {}

    def _threshold(self) -> dict[str, Any]:
        return {
            "externalRequestThreshold": self.hourly_threshold,
            "requestThresholdTimeframe": round(self.threshold_window_seconds / 60),
            "currentTimeframeRequestCount": self.calls_in_window(),
        }

    def _entity_information(self, entity: str, tail: list[str]) -> dict[str, Any]:
        if not tail:
            return {
                "info": {
                    "name": entity,
                    "canCreate": entity in ("Tickets", "TicketNotes", "TimeEntries", "TicketAttachments", "Companies", "Contacts"),
                    "canUpdate": entity in ("Tickets", "TicketNotes", "TimeEntries", "Companies", "Contacts"),
                    "canQuery": True,
                    "canDelete": entity == "TicketAttachments",
                    "hasUserDefinedFields": entity in ("Tickets", "Companies"),
                    "supportsWebhookCallouts": entity in ("Tickets", "TicketNotes", "Companies", "Contacts"),
                }
            }
        if tail == ["fields"]:
            return {"fields": ENTITY_FIELDS[entity]}
        if tail == ["userdefinedfields"]:
            return {"fields": []}
        raise ApiError(404, "The requested resource does not exist.")

    # -- queries -----------------------------------------------------------------------------

    def _query_call(self, method: str, entity: str, tail: list[str], params: dict[str, Any], raw: bytes, origin: str) -> Answer:
        if method not in ("GET", "POST"):
            raise ApiError(405, f"{method} is not supported on {entity}/query.")
        if tail == ["next"]:
            search, after = self._decode_paging(params.get("paging"))
            return 200, self._query(entity, search, after=after, origin=origin), {}
        search = self._json(raw) if method == "POST" else self._search_param(params)
        if not isinstance(search, dict):
            raise ApiError(400, "A query needs a JSON body (POST) or a search parameter (GET).")
        if tail == ["count"]:
            flt = Filter(entity, self._key(search, "filter"))
            return 200, {"queryCount": sum(1 for r in self.store.table(entity).values() if flt.matches(r))}, {}
        if tail:
            raise ApiError(404, "The requested resource does not exist.")
        return 200, self._query(entity, search, after=None, origin=origin), {}

    @staticmethod
    def _search_param(params: dict[str, Any]) -> Any:
        raw = params.get("search")
        if not raw:
            raise ApiError(400, "The search parameter is required.")
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "The search parameter is not valid JSON.") from None

    @staticmethod
    def _key(search: dict[str, Any], name: str) -> Any:
        return next((v for k, v in search.items() if str(k).lower() == name.lower()), None)

    def _query(self, entity: str, search: dict[str, Any], *, after: int | None, origin: str) -> dict[str, Any]:
        self.count("queries")
        flt = Filter(entity, self._key(search, "filter"))
        size = self._key(search, "MaxRecords")
        if size is None:
            size = MAX_PAGE
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE:
            raise ApiError(400, f"MaxRecords must be a whole number from 1 to {MAX_PAGE}.")
        include = self._include_fields(entity, self._key(search, "IncludeFields"))
        matched = [r for _, r in sorted(self.store.table(entity).items()) if (after is None or r["id"] > after) and flt.matches(r)]
        if include and "id" not in include and len(matched) > MAX_PAGE:
            raise ApiError(400, "IncludeFields must contain id when a query returns more than 500 records.")
        page = matched[:size]
        next_url = None
        if len(matched) > size:
            token = base64.urlsafe_b64encode(json.dumps({"search": search, "after": page[-1]["id"]}).encode()).decode()
            host = (self.page_url_origin or origin).rstrip("/")
            next_url = f"{host}/atservicesrest/v1.0/{entity}/query/next?paging={token}"
        items = [self._public(entity, r, include) for r in page]
        return {
            "items": items,
            "pageDetails": {"count": len(items), "requestCount": size, "prevPageUrl": None, "nextPageUrl": next_url},
        }

    @staticmethod
    def _include_fields(entity: str, include: Any) -> list[str] | None:
        if not include:
            return None
        if not isinstance(include, list):
            raise ApiError(400, "IncludeFields must be a list of field names.")
        names = field_names(entity)
        out = []
        for name in include:
            canonical = names.get(str(name).lower())
            if canonical is None:
                raise ApiError(400, f"Unable to find {name} in the {entity} entity.")
            out.append(canonical)
        return out

    @staticmethod
    def _decode_paging(token: Any) -> tuple[dict[str, Any], int]:
        try:
            state = json.loads(base64.urlsafe_b64decode(str(token)))
            return state["search"], int(state["after"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, "The paging parameter is not valid.") from None

    def _public(self, entity: str, record: dict[str, Any], include: list[str] | None = None) -> dict[str, Any]:
        """A record as the API returns it: attachment data only on the attachment's own URL."""
        out = {k: v for k, v in record.items() if k != "data"}
        if include:
            out = {k: v for k, v in out.items() if k in include or k == "id"}
        return out

    # -- root collection writes --------------------------------------------------------------

    def _collection(self, method: str, entity: str, body: Any, actor: int | None) -> Answer:
        if method == "POST" and entity == "Tickets":
            return 200, {"itemId": self._create_ticket(body, actor)}, {}
        if method in ("PATCH", "PUT") and entity == "Tickets":
            return 200, {"itemId": self._update_ticket(body, actor, replace=method == "PUT")}, {}
        if method == "POST" and entity == "TicketNotes":
            return 200, {"itemId": self._create_note(self._ticket_id_of(body), body, actor)}, {}
        if method == "POST" and entity == "TimeEntries":
            return 200, {"itemId": self._create_time_entry(None, body, actor)}, {}
        raise ApiError(405, f"{method} is not supported on {entity} by this simulator.")

    @staticmethod
    def _ticket_id_of(body: Any) -> int:
        if isinstance(body, dict):
            for key, value in body.items():
                if str(key).lower() == "ticketid" and str(value).isdigit():
                    return int(value)
        raise ApiError(400, "Field ticketID is required.")

    def _ticket_child(self, method: str, ticket_id: int, tail: list[str], body: Any, actor: int | None) -> Answer:
        ticket = self.store.get("Tickets", ticket_id)
        if ticket is None:
            raise ApiError(404, f"Ticket {ticket_id} does not exist.")
        child = tail[0]
        if child == "notes" and len(tail) == 1:
            if method == "GET":
                notes = [self._public("TicketNotes", n) for n in self._children("TicketNotes", "ticketID", ticket_id)]
                return 200, {"items": notes, "pageDetails": {"count": len(notes), "requestCount": MAX_PAGE, "prevPageUrl": None, "nextPageUrl": None}}, {}
            if method == "POST":
                return 200, {"itemId": self._create_note(ticket_id, body, actor)}, {}
            if method in ("PATCH", "PUT"):
                return 200, {"itemId": self._update_note(ticket_id, body)}, {}
        if child == "timeentries" and len(tail) == 1 and method == "POST":
            return 200, {"itemId": self._create_time_entry(ticket_id, body, actor)}, {}
        if child == "attachments":
            if len(tail) == 1 and method == "GET":
                found = [self._public("TicketAttachments", a) for a in self._children("TicketAttachments", "parentID", ticket_id)]
                return 200, {"items": found, "pageDetails": {"count": len(found), "requestCount": MAX_PAGE, "prevPageUrl": None, "nextPageUrl": None}}, {}
            if len(tail) == 1 and method == "POST":
                return 200, {"itemId": self._create_attachment(ticket_id, body, actor)}, {}
            if len(tail) == 2 and tail[1].isdigit():
                attachment = self.store.get("TicketAttachments", int(tail[1]))
                if attachment is None or attachment["parentID"] != ticket_id:
                    raise ApiError(404, f"Attachment {tail[1]} does not exist on ticket {ticket_id}.")
                if method == "GET":
                    return 200, {"items": [dict(attachment)]}, {}
                if method == "DELETE":
                    del self.store.records["TicketAttachments"][attachment["id"]]
                    return 200, {"itemId": attachment["id"]}, {}
        raise ApiError(404, f"Tickets/{ticket_id}/{'/'.join(tail)} is not a resource this simulator serves.")

    def _children(self, entity: str, parent_field: str, parent_id: int) -> list[dict[str, Any]]:
        return [r for _, r in sorted(self.store.records[entity].items()) if r.get(parent_field) == parent_id]

    # -- tickets -----------------------------------------------------------------------------

    def _check_ticket(self, values: dict[str, Any], errors: list[str]) -> None:
        self.store.require("Tickets", values, errors)
        if values.get("queueID") is None and (values.get("assignedResourceID") is None or values.get("assignedResourceRoleID") is None):
            errors.append("A ticket needs a queueID, or an assignedResourceID with an assignedResourceRoleID.")
        if (values.get("assignedResourceID") is None) != (values.get("assignedResourceRoleID") is None):
            errors.append("assignedResourceID and assignedResourceRoleID must be given together.")
        self.store.must_exist("Companies", values.get("companyID"), "Company", errors)
        self.store.must_exist("Contacts", values.get("contactID"), "Contact", errors)
        self.store.must_exist("Resources", values.get("assignedResourceID"), "Resource", errors)

    def _create_ticket(self, body: Any, actor: int | None) -> int:
        errors: list[str] = []
        values = self.store.normalise("Tickets", body, errors=errors)
        values.pop("id", None)
        self._check_ticket(values, errors)
        if errors:
            raise ApiError(400, *errors)
        now = stamp()
        values.update(createDate=now, lastActivityDate=now, creatorResourceID=actor, ticketNumber=self._ticket_number(now))
        if values.get("status") == 5:
            values["completedDate"] = now
        ticket = self.store.insert("Tickets", values)
        self.count("tickets_created")
        self._emit("Create", "Ticket", ticket, actor)
        return ticket["id"]

    def _update_ticket(self, body: Any, actor: int | None, *, replace: bool) -> int:
        errors: list[str] = []
        values = self.store.normalise("Tickets", body, errors=errors)
        ticket_id = values.pop("id", None)
        if ticket_id is None:
            raise ApiError(400, "Field id is required to update a ticket.")
        ticket = self.store.get("Tickets", int(ticket_id))
        if ticket is None:
            raise ApiError(404, f"Ticket {ticket_id} does not exist.")
        if replace:
            # PUT replaces every writable field: what the body leaves out is cleared.
            kept = {k: v for k, v in ticket.items() if (meta("Tickets", k) or {}).get("isReadOnly")}
            merged = {**{k: None for k in ticket}, **kept, "userDefinedFields": ticket["userDefinedFields"], **values}
        else:
            merged = {**ticket, **values}
        self._check_ticket(merged, errors)
        if errors:
            raise ApiError(400, *errors)
        now = stamp()
        if merged.get("status") == 5 and ticket.get("status") != 5:
            merged["completedDate"] = now
        elif merged.get("status") != 5:
            merged["completedDate"] = None
        merged["lastActivityDate"] = now
        changed = {k for k, v in merged.items() if ticket.get(k) != v}
        ticket.update(merged)
        self.count("tickets_updated")
        self._emit("Update", "Ticket", ticket, actor, changed=changed)
        return ticket["id"]

    def _ticket_number(self, created: str) -> str:
        day = created[:10].replace("-", "")
        self._ticket_numbers[day] = self._ticket_numbers.get(day, 0) + 1
        return f"T{day}.{self._ticket_numbers[day]:04d}"

    def _touch(self, ticket_id: int) -> None:
        ticket = self.store.get("Tickets", ticket_id)
        if ticket is not None:
            ticket["lastActivityDate"] = stamp()

    # -- notes -------------------------------------------------------------------------------

    def _create_note(self, ticket_id: int, body: Any, actor: int | None) -> int:
        errors: list[str] = []
        values = self.store.normalise("TicketNotes", body, errors=errors)
        values.pop("id", None)
        if values.get("ticketID") not in (None, ticket_id):
            errors.append(f"ticketID {values['ticketID']} does not match the ticket in the URL ({ticket_id}).")
        values["ticketID"] = ticket_id
        self.store.require("TicketNotes", values, errors, extra=("title",) if self.require_note_titles else ())
        self.store.must_exist("Tickets", ticket_id, "Ticket", errors)
        if errors:
            raise ApiError(400, *errors)
        now = stamp()
        values.update(createDateTime=now, lastActivityDate=now, creatorResourceID=actor)
        note = self.store.insert("TicketNotes", values)
        self._touch(ticket_id)
        self.count("notes_created")
        self._emit("Create", "TicketNote", note, actor)
        return note["id"]

    def _update_note(self, ticket_id: int, body: Any) -> int:
        errors: list[str] = []
        values = self.store.normalise("TicketNotes", body, errors=errors)
        note = self.store.get("TicketNotes", int(values.pop("id", 0) or 0))
        if note is None or note["ticketID"] != ticket_id:
            raise ApiError(404, f"That note does not exist on ticket {ticket_id}.")
        if errors:
            raise ApiError(400, *errors)
        values.pop("ticketID", None)
        note.update(values, lastActivityDate=stamp())
        self._emit("Update", "TicketNote", note, None)
        return note["id"]

    # -- time entries ------------------------------------------------------------------------

    def _create_time_entry(self, ticket_id: int | None, body: Any, actor: int | None) -> int:
        errors: list[str] = []
        values = self.store.normalise("TimeEntries", body, errors=errors)
        values.pop("id", None)
        if ticket_id is not None:
            values["ticketID"] = ticket_id
        self.store.require("TimeEntries", values, errors, extra=("summaryNotes",))
        if values.get("ticketID") is None and values.get("taskID") is None:
            errors.append("A time entry needs a ticketID or a taskID.")
        self.store.must_exist("Tickets", values.get("ticketID"), "Ticket", errors)
        self.store.must_exist("Resources", values.get("resourceID"), "Resource", errors)
        if values.get("ticketID") is not None:
            roles = {r["roleID"] for r in self.store.records["ResourceServiceDeskRoles"].values() if r["resourceID"] == values.get("resourceID") and r["isActive"]}
            if values.get("roleID") is None:
                errors.append("Field roleID is required for a ticket time entry.")
            elif values["roleID"] not in roles:
                errors.append(f"Role {values['roleID']} is not a service desk role of resource {values.get('resourceID')}.")
        start, end = values.get("startDateTime"), values.get("endDateTime")
        if values.get("hoursWorked") is None and start and end:
            values["hoursWorked"] = round((_dt(end) - _dt(start)).total_seconds() / 3600, 4)
        hours = values.get("hoursWorked")
        if hours is None:
            errors.append("A time entry needs hoursWorked, or a startDateTime and endDateTime.")
        elif not 0 < hours <= 24:
            errors.append("hoursWorked must be more than 0 and at most 24.")
        if start and end and _dt(end) < _dt(start):
            errors.append("endDateTime must not be before startDateTime.")
        if errors:
            raise ApiError(400, *errors)
        now = stamp()
        values.setdefault("dateWorked", values.get("startDateTime") or now)
        values.update(createDateTime=now, lastModifiedDateTime=now, hoursToBill=0.0 if values.get("isNonBillable") else hours)
        entry = self.store.insert("TimeEntries", values)
        if values.get("ticketID") is not None:
            self._touch(values["ticketID"])
        self.count("time_entries_created")
        return entry["id"]

    # -- attachments -------------------------------------------------------------------------

    def _create_attachment(self, ticket_id: int, body: Any, actor: int | None) -> int:
        errors: list[str] = []
        values = self.store.normalise("TicketAttachments", body, errors=errors)
        values.pop("id", None)
        self.store.require("TicketAttachments", values, errors)
        data = b""
        if values.get("attachmentType") == "FILE_ATTACHMENT":
            data = decode_attachment(values.get("data"), errors)
        elif values.get("attachmentType") is not None:
            errors.append("This simulator accepts attachmentType FILE_ATTACHMENT only.")
        if errors:
            raise ApiError(400, *errors)
        if len(data) > self.attachment_cap_bytes:
            self.count("attachments_too_large")
            raise ApiError(400, f"The attachment is {len(data)} bytes; the API accepts files of at most {self.attachment_cap_bytes} bytes.")
        wait = self._attachment_bytes.wait_for(len(data), self.attachment_window_bytes, self.attachment_window_seconds)
        if wait:
            self.count("attachment_budget_exceeded")
            raise _RetryLater(max(1, round(wait)), f"Attachment uploads are limited to {self.attachment_window_bytes} bytes per {round(self.attachment_window_seconds / 60)} minutes.")
        self._attachment_bytes.spend(len(data))
        values.update(parentID=ticket_id, ticketID=ticket_id, attachDate=stamp(), attachedByResourceID=actor, fileSize=len(data), creatorType=1)
        attachment = self.store.insert("TicketAttachments", values)
        self._touch(ticket_id)
        self.count("attachments_created")
        return attachment["id"]

    # -- webhooks ----------------------------------------------------------------------------

    def _emit(self, action: str, entity_type: str, record: dict[str, Any], actor: int | None, changed: set[str] | None = None) -> None:
        if entity_type == "Ticket":
            fields = {"TicketNumber": record["ticketNumber"], "Status": record["status"], "Title": record["title"]}
        else:
            fields = {"TicketID": record["ticketID"], "Publish": record["publish"], "Title": record.get("title")}
        self.webhooks.emit(action, entity_type, record["id"], fields, actor)

    # -- inspection (vendor terms) -----------------------------------------------------------

    def sample_ticket_id(self) -> str:
        with self.lock:
            for ticket_id, ticket in sorted(self.store.records["Tickets"].items()):
                if ticket["status"] != 5:
                    return str(ticket_id)
            return str(self.add_ticket(title="Sample ticket"))

    def ticket_notes(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"id": str(n["id"]), "text": n["description"], "internal": n["publish"] != PUBLISH_ALL_USERS, "publish": n["publish"]}
                for n in self._children("TicketNotes", "ticketID", int(ticket_id))
            ]

    def ticket_status_id(self, ticket_id: str) -> str:
        with self.lock:
            return str(self.store.records["Tickets"][int(ticket_id)]["status"])

    def valid_status_ids(self, ticket_id: str) -> list[str]:
        return sorted(picklist_values("Tickets", "status"), key=int)

    def time_entries(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"id": str(e["id"]), "minutes": round(e["hoursWorked"] * 60), "notes": e["summaryNotes"] or "", "resource_id": e["resourceID"]}
                for e in self._children("TimeEntries", "ticketID", int(ticket_id))
            ]

    def attachments(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"id": str(a["id"]), "filename": a["fullPath"], "size": a["fileSize"]}
                for a in self._children("TicketAttachments", "parentID", int(ticket_id))
            ]

    def tickets_created_with(self, dedup_key: str) -> list[str]:
        wanted = external_id_for(dedup_key)
        with self.lock:
            return [str(i) for i, t in sorted(self.store.records["Tickets"].items()) if t.get("externalID") == wanted]

    def minimal_create_fields(self) -> dict[str, Any]:
        # status and priority have picklist defaults; title comes from the summary.
        return {"companyID": 175, "queueID": 5, "dueDateTime": "2030-03-21T00:00:00Z"}


class _RetryLater(ApiError):
    """A refusal that clears by itself: 429 with Retry-After."""

    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(429, message)
        self.retry_after = retry_after


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))

