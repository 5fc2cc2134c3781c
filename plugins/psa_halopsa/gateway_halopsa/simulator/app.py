"""A HaloPSA simulator serving the contract the plugin is built against.

What it models (README lists the sources and the choices made where Halo documents nothing):

- ``GET /api/authinfo`` -> ``auth_url``; ``POST /auth/token`` (client credentials as form
  fields or HTTP Basic, optional ``?tenant=``); tokens expire after ``token_lifetime`` seconds
  (settable, and ``expire_tokens()`` kills every token now); every other ``/api`` call needs
  ``Authorization: Bearer`` and gets a bare 401 with ``WWW-Authenticate`` otherwise.
- Paths are case-insensitive, as on Halo (``/api/Tickets`` == ``/api/tickets``).
- ``/api/Tickets`` paging with ``pageinate``/``page_size``/``page_no``/``record_count``; the
  server returns at most ``page_cap`` (100) items whatever ``page_size`` asks.
- POST bodies are arrays; ``/api/Actions`` with ``hiddenfromuser``, ``new_status``,
  ``timetaken``; ``/api/Status`` (global, per-ticket-type availability); attachments as
  ``data_base64`` with a settable cap (25 MB), listed by ``GET /api/Attachment?ticket_id=``
  and served back as the file itself by ``GET /api/Attachment/{id}``.
- 429 with Retry-After after ``rate_limit_requests`` calls in any ``rate_limit_seconds``
  (300 per rolling 5 minutes by default).
- Error bodies are plain text (Halo documents none); token errors are OAuth JSON.
- Outbound webhooks (PROVISIONAL shape): ``add_webhook(url, secret)`` then every ticket or
  action change is POSTed from a background thread as ``{event, id, ticket}`` with
  ``X-Halo-Signature: sha256=<hex HMAC-SHA256>``.
"""

import base64
import binascii
import json
import math
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, quote

from litestar import Request, Response, get, post

from gateway.testing.simulator import Answer, Faults, RollingWindow, Simulator

from gateway_halopsa import constants
from gateway_halopsa.mapping import parse_time, plain_text
from gateway_halopsa.webhooks import sign

CLOSED_STATUS_IDS = frozenset({9})
DEFAULT_PAGE_SIZE = 50

STATUSES = (
    {"id": 1, "name": "New", "shortname": "New", "sequence": 1, "colour": "#2d9cdb"},
    {"id": 2, "name": "In Progress", "shortname": "Prog", "sequence": 2, "colour": "#f2994a"},
    {"id": 3, "name": "Pending", "shortname": "Pend", "sequence": 3, "colour": "#9b51e0"},
    {"id": 4, "name": "On Hold", "shortname": "Hold", "sequence": 4, "colour": "#828282"},
    {"id": 5, "name": "Waiting on Client", "shortname": "WCli", "sequence": 5, "colour": "#eb5757"},
    {"id": 6, "name": "Waiting on Third Party", "shortname": "W3rd", "sequence": 6, "colour": "#f2c94c"},
    {"id": 8, "name": "Resolved", "shortname": "Res", "sequence": 8, "colour": "#27ae60"},
    {"id": 9, "name": "Closed", "shortname": "Clo", "sequence": 9, "colour": "#333333"},
    # Only change requests can wait for approval: statuses are global, availability per type.
    {"id": 20, "name": "Awaiting Approval", "shortname": "Appr", "sequence": 7, "colour": "#56ccf2", "tickettypes": [4]},
)
TICKET_TYPES = (
    {"id": 1, "name": "Incident", "sequence": 1},
    {"id": 3, "name": "Service Request", "sequence": 2},
    {"id": 4, "name": "Change Request", "sequence": 3},
)
PRIORITY_NAMES = ((1, "Critical"), (2, "High"), (3, "Medium"), (4, "Low"))
DEMO_CLIENTS = ((12, "Contoso Ltd"), (13, "Fabrikam Inc"), (14, "Northwind Traders"), (15, "Tailspin Toys"))
DEMO_USERS = {12: (101, "Alice Jones"), 13: (102, "Bob Smith"), 14: (103, "Carol White"), 15: (104, "Dan Brown")}
DEMO_SUMMARIES = (
    "Printer offline on the second floor",
    "Outlook keeps asking for a password",
    "New starter laptop for Monday",
    "VPN drops every 10 minutes",
    "Shared drive full",
    "Teams calls have no audio",
    "Replace the toner in the finance printer",
    "Password reset for the CFO",
    "Firewall firmware update",
    "Slow Wi-Fi in the meeting room",
)
# Token answers are never cached (RFC 6749 section 5.1).
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
# What list answers leave out (the full record comes from GET /api/Tickets/{id}).
LIST_OMITS = frozenset({"details_html", "third_party_id_string", "third_party_id"})


