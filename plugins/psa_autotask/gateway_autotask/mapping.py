"""Translating Autotask records and field metadata into the gateway's canonical models.

Field metadata (``GET Tickets/entityInformation/fields``) is a list of
``{"name", "dataType", "length", "isRequired", "isReadOnly", "isQueryable", "isReference",
"referenceEntityType", "isPickList", "picklistValues": [{"value", "label", "isDefaultValue",
"sortOrder", "isActive", "isSystem", "parentValue"}], "picklistParentValueField"}``.
Ticket statuses are the ``status`` picklist: global to the database, not per queue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.models import (
    FormField,
    NamedRef,
    PicklistOption,
    RelatedRecord,
    StatusCategory,
    ThreadEntry,
    Ticket,
    TicketCreate,
    TicketForm,
    TicketStatus,
    make_ref,
)
from gateway.links import configuration_record, related_lines
from gateway_autotask.constants import FORM_EXCLUDED_FIELDS, STATUS_LABEL_CATEGORIES, VENDOR
from gateway_autotask.query import format_datetime, parse_datetime

FieldMeta = dict[str, Any]
TITLE_MAX = 255

# --------------------------------------------------------------------------- field metadata


def field(fields: list[FieldMeta], name: str) -> FieldMeta | None:
    """The metadata of one field (names compare case-insensitively, as Autotask does)."""
    wanted = name.lower()
    return next((f for f in fields if str(f.get("name", "")).lower() == wanted), None)


def picklist(fields: list[FieldMeta], name: str, *, active_only: bool = True) -> list[dict[str, Any]]:
    """A field's picklist values in the vendor's sort order."""
    meta = field(fields, name)
    values = list((meta or {}).get("picklistValues") or [])
    if active_only:
        values = [v for v in values if v.get("isActive", True)]
    return sorted(values, key=lambda v: (v.get("sortOrder") or 0, str(v.get("value")).zfill(12)))


def picklist_labels(fields: list[FieldMeta], name: str) -> dict[str, str]:
    """Picklist value → label, inactive values included (old records still carry them)."""
    return {str(v.get("value")): str(v.get("label") or "") for v in picklist(fields, name, active_only=False)}


def label_of(name: str) -> str:
    """A readable label from a field name: ``assignedResourceRoleID`` → "Assigned Resource Role"."""
    base = re.sub(r"ID$", "", name) or name
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", base).split()
    return " ".join(w[:1].upper() + w[1:] for w in words)


# --------------------------------------------------------------------------- statuses


def category_for(status_id: str, label: str, overrides: Mapping[str, str]) -> StatusCategory:
    """The canonical category: the connection's override, else by label (New, Complete,
    Waiting Customer), else in progress."""
    if status_id in overrides:
        return StatusCategory(overrides[status_id])
    return StatusCategory(STATUS_LABEL_CATEGORIES.get(label.strip().lower(), "in_progress"))


def make_status(status_id: str, label: str, overrides: Mapping[str, str]) -> TicketStatus:
    category = category_for(status_id, label, overrides)
    closed = category in (StatusCategory.CLOSED, StatusCategory.RESOLVED)
    return TicketStatus(id=status_id, name=label, category=category, closed=closed)


def statuses(fields: list[FieldMeta], overrides: Mapping[str, str]) -> list[TicketStatus]:
    """The active ticket statuses, in the picklist's order."""
    return [make_status(str(v["value"]), str(v.get("label") or ""), overrides) for v in picklist(fields, "status")]


def closed_status_ids(fields: list[FieldMeta], overrides: Mapping[str, str]) -> list[int]:
    """Ids of every status (inactive ones too) whose category is closed or resolved."""
    return [
        int(v["value"])
        for v in picklist(fields, "status", active_only=False)
        if make_status(str(v["value"]), str(v.get("label") or ""), overrides).closed
    ]


