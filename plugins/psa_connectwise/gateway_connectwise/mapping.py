"""ConnectWise records to the gateway's canonical models.

Status categories: ConnectWise statuses are free text per board, with one flag that matters
(``closedStatus``). The category is, in order: the connection's ``status_categories`` entry
for the status id; ``closed`` for a closed status (or a ticket whose ``closedFlag`` is set);
then by the words of the name: "New" -> new, "Wait..." or "Customer..." -> awaiting_customer,
"Resolved" or "Complete(d)" -> resolved; anything else -> in_progress.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping

from gateway import models
from gateway.links import configuration_record
from gateway.models import StatusCategory, make_ref

from gateway_connectwise import records
from gateway_connectwise.constants import API_SUFFIX, TICKET_PAGE_PATH, VENDOR

_NAME_RULES: tuple[tuple[re.Pattern[str], StatusCategory], ...] = (
    (re.compile(r"\bnew\b", re.IGNORECASE), StatusCategory.NEW),
    (re.compile(r"\bwait|\bcustomer", re.IGNORECASE), StatusCategory.AWAITING_CUSTOMER),
    (re.compile(r"\bresolved\b|\bcompleted?\b", re.IGNORECASE), StatusCategory.RESOLVED),
)

CategoryOverrides = Mapping[str, StatusCategory]


def status_category(
    status_id: int | str | None, name: str, *, closed: bool, overrides: CategoryOverrides
) -> StatusCategory:
    """The canonical category of a ConnectWise status (rules in the module docstring)."""
    if status_id is not None and str(status_id) in overrides:
        return StatusCategory(overrides[str(status_id)])
    if closed:
        return StatusCategory.CLOSED
    for pattern, category in _NAME_RULES:
        if pattern.search(name):
            return category
    return StatusCategory.IN_PROGRESS


def board_status(status: records.BoardStatus, board_id: int, overrides: CategoryOverrides) -> models.TicketStatus:
    """One of a board's statuses."""
    return models.TicketStatus(
        id=str(status.id),
        name=status.name,
        category=status_category(status.id, status.name, closed=status.closed_status, overrides=overrides),
        scope=str(board_id),
        closed=status.closed_status,
    )


def ticket_status(ticket: records.Ticket, overrides: CategoryOverrides) -> models.TicketStatus:
    """The ticket's current status; its ``closedFlag`` stands in for the status's own flag."""
    ref = ticket.status or records.Ref()
    return models.TicketStatus(
        id=str(ref.id) if ref.id is not None else "",
        name=ref.label,
        category=status_category(ref.id, ref.label, closed=ticket.closed_flag, overrides=overrides),
        scope=str(ticket.board.id) if ticket.board and ticket.board.id is not None else None,
        closed=ticket.closed_flag,
    )


def ui_root(api_root: str, override: str | None = None) -> str:
    """The web UI root for links: ``override``, else the API root without ``/apis/3.0`` on the
    UI host (cloud API hosts ``api-XX.myconnectwise.net`` serve the UI at ``XX.``)."""
    if override:
        return override.rstrip("/")
    root = api_root.rstrip("/").removesuffix(API_SUFFIX)
    parts = urllib.parse.urlsplit(root)
    host = parts.netloc
    if host.startswith("api-") and host.endswith(".myconnectwise.net"):
        host = host.removeprefix("api-")
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def ticket_url(root: str, company_id: str, ticket_id: int | str) -> str:
    """The ticket's page in the ConnectWise web UI (the link ConnectWise's own e-mails use)."""
    query = urllib.parse.urlencode({"service_recid": ticket_id, "companyName": company_id})
    return f"{root}{TICKET_PAGE_PATH}?{query}"


def _named(ref: records.Ref | None, connection_id: str | None = None) -> models.NamedRef | None:
    if ref is None or ref.id is None:
        return None
    return models.NamedRef(
        id=str(ref.id), name=ref.label, ref=make_ref(connection_id, ref.id) if connection_id else None
    )


def configuration(item: records.Configuration, connection_id: str) -> models.RelatedRecord:
    """A configuration item as a related record: its name is the host name ConnectWise's
    RMM integrations give it; the serial number lets the gateway find the RMM device."""
    return configuration_record(
        connection_id, item.id, hostname=item.name or item.device_identifier, serial=item.serial_number
    )


def ticket(
    record: records.Ticket,
    *,
    connection_id: str,
    link_root: str,
    company_id: str,
    overrides: CategoryOverrides,
    related: tuple[models.RelatedRecord, ...] = (),
) -> models.Ticket:
    """A ConnectWise service ticket as the canonical ``Ticket`` (no thread: lists leave it out;
    ``related`` carries its configuration items where the caller read them)."""
    info = record.info or records.Info()
    return models.Ticket(
        ref=make_ref(connection_id, record.id),
        connection=connection_id,
        vendor=VENDOR,
        vendor_id=str(record.id),
        summary=record.summary,
        status=ticket_status(record, overrides),
        number=str(record.id),
        description=record.initial_description or "",
        board=_named(record.board),
        customer=_named(record.company, connection_id),
        contact=_named(record.contact),
        assignee=_named(record.owner),
        priority=_named(record.priority),
        created_at=info.date_entered or record.date_entered,
        updated_at=info.last_updated,
        url=ticket_url(link_root, company_id, record.id),
        related=related,
    )


def thread_entry(note: records.Note) -> models.ThreadEntry:
    """A note; only the Discussion and Resolution tabs are customer-visible."""
    by_customer = note.contact is not None and note.contact.id is not None and note.member is None
    author = (note.contact if by_customer else note.member) or records.Ref()
    return models.ThreadEntry(
        id=str(note.id),
        text=note.text,
        internal=not note.public,
        author=author.label or (note.created_by or ""),
        author_type="customer" if by_customer else "agent",
        created_at=note.date_created or (note.info.date_entered if note.info else None),
    )


def customer(company: records.Company, connection_id: str) -> models.Customer:
    ids = {VENDOR: str(company.id)}
    if company.identifier:
        ids[f"{VENDOR}_identifier"] = company.identifier
    return models.Customer(
        ref=make_ref(connection_id, company.id), name=company.name, vendor=VENDOR, integration_ids=ids
    )
