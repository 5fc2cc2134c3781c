"""Reading tickets, threads, statuses, the form and customers from the simulator over loopback."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.errors import VendorRejected
from gateway.models import StatusCategory, TicketQuery
from gateway_autotask import hooks
from gateway_autotask.client import AutotaskClient
from gateway_autotask.simulator import AutotaskSimulator


def test_zone_is_discovered_once_and_every_call_goes_to_it(client: AutotaskClient, sim: AutotaskSimulator, running) -> None:
    hooks.gateway_ticket_get(client, "7800")
    hooks.gateway_ticket_thread(client, "7800")
    assert sim.stats["zone_lookups"] == 1
    assert client.zone.api_root == f"{running.base_url}/atservicesrest/v1.0"


def test_zone_is_shared_through_redis_by_every_worker(make_connection, runtime, sim: AutotaskSimulator) -> None:
    first = hooks.gateway_connect(make_connection(runtime=runtime))
    second = hooks.gateway_connect(make_connection(runtime=runtime))
    try:
        first.ticket("7800")
        second.ticket("7800")
    finally:
        first.close()
        second.close()
    assert sim.stats["zone_lookups"] == 1
    assert runtime.redis.get("plugin:at-test:zone")


def test_configured_zone_url_skips_discovery(make_connection, sim: AutotaskSimulator, running) -> None:
    client = hooks.gateway_connect(make_connection(settings={"zone_url": f"{running.base_url}/atservicesrest/"}))
    try:
        assert hooks.gateway_ticket_get(client, "7800") is not None
    finally:
        client.close()
    assert sim.stats["zone_lookups"] == 0


def test_ticket_carries_names_from_picklists_and_company(client: AutotaskClient) -> None:
    ticket = hooks.gateway_ticket_get(client, "7802")
    assert ticket is not None
    assert ticket.ref == "at-test:7802"
    assert ticket.summary == "VPN drops every hour"
    assert (ticket.status.id, ticket.status.name, ticket.status.category) == ("7", "Waiting Customer", StatusCategory.AWAITING_CUSTOMER)
    assert ticket.customer is not None and ticket.customer.name == "ACME Corp"
    assert ticket.board is not None and ticket.board.name == "Level II Support"
    assert ticket.priority is not None and ticket.priority.name == "High"
    assert ticket.number and ticket.number.startswith("T")
    assert ticket.url and ticket.url.endswith("TicketID=7802")


def test_missing_ticket_is_none(client: AutotaskClient) -> None:
    assert hooks.gateway_ticket_get(client, "999999") is None
    assert hooks.gateway_ticket_get(client, "not-a-number") is None
    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_ticket_thread(client, "7800 or 1=1")
    assert caught.value.status == 404


def test_thread_marks_internal_notes_and_customer_authors(client: AutotaskClient) -> None:
    thread = hooks.gateway_ticket_thread(client, "7805")
    assert [(e.text, e.internal, e.author_type) for e in thread] == [
        ("Which folders exactly?", False, "agent"),
        ("Finance/2024 and Finance/Audit.", False, "customer"),
    ]
    assert thread[0].author == "Dana Tech"
    assert thread[1].author == "Hank Scorpio"
    internal = hooks.gateway_ticket_thread(client, "7801")
    assert [e.internal for e in internal] == [False, True]


def test_paging_walks_past_500_tickets_with_next_page_urls(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    sim.add_tickets(1_100, companyID=177)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = hooks.gateway_ticket_list(client, TicketQuery(page_size=1_000, cursor=cursor))
        assert len(page.tickets) <= 500
        seen += [t.vendor_id for t in page.tickets]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert len(seen) == len(set(seen)) == 1_120
    assert sum(1 for _ in client.query_all("Tickets", [])) == 1_120


def test_open_only_leaves_out_complete_tickets(client: AutotaskClient) -> None:
    page = hooks.gateway_ticket_list(client, TicketQuery(open_only=True))
    statuses = {t.status.name for t in page.tickets}
    assert "Complete" not in statuses
    assert len(page.tickets) == 17


def test_open_only_follows_category_overrides(make_connection) -> None:
    # This MSP treats "Waiting Vendor" (12) as closed for its queue views.
    client = hooks.gateway_connect(make_connection(settings={"status_categories": {"12": "closed"}}))
    try:
        page = hooks.gateway_ticket_list(client, TicketQuery(open_only=True))
    finally:
        client.close()
    assert {t.status.name for t in page.tickets}.isdisjoint({"Complete", "Waiting Vendor"})
    assert len(page.tickets) == 16


def test_updated_since_filters_on_last_activity(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    since = (datetime.now(timezone.utc) - timedelta(days=2)).replace(microsecond=0)
    page = hooks.gateway_ticket_list(client, TicketQuery(updated_since=since))
    assert page.tickets
    assert all(t.updated_at is not None and t.updated_at >= since for t in page.tickets)
    everything = hooks.gateway_ticket_list(client, TicketQuery())
    assert len(page.tickets) < len(everything.tickets)


def test_statuses_are_the_active_picklist_with_categories(client: AutotaskClient) -> None:
    ticket = hooks.gateway_ticket_get(client, "7800")
    statuses = hooks.gateway_ticket_statuses(client, ticket)
    by_name = {s.name: s for s in statuses}
    assert "On Hold (retired)" not in by_name
    assert by_name["New"].category is StatusCategory.NEW
    assert by_name["Complete"].category is StatusCategory.CLOSED and by_name["Complete"].closed
    assert by_name["Waiting Customer"].category is StatusCategory.AWAITING_CUSTOMER
    assert by_name["Escalated"].category is StatusCategory.IN_PROGRESS
    assert [s.id for s in statuses][:2] == ["1", "8"]


def test_status_category_override_setting(make_connection) -> None:
    client = hooks.gateway_connect(make_connection(settings={"status_categories": {"13": "awaiting_customer", "5": "resolved"}}))
    try:
        ticket = hooks.gateway_ticket_get(client, "7800")
        by_id = {s.id: s for s in hooks.gateway_ticket_statuses(client, ticket)}
    finally:
        client.close()
    assert by_id["13"].category is StatusCategory.AWAITING_CUSTOMER
    assert by_id["5"].category is StatusCategory.RESOLVED and by_id["5"].closed


def test_form_lists_required_fields_and_picklists(client: AutotaskClient) -> None:
    form = hooks.gateway_ticket_form(client)
    fields = {f.name: f for f in form.fields}
    assert {"title", "description", "externalID", "ticketNumber", "createDate"}.isdisjoint(fields)
    assert fields["companyID"].required and fields["companyID"].type == "integer"
    assert fields["dueDateTime"].required and fields["dueDateTime"].type == "datetime"
    # Required picklists with a default are filled in by the plugin.
    assert not fields["status"].required and not fields["priority"].required
    queue = fields["queueID"]
    assert queue.type == "picklist" and queue.label == "Queue"
    assert [o.name for o in queue.options] == ["Service Desk", "Monitoring Alerts", "Level II Support"]
    sub = {o.name: o.parent for o in fields["subIssueType"].options}
    assert sub["Printer"] == "1" and sub["Email"] == "2"
    assert [s.name for s in form.statuses][0] == "New"


def test_customer_list_is_every_company(client: AutotaskClient) -> None:
    names = {c.name for c in hooks.gateway_customer_list(client)}
    assert {"ACME Corp", "Globex Corporation", "Initech", "Umbrella Health", "Demo MSP"} <= names


def test_wrong_secret_is_a_rejection_with_autotask_message(make_connection) -> None:
    conn = make_connection()
    bad = make_connection(secrets={**conn.secrets, "secret": "wrong"})
    client = hooks.gateway_connect(bad)
    try:
        with pytest.raises(VendorRejected) as caught:
            client.ticket("7800")
    finally:
        client.close()
    assert caught.value.status == 401
    assert "Unauthorized" in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_query_errors_carry_the_errors_body(client: AutotaskClient) -> None:
    with pytest.raises(VendorRejected) as caught:
        client.query_page("Tickets", [{"op": "eq", "field": "noSuchField", "value": 1}])
    assert "Unable to find noSuchField in the Tickets entity" in str(caught.value)


def test_next_page_url_on_another_host_is_refused(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    sim.add_tickets(600)
    sim.page_url_origin = "http://localhost:1"  # another origin than the zone's 127.0.0.1
    page = client.query_page("Tickets", [])
    assert page.next_url and page.next_url.startswith("http://localhost:1/")
    with pytest.raises(VendorRejected, match="outside the Autotask zone"):
        client.next_page(page.next_url)
    with pytest.raises(VendorRejected, match="outside the Autotask zone"):
        hooks.gateway_ticket_list(client, TicketQuery(cursor="https://evil.example/atservicesrest/v1.0/Tickets/query/next?paging=x"))