def status_of(value: Any, fields: list[FieldMeta], overrides: Mapping[str, str]) -> TicketStatus:
    """The status a ticket carries, named from the picklist (inactive values included)."""
    status_id = str(value) if value is not None else ""
    label = picklist_labels(fields, "status").get(status_id, f"Status {status_id}")
    return make_status(status_id, label, overrides)


# --------------------------------------------------------------------------- tickets


def to_configuration(connection_id: str, item: dict[str, Any]) -> RelatedRecord:
    """A ``ConfigurationItems`` record as a related record: host name from the RMM audit (else
    the item's title), serial number, for the gateway to find the RMM device."""
    return configuration_record(
        connection_id,
        item["id"],
        hostname=str(item.get("rmmDeviceAuditHostname") or "").strip() or None,
        label=str(item.get("referenceTitle") or "").strip() or None,
        serial=str(item.get("serialNumber") or "").strip() or None,
    )


def to_ticket(
    record: dict[str, Any],
    *,
    connection_id: str,
    fields: list[FieldMeta],
    overrides: Mapping[str, str],
    company_names: Mapping[int, str],
    url: str | None,
    related: tuple[RelatedRecord, ...] = (),
) -> Ticket:
    """An Autotask ``Tickets`` record as a canonical ``Ticket`` (without its thread; ``related``
    carries its configuration item where the caller read it)."""
    ticket_id = str(record["id"])
    company_id = record.get("companyID")
    queue_id = record.get("queueID")
    priority = record.get("priority")
    return Ticket(
        ref=make_ref(connection_id, ticket_id),
        connection=connection_id,
        vendor=VENDOR,
        vendor_id=ticket_id,
        summary=str(record.get("title") or ""),
        status=status_of(record.get("status"), fields, overrides),
        number=record.get("ticketNumber") or None,
        description=str(record.get("description") or ""),
        board=_named(queue_id, picklist_labels(fields, "queueID")),
        customer=(
            NamedRef(id=str(company_id), name=company_names.get(int(company_id), ""), ref=make_ref(connection_id, company_id))
            if company_id is not None
            else None
        ),
        contact=NamedRef(id=str(record["contactID"])) if record.get("contactID") is not None else None,
        assignee=NamedRef(id=str(record["assignedResourceID"])) if record.get("assignedResourceID") is not None else None,
        priority=_named(priority, picklist_labels(fields, "priority")),
        created_at=parse_datetime(record.get("createDate")),
        updated_at=parse_datetime(record.get("lastActivityDate")) or parse_datetime(record.get("createDate")),
        url=url,
        related=related,
    )


def _named(value: Any, labels: Mapping[str, str]) -> NamedRef | None:
    if value is None:
        return None
    return NamedRef(id=str(value), name=labels.get(str(value), ""))


def to_thread_entry(
    note: dict[str, Any],
    *,
    public_publish: int,
    resource_names: Mapping[int, str],
    contact_names: Mapping[int, str],
) -> ThreadEntry:
    """A ``TicketNotes`` record as a thread entry; anything not published to all users is internal."""
    contact_id = note.get("createdByContactID")
    resource_id = note.get("creatorResourceID")
    if contact_id:
        author, author_type = contact_names.get(int(contact_id), f"Contact {contact_id}"), "customer"
    elif resource_id:
        author, author_type = resource_names.get(int(resource_id), f"Resource {resource_id}"), "agent"
    else:
        author, author_type = "Autotask", "system"
    return ThreadEntry(
        id=str(note["id"]),
        text=str(note.get("description") or note.get("title") or ""),
        internal=_as_int(note.get("publish")) != public_publish,
        author=author,
        author_type=author_type,  # type: ignore[arg-type]
        created_at=parse_datetime(note.get("createDateTime")),
    )


