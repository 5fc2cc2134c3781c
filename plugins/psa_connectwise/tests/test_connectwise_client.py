"""The client and the read hooks against the simulator over loopback HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from gateway.errors import ConfigError, VendorRateLimited, VendorRejected
from gateway.models import Capability, StatusCategory, Ticket, TicketQuery
from gateway.plugins import load_plugins
from gateway.ratelimit import RateLimiter
from gateway.redact import Redactor
from gateway.runtime import Runtime
from gateway.testing.simulator import Faults
from opentelemetry import trace

from gateway_connectwise import hooks, mapping
from gateway_connectwise.conditions import parse_datetime
from gateway_connectwise.constants import ATTACHMENT_CAP_BYTES
from gateway_connectwise.records import ConnectWiseSettings


def test_plugin_registers_connectwise_with_its_capabilities(monkeypatch):
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "connectwise")
    loaded = load_plugins()
    info = loaded.vendors["connectwise"]
    assert not loaded.broken
    assert Capability.REPLY in info.capabilities and Capability.WEBHOOK in info.capabilities
    assert Capability.REPLY_WITH_STATUS not in info.capabilities
    assert info.attachment_cap_bytes == ATTACHMENT_CAP_BYTES == 10 * 1024 * 1024
    assert info.settings_type is ConnectWiseSettings
    assert set(info.secret_settings) == {"public_key", "private_key", "client_id"}
    assert info.default_rate_limit.windows[0].requests == 10


def test_wrong_private_key_is_refused_without_echoing_it(make_client):
    client = make_client(secrets={"public_key": "demoPublicKey0001", "private_key": "not-the-key", "client_id": "x"})
    with pytest.raises(VendorRejected) as refused:
        client.tickets()
    assert refused.value.status == 401
    assert "UserNotAuthenticated" not in str(refused.value)  # the message is the human one
    assert "The credentials are not valid." in str(refused.value)
    assert "not-the-key" not in str(refused.value)


def test_wrong_client_id_is_refused(sim, make_client):
    secrets = {**sim.demo_connection(sim.base_url)["secrets"], "client_id": "00000000-0000-0000-0000-000000000000"}
    with pytest.raises(VendorRejected, match="clientId") as refused:
        make_client(secrets=secrets).tickets()
    assert refused.value.status == 401


def test_connect_names_the_missing_secret(sim, make_client):
    with pytest.raises(ConfigError, match="private_key"):
        make_client(secrets={"public_key": "a", "client_id": "b"})


def test_paging_follows_link_and_keeps_the_conditions(sim, client):
    conditions = 'company/name = "Acme Corp"'
    seen, page, pages = [], 1, 0
    while page is not None:
        result = client.tickets(conditions=conditions, page=page, page_size=4)
        seen += result.items
        page, pages = result.next_page, pages + 1
    expected = [t for t in sim.tickets.values() if t["company"]["name"] == "Acme Corp"]
    assert pages == -(-len(expected) // 4) > 1
    assert sorted(t.id for t in seen) == sorted(t["id"] for t in expected)
    assert {t.company.name for t in seen} == {"Acme Corp"}


def test_ticket_list_hook_walks_open_tickets_with_its_cursor(sim, client):
    cursor, tickets = None, []
    while True:
        page = hooks.gateway_ticket_list(client=client, query=TicketQuery(open_only=True, page_size=7, cursor=cursor))
        tickets += page.tickets
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    open_ids = {str(t["id"]) for t in sim.tickets.values() if not t["closedFlag"]}
    assert {t.vendor_id for t in tickets} == open_ids
    assert all(t.status.category is not StatusCategory.CLOSED for t in tickets)
    updated = [t.updated_at for t in tickets]
    assert updated == sorted(updated)  # oldest change first


def test_updated_since_lists_only_later_changes(sim, client):
    times = sorted(parse_datetime(t["_info"]["lastUpdated"]) for t in sim.tickets.values())
    since = times[len(times) // 2]
    page = hooks.gateway_ticket_list(client=client, query=TicketQuery(updated_since=since, page_size=1000))
    assert page.tickets and all(t.updated_at >= since for t in page.tickets)
    assert len(page.tickets) == sum(1 for t in times if t >= since)


def test_ticket_get_translates_the_ticket(sim, client, ticket_id):
    ticket = hooks.gateway_ticket_get(client=client, ticket_id=ticket_id)
    assert isinstance(ticket, Ticket)
    assert ticket.ref == f"cw-test:{ticket_id}"
    assert ticket.customer.name == "Acme Corp" and ticket.customer.ref == "cw-test:250"
    assert ticket.board.name == "Help Desk"
    assert (ticket.status.name, ticket.status.category) == ("New", StatusCategory.NEW)
    assert hooks.gateway_ticket_get(client=client, ticket_id="999999") is None
    assert hooks.gateway_ticket_get(client=client, ticket_id="../system") is None


def test_ticket_url_opens_the_ticket_page(sim, client, ticket_id):
    ticket = hooks.gateway_ticket_get(client=client, ticket_id=ticket_id)
    assert "fv_sr100_request.rails?service_recid=" in ticket.url
    page = httpx.get(ticket.url)
    assert page.status_code == 200 and f"Ticket #{ticket_id}" in page.text


def test_cloud_links_use_the_web_host_not_the_api_host():
    root = mapping.ui_root("https://api-na.myconnectwise.net/v4_6_release/apis/3.0")
    assert root == "https://na.myconnectwise.net/v4_6_release"
    assert mapping.ticket_url(root, "my msp", 42) == (
        "https://na.myconnectwise.net/v4_6_release/services/system_io/Service/fv_sr100_request.rails"
        "?service_recid=42&companyName=my+msp"
    )
    assert mapping.ui_root("https://cw.example.com/v2025_1/apis/3.0", "https://portal.example.com/v2025_1/") == (
        "https://portal.example.com/v2025_1"
    )


def test_site_url_discovers_the_codebase_once_for_every_worker(sim, make_client, redis_client):
    runtime = Runtime(
        redis=redis_client,
        limiter=RateLimiter(redis_client),
        redactor=Redactor(),
        tracer=trace.get_tracer("test"),
    )
    first = make_client(base_url=sim.base_url, runtime=runtime)
    assert first.api_root == f"{sim.base_url}/v4_6_release/apis/3.0"
    assert first.ticket(sim.sample_ticket_id()) is not None
    assert redis_client.get("plugin:cw-test:codebase") == b"v4_6_release/"
    redis_client.set("plugin:cw-test:codebase", "v2099_1/")
    assert make_client(base_url=sim.base_url, runtime=runtime).api_root.endswith("/v2099_1/apis/3.0")


def test_connectwise_error_body_becomes_the_error_message(client, ticket_id):
    with pytest.raises(VendorRejected) as refused:
        client.create_ticket({"summary": "x" * 101, "company": {"id": 250}, "board": {"id": 1}, "status": {"id": 26}})
    message = str(refused.value)
    assert refused.value.status == 400
    assert "InvalidObject: ticket object is invalid" in message
    assert "ticket.summary: The summary may be at most 100 characters." in message
    assert "ticket.status: Status 26 is not valid for board 1." in message


def test_bad_conditions_are_refused_with_the_reason(client):
    with pytest.raises(VendorRejected, match="Unknown field 'nosuchfield'"):
        client.tickets(conditions="nosuchfield = 1")


def test_statuses_are_the_tickets_board_with_categories(sim, client):
    projects_ticket = sim.add_ticket("Rack the new switch", board_id=2)
    ticket = hooks.gateway_ticket_get(client=client, ticket_id=projects_ticket)
    statuses = hooks.gateway_ticket_statuses(client=client, ticket=ticket)
    assert [s.id for s in statuses] == sim.valid_status_ids(projects_ticket)
    assert {s.scope for s in statuses} == {"2"}
    assert [(s.name, s.category.value) for s in statuses] == [
        ("New", "new"),
        ("In Progress", "in_progress"),
        ("Waiting on Customer", "awaiting_customer"),
        ("Resolved", "resolved"),
        ("Closed", "closed"),
    ]
    assert [s.closed for s in statuses] == [False, False, False, False, True]


def test_status_categories_setting_overrides_the_name(sim, make_client, ticket_id):
    client = make_client(settings={"company_id": sim.company_id, "status_categories": {"18": "in_progress"}})
    ticket = hooks.gateway_ticket_get(client=client, ticket_id=ticket_id)
    waiting = next(s for s in hooks.gateway_ticket_statuses(client=client, ticket=ticket) if s.id == "18")
    assert waiting.name == "Waiting on Customer" and waiting.category is StatusCategory.IN_PROGRESS


def test_thread_is_oldest_first_with_internal_notes_marked(sim, client):
    with sim.lock:
        ticket_id = next(t for t, n in _notes_by_ticket(sim).items() if any(x["internalAnalysisFlag"] for x in n))
    thread = hooks.gateway_ticket_thread(client=client, ticket_id=str(ticket_id))
    assert [e.created_at for e in thread] == sorted(e.created_at for e in thread)
    assert thread[0].author_type == "customer" and not thread[0].internal
    assert any(e.internal for e in thread)
    assert {(e.id, e.internal) for e in thread} == {(n["id"], n["internal"]) for n in sim.ticket_notes(str(ticket_id))}


def _notes_by_ticket(sim):
    by_ticket: dict[int, list] = {}
    for note in sim.notes.values():
        by_ticket.setdefault(note["ticketId"], []).append(note)
    return by_ticket


def test_customer_list_has_the_companies(client):
    customers = hooks.gateway_customer_list(client=client)
    assert [c.name for c in customers] == ["Acme Corp", "Globex", "Initech"]
    assert customers[0].ref == "cw-test:250" and customers[0].integration_ids["connectwise_identifier"] == "AcmeCorp"


def test_form_has_required_fields_and_board_scoped_picklists(client):
    form = hooks.gateway_ticket_form(client=client)
    fields = {f.name: f for f in form.fields}
    assert {n for n, f in fields.items() if f.required} == {"summary", "board", "company"}
    assert fields["summary"].max_length == 100
    assert [o.name for o in fields["board"].options] == ["Help Desk", "Projects"]
    assert [o.name for o in fields["company"].options] == ["Acme Corp", "Globex", "Initech"]
    assert {(o.name, o.parent) for o in fields["type"].options} >= {("Incident", "1"), ("Task", "2")}
    assert next(o for o in fields["priority"].options if o.default).name == "Priority 3 - Normal Response"
    assert len(form.statuses) == 10 and {s.scope for s in form.statuses} == {"1", "2"}


def test_time_window_of_updated_since_is_inclusive(sim, client, ticket_id):
    changed = parse_datetime(sim.tickets[int(ticket_id)]["_info"]["lastUpdated"])
    page = hooks.gateway_ticket_list(client=client, query=TicketQuery(updated_since=changed, page_size=1000))
    assert ticket_id in {t.vendor_id for t in page.tickets}
    later = hooks.gateway_ticket_list(
        client=client, query=TicketQuery(updated_since=changed + timedelta(seconds=1), page_size=1000)
    )
    assert ticket_id not in {t.vendor_id for t in later.tickets}


def test_throttling_is_a_rate_limit_with_the_wait(sim, client):
    sim.set_faults(Faults(throttle_rate=1.0, retry_after=7))
    try:
        with pytest.raises(VendorRateLimited) as limited:
            client.tickets()
    finally:
        sim.set_faults(Faults())
    assert limited.value.retry_after == 7
    assert limited.value.status == 429 and "TooManyRequests" in str(limited.value)
