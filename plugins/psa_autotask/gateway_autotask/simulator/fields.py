"""The simulator's entity field metadata, shaped like ``GET {Entity}/entityInformation/fields``.

Picklist ids follow a default Autotask install where one is known (status 1 New, 5 Complete,
7 Waiting Customer, ...; ticket types 1..5); the rest (queues, note types, sources) are
plausible stand-ins. Every database has its own values, which is why the plugin reads them.
"""

from __future__ import annotations

from typing import Any


def pick(value: int | str, label: str, *, default: bool = False, active: bool = True, order: int = 0, parent: str = "", system: bool = False) -> dict[str, Any]:
    return {
        "value": str(value),
        "label": label,
        "valueForExport": None,
        "valueForDisplay": None,
        "isDefaultValue": default,
        "sortOrder": order,
        "parentValue": parent,
        "isActive": active,
        "isSystem": system,
    }


def fld(
    name: str,
    data_type: str = "string",
    *,
    length: int = 0,
    required: bool = False,
    read_only: bool = False,
    reference: str | None = None,
    picklist: list[dict[str, Any]] | None = None,
    parent_field: str = "",
) -> dict[str, Any]:
    return {
        "name": name,
        "dataType": data_type,
        "length": length,
        "isRequired": required,
        "isReadOnly": read_only,
        "isQueryable": True,
        "isReference": reference is not None,
        "referenceEntityType": reference or "",
        "isPickList": picklist is not None,
        "picklistValues": picklist,
        "picklistParentValueField": parent_field,
        "isSupportedWebhookField": True,
    }


TICKET_STATUSES = [
    pick(1, "New", default=True, order=1, system=True),
    pick(8, "In Progress", order=2),
    pick(10, "Dispatched", order=3),
    pick(7, "Waiting Customer", order=4, system=True),
    pick(9, "Waiting Materials", order=5),
    pick(12, "Waiting Vendor", order=6),
    pick(13, "Waiting Approval", order=7),
    pick(11, "Escalated", order=8),
    pick(5, "Complete", order=9, system=True),
    pick(14, "On Hold (retired)", order=10, active=False),
]

TICKET_FIELDS = [
    fld("id", "long", required=True, read_only=True),
    fld("ticketNumber", length=50, read_only=True),
    fld("title", length=255, required=True),
    fld("description", length=8000),
    fld("status", "integer", required=True, picklist=TICKET_STATUSES),
    fld(
        "priority",
        "integer",
        required=True,
        picklist=[
            pick(4, "Critical", order=1),
            pick(1, "High", order=2),
            pick(2, "Medium", default=True, order=3),
            pick(3, "Low", order=4),
        ],
    ),
    fld(
        "queueID",
        "integer",
        picklist=[
            pick(5, "Service Desk", order=1),
            pick(6, "Monitoring Alerts", order=2),
            pick(8, "Level II Support", order=3),
            pick(9, "Projects Intake", order=4, active=False),
        ],
    ),
    fld("companyID", "integer", required=True, reference="Company"),
    fld("contactID", "integer", reference="Contact"),
    fld("configurationItemID", "integer", reference="ConfigurationItem"),
    fld("assignedResourceID", "integer", reference="Resource"),
    fld("assignedResourceRoleID", "integer", reference="Role"),
    fld("dueDateTime", "datetime", required=True),
    fld("estimatedHours", "double"),
    fld(
        "issueType",
        "integer",
        picklist=[pick(1, "Hardware", order=1), pick(2, "Software", order=2), pick(3, "Network", order=3)],
    ),
    fld(
        "subIssueType",
        "integer",
        parent_field="issueType",
        picklist=[
            pick(10, "Printer", parent="1", order=1),
            pick(11, "Laptop", parent="1", order=2),
            pick(20, "Email", parent="2", order=3),
            pick(21, "Line of business app", parent="2", order=4),
            pick(30, "Wi-Fi", parent="3", order=5),
        ],
    ),
    fld(
        "ticketType",
        "integer",
        picklist=[
            pick(1, "Service Request", default=True, order=1, system=True),
            pick(2, "Incident", order=2, system=True),
            pick(3, "Problem", order=3, system=True),
            pick(4, "Change Request", order=4, system=True),
            pick(5, "Alert", order=5, system=True),
        ],
    ),
    fld(
        "source",
        "integer",
        picklist=[pick(2, "Phone", order=1), pick(4, "Email", order=2), pick(6, "Monitoring Alert", order=3), pick(13, "Client Portal", order=4)],
    ),
    fld("ticketCategory", "integer", picklist=[pick(3, "Standard", default=True, order=1), pick(4, "Alert", order=2)]),
    fld("externalID", length=50),
    fld("createDate", "datetime", read_only=True),
    fld("lastActivityDate", "datetime", read_only=True),
    fld("completedDate", "datetime", read_only=True),
    fld("creatorResourceID", "integer", read_only=True, reference="Resource"),
    fld("createdByContactID", "integer", read_only=True, reference="Contact"),
]

