"""The simulated ConnectWise's records: tables, record builders, validation and demo data.

Mixed into ``ConnectWiseSimulator``, so tests read ``sim.tickets``, ``sim.notes``... directly.
Records are kept in the API's own JSON shape (camelCase, ``_info``), so handlers answer with
copies of them. Callers hold ``self.lock``.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from gateway_connectwise.constants import CHARGE_TO_TICKET, DOCUMENT_RECORD_TYPE, EXTERNAL_REF_MAX, SUMMARY_MAX
from gateway_connectwise.simulator import seed
from gateway_connectwise.simulator.protocol import not_found, now, problem, stamp

REF_FIELDS = ("board", "status", "type", "priority", "company", "contact", "owner")
# A time entry's notes also show on these note tabs of its ticket (``allNotes``).
ENTRY_TAB_FLAGS = ("addToDetailDescriptionFlag", "addToInternalAnalysisFlag", "addToResolutionFlag")
PATCHABLE_VALUES = ("summary", "externalXRef", "severity", "impact", "customerUpdatedFlag")

Problems = list[dict[str, str]]


class ConnectWiseRecords:
    """Record tables of one simulated ConnectWise company."""

    lock: threading.RLock

    def _init_records(self) -> None:
        self.member: dict[str, Any] = dict(seed.MEMBER)
        self.boards: dict[int, dict[str, Any]] = {}
        self.statuses: dict[int, dict[str, Any]] = {}
        self.types: dict[int, dict[str, Any]] = {}
        self.priorities: dict[int, dict[str, Any]] = {}
        self.companies: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self.entries: dict[int, dict[str, Any]] = {}
        self.documents: dict[int, dict[str, Any]] = {}
        self.document_data: dict[int, bytes] = {}
        # document id -> the content type it was uploaded with (served back on download)
        self.document_types: dict[int, str] = {}
        # document id -> (record type, record id) it is attached to
        self.document_owner: dict[int, tuple[str, int]] = {}
        # Configuration items (``/company/configurations``) and the ones each ticket names.
        self.configurations: dict[int, dict[str, Any]] = {}
        self.ticket_configurations: dict[int, list[int]] = {}
        self._ids = {
            "ticket": itertools.count(1),
            "note": itertools.count(5001),
            "entry": itertools.count(7001),
            "document": itertools.count(9001),
            "configuration": itertools.count(3101),
        }
        self._seed_setup()

    # -- tables and builders ------------------------------------------------------------

    def _new_id(self, kind: str) -> int:
        return next(self._ids[kind])

    def _member_ref(self) -> dict[str, Any]:
        return dict(self.member)

    def _ref(self, table: dict[int, dict[str, Any]], record_id: int | None) -> dict[str, Any] | None:
        if record_id is None:
            return None
        record = table[record_id]
        ref = {"id": record["id"], "name": record["name"]}
        if "identifier" in record:
            ref["identifier"] = record["identifier"]
        return ref

    def _seed_setup(self) -> None:
        for board_id, board_name in seed.BOARDS:
            self.boards[board_id] = {"id": board_id, "name": board_name, "inactive": False, "_info": {}}
            for index, (name, closed, default) in enumerate(seed.STATUSES):
                status_id = seed.FIRST_STATUS_ID[board_id] + index
                self.statuses[status_id] = {
                    "id": status_id,
                    "name": name,
                    "board": {"id": board_id, "name": board_name},
                    "sortOrder": index,
                    "displayOnBoard": True,
                    "inactive": False,
                    "closedStatus": closed,
                    "timeEntryNotAllowed": False,
                    "defaultFlag": default,
                    "_info": {},
                }
            for type_id, name, default in seed.TYPES[board_id]:
                self.types[type_id] = {
                    "id": type_id,
                    "name": name,
                    "category": "Reactive",
                    "defaultFlag": default,
                    "inactive": False,
                    "board": {"id": board_id, "name": board_name},
                    "_info": {},
                }
        for priority_id, name, order, default in seed.PRIORITIES:
            self.priorities[priority_id] = {
                "id": priority_id,
                "name": name,
                "sortOrder": order,
                "defaultFlag": default,
                "_info": {},
            }
        for company_id, identifier, name, contact_id, contact in seed.COMPANIES:
            self.companies[company_id] = {
                "id": company_id,
                "identifier": identifier,
                "name": name,
                "deletedFlag": False,
                "_info": {},
            }
            self.contacts[contact_id] = {"id": contact_id, "name": contact, "company": {"id": company_id}}

    def _store_ticket(
        self,
        *,
        summary: str,
        board_id: int,
        company_id: int,
        status_id: int,
        type_id: int | None,
        priority_id: int,
        at: datetime,
        external: str | None = None,
    ) -> dict[str, Any]:
        contact_id = next((c["id"] for c in self.contacts.values() if c["company"]["id"] == company_id), None)
        ticket: dict[str, Any] = {
            "id": self._new_id("ticket"),
            "summary": summary,
            "recordType": "ServiceTicket",
            "board": self._ref(self.boards, board_id),
            "status": None,
            "company": self._ref(self.companies, company_id),
            "contact": self._ref(self.contacts, contact_id),
            "type": self._ref(self.types, type_id),
            "priority": self._ref(self.priorities, priority_id),
            "owner": None,
            "severity": "Medium",
            "impact": "Medium",
            "externalXRef": external,
            "customerUpdatedFlag": False,
            "closedFlag": False,
            "closedDate": None,
            "closedBy": None,
            "dateEntered": stamp(at),
            "enteredBy": self.member["identifier"],
            "_info": {
                "lastUpdated": stamp(at),
                "updatedBy": self.member["identifier"],
                "dateEntered": stamp(at),
                "enteredBy": self.member["identifier"],
            },
        }
        self._set_status(ticket, status_id, at)
        self.tickets[ticket["id"]] = ticket
        return ticket

    def _set_status(self, ticket: dict[str, Any], status_id: int, at: datetime) -> None:
        ticket["status"] = self._ref(self.statuses, status_id)
        closed = self.statuses[status_id]["closedStatus"]
        if closed and not ticket["closedFlag"]:
            ticket.update(closedFlag=True, closedDate=stamp(at), closedBy=self.member["identifier"])
        elif not closed:
            ticket.update(closedFlag=False, closedDate=None, closedBy=None)

    def _touch(self, ticket: dict[str, Any], at: datetime) -> None:
        ticket["_info"]["lastUpdated"] = stamp(at)
        ticket["_info"]["updatedBy"] = self.member["identifier"]

    def _store_note(
        self,
        ticket_id: int,
        text: str,
        *,
        detail: bool,
        internal: bool,
        resolution: bool,
        by_contact: bool,
        at: datetime,
    ) -> dict[str, Any]:
        ticket = self.tickets[ticket_id]
        note = {
            "id": self._new_id("note"),
            "ticketId": ticket_id,
            "text": text,
            "detailDescriptionFlag": detail,
            "internalAnalysisFlag": internal,
            "resolutionFlag": resolution,
            "issueFlag": False,
            "member": None if by_contact else self._member_ref(),
            "contact": ticket["contact"] if by_contact else None,
            "customerUpdatedFlag": by_contact,
            "dateCreated": stamp(at),
            "createdBy": ticket["contact"]["name"] if by_contact and ticket["contact"] else self.member["identifier"],
            "internalFlag": internal,
            "externalFlag": detail or resolution,
            "_info": {"lastUpdated": stamp(at), "updatedBy": self.member["identifier"]},
        }
        self.notes[note["id"]] = note
        return note

    def _store_entry(
        self,
        ticket: dict[str, Any],
        start: datetime,
        end: datetime | None,
        *,
        hours: float,
        notes: str,
        billable: str,
        at: datetime,
        tabs: dict[str, bool] | None = None,
    ) -> dict[str, Any]:
        """A time entry charged to ``ticket``; ``tabs`` holds its ``addTo…Flag``s (the note tabs
        its ``notes`` also show on, in ``allNotes``)."""
        entry = {
            "id": self._new_id("entry"),
            "company": ticket["company"],
            "chargeToId": ticket["id"],
            "chargeToType": CHARGE_TO_TICKET,
            "member": self._member_ref(),
            "timeStart": stamp(start),
            "timeEnd": stamp(end) if end else None,
            "actualHours": round(hours, 2),
            "hoursDeduct": 0.0,
            "billableOption": billable,
            "notes": notes,
            **{flag: bool((tabs or {}).get(flag)) for flag in ENTRY_TAB_FLAGS},
            "ticket": {"id": ticket["id"], "summary": ticket["summary"]},
            "status": "Open",
            "dateEntered": stamp(at),
            "enteredBy": self.member["identifier"],
            "_info": {"lastUpdated": stamp(at), "updatedBy": self.member["identifier"]},
        }
        self.entries[entry["id"]] = entry
        return entry

    def _all_notes(self, ticket_id: int) -> list[dict[str, Any]]:
        """The ticket's ``ServiceTicketNote``s: its notes and the notes of time entries charged to
        it, oldest first [contract §1.4, C pycw ``ServiceTicketNote``]."""
        merged = [
            {
                "id": n["id"],
                "ticket": {"id": ticket_id},
                "text": n["text"],
                "noteType": "TicketNote",
                **{f: n[f] for f in ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag", "issueFlag")},
                "isMarkdownFlag": False,
                "bundledFlag": False,
                "mergedFlag": False,
                "originalAuthor": n["createdBy"],
                "member": n["member"],
                "contact": n["contact"],
                "timeStart": n["dateCreated"],
                "timeEnd": None,
                "_info": dict(n["_info"]),
            }
            for n in self.notes.values()
            if n["ticketId"] == ticket_id
        ]
        merged += [
            {
                "id": e["id"],
                "ticket": {"id": ticket_id},
                "text": e["notes"],
                "noteType": "TimeEntryNote",
                "detailDescriptionFlag": e["addToDetailDescriptionFlag"],
                "internalAnalysisFlag": e["addToInternalAnalysisFlag"],
                "resolutionFlag": e["addToResolutionFlag"],
                "issueFlag": False,
                "isMarkdownFlag": False,
                "bundledFlag": False,
                "mergedFlag": False,
                "originalAuthor": e["enteredBy"],
                "member": e["member"],
                "contact": None,
                "timeStart": e["timeStart"],
                "timeEnd": e["timeEnd"],
                "_info": dict(e["_info"]),
            }
            for e in self.entries.values()
            if e["chargeToType"] == CHARGE_TO_TICKET and e["chargeToId"] == ticket_id and e["notes"]
        ]
        return sorted(merged, key=lambda note: (note["timeStart"], note["id"]))

    def _store_document(
        self, filename: str, content_type: str | None, data: bytes, *, title: str, ticket_id: int, at: datetime
    ) -> dict[str, Any]:
        document = {
            "id": self._new_id("document"),
            "title": title,
            "fileName": filename,
            "serverFileName": uuid.uuid4().hex,
            "owner": self.member["identifier"],
            "linkFlag": False,
            "imageFlag": (content_type or "").startswith("image/"),
            "publicFlag": False,
            "htmlTemplateFlag": False,
            "readOnlyFlag": False,
            "size": len(data),
            "urlFlag": False,
            "guid": str(uuid.uuid4()),
            "_info": {"lastUpdated": stamp(at), "updatedBy": self.member["identifier"]},
        }
        self.documents[document["id"]] = document
        self.document_data[document["id"]] = data
        self.document_types[document["id"]] = content_type or "application/octet-stream"
        self.document_owner[document["id"]] = (DOCUMENT_RECORD_TYPE.casefold(), ticket_id)
        return document

    def _default_status(self, board_id: int) -> int:
        return next(s["id"] for s in self.statuses.values() if s["board"]["id"] == board_id and s["defaultFlag"])

    def _default_priority(self) -> int:
        return next(p["id"] for p in self.priorities.values() if p["defaultFlag"])

    def _ticket(self, ticket_id: Any) -> dict[str, Any]:
        ticket = self.tickets.get(int(ticket_id))
        if ticket is None:
            raise not_found("Ticket", ticket_id)
        return ticket

    # -- demo data -----------------------------------------------------------------------

    def seed_demo(self) -> None:
        """About thirty tickets over Acme Corp, Globex and Initech, with notes and time."""
        with self.lock:
            for demo in seed.demo_tickets(now()):
                ticket = self._store_ticket(
                    summary=demo.summary,
                    board_id=demo.board_id,
                    company_id=demo.company_id,
                    status_id=seed.FIRST_STATUS_ID[demo.board_id] + demo.status_index,
                    type_id=demo.type_id,
                    priority_id=demo.priority_id,
                    at=demo.created.replace(microsecond=0),
                )
                for note in demo.notes:
                    self._store_note(
                        ticket["id"],
                        note.text,
                        detail=note.kind != "internal",
                        internal=note.kind == "internal",
                        resolution=False,
                        by_contact=note.kind == "customer",
                        at=note.at.replace(microsecond=0),
                    )
                if demo.minutes_logged:
                    start = demo.created.replace(microsecond=0)
                    hours = demo.minutes_logged / 60
                    end = start + timedelta(minutes=demo.minutes_logged)
                    self._store_entry(
                        ticket, start, end, hours=hours, notes="Initial triage", billable="Billable", at=end
                    )
                self._touch(ticket, demo.updated.replace(microsecond=0))

    def add_ticket(self, summary: str, *, board_id: int = seed.DEFAULT_BOARD_ID, company_id: int = 250) -> str:
        """A new ticket in the board's default status (for tests); return its id."""
        with self.lock:
            ticket = self._store_ticket(
                summary=summary,
                board_id=board_id,
                company_id=company_id,
                status_id=self._default_status(board_id),
                type_id=None,
                priority_id=self._default_priority(),
                at=now(),
            )
            return str(ticket["id"])

    # -- validation ----------------------------------------------------------------------

    def _ref_id(self, name: str, value: Any, errors: Problems) -> int | None:
        """The record id a reference names: ``{"id"}``, ``{"identifier"}`` or ``{"name"}``."""
        table = self._tables()[name]
        if value is None:
            return None
        if isinstance(value, dict):
            if value.get("id") is not None:
                record_id = value["id"]
            else:
                wanted = str(value.get("identifier") or value.get("name") or "").casefold()
                record_id = next(
                    (
                        r["id"]
                        for r in table.values()
                        if wanted
                        and wanted in (str(r.get("identifier", "")).casefold(), str(r.get("name", "")).casefold())
                    ),
                    None,
                )
        else:
            record_id = value
        try:
            record_id = int(record_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            record_id = None
        if record_id not in table:
            errors.append(problem("InvalidField", f"The {name} is not valid.", "ticket", name))
            return None
        return record_id

    def _tables(self) -> dict[str, dict[int, dict[str, Any]]]:
        return {
            "board": self.boards,
            "status": self.statuses,
            "type": self.types,
            "priority": self.priorities,
            "company": self.companies,
            "contact": self.contacts,
            "owner": {self.member["id"]: self.member},
        }

    def _board_problems(self, board_id: int, status_id: int | None, type_id: int | None) -> Problems:
        errors = []
        if status_id is not None and self.statuses[status_id]["board"]["id"] != board_id:
            errors.append(
                problem("InvalidField", f"Status {status_id} is not valid for board {board_id}.", "ticket", "status")
            )
        if type_id is not None and self.types[type_id]["board"]["id"] != board_id:
            errors.append(
                problem("InvalidField", f"Type {type_id} is not valid for board {board_id}.", "ticket", "type")
            )
        return errors

    @staticmethod
    def _text_problems(summary: Any, external: Any) -> Problems:
        errors = []
        if not isinstance(summary, str) or not summary.strip():
            errors.append(problem("MissingRequiredField", "The summary field is required.", "ticket", "summary"))
        elif len(summary) > SUMMARY_MAX:
            errors.append(
                problem("InvalidField", f"The summary may be at most {SUMMARY_MAX} characters.", "ticket", "summary")
            )
        if external is not None and (not isinstance(external, str) or len(external) > EXTERNAL_REF_MAX):
            errors.append(
                problem(
                    "InvalidField",
                    f"externalXRef may be at most {EXTERNAL_REF_MAX} characters.",
                    "ticket",
                    "externalXRef",
                )
            )
        return errors

    def _read_patch(self, operations: list[Any]) -> tuple[dict[str, int], dict[str, Any], Problems]:
        """Reference changes by field, value changes by field, and what could not be read."""
        refs: dict[str, int] = {}
        values: dict[str, Any] = {}
        errors: Problems = []
        for operation in operations:
            if not isinstance(operation, dict) or str(operation.get("op", "")).casefold() not in ("replace", "add"):
                errors.append(
                    problem("InvalidOperation", "Only replace and add operations are supported.", "ticket", "op")
                )
                continue
            path = str(operation.get("path", "")).strip("/")
            head, _, rest = path.partition("/")
            name = next((f for f in (*REF_FIELDS, *PATCHABLE_VALUES) if f.casefold() == head.casefold()), None)
            value = operation.get("value")
            if name in REF_FIELDS and rest.casefold() in ("", "id"):
                record_id = self._ref_id(name, value if rest == "" else {"id": value}, errors)
                if record_id is not None:
                    refs[name] = record_id
            elif name in PATCHABLE_VALUES and not rest:
                values[name] = value
            else:
                errors.append(problem("InvalidField", f"{path!r} cannot be updated.", "ticket", path))
        return refs, values, errors

    def _board(self, board_id: int) -> dict[str, Any]:
        if board_id not in self.boards:
            raise not_found("Board", board_id)
        return self.boards[board_id]