def note_title(text: str) -> str:
    """A note title from the text: its first non-empty line, cut to Autotask's 250 characters."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "") or "Note"
    return first if len(first) <= 250 else first[:249] + "…"


# --------------------------------------------------------------------------- the new-ticket form


def _form_type(meta: FieldMeta) -> str:
    if meta.get("isPickList"):
        return "picklist"
    data_type = str(meta.get("dataType") or "").lower()
    if data_type in ("integer", "long", "short", "int"):
        return "integer"
    if data_type in ("datetime", "date"):
        return "datetime"
    if data_type == "boolean":
        return "boolean"
    if data_type == "string" and (meta.get("length") or 0) > 255:
        return "text"
    return "string"


def _default(meta: FieldMeta) -> str | None:
    for value in meta.get("picklistValues") or []:
        if value.get("isDefaultValue") and value.get("isActive", True):
            return str(value["value"])
    return None


def form_fields(fields: list[FieldMeta]) -> list[FormField]:
    """The writable ticket fields as form fields. A required picklist with a default value is
    not required of the caller: the plugin fills the default in."""
    out = []
    for meta in fields:
        name = str(meta.get("name") or "")
        if not name or meta.get("isReadOnly") or name.lower() in FORM_EXCLUDED_FIELDS:
            continue
        options = tuple(
            PicklistOption(
                id=str(v["value"]),
                name=str(v.get("label") or ""),
                parent=str(v["parentValue"]) if v.get("parentValue") not in (None, "") else None,
                default=bool(v.get("isDefaultValue")),
            )
            for v in picklist(fields, name)
        )
        kind = _form_type(meta)
        required = bool(meta.get("isRequired")) and not (kind == "picklist" and _default(meta) is not None)
        max_length = int(meta["length"]) if kind in ("string", "text") and meta.get("length") else None
        out.append(
            FormField(name=name, label=label_of(name), required=required, type=kind, options=options, max_length=max_length)  # type: ignore[arg-type]
        )
    # Required fields first, then alphabetical: what a caller reads top-down.
    return sorted(out, key=lambda f: (not f.required, f.name.lower()))


def to_form(connection_id: str, fields: list[FieldMeta], overrides: Mapping[str, str]) -> TicketForm:
    return TicketForm(connection=connection_id, fields=tuple(form_fields(fields)), statuses=tuple(statuses(fields, overrides)))


def create_body(ticket: TicketCreate, fields: list[FieldMeta], external_id: str) -> dict[str, Any]:
    """The ``POST /Tickets`` body: form values under their Autotask names and types, the
    summary as ``title``, defaults for required picklists, and ``externalID`` = the dedup key."""
    body: dict[str, Any] = {}
    for name, value in ticket.fields.items():
        meta = field(fields, name)
        body[meta["name"] if meta else name] = _coerce(meta, value)
    body["title"] = ticket.summary if len(ticket.summary) <= TITLE_MAX else ticket.summary[: TITLE_MAX - 1] + "…"
    description = ticket.description
    if ticket.related:
        # Autotask has no field for another tool's record (externalID holds the dedup key):
        # the references go at the end of the description.
        description = "\n\n".join(filter(None, [description, related_lines(ticket.related)]))
    if description:
        body["description"] = description
    if ticket.customer_id is not None and not any(k.lower() == "companyid" for k in body):
        body["companyID"] = _as_int(ticket.customer_id)
    present = {k.lower() for k in body}
    for meta in fields:
        default = _default(meta) if meta.get("isRequired") else None
        if default is not None and str(meta["name"]).lower() not in present:
            body[meta["name"]] = _coerce(meta, default)
    body["externalID"] = external_id
    return body


def _coerce(meta: FieldMeta | None, value: Any) -> Any:
    if meta is None or value is None:
        return value
    data_type = str(meta.get("dataType") or "").lower()
    if data_type in ("integer", "long", "short", "int"):
        return _as_int(value)
    if data_type == "boolean" and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    if data_type in ("datetime", "date") and isinstance(value, datetime):
        return format_datetime(value)
    return value


def _as_int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value
