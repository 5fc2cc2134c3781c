"""A simulator of Template Vendor's API: an in-memory PSA served over loopback HTTP.

This is the stub the generated plugin starts from, and it already passes the gateway's
conformance suite with the generated hooks. Make it the vendor's real contract before (or
while) writing the client against it: the vendor's paths, auth header, paging, field names and
error bodies, from the vendor's published documentation, with the source of each in the
README. Tests and the demo only ever see the vendor through it.

What it serves now (under ``/api/v1``, every call needs ``X-API-Key``, else 401):

- ``GET /statuses``, ``GET /companies``: paged lists ``{"items": [...], "next_page": n | null}``
  (``page`` 1-based, ``page_size`` up to 500).
- ``GET /tickets`` (``updated_since``, ``open``, ``external_ref`` filters; oldest change
  first), ``GET /tickets/{id}``, ``POST /tickets`` (``summary``, ``company_id``, optional
  ``status_id``, ``description``, ``external_ref``), ``PATCH /tickets/{id}`` (``status_id``).
- ``GET``/``POST /tickets/{id}/notes`` (``text``, ``internal``),
  ``GET``/``POST /tickets/{id}/time_entries`` (``minutes``, ``notes``, ``started_at``),
  ``GET``/``POST /tickets/{id}/attachments`` (multipart ``file``; over the cap: 413),
  ``GET /tickets/{id}/attachments/{id}`` and its ``/content``.
- Errors as ``{"error": {"code", "message", "field"}}``; 429 with Retry-After from the base
  fault switches.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, Router, get, patch, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, JSONBody

from gateway.testing.simulator import Faults, Simulator
from gateway_templatevendor.constants import (
    API_KEY_HEADER,
    API_KEY_SETTING,
    API_PREFIX,
    ATTACHMENT_CAP_BYTES,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    SUMMARY_MAX,
    VENDOR,
    external_ref,
)

DEMO_API_KEY = "templatevendor-demo-key-7d41c2"

# id, name, closed, is_default
STATUSES = (
    (1, "New", False, True),
    (2, "In Progress", False, False),
    (3, "Waiting on Customer", False, False),
    (4, "Resolved", False, False),
    (5, "Closed", True, False),
)
COMPANIES = ((1, "Acme Corp"), (2, "Globex"), (3, "Initech"))
DEMO_TICKETS = (
    ("Printer on the 3rd floor is jammed", 1, 1),
    ("VPN drops every hour", 1, 2),
    ("New starter needs a laptop", 2, 1),
    ("Backup job failed overnight", 3, 3),
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApiError(Exception):
    """An error answer in the vendor's shape."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def _json(value: Any, status: int = 200) -> Response[bytes]:
    return Response(content=msgspec.json.encode(value), status_code=status, media_type="application/json")


