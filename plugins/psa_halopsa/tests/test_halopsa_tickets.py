"""Ticket reads against the simulator: paging past Halo's cap, statuses, the form, customers."""

from __future__ import annotations

from gateway.models import StatusCategory, TicketQuery

from gateway_halopsa import hooks


def _all_pages(client, page_size: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = hooks.gateway_ticket_list(client, TicketQuery(page_size=page_size, cursor=cursor))
        pages.append([t.vendor_id for t in page.tickets])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_listing_pages_past_100_until_record_count(sim, make_client):
    ids = [str(sim.add_ticket(f"Ticket {n}")) for n in range(250)]
    client = make_client()

    pages = _all_pages(client, page_size=500)  # asks for more than Halo ever returns

    assert [len(p) for p in pages] == [100, 100, 50]
    assert [i for p in pages for i in p] == ids


def test_listing_follows_a_server_cap_smaller_than_the_page_asked(sim, make_client):
    ids = [str(sim.add_ticket(f"Ticket {n}")) for n in range(130)]
    sim.page_cap = 40  # the server cuts every page to 40 items, whatever page_size says
    client = make_client()

    pages = _all_pages(client, page_size=100)

    assert [i for p in pages for i in p] == ids
    assert max(len(p) for p in pages) == 40


def test_open_only_leaves_closed_tickets_out(sim, make_client):
    open_id = sim.add_ticket("Still broken")
    sim.add_ticket("Fixed", status_id=9)
    client = make_client()

    page = hooks.gateway_ticket_list(client, TicketQuery(open_only=True))

    assert [t.vendor_id for t in page.tickets] == [str(open_id)]


def test_ticket_get_maps_halo_fields(sim, make_client):
    sim.seed_demo()
    ticket_id = sim.add_ticket("Teams has no audio", client_id=12, details="Since Monday", status_id=5)
    client = make_client()

    ticket = hooks.gateway_ticket_get(client, str(ticket_id))

    assert ticket.ref == f"halo-test:{ticket_id}"
    assert ticket.summary == "Teams has no audio" and ticket.description == "Since Monday"
    assert ticket.status.name == "Waiting on Client"
    assert ticket.status.category is StatusCategory.AWAITING_CUSTOMER
    assert ticket.customer.ref == "halo-test:12" and ticket.customer.name == "Contoso Ltd"
    assert hooks.gateway_ticket_get(client, "999999") is None


def test_statuses_are_per_ticket_type_with_categories(sim, make_client):
    client = make_client(status_categories={"On Hold": "awaiting_customer"})
    incident = sim.add_ticket("Incident", tickettype_id=1)
    change = sim.add_ticket("Change", tickettype_id=4)

    def statuses(ticket_id):
        ticket = hooks.gateway_ticket_get(client, str(ticket_id))
        return {s.name: s for s in hooks.gateway_ticket_statuses(client, ticket)}

    for_incident, for_change = statuses(incident), statuses(change)
    assert "Awaiting Approval" not in for_incident and "Awaiting Approval" in for_change
    assert for_incident["New"].category is StatusCategory.NEW
    assert for_incident["In Progress"].category is StatusCategory.IN_PROGRESS
    assert for_incident["Waiting on Third Party"].category is StatusCategory.IN_PROGRESS
    assert for_incident["On Hold"].category is StatusCategory.AWAITING_CUSTOMER  # the setting
    assert for_incident["Resolved"].category is StatusCategory.RESOLVED
    assert for_incident["Closed"].category is StatusCategory.CLOSED and for_incident["Closed"].closed


def test_new_ticket_form_has_summary_and_picklists(sim, make_client):
    sim.seed_demo()
    form = hooks.gateway_ticket_form(make_client())

    fields = {f.name: f for f in form.fields}
    assert fields["summary"].required and not fields["details"].required
    assert [o.name for o in fields["tickettype_id"].options] == ["Incident", "Service Request", "Change Request"]
    # Priorities come once per SLA from Halo; the form lists each priority once.
    assert [o.id for o in fields["priority_id"].options] == ["1", "2", "3", "4"]
    assert {"Contoso Ltd", "Tailspin Toys"} <= {o.name for o in fields["client_id"].options}
    assert "Closed" in {s.name for s in form.statuses}


def test_customer_list(sim, make_client):
    sim.seed_demo()
    customers = hooks.gateway_customer_list(make_client())

    assert {c.name for c in customers} >= {"Contoso Ltd", "Fabrikam Inc", "Northwind Traders"}
    assert all(c.ref.startswith("halo-test:") and c.vendor == "halopsa" for c in customers)


def test_thread_marks_internal_and_customer_entries(sim, make_client):
    sim.seed_demo()
    thread = hooks.gateway_ticket_thread(make_client(), "1001")

    assert thread[0].author_type == "customer" and not thread[0].internal
    assert any(entry.internal for entry in thread)