PUBLISH = [pick(1, "All Autotask Users", order=1, system=True), pick(2, "Internal Only", order=2, system=True)]

NOTE_FIELDS = [
    fld("id", "long", required=True, read_only=True),
    fld("ticketID", "integer", required=True, reference="Ticket"),
    fld("title", length=250),
    fld("description", length=32000, required=True),
    fld(
        "noteType",
        "integer",
        required=True,
        picklist=[
            pick(1, "Task Summary", order=1),
            pick(2, "Task Detail", order=2),
            pick(3, "Task Notes", order=3),
            pick(13, "Workflow Rule Note", order=4, system=True),
            pick(18, "Client Portal Note", order=5, system=True),
        ],
    ),
    fld("publish", "integer", required=True, picklist=PUBLISH),
    fld("createDateTime", "datetime", read_only=True),
    fld("lastActivityDate", "datetime", read_only=True),
    fld("creatorResourceID", "integer", read_only=True, reference="Resource"),
    fld("createdByContactID", "integer", read_only=True, reference="Contact"),
    fld("impersonatorCreatorResourceID", "integer", read_only=True, reference="Resource"),
]

TIME_ENTRY_FIELDS = [
    fld("id", "long", required=True, read_only=True),
    fld("ticketID", "integer", reference="Ticket"),
    fld("taskID", "integer", reference="Task"),
    fld("resourceID", "integer", required=True, reference="Resource"),
    fld("roleID", "integer", reference="Role"),
    fld("dateWorked", "datetime"),
    fld("startDateTime", "datetime"),
    fld("endDateTime", "datetime"),
    fld("hoursWorked", "double"),
    fld("hoursToBill", "double", read_only=True),
    fld("summaryNotes", length=8000),
    fld("internalNotes", length=8000),
    fld("isNonBillable", "boolean"),
    fld("billingCodeID", "integer", reference="BillingCode"),
    fld("createDateTime", "datetime", read_only=True),
    fld("lastModifiedDateTime", "datetime", read_only=True),
]

ATTACHMENT_FIELDS = [
    fld("id", "long", required=True, read_only=True),
    fld("parentID", "integer", read_only=True),
    fld("ticketID", "integer", read_only=True, reference="Ticket"),
    fld("ticketNoteID", "integer", reference="TicketNote"),
    fld("timeEntryID", "integer", reference="TimeEntry"),
    fld("attachDate", "datetime", read_only=True),
    fld("attachedByResourceID", "integer", reference="Resource"),
    fld("attachedByContactID", "integer", reference="Contact"),
    fld("attachmentType", length=32, required=True),
    fld("contentType", length=100),
    fld("fullPath", length=255, required=True),
    fld("title", length=255, required=True),
    fld("publish", "integer", required=True, picklist=PUBLISH),
    fld("fileSize", "integer", read_only=True),
    fld("creatorType", "integer", read_only=True),
    fld("data", length=0),
]

