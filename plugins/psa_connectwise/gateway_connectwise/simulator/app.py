"""``ConnectWiseSimulator``: ConnectWise PSA's REST API 3.0 over loopback HTTP.

It serves the contract the plugin is built against (``shared/vendor-api/PSA_CONTRACTS.md``
section 1 and the 2017 Service API spec):

- ``GET /login/companyinfo/{company}`` -> ``{"Codebase": "v4_6_release/", ...}`` (no auth);
- the API under ``/v4_6_release/apis/3.0``, every call checked for Basic
  ``company+public:private`` and the ``clientId`` header (401 in ConnectWise's shape);
- bare-array lists with ``conditions`` (see ``conditions``), ``orderBy``, ``page`` and
  ``pageSize`` (default 25, max 1000), and a ``Link`` header (``rel="next"``, ``rel="last"``)
  only while more pages exist;
- tickets (create, read, JSON-Patch update), board-scoped statuses (a status from another
  board is a 400 ``InvalidObject``), notes with their tab flags, time entries, multipart
  documents with a size cap (``document_cap_bytes``, default 10 MB), boards, types,
  priorities, companies and the API member;
- callbacks: ``/system/callbacks`` registration, and signed deliveries on ticket changes
  (new notes included) from a background thread, with the signing key served at the
  payload's ``Metadata.key_url``;
- the ticket's web page (``fv_sr100_request.rails``), so the links in tickets open something.

Errors are ConnectWise's ``{"code", "message", "errors": [...]}`` everywhere.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any

from gateway.testing.simulator import Faults, Simulator
from litestar import Request, Response, Router, route
from litestar.datastructures import UploadFile
from litestar.enums import HttpMethod

from gateway_connectwise.conditions import parse_datetime
from gateway_connectwise.constants import (
    ATTACHMENT_CAP_BYTES,
    CHARGE_TO_TICKET,
    DOCUMENT_RECORD_TYPE,
    TICKET_PAGE_PATH,
    VENDOR,
    external_ref,
)
from gateway_connectwise.simulator import seed
from gateway_connectwise.simulator.callbacks import KEY_PATH, CallbackRegistry
from gateway_connectwise.simulator.protocol import (
    Call,
    CwApiError,
    filtered,
    invalid,
    json_response,
    list_response,
    not_found,
    now,
    problem,
)
from gateway_connectwise.simulator.records import ENTRY_TAB_FLAGS, ConnectWiseRecords

CODEBASE = "v4_6_release/"
API_ROOT = "/v4_6_release/apis/3.0"

DEMO_COMPANY_ID = "gatewaydemo"
DEMO_PUBLIC_KEY = "demoPublicKey0001"
DEMO_PRIVATE_KEY = "demoPrivateKey0001"
DEMO_CLIENT_ID = "5f2d1c7e-8a4b-4c1e-9d3f-2b6a7c8e9f01"
DEMO_SIGNING_KEY = "demo-callback-signing-key"

# Error codes by status for errors the framework raises (no route, bad method, faults).
_ERROR_CODES = {400: "InvalidObject", 401: "ConnectWiseApi", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests"}
_BILLABLE_OPTIONS = {"Billable", "DoNotBill", "NoCharge", "NoDefault"}
_CHARGE_TYPES = {"ServiceTicket", "ProjectTicket", "ChargeCode", "Activity"}


def _same(given: str, expected: str) -> bool:
    """Compare a credential in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