def _now() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"true", "1", "yes"}


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class _WebhookTarget:
    def __init__(self, url: str, secret: str, header: str, prefix: str) -> None:
        self.url, self.secret, self.header, self.prefix = url, secret, header, prefix


class HaloSimulator(Simulator):
    """HaloPSA over loopback. Settable after construction: ``token_lifetime``, ``page_cap``,
    ``attachment_cap_bytes``, ``rate_limit_requests``/``rate_limit_seconds``, ``tenant``."""

    vendor = constants.VENDOR
    # The authorisation server is outside the fault switches: they model the API.
    fault_exempt_paths = ("/auth/token",)

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        client_id: str = "gateway-sim",
        client_secret: str | None = None,
        token_lifetime: float = 3600.0,
    ) -> None:
        super().__init__(faults)
        self.client_id = client_id
        self.client_secret = client_secret or f"sim-{secrets.token_hex(12)}"
        self.tenant: str | None = None
        self.webhook_secret = f"whsec-{secrets.token_hex(16)}"
        self.token_lifetime = token_lifetime
        self.page_cap = constants.MAX_PAGE_SIZE
        self.attachment_cap_bytes = constants.ATTACHMENT_CAP_BYTES
        self.rate_limit_requests = constants.RATE_LIMIT_REQUESTS
        self.rate_limit_seconds = constants.RATE_LIMIT_SECONDS
        self._tokens: dict[str, float] = {}
        self.issued_tokens: list[str] = []  # every token handed out, for leak checks in tests
        self._calls = RollingWindow()
        self._next_id = {"ticket": 1000, "action": 5000, "attachment": 9000, "client": 100, "asset": 700}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.actions: dict[int, dict[str, Any]] = {}
        self.files: dict[int, dict[str, Any]] = {}
        self.statuses = [{"type": 0, "tickettypes": [], **s} for s in STATUSES]
        self.ticket_types = [dict(t) for t in TICKET_TYPES]
        # Priorities are listed per SLA (``slaid``); ``priorityid`` is what a ticket takes.
        self.priorities = [
            {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sla}:{pid}")), "slaid": sla, "priorityid": pid, "name": name}
            for sla in (1, 2)
            for pid, name in PRIORITY_NAMES
        ]
        self.clients: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "Internal", "inactive": False}}
        self._webhooks: list[_WebhookTarget] = []

    # -- the app ---------------------------------------------------------------------------

    async def gate(self, scope: dict, forward: Callable[[dict], Awaitable[None]]) -> Answer | None:
        """Case-insensitive paths, the rolling rate limit and the bearer check, answered the way
        Halo answers them (the token endpoint is outside the fault switches: ``fault_exempt_paths``)."""
        path = scope["path"].lower()
        scope = {**scope, "path": path, "raw_path": path.encode()}
        wait = self.spend_rate()
        if wait:
            self.count("rate_limited")
            return self.rate_limited_response(wait)
        if path.startswith("/api/") and path != "/api/authinfo":
            headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not self.token_valid(token.strip()):
                self.count("unauthorized")
                return 401, b"", {"www-authenticate": 'Bearer error="invalid_token"' if token else "Bearer"}
        await forward(scope)
        return None

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        """Halo documents no error body; clients read it as text, so it is plain text here."""
        return status, message.encode(), {"content-type": "text/plain; charset=utf-8"}

    def rate_limited_response(self, retry_after: float) -> tuple[int, bytes, dict[str, str]]:
        minutes = self.rate_limit_seconds / 60
        message = (
            f"Rate Limit Reached - {self.rate_limit_requests} Requests per rolling "
            f"{minutes:g} minute window"
        )
        status, body, headers = self.error_response(429, message)
        return status, body, {**headers, "retry-after": str(max(1, math.ceil(retry_after)))}

    def spend_rate(self) -> float:
        """Count one call; return 0, or seconds until the rolling window has room."""
        with self.lock:
            wait = self._calls.wait_for(1, self.rate_limit_requests, self.rate_limit_seconds)
            if not wait:
                self._calls.spend()
            return wait

    # -- tokens ----------------------------------------------------------------------------

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expiry = self._tokens.get(token)
            return expiry is not None and time.monotonic() < expiry

    def expire_tokens(self) -> None:
        """Make every issued token expired now (a token expiring mid-run)."""
        with self.lock:
            self._tokens.clear()

    def _issue_token(self) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
            self.issued_tokens.append(token)
        self.count("tokens_issued")
        return token, max(1, round(self.token_lifetime))

    def _token_answer(self, request: Request, raw: bytes) -> Response:
        form = {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        basic = scheme.lower() == "basic"
        if basic:
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return self._oauth_error(400, "invalid_request", "The Basic credentials cannot be decoded.")
        if form.get("grant_type") != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type", "Only the client_credentials grant is supported.")
        if self.tenant and request.query_params.get("tenant") != self.tenant:
            return self._oauth_error(400, "invalid_request", "The tenant is missing or unknown.")
        if client_id != self.client_id or not client_secret or not secrets.compare_digest(
            client_secret, self.client_secret
        ):
            return self._oauth_error(401, "invalid_client", "Client authentication failed.", basic=basic)
        token, expires_in = self._issue_token()
        return self._json(
            {"access_token": token, "token_type": "Bearer", "expires_in": expires_in, "scope": form.get("scope") or "all"},
            headers=_NO_STORE,
        )

    @staticmethod
    def _oauth_error(status: int, error: str, description: str, *, basic: bool = False) -> Response:
        """RFC 6749 section 5.2: ``error`` and ``error_description``, never cached; a client that
        authenticated with Basic gets a ``WWW-Authenticate`` challenge with its 401."""
        headers = dict(_NO_STORE)
        if status == 401 and basic:
            headers["www-authenticate"] = 'Basic realm="halo"'
        body = {"error": error, "error_description": description}
        return Response(
            content=json.dumps(body).encode(), status_code=status, media_type="application/json", headers=headers
        )

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            content=json.dumps(body).encode(), status_code=status, media_type="application/json", headers=headers
        )

    def _error(self, status: int, message: str) -> Response:
        code, body, headers = self.error_response(status, message)
        return Response(content=body, status_code=code, headers=headers, media_type=headers["content-type"])

    def _new_id(self, kind: str) -> int:
        with self.lock:
            self._next_id[kind] += 1
            return self._next_id[kind]

    def _array(self, raw: bytes) -> list[dict[str, Any]] | Response:
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return self._error(400, "The request body is not valid JSON")
        if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
            return self._error(400, "The request body must be a JSON array of objects")
        return body

    def _status_ids_for_type(self, tickettype_id: int | None) -> list[int]:
        return [
            s["id"]
            for s in self.statuses
            if not s["tickettypes"] or tickettype_id is None or tickettype_id in s["tickettypes"]
        ]

    def _status_name(self, status_id: int) -> str:
        return next((s["name"] for s in self.statuses if s["id"] == status_id), "")

    @staticmethod
    def _saved(items: list[dict[str, Any]]) -> Any:
        return items[0] if len(items) == 1 else items

    # -- state changes (also used by tests and the demo seed) -------------------------------

    def add_client(self, name: str, client_id: int | None = None) -> int:
        client_id = client_id or self._new_id("client")
        with self.lock:
            self.clients[client_id] = {"id": client_id, "name": name, "inactive": False, "toplevel_id": 1}
        return client_id

    def add_ticket(self, summary: str, **fields: Any) -> int:
        """Insert a ticket directly (no HTTP, no webhook); return its id."""
        ticket_id = self._new_id("ticket")
        now = _now()
        client_id = int(fields.pop("client_id", 1))
        record = {
            "id": ticket_id,
            "summary": summary,
            "details": "",
            "details_html": "",
            "status_id": 1,
            "tickettype_id": 1,
            "priority_id": 3,
            "client_id": client_id,
            "client_name": self.clients.get(client_id, {}).get("name", ""),
            "site_id": 0,
            "user_id": 0,
            "user_name": "",
            "agent_id": 0,
            "team": "1st Line Support",
            "dateoccurred": now,
            "datecreated": now,
            "last_update": now,
            "lastactiondate": now,
            "third_party_id": 0,
            "third_party_id_string": "",
            "inactive": False,
            **fields,
        }
        if record["details"] and not record["details_html"]:
            record["details_html"] = f"<p>{record['details']}</p>"
        with self.lock:
            self.tickets[ticket_id] = record
        return ticket_id

    def add_asset(
        self, client_id: int, inventory_number: str, *, key_field: str = "", serial: str = "",
        ticket_id: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """An asset (``Device_List``) of the client, optionally listed on a ticket's ``assets``."""
        asset_id = self._new_id("asset")
        asset = {
            "id": asset_id, "inventory_number": inventory_number, "key_field": key_field or inventory_number,
            "client_id": client_id, "client_name": self.clients.get(client_id, {}).get("name", ""),
            "assettype_name": "Workstation", "inactive": False,
            "fields": [{"id": 1, "name": "Serial Number", "value": serial}] if serial else [],
        }  # fmt: skip
        if ticket_id is not None:
            with self.lock:
                self.tickets[ticket_id].setdefault("assets", []).append(asset)
        return asset

    def add_action(self, ticket_id: int, note: str, **fields: Any) -> dict[str, Any]:
        """Record an action on a ticket (status change included); return it."""
        action_id = self._new_id("action")
        now = _now()
        with self.lock:
            ticket = self.tickets[ticket_id]
            action = {
                "id": action_id,
                "ticket_id": ticket_id,
                "outcome": "Private Note",
                "outcome_id": 0,
                "note": note,
                "hiddenfromuser": True,
                "sendemail": False,
                "who": "API Agent",
                "who_type": 1,
                "who_agentid": 2,
                "actionby_agent_id": 2,
                "actionby_user_id": 0,
                "datetime": now,
                "timetaken": 0.0,
                "nonbilltime": 0.0,
                "old_status": ticket["status_id"],
                "new_status": 0,
                "new_status_name": "",
                "attachment_count": 0,
                **fields,
            }
            new_status = _int(action.get("new_status"), 0) or 0
            if new_status:
                ticket["status_id"] = new_status
                action["new_status_name"] = self._status_name(new_status)
            ticket["last_update"] = ticket["lastactiondate"] = now
            self.actions[action_id] = action
        return action

    # -- webhooks --------------------------------------------------------------------------

    def add_webhook(
        self,
        url: str,
        secret: str | None = None,
        *,
        header: str = "X-Halo-Signature",
        prefix: str = constants.WEBHOOK_SIGNATURE_PREFIX,
    ) -> None:
        """Send every ticket and action change to ``url``, signed with ``secret`` (by default
        the ``webhook_secret`` that ``demo_connection`` hands the gateway)."""
        with self.lock:
            self._webhooks.append(_WebhookTarget(url, secret or self.webhook_secret, header, prefix))

    def _emit(self, event: str, ticket_id: int) -> None:
        with self.lock:
            targets = list(self._webhooks)
            ticket = dict(self.tickets.get(ticket_id) or {})
        if not targets:
            return
        body = json.dumps({"event": event, "id": ticket_id, "ticket": ticket}).encode()
        for target in targets:
            self.outbox.send(target.url, body, {target.header: sign(body, target.secret, prefix=target.prefix)})

    @property
    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """What was sent: ``{"url", "status", "body"}`` (status ``None`` when nothing answered)."""
        return self.outbox.sent

    def flush_webhooks(self, timeout: float = 5.0) -> None:
        """Wait until every queued webhook has been delivered (or ``timeout`` passes)."""
        self.outbox.wait(timeout)

    def stop_webhooks(self) -> None:
        self.outbox.stop()

    # -- routes ----------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        sim = self

        @get("/api/authinfo", sync_to_thread=False)
        def authinfo(request: Request) -> Response:
            base = str(request.base_url).rstrip("/")
            return sim._json({"auth_url": f"{base}/auth", "tenant_id": sim.tenant or "", "auth_type": 0})

        @post("/auth/token")
        async def token(request: Request) -> Response:
            return sim._token_answer(request, await request.body())

        @get("/api/tickets", sync_to_thread=False)
        def tickets(request: Request) -> Response:
            return sim._list_tickets(request.query_params)

        @get("/api/tickets/{ticket_id:int}", sync_to_thread=False)
        def ticket(request: Request) -> Response:
            ticket_id = request.path_params["ticket_id"]
            with sim.lock:
                record = sim.tickets.get(ticket_id)
                record = dict(record) if record else None
            if record is None:
                return sim._error(404, f"Ticket {ticket_id} not found")
            record["status_name"] = sim._status_name(record["status_id"])
            return sim._json(record)

        @post("/api/tickets")
        async def save_tickets(request: Request) -> Response:
            body = sim._array(await request.body())
            return body if isinstance(body, Response) else sim._save_tickets(body)

        @get("/api/actions", sync_to_thread=False)
        def actions(request: Request) -> Response:
            params = request.query_params
            ticket_id = _int(params.get("ticket_id"))
            if ticket_id is None:
                return sim._error(400, "ticket_id is required")
            with sim.lock:
                found = [dict(a) for a in sim.actions.values() if a["ticket_id"] == ticket_id]
            if _truthy(params.get("excludeprivate")):
                found = [a for a in found if not a["hiddenfromuser"]]
            count = _int(params.get("count"))
            found = found[:count] if count else found
            return sim._json({"record_count": len(found), "actions": found})

        @get("/api/actions/{action_id:int}", sync_to_thread=False)
        def action(request: Request) -> Response:
            """One action; a ``ticket_id`` that is given must be the action's ticket."""
            action_id = request.path_params["action_id"]
            ticket_id = _int(request.query_params.get("ticket_id"))
            with sim.lock:
                record = sim.actions.get(action_id)
                record = dict(record) if record else None
            if record is None or (ticket_id is not None and record["ticket_id"] != ticket_id):
                return sim._error(404, f"Action {action_id} not found")
            return sim._json(record)

        @post("/api/actions")
        async def save_actions(request: Request) -> Response:
            body = sim._array(await request.body())
            return body if isinstance(body, Response) else sim._save_actions(body)

        @get("/api/status", sync_to_thread=False)
        def statuses(request: Request) -> Response:
            tickettype_id = _int(request.query_params.get("tickettype_id"))
            allowed = set(sim._status_ids_for_type(tickettype_id))
            found = [
                {k: v for k, v in s.items()}
                for s in sim.statuses
                if s["id"] in allowed
                and not (_truthy(request.query_params.get("excludeclosed")) and s["id"] in CLOSED_STATUS_IDS)
            ]
            return sim._json(found)

        @get("/api/status/{status_id:int}", sync_to_thread=False)
        def status(request: Request) -> Response:
            status_id = request.path_params["status_id"]
            found = next((dict(s) for s in sim.statuses if s["id"] == status_id), None)
            return sim._json(found) if found else sim._error(404, f"Status {status_id} not found")

        @get("/api/tickettype", sync_to_thread=False)
        def ticket_types() -> Response:
            return sim._json(sim.ticket_types)

        @get("/api/priority", sync_to_thread=False)
        def priorities() -> Response:
            return sim._json(sim.priorities)

        @get("/api/client", sync_to_thread=False)
        def clients(request: Request) -> Response:
            with sim.lock:
                rows = sorted((dict(c) for c in sim.clients.values()), key=lambda c: c["id"])
            return sim._json(sim._page(rows, request.query_params, "clients"))

        @get("/api/attachment", sync_to_thread=False)
        def attachments(request: Request) -> Response:
            ticket_id = _int(request.query_params.get("ticket_id"))
            with sim.lock:
                found = [
                    {k: v for k, v in f.items() if k != "data"}
                    for f in sim.files.values()
                    if ticket_id is None or f["ticket_id"] == ticket_id
                ]
            return sim._json({"record_count": len(found), "attachments": found})

        @post("/api/attachment")
        async def save_attachments(request: Request) -> Response:
            body = sim._array(await request.body())
            return body if isinstance(body, Response) else sim._save_attachments(body)

        @get("/api/attachment/{attachment_id:int}", sync_to_thread=False)
        def attachment_file(request: Request) -> Response:
            return sim._attachment_file(request.path_params["attachment_id"])

        return [
            authinfo, token, tickets, ticket, save_tickets, actions, action, save_actions, statuses, status,
            ticket_types, priorities, clients, attachments, save_attachments, attachment_file,
        ]

    # -- route bodies ----------------------------------------------------------------------

    def _page(self, rows: list[dict[str, Any]], params: Any, key: str) -> dict[str, Any]:
        """Halo paging: the page is cut by the size asked, then truncated to ``page_cap``."""
        total = len(rows)
        if not _truthy(params.get("pageinate")):
            count = _int(params.get("count"))
            return {"record_count": total, key: rows[:count] if count else rows}
        size = max(1, _int(params.get("page_size"), DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE)
        page_no = max(1, _int(params.get("page_no"), 1) or 1)
        start = (page_no - 1) * size
        return {
            "page_no": page_no,
            "page_size": size,
            "record_count": total,
            key: rows[start : start + min(size, self.page_cap)],
        }

    def _list_tickets(self, params: Any) -> Response:
        with self.lock:
            rows = [dict(t) for t in self.tickets.values()]
        if _truthy(params.get("open_only")):
            rows = [t for t in rows if t["status_id"] not in CLOSED_STATUS_IDS]
        if _truthy(params.get("closed_only")):
            rows = [t for t in rows if t["status_id"] in CLOSED_STATUS_IDS]
        for name in ("client_id", "status_id", "agent_id", "user_id"):
            wanted = _int(params.get(name))
            if wanted is not None:
                rows = [t for t in rows if t.get(name) == wanted]
        if params.get("datesearch"):
            field = {"dateoccured": "dateoccurred", "dateoccurred": "dateoccurred"}.get(
                params["datesearch"].lower(), params["datesearch"].lower()
            )
            start, end = parse_time(params.get("startdate")), parse_time(params.get("enddate"))
            rows = [
                t
                for t in rows
                if (when := parse_time(t.get(field))) is not None
                and (start is None or when >= start)
                and (end is None or when <= end)
            ]
        since = parse_time(params.get("lastupdatefromdate"))
        if since is not None:
            rows = [t for t in rows if (parse_time(t["last_update"]) or since) >= since]
        if params.get("search"):
            needle = params["search"].lower()
            rows = [t for t in rows if needle in t["summary"].lower() or needle in str(t["id"])]
        order = (params.get("order") or "id").lower()
        rows.sort(key=lambda t: (str(t.get(order, "")) if order != "id" else t["id"], t["id"]), reverse=_truthy(params.get("orderdesc")))
        rows = [{k: v for k, v in t.items() if k not in LIST_OMITS} for t in rows]
        return self._json(self._page(rows, params, "tickets"))

    def _save_tickets(self, items: list[dict[str, Any]]) -> Response:
        for item in items:  # validate everything before changing anything
            problem = self._ticket_problem(item)
            if problem:
                return self._error(400, problem)
        saved, events = [], []
        for item in items:
            ticket_id = _int(item.get("id"), 0) or 0
            if ticket_id:
                with self.lock:
                    record = self.tickets[ticket_id]
                    record.update({k: v for k, v in item.items() if k != "id"})
                    record["last_update"] = _now()
                    saved.append(dict(record))
                events.append(("ticket.updated", ticket_id))
            else:
                fields = {k: v for k, v in item.items() if k not in {"id", "summary"}}
                if fields.get("details") and not fields.get("details_html"):
                    fields["details_html"] = f"<p>{fields['details']}</p>"
                ticket_id = self.add_ticket(str(item["summary"]), **fields)
                self.count("tickets_created")
                with self.lock:
                    saved.append(dict(self.tickets[ticket_id]))
                events.append(("ticket.created", ticket_id))
        for event, ticket_id in events:
            self._emit(event, ticket_id)
        return self._json(self._saved(saved))

    def _ticket_problem(self, item: dict[str, Any]) -> str | None:
        ticket_id = _int(item.get("id"), 0) or 0
        if ticket_id and ticket_id not in self.tickets:
            return f"Ticket {ticket_id} not found"
        if not ticket_id and not str(item.get("summary") or "").strip():
            return "Summary is required"
        if "third_party_id" in item and _int(item["third_party_id"]) is None:
            # The spec types it int32: a string there fails model binding.
            return "The JSON value could not be converted to System.Int32. Path: $[0].third_party_id"
        if "client_id" in item and _int(item["client_id"]) not in self.clients:
            return f"Client {item['client_id']} not found"
        if "tickettype_id" in item and _int(item["tickettype_id"]) not in {t["id"] for t in self.ticket_types}:
            return f"Ticket type {item['tickettype_id']} not found"
        if "priority_id" in item and _int(item["priority_id"]) not in {p["priorityid"] for p in self.priorities}:
            return f"Priority {item['priority_id']} not found"
        if "status_id" in item:
            tickettype = _int(item.get("tickettype_id")) or (self.tickets[ticket_id]["tickettype_id"] if ticket_id else 1)
            if _int(item["status_id"]) not in self._status_ids_for_type(tickettype):
                return f"Status {item['status_id']} is not valid for this ticket type"
        return None

    def _save_actions(self, items: list[dict[str, Any]]) -> Response:
        for item in items:
            ticket_id = _int(item.get("ticket_id"))
            if ticket_id is None or ticket_id not in self.tickets:
                return self._error(400, f"Ticket {item.get('ticket_id')} not found")
            new_status = _int(item.get("new_status"), 0) or 0
            if new_status and new_status not in self._status_ids_for_type(self.tickets[ticket_id]["tickettype_id"]):
                return self._error(400, f"Status {new_status} is not valid for this ticket type")
            if not (item.get("note") or item.get("note_html")) and not new_status and not item.get("timetaken"):
                return self._error(400, "A note is required")
        saved = []
        for item in items:
            ticket_id = int(item["ticket_id"])
            fields = {k: v for k, v in item.items() if k not in {"id", "ticket_id", "note"}}
            note = item.get("note") or ""
            if not note and item.get("note_html"):
                note = plain_text(item["note_html"])
            fields["hiddenfromuser"] = bool(item.get("hiddenfromuser", False))
            fields["timetaken"] = float(item.get("timetaken") or 0)
            action = self.add_action(ticket_id, note, **fields)
            if not action["hiddenfromuser"] and action.get("sendemail"):
                self.count("emails_sent")
            saved.append(dict(action))
            self.count("actions_posted")
            self._emit("action.created", ticket_id)
        return self._json(self._saved(saved))

    def _save_attachments(self, items: list[dict[str, Any]]) -> Response:
        decoded: list[bytes] = []
        for item in items:
            ticket_id = _int(item.get("ticket_id"))
            if ticket_id is None or ticket_id not in self.tickets:
                return self._error(400, f"Ticket {item.get('ticket_id')} not found")
            if not item.get("filename"):
                return self._error(400, "filename is required")
            try:
                data = base64.b64decode(item.get("data_base64") or "", validate=True)
            except (binascii.Error, ValueError):
                return self._error(400, "data_base64 is not valid base64")
            if len(data) > self.attachment_cap_bytes:
                return self._error(
                    413, f"The file is larger than the {self.attachment_cap_bytes // (1024 * 1024)} MB upload limit"
                )
            decoded.append(data)
        saved = []
        for item, data in zip(items, decoded):
            attachment_id = self._new_id("attachment")
            record = {
                "id": attachment_id,
                "ticket_id": int(item["ticket_id"]),
                "action_id": _int(item.get("action_id"), 0) or 0,
                "filename": str(item["filename"]),
                "filesize": len(data),
                "content_type": item.get("content_type") or "application/octet-stream",
                "isimage": bool(item.get("isimage")),
                "datecreated": _now(),
                "third_party_id": str(item.get("third_party_id") or ""),
                "data": data,
            }
            with self.lock:
                self.files[attachment_id] = record
            saved.append({k: v for k, v in record.items() if k != "data"})
        return self._json(self._saved(saved))

    def _attachment_file(self, attachment_id: int) -> Response:
        """``GET /api/Attachment/{id}``: the file itself, named in ``Content-Disposition``
        (as homotechsual/HaloAPI's ``Get-HaloAttachment`` reads it)."""
        with self.lock:
            record = self.files.get(attachment_id)
            record = dict(record) if record else None
        if record is None:
            return self._error(404, f"Attachment {attachment_id} not found")
        name = record["filename"]
        fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
        disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
        return Response(
            content=record["data"],
            media_type=record["content_type"],
            headers={"content-disposition": disposition},
        )

    # -- demo ------------------------------------------------------------------------------

    def seed_demo(self) -> None:
        """Four clients, twenty tickets across them and a few actions on each."""
        import random

        rng = random.Random(7)
        for client_id, name in DEMO_CLIENTS:
            self.add_client(name, client_id)
        open_statuses = [1, 2, 3, 5, 6]
        for n in range(20):
            client_id = DEMO_CLIENTS[n % len(DEMO_CLIENTS)][0]
            user_id, user_name = DEMO_USERS[client_id]
            summary = DEMO_SUMMARIES[n % len(DEMO_SUMMARIES)]
            ticket_id = self.add_ticket(
                summary,
                details=f"{user_name} reports: {summary.lower()}.",
                client_id=client_id,
                user_id=user_id,
                user_name=user_name,
                tickettype_id=rng.choice([1, 1, 3, 4]),
                priority_id=rng.randint(1, 4),
            )
            self.add_action(
                ticket_id, f"{user_name} wrote in: {summary}.", outcome="Email Received", hiddenfromuser=False,
                actionby_user_id=user_id, actionby_agent_id=0, who=user_name, who_type=2,
            )
            if n % 3 != 2:
                self.add_action(ticket_id, "Looked at the logs; working on it.", timetaken=0.25)
            status = 9 if n % 7 == 6 else rng.choice(open_statuses)
            if status != 1:
                self.add_action(
                    ticket_id, "Thanks, we are on it." if status != 9 else "All done, closing.",
                    outcome="Email User", hiddenfromuser=False, sendemail=True, new_status=status,
                )

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {
            "vendor": constants.VENDOR,
            "base_url": base_url,
            "settings": {"client_id": self.client_id},
            "secrets": {"client_secret": self.client_secret},
            "webhook_secret": self.webhook_secret,
        }

    # -- inspection ------------------------------------------------------------------------

    def sample_ticket_id(self) -> str:
        with self.lock:
            for ticket_id, record in sorted(self.tickets.items()):
                if record["status_id"] not in CLOSED_STATUS_IDS and record["tickettype_id"] == 1:
                    return str(ticket_id)
        return str(self.add_ticket("Conformance sample ticket", details="Written to by the conformance suite."))

    def ticket_notes(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"id": str(a["id"]), "text": a["note"], "internal": bool(a["hiddenfromuser"])}
                for a in sorted(self.actions.values(), key=lambda a: a["id"])
                if a["ticket_id"] == int(ticket_id)
            ]

    def ticket_status_id(self, ticket_id: str) -> str:
        with self.lock:
            return str(self.tickets[int(ticket_id)]["status_id"])

    def valid_status_ids(self, ticket_id: str) -> list[str]:
        with self.lock:
            tickettype = self.tickets[int(ticket_id)]["tickettype_id"]
        return [str(s) for s in self._status_ids_for_type(tickettype)]

    def time_entries(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"id": str(a["id"]), "minutes": round(float(a["timetaken"]) * 60), "notes": a["note"]}
                for a in sorted(self.actions.values(), key=lambda a: a["id"])
                if a["ticket_id"] == int(ticket_id) and float(a.get("timetaken") or 0) > 0
            ]

    def attachments(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"id": str(f["id"]), "filename": f["filename"], "size": f["filesize"]}
                for f in sorted(self.files.values(), key=lambda f: f["id"])
                if f["ticket_id"] == int(ticket_id)
            ]

    def tickets_created_with(self, dedup_key: str) -> list[str]:
        with self.lock:
            return [
                str(t["id"])
                for t in sorted(self.tickets.values(), key=lambda t: t["id"])
                if dedup_key and t.get("third_party_id_string") == dedup_key
            ]

    def minimal_create_fields(self) -> dict[str, Any]:
        return {"summary": "Printer offline on the second floor"}