class TemplateVendorSimulator(Simulator):
    """An in-memory Template Vendor. Records are dicts in the vendor's field names."""

    vendor = VENDOR

    def __init__(self, faults: Faults | None = None, *, api_key: str = DEMO_API_KEY,
                 attachment_cap_bytes: int = ATTACHMENT_CAP_BYTES) -> None:
        super().__init__(faults)
        self.api_key = api_key
        self.attachment_cap_bytes = attachment_cap_bytes
        self.statuses: dict[int, dict[str, Any]] = {}
        self.companies: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self.entries: dict[int, dict[str, Any]] = {}
        self.files: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(100)

    # -- set-up ------------------------------------------------------------------------------

    def seed_demo(self) -> None:
        """Five statuses, three companies and a few open tickets with a note each."""
        with self.lock:
            if self.tickets:
                return
            for status_id, name, closed, default in STATUSES:
                self.statuses[status_id] = {"id": status_id, "name": name, "closed": closed, "is_default": default}
            for company_id, name in COMPANIES:
                self.companies[company_id] = {"id": company_id, "name": name}
            for summary, company_id, status_id in DEMO_TICKETS:
                ticket = self._create_ticket({"summary": summary, "company_id": company_id, "status_id": status_id})
                self._add_note(ticket["id"], {"text": f"Reported: {summary}", "internal": False}, author="Customer")

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {"vendor": VENDOR, "base_url": base_url, "settings": {}, "secrets": {API_KEY_SETTING: self.api_key}}

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        codes = {400: "invalid", 401: "unauthorized", 404: "not_found", 413: "too_large", 429: "rate_limited"}
        body = msgspec.json.encode({"error": {"code": codes.get(status, "server_error"), "message": message}})
        return status, body, {"content-type": "application/json"}

    # -- records -----------------------------------------------------------------------------

    def _ticket(self, ticket_id: int | str) -> dict[str, Any]:
        ticket = self.tickets.get(int(ticket_id)) if str(ticket_id).isdigit() else None
        if ticket is None:
            raise ApiError(404, "not_found", f"ticket {ticket_id} not found")
        return ticket

    def _status_ref(self, status_id: int) -> dict[str, Any]:
        return {"id": status_id, "name": self.statuses[status_id]["name"]}

    def _create_ticket(self, data: dict[str, Any]) -> dict[str, Any]:
        summary = data.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise ApiError(400, "invalid", "summary is required", "summary")
        if len(summary) > SUMMARY_MAX:
            raise ApiError(400, "invalid", f"summary is longer than {SUMMARY_MAX} characters", "summary")
        if data.get("company_id") not in self.companies:
            raise ApiError(400, "invalid", "company_id is not a company", "company_id")
        default = next(s for s in self.statuses.values() if s["is_default"])["id"]
        status_id = data.get("status_id", default)
        if status_id not in self.statuses:
            raise ApiError(400, "invalid", "status_id is not a status", "status_id")
        stamp = now()
        ticket = {
            "id": next(self._ids), "summary": summary, "description": str(data.get("description") or ""),
            "company_id": data["company_id"], "status": self._status_ref(status_id),
            "closed": self.statuses[status_id]["closed"], "external_ref": data.get("external_ref"),
            "created_at": stamp, "updated_at": stamp,
        }
        self.tickets[ticket["id"]] = ticket
        return ticket

    def _touch(self, ticket: dict[str, Any]) -> None:
        ticket["updated_at"] = now()

    def _add_note(self, ticket_id: int, data: dict[str, Any], author: str = "API") -> dict[str, Any]:
        ticket = self._ticket(ticket_id)
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "invalid", "text is required", "text")
        note = {"id": next(self._ids), "ticket_id": ticket["id"], "text": text,
                "internal": bool(data.get("internal", False)), "author": author, "created_at": now()}
        self.notes[note["id"]] = note
        self._touch(ticket)
        return note

    # -- routes ------------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        sim = self

        def answer(work: Any, status: int = 200) -> Response[bytes]:
            try:
                with sim.lock:
                    return _json(work(), status)
            except ApiError as exc:
                error = {"code": exc.code, "message": exc.message, **({"field": exc.field} if exc.field else {})}
                return _json({"error": error}, exc.status)

        def paged(request: Request, rows: list[dict[str, Any]]) -> dict[str, Any]:
            try:
                page = max(1, int(request.query_params.get("page") or 1))
                size = max(1, min(int(request.query_params.get("page_size") or PAGE_SIZE), MAX_PAGE_SIZE))
            except ValueError:
                raise ApiError(400, "invalid", "page and page_size must be integers") from None
            start = (page - 1) * size
            more = len(rows) > start + size
            return {"items": [dict(r) for r in rows[start:start + size]], "next_page": page + 1 if more else None}

        def gate(request: Request) -> Response[bytes] | None:
            if request.headers.get(API_KEY_HEADER.lower()) != sim.api_key:
                sim.count("unauthorized")
                return _json({"error": {"code": "unauthorized", "message": "missing or unknown API key"}}, 401)
            return None

        @get("/statuses", sync_to_thread=False)
        def list_statuses(request: Request) -> Response[bytes]:
            return answer(lambda: paged(request, list(sim.statuses.values())))

        @get("/companies", sync_to_thread=False)
        def list_companies(request: Request) -> Response[bytes]:
            return answer(lambda: paged(request, list(sim.companies.values())))

        @get("/tickets", sync_to_thread=False)
        def list_tickets(request: Request) -> Response[bytes]:
            def work() -> dict[str, Any]:
                rows = sorted(sim.tickets.values(), key=lambda t: (t["updated_at"], t["id"]))
                since = request.query_params.get("updated_since")
                if since:
                    try:
                        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
                    except ValueError:
                        raise ApiError(400, "invalid", "updated_since is not an ISO 8601 time", "updated_since") from None
                    rows = [t for t in rows if datetime.fromisoformat(t["updated_at"].replace("Z", "+00:00")) >= moment]
                if request.query_params.get("open") == "true":
                    rows = [t for t in rows if not t["closed"]]
                ref = request.query_params.get("external_ref")
                if ref is not None:
                    rows = [t for t in rows if t["external_ref"] == ref]
                return paged(request, rows)

            return answer(work)

        @get("/tickets/{ticket_id:str}", sync_to_thread=False)
        def get_ticket(ticket_id: FromPath[str]) -> Response[bytes]:
            return answer(lambda: dict(sim._ticket(ticket_id)))

        @post("/tickets", sync_to_thread=False)
        def create_ticket(data: JSONBody[dict[str, Any]]) -> Response[bytes]:
            def work() -> dict[str, Any]:
                sim.count("tickets_created")
                return dict(sim._create_ticket(data))

            return answer(work, 201)

        @patch("/tickets/{ticket_id:str}", sync_to_thread=False)
        def update_ticket(ticket_id: FromPath[str], data: JSONBody[dict[str, Any]]) -> Response[bytes]:
            def work() -> dict[str, Any]:
                ticket = sim._ticket(ticket_id)
                status_id = data.get("status_id")
                if status_id not in sim.statuses:
                    raise ApiError(400, "invalid", "status_id is not a status", "status_id")
                ticket["status"] = sim._status_ref(status_id)
                ticket["closed"] = sim.statuses[status_id]["closed"]
                sim._touch(ticket)
                return dict(ticket)

            return answer(work)

        @get("/tickets/{ticket_id:str}/notes", sync_to_thread=False)
        def list_notes(request: Request, ticket_id: FromPath[str]) -> Response[bytes]:
            def work() -> dict[str, Any]:
                ticket = sim._ticket(ticket_id)
                return paged(request, [n for n in sim.notes.values() if n["ticket_id"] == ticket["id"]])

            return answer(work)

        @post("/tickets/{ticket_id:str}/notes", sync_to_thread=False)
        def add_note(ticket_id: FromPath[str], data: JSONBody[dict[str, Any]]) -> Response[bytes]:
            return answer(lambda: dict(sim._add_note(sim._ticket(ticket_id)["id"], data)), 201)

        @get("/tickets/{ticket_id:str}/time_entries", sync_to_thread=False)
        def list_time(request: Request, ticket_id: FromPath[str]) -> Response[bytes]:
            def work() -> dict[str, Any]:
                ticket = sim._ticket(ticket_id)
                return paged(request, [e for e in sim.entries.values() if e["ticket_id"] == ticket["id"]])

            return answer(work)

        @post("/tickets/{ticket_id:str}/time_entries", sync_to_thread=False)
        def add_time(ticket_id: FromPath[str], data: JSONBody[dict[str, Any]]) -> Response[bytes]:
            def work() -> dict[str, Any]:
                ticket = sim._ticket(ticket_id)
                minutes = data.get("minutes")
                if not isinstance(minutes, int) or not 1 <= minutes <= 1440:
                    raise ApiError(400, "invalid", "minutes must be 1 to 1440", "minutes")
                entry = {"id": next(sim._ids), "ticket_id": ticket["id"], "minutes": minutes,
                         "notes": str(data.get("notes") or ""), "started_at": data.get("started_at"),
                         "created_at": now()}
                sim.entries[entry["id"]] = entry
                sim._touch(ticket)
                return dict(entry)

            return answer(work, 201)

        @get("/tickets/{ticket_id:str}/attachments", sync_to_thread=False)
        def list_files(request: Request, ticket_id: FromPath[str]) -> Response[bytes]:
            def work() -> dict[str, Any]:
                ticket = sim._ticket(ticket_id)
                rows = [{k: v for k, v in f.items() if k != "data"} for f in sim.files.values()
                        if f["ticket_id"] == ticket["id"]]
                return paged(request, rows)

            return answer(work)

        def stored_file(ticket_id: str, attachment_id: str) -> dict[str, Any]:
            ticket = sim._ticket(ticket_id)
            found = sim.files.get(int(attachment_id)) if attachment_id.isdigit() else None
            if found is None or found["ticket_id"] != ticket["id"]:
                raise ApiError(404, "not_found", f"attachment {attachment_id} not found")
            return found

        @get("/tickets/{ticket_id:str}/attachments/{attachment_id:str}", sync_to_thread=False)
        def get_file(ticket_id: FromPath[str], attachment_id: FromPath[str]) -> Response[bytes]:
            return answer(lambda: {k: v for k, v in stored_file(ticket_id, attachment_id).items() if k != "data"})

        @get("/tickets/{ticket_id:str}/attachments/{attachment_id:str}/content", sync_to_thread=False)
        def get_file_content(ticket_id: FromPath[str], attachment_id: FromPath[str]) -> Response[bytes]:
            try:
                with sim.lock:
                    found = stored_file(ticket_id, attachment_id)
            except ApiError as exc:
                return _json({"error": {"code": exc.code, "message": exc.message}}, exc.status)
            return Response(content=found["data"], media_type=found["content_type"] or "application/octet-stream")

        @post("/tickets/{ticket_id:str}/attachments")
        async def add_file(request: Request, ticket_id: FromPath[str]) -> Response[bytes]:
            form = await request.form()
            upload = form.get("file")
            data = await upload.read() if isinstance(upload, UploadFile) else None

            def work() -> dict[str, Any]:
                ticket = sim._ticket(ticket_id)
                if not isinstance(upload, UploadFile) or data is None:
                    raise ApiError(400, "invalid", "a multipart file field is required", "file")
                if len(data) > sim.attachment_cap_bytes:
                    raise ApiError(413, "too_large", f"files are limited to {sim.attachment_cap_bytes} bytes", "file")
                record = {"id": next(sim._ids), "ticket_id": ticket["id"], "filename": upload.filename,
                          "size": len(data), "content_type": upload.content_type, "created_at": now()}
                sim.files[record["id"]] = {**record, "data": data}
                sim._touch(ticket)
                return record

            return answer(work, 201)

        handlers = [list_statuses, list_companies, list_tickets, get_ticket, create_ticket, update_ticket,
                    list_notes, add_note, list_time, add_time, list_files, get_file, get_file_content, add_file]
        return [Router(path=API_PREFIX, route_handlers=handlers, before_request=gate)]

    # -- inspection, in vendor terms (the conformance suite reads these) -----------------------

    def sample_ticket_id(self) -> str:
        with self.lock:
            if not self.tickets:
                self.seed_demo()
            return str(next(t["id"] for t in self.tickets.values() if not t["closed"]))

    def ticket_notes(self, ticket_id: FromPath[str]) -> list[dict[str, Any]]:
        with self.lock:
            return [{"id": str(n["id"]), "text": n["text"], "internal": n["internal"]}
                    for n in self.notes.values() if n["ticket_id"] == int(ticket_id)]

    def ticket_status_id(self, ticket_id: FromPath[str]) -> str:
        with self.lock:
            return str(self._ticket(ticket_id)["status"]["id"])

    def valid_status_ids(self, ticket_id: FromPath[str]) -> list[str]:
        with self.lock:
            return [str(s) for s in self.statuses]

    def time_entries(self, ticket_id: FromPath[str]) -> list[dict[str, Any]]:
        with self.lock:
            return [{"id": str(e["id"]), "minutes": e["minutes"], "notes": e["notes"]}
                    for e in self.entries.values() if e["ticket_id"] == int(ticket_id)]

    def attachments(self, ticket_id: FromPath[str]) -> list[dict[str, Any]]:
        with self.lock:
            return [{"id": str(f["id"]), "filename": f["filename"], "size": f["size"]}
                    for f in self.files.values() if f["ticket_id"] == int(ticket_id)]

    def tickets_created_with(self, dedup_key: str) -> list[str]:
        wanted = external_ref(dedup_key)
        with self.lock:
            return [str(t["id"]) for t in self.tickets.values() if t["external_ref"] == wanted]

    def minimal_create_fields(self) -> dict[str, Any]:
        return {"summary": "Printer on the 3rd floor is jammed", "company": str(COMPANIES[0][0])}