class ConnectWiseSimulator(ConnectWiseRecords, Simulator):
    """ConnectWise PSA for tests and the demo. Guard state with ``self.lock``.

    :param company_id: the login company; ``public_key``, ``private_key`` and ``client_id``
        are the credentials it accepts. :param signing_key: the key callbacks registered over
        the API are signed with. :param document_cap_bytes: the largest document accepted.
    """

    vendor = VENDOR
    outbox_stat = "callbacks"

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        company_id: str = DEMO_COMPANY_ID,
        public_key: str = DEMO_PUBLIC_KEY,
        private_key: str = DEMO_PRIVATE_KEY,
        client_id: str = DEMO_CLIENT_ID,
        signing_key: str = DEMO_SIGNING_KEY,
        document_cap_bytes: int = ATTACHMENT_CAP_BYTES,
    ) -> None:
        super().__init__(faults)
        self.company_id = company_id
        self.public_key = public_key
        self.private_key = private_key
        self.client_id = client_id
        self.document_cap_bytes = document_cap_bytes
        self._init_records()
        self.registry = CallbackRegistry(
            company_id=company_id, member=self.member, signing_key=signing_key, outbox=self.outbox
        )

    @property
    def signing_key(self) -> str:
        """The key that callbacks registered over the API are signed with."""
        return self.registry.signing_keys["default"]

    @property
    def callbacks(self) -> dict[int, dict[str, Any]]:
        """The registered callback entries by id."""
        return self.registry.entries

    # -- the vendor's shapes ---------------------------------------------------------------

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        if status == 404 and message == "Not Found":  # the framework found no route
            body = {"code": "ConnectWiseApi", "message": "The endpoint does not exist."}
        else:
            body = {
                "code": _ERROR_CODES.get(status, "ConnectWiseApi" if status < 500 else "UnexpectedServerError"),
                "message": message,
            }
        return status, json.dumps(body).encode(), {"content-type": "application/json"}

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {
            "vendor": VENDOR,
            "base_url": f"{base_url.rstrip('/')}{API_ROOT}",
            "settings": {"company_id": self.company_id},
            "secrets": {"public_key": self.public_key, "private_key": self.private_key, "client_id": self.client_id},
            # Callbacks registered over the API are signed with this key (see ``signing_key``).
            "webhook_secret": self.signing_key,
        }

    # -- routing ---------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        api = [self._handler(method, path, fn) for method, path, fn in self._api_table()]
        sim = self

        # A plain function: Litestar deep-copies routers, and a bound method would copy the sim.
        async def authenticate(request: Request) -> Response | None:
            error = sim._auth_error(request.headers)
            return json_response(error.body(), error.status) if error else None

        return [
            self._handler("GET", "/login/companyinfo/{company:str}", self.company_info),
            self._handler("GET", KEY_PATH, self.callback_key),
            self._handler("GET", "/v4_6_release" + TICKET_PAGE_PATH, self.ticket_page),
            Router(API_ROOT, route_handlers=api, before_request=authenticate),
        ]

    def _api_table(self) -> list[tuple[str, str, Callable[[Call], Response]]]:
        ticket = "/service/tickets/{ticket_id:int}"
        return [
            ("GET", "/service/tickets", self.list_tickets),
            ("POST", "/service/tickets", self.create_ticket),
            ("GET", "/service/tickets/count", self.count_tickets),
            ("GET", ticket, self.get_ticket),
            ("PATCH", ticket, self.patch_ticket),
            ("GET", ticket + "/notes", self.list_notes),
            ("POST", ticket + "/notes", self.create_note),
            ("GET", ticket + "/notes/{note_id:int}", self.get_note),
            ("GET", ticket + "/allNotes", self.list_all_notes),
            ("GET", "/service/boards", self.list_boards),
            ("GET", "/service/boards/{board_id:int}/statuses", self.list_board_statuses),
            ("GET", "/service/boards/{board_id:int}/types", self.list_board_types),
            ("GET", "/service/priorities", self.list_priorities),
            ("GET", "/company/companies", self.list_companies),
            ("GET", ticket + "/configurations", self.list_ticket_configurations),
            ("GET", "/company/configurations", self.list_configurations),
            ("GET", "/company/configurations/{configuration_id:int}", self.get_configuration),
            ("GET", "/system/members", self.list_members),
            ("GET", "/time/entries", self.list_time_entries),
            ("POST", "/time/entries", self.create_time_entry),
            ("GET", "/time/entries/{entry_id:int}", self.get_time_entry),
            ("GET", "/system/documents", self.list_documents),
            ("POST", "/system/documents", self.create_document),
            ("GET", "/system/documents/{document_id:int}/download", self.download_document),
            ("GET", "/system/callbacks", self.list_callbacks),
            ("POST", "/system/callbacks", self.create_callback),
            ("DELETE", "/system/callbacks/{callback_id:int}", self.delete_callback),
        ]

    def _handler(self, method: str, path: str, fn: Callable[[Call], Response]) -> Any:
        sim = self

        async def handle(request: Request) -> Response:
            return fn(await sim._read(request))

        return route(
            path,
            http_method=[HttpMethod(method)],
            status_code=200,  # each handler's Response carries the real status (201, 204...)
            exception_handlers={CwApiError: self._answer_error},
            name=f"{method} {path}",
        )(handle)

    @staticmethod
    def _answer_error(request: Request, exc: CwApiError) -> Response:
        return json_response(exc.body(), exc.status)

    @staticmethod
    async def _read(request: Request) -> Call:
        call = Call(
            method=request.method,
            url=str(request.url),
            origin=str(request.base_url).rstrip("/"),
            headers=request.headers,
            query={k.casefold(): v for k, v in request.query_params.items()},
            path=dict(request.path_params),
        )
        if request.method in ("POST", "PUT", "PATCH"):
            if request.headers.get("content-type", "").startswith("multipart/form-data"):
                call.form = {}
                for key, value in (await request.form()).multi_items():
                    if isinstance(value, UploadFile):
                        call.form[key] = (value.filename, value.content_type, await value.read())
                    else:
                        call.form[key] = value
            else:
                raw = await request.body()
                try:
                    call.body = json.loads(raw) if raw else None
                except ValueError:
                    raise CwApiError(400, "InvalidObject", "The request body is not valid JSON") from None
        return call

    def _auth_error(self, headers: Any) -> CwApiError | None:
        """ConnectWise's 401 (as seen in ConnectWiseManageAPI issue #18) unless the Basic
        credentials and the clientId header are right."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        company, _, public = user.partition("+")
        if not (
            scheme.casefold() == "basic"
            and company.casefold() == self.company_id.casefold()
            and _same(public, self.public_key)
            and _same(password, self.private_key)
        ):
            reason = problem("UserNotAuthenticated", "The credentials are not valid.", "", "")
        elif not _same(headers.get("clientid", ""), self.client_id):
            reason = problem("InvalidClientId", "A valid clientId header is required.", "", "")
        else:
            return None
        return CwApiError(401, "ConnectWiseApi", "An exception has been thrown.", [reason])

    # -- login, callback keys, web pages ---------------------------------------------------

    def company_info(self, call: Call) -> Response:
        if call.path["company"].casefold() != self.company_id.casefold():
            raise CwApiError(404, "NotFound", f"Company {call.path['company']} not found")
        host = urllib.parse.urlsplit(call.origin).netloc
        return json_response(
            {
                "CompanyName": self.company_id,
                "Codebase": CODEBASE,
                "VersionCode": "v2025.1",
                "VersionNumber": "v4.6.100",
                "CompanyID": self.company_id,
                "IsCloud": False,
                "SiteUrl": host,
            }
        )

    def callback_key(self, call: Call) -> Response:
        """The signing key named in a callback's ``Metadata.key_url`` (needs the clientId)."""
        if not _same(call.headers.get("clientid", ""), self.client_id):
            raise CwApiError(401, "ConnectWiseApi", "A valid clientId header is required.")
        key_id = call.param("id") or ""
        if (
            call.param("companyName") or ""
        ).casefold() != self.company_id.casefold() or key_id not in self.registry.signing_keys:
            raise not_found("Callback key", key_id)
        return json_response({"signing_key": self.registry.signing_keys[key_id]})

    def ticket_page(self, call: Call) -> Response:
        """The ticket's page in the web UI, where the plugin's ``Ticket.url`` points."""
        recid = call.param("service_recid") or ""
        with self.lock:
            ticket = self.tickets.get(int(recid)) if recid.isdigit() else None
            if ticket is None:
                return Response(content="<h1>Ticket not found</h1>", status_code=404, media_type="text/html")
            page = (
                f"<h1>Ticket #{ticket['id']}: {escape(ticket['summary'])}</h1>"
                f"<p>{escape(ticket['company']['name'])} &middot; {escape(ticket['board']['name'])}"
                f" &middot; {escape(ticket['status']['name'])}</p>"
            )
        return Response(content=page, media_type="text/html")

    # -- tickets -------------------------------------------------------------------------

    def list_tickets(self, call: Call) -> Response:
        with self.lock:
            return list_response(call, self.tickets.values())

    def count_tickets(self, call: Call) -> Response:
        with self.lock:
            return json_response({"count": len(filtered(call, self.tickets.values()))})

    def get_ticket(self, call: Call) -> Response:
        with self.lock:
            return json_response(copy.deepcopy(self._ticket(call.path["ticket_id"])))

    def create_ticket(self, call: Call) -> Response:
        data = call.record("ticket")
        with self.lock:
            errors = self._text_problems(data.get("summary"), data.get("externalXRef"))
            ids = {
                name: self._ref_id(name, data.get(name), errors)
                for name in ("board", "status", "type", "priority", "company")
            }
            if data.get("company") is None:
                errors.append(problem("MissingRequiredField", "The company field is required.", "ticket", "company"))
            board_id = ids["board"] or seed.DEFAULT_BOARD_ID
            errors += self._board_problems(board_id, ids["status"], ids["type"])
            if errors or ids["company"] is None:
                raise invalid("ticket", errors)
            moment = now()
            ticket = self._store_ticket(
                summary=data["summary"],
                board_id=board_id,
                company_id=ids["company"],
                status_id=ids["status"] or self._default_status(board_id),
                type_id=ids["type"],
                priority_id=ids["priority"] or self._default_priority(),
                at=moment,
                external=data.get("externalXRef"),
            )
            if data.get("initialDescription"):
                # ConnectWise files the description as the ticket's first Discussion note.
                self._store_note(
                    ticket["id"],
                    data["initialDescription"],
                    detail=True,
                    internal=False,
                    resolution=False,
                    by_contact=False,
                    at=moment,
                )
            self.count("tickets_created")
            self.registry.ticket_changed(ticket, "added", call.origin)
            return json_response(copy.deepcopy(ticket), 201)

    def patch_ticket(self, call: Call) -> Response:
        operations = call.body
        if not isinstance(operations, list) or not operations:
            raise CwApiError(400, "InvalidObject", "The body must be a JSON Patch array of operations")
        with self.lock:
            ticket = self._ticket(call.path["ticket_id"])
            refs, values, errors = self._read_patch(operations)
            board_id = refs.get("board", ticket["board"]["id"])
            status_id = refs.get("status", ticket["status"]["id"])
            type_id = refs.get("type", ticket["type"]["id"] if ticket["type"] else None)
            if errors:
                raise invalid("ticket", errors)
            summary = values.get("summary", ticket["summary"])
            errors = self._text_problems(summary, values.get("externalXRef", ticket["externalXRef"]))
            errors += self._board_problems(board_id, status_id, type_id)
            if errors:
                raise invalid("ticket", errors)
            moment = now()
            tables = self._tables()
            for name, record_id in refs.items():
                if name != "status":
                    ticket[name] = self._ref(tables[name], record_id)
            if status_id != ticket["status"]["id"]:
                self.count("status_changes")
            self._set_status(ticket, status_id, moment)
            ticket.update(values)
            self._touch(ticket, moment)
            self.registry.ticket_changed(ticket, "updated", call.origin)
            return json_response(copy.deepcopy(ticket))

    # -- notes ---------------------------------------------------------------------------

    def list_notes(self, call: Call) -> Response:
        with self.lock:
            ticket = self._ticket(call.path["ticket_id"])
            return list_response(call, (n for n in self.notes.values() if n["ticketId"] == ticket["id"]))

    def get_note(self, call: Call) -> Response:
        with self.lock:
            ticket = self._ticket(call.path["ticket_id"])
            note = self.notes.get(call.path["note_id"])
            if note is None or note["ticketId"] != ticket["id"]:
                raise not_found("Note", call.path["note_id"])
            return json_response(copy.deepcopy(note))

    def list_all_notes(self, call: Call) -> Response:
        """Ticket notes and time-entry notes together, as ``ServiceTicketNote``s."""
        with self.lock:
            ticket = self._ticket(call.path["ticket_id"])
            return list_response(call, self._all_notes(ticket["id"]))

    def create_note(self, call: Call) -> Response:
        data = call.record("serviceNote")
        flags = {f: bool(data.get(f)) for f in ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")}
        errors = []
        if not isinstance(data.get("text"), str) or not data["text"].strip():
            errors.append(problem("MissingRequiredField", "The text field is required.", "serviceNote", "text"))
        if not any(flags.values()):
            errors.append(
                problem(
                    "InvalidField",
                    "One of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true.",
                    "serviceNote",
                    "detailDescriptionFlag",
                )
            )
        with self.lock:
            ticket = self._ticket(call.path["ticket_id"])
            if errors:
                raise invalid("serviceNote", errors)
            moment = now()
            note = self._store_note(
                ticket["id"],
                data["text"],
                detail=flags["detailDescriptionFlag"],
                internal=flags["internalAnalysisFlag"],
                resolution=flags["resolutionFlag"],
                by_contact=False,
                at=moment,
            )
            self._touch(ticket, moment)
            self.count("notes_created")
            self.registry.ticket_changed(ticket, "updated", call.origin)
            return json_response(copy.deepcopy(note), 201)

    # -- setup tables --------------------------------------------------------------------

    def list_boards(self, call: Call) -> Response:
        with self.lock:
            return list_response(call, self.boards.values())

    def list_board_statuses(self, call: Call) -> Response:
        with self.lock:
            board = self._board(call.path["board_id"])
            return list_response(call, (s for s in self.statuses.values() if s["board"]["id"] == board["id"]))

    def list_board_types(self, call: Call) -> Response:
        with self.lock:
            board = self._board(call.path["board_id"])
            return list_response(call, (t for t in self.types.values() if t["board"]["id"] == board["id"]))

    def list_priorities(self, call: Call) -> Response:
        with self.lock:
            return list_response(call, self.priorities.values())

    def list_companies(self, call: Call) -> Response:
        with self.lock:
            return list_response(call, self.companies.values())

    # -- configuration items ---------------------------------------------------------------

    def add_configuration(
        self, company_id: int, name: str, *, serial: str = "", type_name: str = "Managed Server",
        ticket_id: int | None = None,
    ) -> int:  # fmt: skip
        """A configuration item of the company (optionally named on a ticket); its id."""
        with self.lock:
            config_id = self._new_id("configuration")
            self.configurations[config_id] = {
                "id": config_id,
                "name": name,
                "type": {"id": 1, "name": type_name},
                "status": {"id": 1, "name": "Active"},
                "company": self._ref(self.companies, company_id),
                "serialNumber": serial,
                "tagNumber": "",
                "deviceIdentifier": name,
                "activeFlag": True,
                "_info": {"lastUpdated": now()},
            }
        if ticket_id is not None:
            self.attach_configuration(ticket_id, config_id)
        return config_id

    def attach_configuration(self, ticket_id: int, config_id: int) -> None:
        """Name a configuration item on a ticket (the ticket's Configurations tab)."""
        with self.lock:
            self.ticket_configurations.setdefault(ticket_id, []).append(config_id)

    def list_ticket_configurations(self, call: Call) -> Response:
        """``ConfigurationReference``s of the ticket: ``{"id", "deviceIdentifier"}``."""
        with self.lock:
            self._ticket(call.path["ticket_id"])
            refs = [
                {"id": c, "deviceIdentifier": self.configurations[c]["deviceIdentifier"], "_info": {}}
                for c in self.ticket_configurations.get(call.path["ticket_id"], [])
                if c in self.configurations
            ]
            return list_response(call, refs)

    def list_configurations(self, call: Call) -> Response:
        with self.lock:
            return list_response(call, self.configurations.values())

    def get_configuration(self, call: Call) -> Response:
        return self._one(self.configurations, "Configuration", call.path["configuration_id"])

    def list_members(self, call: Call) -> Response:
        return list_response(call, [{**self.member, "inactiveFlag": False, "_info": {}}])

    # -- time ----------------------------------------------------------------------------

    def list_time_entries(self, call: Call) -> Response:
        with self.lock:
            return list_response(call, self.entries.values())

    def get_time_entry(self, call: Call) -> Response:
        return self._one(self.entries, "TimeEntry", call.path["entry_id"])

    def _one(self, table: dict[int, dict[str, Any]], what: str, record_id: int) -> Response:
        """One record of ``table``, or ConnectWise's 404 naming it."""
        with self.lock:
            record = table.get(record_id)
            if record is None:
                raise not_found(what, record_id)
            return json_response(copy.deepcopy(record))

    def create_time_entry(self, call: Call) -> Response:
        data = call.record("timeEntry")
        errors = []
        charge_type = data.get("chargeToType", CHARGE_TO_TICKET)
        if charge_type not in _CHARGE_TYPES:
            errors.append(problem("InvalidField", "The chargeToType is not valid.", "timeEntry", "chargeToType"))
        start: datetime | None = None
        end: datetime | None = None
        try:
            start = parse_datetime(str(data["timeStart"]))
            end = parse_datetime(str(data["timeEnd"])) if data.get("timeEnd") else None
        except KeyError:
            errors.append(problem("MissingRequiredField", "The timeStart field is required.", "timeEntry", "timeStart"))
        except ValueError:
            errors.append(problem("InvalidField", "timeStart and timeEnd must be dates.", "timeEntry", "timeStart"))
        if start and end and end < start:
            errors.append(problem("InvalidField", "timeEnd must be after timeStart.", "timeEntry", "timeEnd"))
        billable = data.get("billableOption", "Billable")
        if billable not in _BILLABLE_OPTIONS:
            errors.append(problem("InvalidField", "The billableOption is not valid.", "timeEntry", "billableOption"))
        member = data.get("member") or {}
        if member and not (
            member.get("id") == self.member["id"]
            or str(member.get("identifier", "")).casefold() == self.member["identifier"]
        ):
            errors.append(problem("InvalidField", "The member is not valid.", "timeEntry", "member"))
        with self.lock:
            ticket = self.tickets.get(data["chargeToId"]) if isinstance(data.get("chargeToId"), int) else None
            if ticket is None and charge_type == CHARGE_TO_TICKET:
                errors.append(
                    problem("InvalidField", "The chargeToId is not a service ticket.", "timeEntry", "chargeToId")
                )
            if errors or start is None or ticket is None:
                raise invalid("timeEntry", errors)
            hours = (end - start).total_seconds() / 3600 if end else float(data.get("actualHours") or 0)
            moment = now()
            entry = self._store_entry(
                ticket,
                start,
                end,
                hours=hours,
                notes=str(data.get("notes") or ""),
                billable=billable,
                at=moment,
                tabs={flag: data.get(flag) is True for flag in ENTRY_TAB_FLAGS},
            )
            self.count("time_entries_created")
            return json_response(copy.deepcopy(entry), 201)

    # -- documents -----------------------------------------------------------------------

    def list_documents(self, call: Call) -> Response:
        record_type, record_id = call.param("recordType"), call.param("recordId")
        if not record_type or not (record_id or "").isdigit():
            raise CwApiError(400, "InvalidObject", "recordType and recordId are required")
        with self.lock:
            owned = [
                self.documents[d]
                for d, owner in self.document_owner.items()
                if owner == (record_type.casefold(), int(record_id or 0))
            ]
            return list_response(call, owned)

    def create_document(self, call: Call) -> Response:
        form = call.form
        if form is None:
            raise CwApiError(400, "InvalidObject", "Documents are uploaded as multipart/form-data")
        errors = []
        file = form.get("file")
        if not isinstance(file, tuple):
            errors.append(problem("MissingRequiredField", "The file field is required.", "document", "file"))
        elif len(file[2]) > self.document_cap_bytes:
            errors.append(
                problem("InvalidField", f"The file is larger than {self.document_cap_bytes} bytes.", "document", "file")
            )
        if str(form.get("recordType", "")).casefold() != DOCUMENT_RECORD_TYPE.casefold():
            errors.append(problem("InvalidField", "The recordType is not valid.", "document", "recordType"))
        with self.lock:
            record_id = int(form["recordId"]) if str(form.get("recordId", "")).isdigit() else None
            if record_id not in self.tickets:
                errors.append(problem("InvalidField", "The recordId is not a ticket.", "document", "recordId"))
            if errors or not isinstance(file, tuple) or record_id is None:
                raise invalid("document", errors)
            filename, content_type, data = file
            document = self._store_document(
                filename, content_type, data, title=str(form.get("title") or filename), ticket_id=record_id, at=now()
            )
            self.count("documents_created")
            return json_response(copy.deepcopy(document), 201)

    def download_document(self, call: Call) -> Response:
        with self.lock:
            document = self.documents.get(call.path["document_id"])
            if document is None:
                raise not_found("Document", call.path["document_id"])
            data = self.document_data[document["id"]]
            content_type = self.document_types.get(document["id"], "application/octet-stream")
        return Response(
            content=data,
            media_type=content_type,
            headers={"content-disposition": f'attachment; filename="{document["fileName"]}"'},
        )

    # -- callbacks -----------------------------------------------------------------------

    def list_callbacks(self, call: Call) -> Response:
        with self.lock:
            return list_response(call, self.registry.entries.values())

    def create_callback(self, call: Call) -> Response:
        data = call.record("callbackEntry")
        with self.lock:
            errors = self.registry.problems(data)
            if errors:
                raise invalid("callbackEntry", errors)
            return json_response(copy.deepcopy(self.registry.register(data)), 201)

    def delete_callback(self, call: Call) -> Response:
        with self.lock:
            if not self.registry.remove(call.path["callback_id"]):
                raise not_found("Callback", call.path["callback_id"])
        return Response(content=b"", status_code=204)

    def add_webhook(self, url: str, secret: str) -> int:
        """Register a callback on every ticket (level ``owner``) signed with ``secret``, the
        signing key the receiver verifies with; return its id."""
        with self.lock:
            data = {"url": url, "type": "ticket", "level": "owner", "description": "add_webhook"}
            return int(self.registry.register(data, self.registry.add_key(secret))["id"])

    def wait_for_callbacks(self, timeout: float = 5.0) -> bool:
        """Wait until every queued callback has been attempted (tests and the demo)."""
        return self.outbox.wait(timeout)

    # -- inspection, in vendor terms -------------------------------------------------------

    def sample_ticket_id(self) -> str:
        with self.lock:
            if not self.tickets:
                self.seed_demo()
            ticket = next(
                t for t in self.tickets.values() if not t["closedFlag"] and t["board"]["id"] == seed.DEFAULT_BOARD_ID
            )
            return str(ticket["id"])

    def ticket_notes(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "id": str(n["id"]),
                    "text": n["text"],
                    "internal": not (n["detailDescriptionFlag"] or n["resolutionFlag"]),
                }
                for n in self.notes.values()
                if n["ticketId"] == int(ticket_id)
            ]

    def ticket_status_id(self, ticket_id: str) -> str:
        with self.lock:
            return str(self._ticket(ticket_id)["status"]["id"])

    def valid_status_ids(self, ticket_id: str) -> list[str]:
        with self.lock:
            board_id = self._ticket(ticket_id)["board"]["id"]
            return [str(s["id"]) for s in self.statuses.values() if s["board"]["id"] == board_id and not s["inactive"]]

    def time_entries(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"id": str(e["id"]), "minutes": round(e["actualHours"] * 60), "notes": e["notes"]}
                for e in self.entries.values()
                if e["chargeToType"] == CHARGE_TO_TICKET and e["chargeToId"] == int(ticket_id)
            ]

    def attachments(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"id": str(d), "filename": self.documents[d]["fileName"], "size": self.documents[d]["size"]}
                for d, owner in self.document_owner.items()
                if owner == (DOCUMENT_RECORD_TYPE.casefold(), int(ticket_id))
            ]

    def tickets_created_with(self, dedup_key: str) -> list[str]:
        wanted = external_ref(dedup_key)
        with self.lock:
            return [str(t["id"]) for t in self.tickets.values() if t["externalXRef"] == wanted]

    def minimal_create_fields(self) -> dict[str, Any]:
        return {
            "summary": "Printer on 3rd floor jammed",
            "board": str(seed.DEFAULT_BOARD_ID),
            "company": str(seed.COMPANIES[0][0]),
        }