COMPANY_FIELDS = [
    fld("id", "long", required=True, read_only=True),
    fld("companyName", length=100, required=True),
    fld(
        "companyType",
        "integer",
        required=True,
        picklist=[pick(1, "Customer", order=1), pick(3, "Prospect", order=2), pick(7, "Vendor", order=3), pick(8, "Partner", order=4)],
    ),
    fld("phone", length=25),
    fld("isActive", "boolean"),
    fld("ownerResourceID", "integer", reference="Resource"),
    fld("createDate", "datetime", read_only=True),
    fld("lastActivityDate", "datetime", read_only=True),
]

CONTACT_FIELDS = [
    fld("id", "long", required=True, read_only=True),
    fld("companyID", "integer", required=True, reference="Company"),
    fld("firstName", length=50, required=True),
    fld("lastName", length=50, required=True),
    fld("emailAddress", length=254),
    fld("isActive", "integer"),
]

RESOURCE_FIELDS = [
    fld("id", "long", required=True, read_only=True),
    fld("userName", length=32, required=True),
    fld("email", length=254, required=True),
    fld("firstName", length=50, required=True),
    fld("lastName", length=50, required=True),
    fld("isActive", "boolean"),
    fld("resourceType", length=20),
]

RESOURCE_ROLE_FIELDS = [
    fld("id", "long", required=True, read_only=True),
    fld("resourceID", "integer", required=True, reference="Resource"),
    fld("roleID", "integer", required=True, reference="Role"),
    fld("isDefault", "boolean"),
    fld("isActive", "boolean"),
]

# A subset of ConfigurationItems' fields: what identifies the machine. The rmmDeviceAudit*
# fields are filled by Autotask's RMM integrations (names from memory of the entity [U]).
CONFIGURATION_ITEM_FIELDS = [
    fld("id", "long", required=True, read_only=True),
    fld("companyID", "integer", required=True, reference="Company"),
    fld("productID", "integer", required=True, reference="Product"),
    fld("referenceTitle", length=200),
    fld("referenceNumber", length=50),
    fld("serialNumber", length=100),
    fld("rmmDeviceAuditHostname", length=255, read_only=True),
    fld("isActive", "boolean", required=True),
    fld("createDate", "datetime", read_only=True),
    fld("lastActivityDate", "datetime", read_only=True),
]

# Entity name (as Autotask spells it) → field metadata.
ENTITY_FIELDS: dict[str, list[dict[str, Any]]] = {
    "Tickets": TICKET_FIELDS,
    "TicketNotes": NOTE_FIELDS,
    "TimeEntries": TIME_ENTRY_FIELDS,
    "TicketAttachments": ATTACHMENT_FIELDS,
    "AttachmentInfo": ATTACHMENT_FIELDS,
    "Companies": COMPANY_FIELDS,
    "Contacts": CONTACT_FIELDS,
    "Resources": RESOURCE_FIELDS,
    "ResourceServiceDeskRoles": RESOURCE_ROLE_FIELDS,
    "ConfigurationItems": CONFIGURATION_ITEM_FIELDS,
}


def field_names(entity: str) -> dict[str, str]:
    """Lower-cased name → canonical name, for the case-insensitive lookups Autotask allows."""
    return {f["name"].lower(): f["name"] for f in ENTITY_FIELDS[entity]}


def meta(entity: str, name: str) -> dict[str, Any] | None:
    wanted = name.lower()
    return next((f for f in ENTITY_FIELDS[entity] if f["name"].lower() == wanted), None)


def picklist_values(entity: str, name: str, *, active_only: bool = True) -> set[str]:
    m = meta(entity, name) or {}
    return {v["value"] for v in m.get("picklistValues") or [] if v["isActive"] or not active_only}
