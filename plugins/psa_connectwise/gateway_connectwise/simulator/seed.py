"""The simulator's setup tables and demo tickets (data only; the simulator builds the records).

Two boards, each with its own five statuses (ids differ per board, as in ConnectWise), three
customer companies, one API member, and about thirty tickets with notes and some time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

MEMBER: dict[str, Any] = {"id": 150, "identifier": "jdoe", "name": "Jane Doe"}

# (id, name); new tickets land on the first board unless told otherwise.
BOARDS = [(1, "Help Desk"), (2, "Projects")]
DEFAULT_BOARD_ID = 1

# (name, closedStatus, defaultFlag), in sortOrder; ids are the board's first id + index.
STATUSES = [
    ("New", False, True),
    ("In Progress", False, False),
    ("Waiting on Customer", False, False),
    ("Resolved", False, False),
    ("Closed", True, False),
]
FIRST_STATUS_ID = {1: 16, 2: 26}

# board id -> [(type id, name, defaultFlag)]
TYPES = {
    1: [(5, "Incident", True), (6, "Service Request", False)],
    2: [(7, "Task", True), (8, "Issue", False)],
}

# (id, name, sortOrder, defaultFlag)
PRIORITIES = [
    (1, "Priority 1 - Emergency Response", 1, False),
    (2, "Priority 2 - Quick Response", 2, False),
    (3, "Priority 3 - Normal Response", 3, True),
    (4, "Priority 4 - Schedule Maintenance", 4, False),
]

# (id, identifier, name, contact id, contact name)
COMPANIES = [
    (250, "AcmeCorp", "Acme Corp", 301, "Wile Coyote"),
    (251, "Globex", "Globex", 302, "Hank Scorpio"),
    (252, "Initech", "Initech", 303, "Bill Lumbergh"),
]

HELP_DESK_SUMMARIES = [
    "Printer on 2nd floor offline",
    "Outlook keeps asking for password",
    "New starter laptop setup",
    "VPN drops every 10 minutes",
    "Shared drive permissions for Finance",
    "Phishing email reported",
    "Teams calls have no audio",
    "Replace failed UPS battery",
    "Wi-Fi slow in conference room",
    "Reset MFA for field engineer",
    "Scanner sends blank PDFs",
    "Server C: drive almost full",
    "Cannot open QuickBooks company file",
    "Mailbox over quota",
    "Monitor flickering at reception",
    "Backup job failed overnight",
    "Install Adobe Acrobat for HR",
    "Locked out after password change",
    "Website contact form not sending",
    "Laptop fan very loud",
    "Renew SSL certificate",
    "TPS report template broken",
]
PROJECT_SUMMARIES = [
    "Migrate file server to SharePoint",
    "Firewall replacement",
    "Windows 11 rollout wave 2",
    "Office move: network cabling",
    "Intune enrolment for all phones",
    "Replace core switch",
    "Quarterly security review",
    "Decommission old Exchange server",
]

AGENT_REPLIES = [
    "Thanks for letting us know. We're looking into it now.",
    "I've applied a fix; can you check on your side?",
    "Could you send a screenshot of the error?",
    "We've scheduled an engineer for tomorrow morning.",
]
INTERNAL_NOTES = [
    "Checked the event log: same error as last month.",
    "Vendor case opened, waiting on their reply.",
    "Possibly related to the patch weekend.",
]


@dataclass
class DemoNote:
    text: str
    # "customer" (Discussion, by the contact), "reply" (Discussion, by the member), "internal".
    kind: str
    at: datetime


@dataclass
class DemoTicket:
    summary: str
    board_id: int
    company_id: int
    status_index: int
    type_id: int
    priority_id: int
    created: datetime
    updated: datetime
    notes: list[DemoNote] = field(default_factory=list)
    minutes_logged: int = 0


def demo_tickets(now: datetime, seed: int = 20240501) -> list[DemoTicket]:
    """About thirty tickets across the three companies and both boards, the same every time
    (times are relative to ``now``)."""
    rng = random.Random(seed)
    summaries = [(s, 1) for s in HELP_DESK_SUMMARIES] + [(s, 2) for s in PROJECT_SUMMARIES]
    tickets = []
    for index, (summary, board_id) in enumerate(summaries):
        company = COMPANIES[index % len(COMPANIES)]
        created = now - timedelta(days=rng.randint(1, 30), minutes=rng.randint(0, 600))
        updated = created + (now - created) * rng.uniform(0.1, 0.95)
        # A few of each status; the first tickets of each board stay open for demos and tests.
        status_index = 0 if index in (0, len(HELP_DESK_SUMMARIES)) else rng.choice([0, 1, 1, 2, 3, 4])
        ticket = DemoTicket(
            summary=summary,
            board_id=board_id,
            company_id=company[0],
            status_index=status_index,
            type_id=rng.choice(TYPES[board_id])[0],
            priority_id=rng.choice(PRIORITIES)[0],
            created=created,
            updated=updated,
        )
        ticket.notes.append(DemoNote(f"{summary}. Reported by {company[4]}.", "customer", created))
        if status_index > 0:
            ticket.notes.append(DemoNote(rng.choice(AGENT_REPLIES), "reply", created + (updated - created) / 3))
            if rng.random() < 0.5:
                ticket.notes.append(DemoNote(rng.choice(INTERNAL_NOTES), "internal", created + (updated - created) / 2))
            ticket.minutes_logged = rng.choice([0, 15, 30, 45])
        tickets.append(ticket)
    return tickets
