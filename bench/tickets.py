"""Generated tickets for the queue's growth figures: ticket ``i`` is always the same ticket, so
the gateway's store and the SQLite baseline can be filled from the same stream without holding
a million tickets in memory.

They are shaped like the simulators' (``bench.fig_queue.add_vendors``): three PSA connections,
their own statuses, customers, priorities and boards, a link back to the PSA; and unlike the
simulators' (which create every ticket "now") they are spread over two years of created and
updated times, as a real queue's are.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from gateway.models import NamedRef, StatusCategory, Ticket, TicketStatus

BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)
WORDS = ["printer", "vpn", "email", "laptop", "backup"]
TECHS = [f"Tech {n}" for n in range(25)]
CUSTOMERS = 300  # per connection
VENDORS = {
    "q-cw": ("connectwise", [("16", "New", "new"), ("17", "In Progress", "in_progress"),
                             ("18", "Waiting Customer", "awaiting_customer"), ("20", "Closed", "closed")],
             "http://127.0.0.1:8000/v4_6_release/services/system_io/Service/fv_sr100_request.rails"
             "?service_recid={id}&companyName=gatewaydemo"),
    "q-at": ("autotask", [("1", "New", "new"), ("8", "In Progress", "in_progress"),
                          ("7", "Waiting Customer", "awaiting_customer"), ("5", "Complete", "closed")],
             "http://127.0.0.1:8000/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID={id}"),
    "q-halo": ("halopsa", [("1", "New", "new"), ("2", "In Progress", "in_progress"), ("9", "Closed", "closed")],
               "http://127.0.0.1:8000/ticket?id={id}"),
}
CONNECTIONS = list(VENDORS)


def ticket(i: int) -> Ticket:
    rng = random.Random(i)
    conn = CONNECTIONS[i % len(CONNECTIONS)]
    vendor, statuses, url = VENDORS[conn]
    vendor_id = str(10_000 + i)
    sid, name, category = rng.choice(statuses)
    customer = rng.randrange(CUSTOMERS)
    created = BASE + timedelta(seconds=i * 60 + rng.randrange(60), milliseconds=rng.randrange(1000))
    updated = created + timedelta(seconds=rng.randrange(5 * 86_400))
    return Ticket(
        ref=f"{conn}:{vendor_id}", connection=conn, vendor=vendor, vendor_id=vendor_id,
        summary=f"{rng.choice(WORDS)} {conn[2:]} {i}", status=TicketStatus(sid, name, StatusCategory(category)),
        number=vendor_id, board=NamedRef(id="1", name=rng.choice(["Help Desk", "Projects", "Service Desk"])),
        customer=NamedRef(id=str(customer), name=f"Customer {customer}", ref=f"{conn}:{customer}"),
        contact=NamedRef(id=str(rng.randrange(1000)), name="Wile Coyote") if rng.random() < 0.5 else None,
        assignee=NamedRef(id=str(rng.randrange(len(TECHS))), name=rng.choice(TECHS)) if rng.random() < 0.7 else None,
        priority=NamedRef(id=str(rng.randrange(1, 5)), name=rng.choice(["Low", "Medium", "High", "Critical"])),
        created_at=created, updated_at=updated, url=url.format(id=vendor_id),
    )


def generated(start: int, stop: int) -> list[Ticket]:
    """Tickets ``start`` to ``stop - 1``."""
    return [ticket(i) for i in range(start, stop)]


def stream(start: int, stop: int, batch: int = 1000) -> Iterator[Ticket]:
    """The same, generated a batch at a time."""
    for first in range(start, stop, batch):
        yield from generated(first, min(stop, first + batch))


def sample(count: int) -> list[Ticket]:
    """The first ``count`` tickets: enough to pick query values that occur at every size."""
    return generated(0, count)
