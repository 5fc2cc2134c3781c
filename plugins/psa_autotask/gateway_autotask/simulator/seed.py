"""Simulator data: the records every database has (API user, resources, roles, the MSP's own
company) and the demo set (customers, contacts, about twenty tickets across statuses, notes)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from gateway_autotask.constants import PUBLISH_ALL_USERS, PUBLISH_INTERNAL_ONLY
from gateway_autotask.simulator.store import stamp

if TYPE_CHECKING:
    from gateway_autotask.simulator.app import AutotaskSimulator

API_RESOURCE = 29682885
TECH_RESOURCE = 29682886
SUPPORT_RESOURCE = 29682887
DESK_ROLE = 29683461
SENIOR_ROLE = 29683462


def essentials(sim: AutotaskSimulator) -> None:
    """The API user (with its resource and default role), two technicians, the MSP's company."""
    store = sim.store
    sim.api_users[sim.DEMO_USERNAME.lower()] = {"secret": sim.DEMO_SECRET, "resource_id": API_RESOURCE}
    people = [
        (API_RESOURCE, sim.DEMO_USERNAME, "API", "User", "API"),
        (TECH_RESOURCE, "dana.tech@demo-msp.example", "Dana", "Tech", "Employee"),
        (SUPPORT_RESOURCE, "sam.support@demo-msp.example", "Sam", "Support", "Employee"),
    ]
    for resource_id, email, first, last, kind in people:
        user_name = email if kind == "API" else email.split("@")[0]
        store.insert(
            "Resources",
            {"userName": user_name, "email": email, "firstName": first, "lastName": last, "isActive": True, "resourceType": kind},
            resource_id,
        )
    for resource_id, role_id, default in [
        (API_RESOURCE, DESK_ROLE, True),
        (TECH_RESOURCE, DESK_ROLE, True),
        (TECH_RESOURCE, SENIOR_ROLE, False),
        (SUPPORT_RESOURCE, SENIOR_ROLE, True),
    ]:
        store.insert("ResourceServiceDeskRoles", {"resourceID": resource_id, "roleID": role_id, "isDefault": default, "isActive": True})
    store.insert("Companies", {"companyName": "Demo MSP", "companyType": 8, "isActive": True, "createDate": stamp()}, 0)


COMPANIES = [
    (175, "ACME Corp", "555-0100"),
    (176, "Globex Corporation", "555-0101"),
    (177, "Initech", "555-0102"),
    (178, "Umbrella Health", "555-0103"),
]

CONTACTS = [
    (30682903, 175, "Wile", "Coyote", "wile@acme.example"),
    (30682904, 175, "Road", "Runner", "road@acme.example"),
    (30682905, 176, "Hank", "Scorpio", "hank@globex.example"),
    (30682906, 177, "Peter", "Gibbons", "peter@initech.example"),
    (30682907, 178, "Alice", "Abernathy", "alice@umbrella.example"),
]

# (title, company, contact, status, priority, queue, days ago, notes: (text, publish, by contact))
TICKETS = [
    ("Printer on 2nd floor offline", 175, 30682903, 1, 2, 5, 1, [("The printer shows error 49.", 1, True)]),
    ("New starter laptop for Road Runner", 175, 30682904, 8, 2, 5, 3, [("Laptop ordered.", 1, False), ("PO 4411 raised.", 2, False)]),
    ("VPN drops every hour", 175, 30682903, 7, 1, 8, 5, [("Can you send the VPN client log?", 1, False)]),
    ("Backup job failed on FS01", 175, None, 11, 4, 6, 2, [("Alert from the backup agent.", 2, False)]),
    ("Outlook keeps asking for password", 176, 30682905, 1, 2, 5, 0, []),
    ("Shared drive permissions for finance", 176, 30682905, 8, 3, 5, 6, [("Which folders exactly?", 1, False), ("Finance/2024 and Finance/Audit.", 1, True)]),
    ("Replace UPS battery in comms room", 176, None, 9, 3, 8, 9, [("Battery on order from the vendor.", 2, False)]),
    ("Firewall firmware update", 176, None, 13, 2, 8, 12, [("Waiting for change approval.", 2, False)]),
    ("Phishing email reported", 177, 30682906, 5, 1, 5, 15, [("Blocked sender and purged mailboxes.", 1, False)]),
    ("TPS report template broken", 177, 30682906, 7, 3, 5, 4, [("Could you try the new template attached?", 1, False)]),
    ("Stapler requisition", 177, 30682906, 5, 3, 5, 20, [("Delivered.", 1, False)]),
    ("Server room temperature alert", 177, None, 10, 4, 6, 1, [("Technician dispatched.", 2, False)]),
    ("EHR app slow in clinic B", 178, 30682907, 8, 1, 8, 2, [("Looking at the app server.", 1, False), ("CPU at 95% on APP02.", 2, False)]),
    ("Scanner driver install", 178, 30682907, 12, 3, 5, 7, [("Vendor support case opened.", 2, False)]),
    ("New Wi-Fi access point in reception", 178, None, 1, 2, 5, 0, []),
    ("MFA enrolment for new staff", 178, 30682907, 5, 2, 5, 25, [("All users enrolled.", 1, False)]),
    ("Disk space low on SQL01", 175, None, 8, 1, 6, 1, [("Cleared 40 GB of old logs.", 2, False)]),
    ("Website certificate expiring", 176, None, 1, 1, 8, 0, []),
    ("Conference room display flickers", 177, 30682906, 9, 3, 5, 8, [("Replacement cable ordered.", 1, False)]),
    ("Onboard Globex branch office", 176, 30682905, 11, 2, 8, 10, [("Escalated to projects team.", 2, False)]),
]


def demo(sim: AutotaskSimulator) -> None:
    """Customers, contacts and about twenty tickets with their notes."""
    with sim.lock:
        if any(t for t in sim.store.records["Tickets"].values()):
            return
        store = sim.store
        for company_id, name, phone in COMPANIES:
            store.insert("Companies", {"companyName": name, "companyType": 1, "phone": phone, "isActive": True, "createDate": stamp()}, company_id)
        for contact_id, company_id, first, last, email in CONTACTS:
            store.insert("Contacts", {"companyID": company_id, "firstName": first, "lastName": last, "emailAddress": email, "isActive": 1}, contact_id)
        now = datetime.now(timezone.utc)
        for title, company_id, contact_id, status, priority, queue, days_ago, notes in TICKETS:
            created = now - timedelta(days=days_ago, hours=2)
            ticket_id = sim.add_ticket(
                title=title,
                description=f"{title}. Reported via the client portal.",
                companyID=company_id,
                contactID=contact_id,
                status=status,
                priority=priority,
                queueID=queue,
                assignedResourceID=TECH_RESOURCE if status != 1 else None,
                assignedResourceRoleID=DESK_ROLE if status != 1 else None,
                createDate=stamp(created),
                lastActivityDate=stamp(created + timedelta(hours=len(notes))),
                completedDate=stamp(created + timedelta(hours=len(notes))) if status == 5 else None,
                dueDateTime=stamp(created + timedelta(days=3)),
            )
            for index, (text, publish, by_contact) in enumerate(notes):
                when = stamp(created + timedelta(hours=index + 1))
                author = {"createdByContactID": contact_id} if by_contact and contact_id else {"creatorResourceID": TECH_RESOURCE}
                sim.add_note(
                    ticket_id,
                    text,
                    publish=PUBLISH_ALL_USERS if publish == 1 else PUBLISH_INTERNAL_ONLY,
                    createDateTime=when,
                    lastActivityDate=when,
                    **author,
                )
