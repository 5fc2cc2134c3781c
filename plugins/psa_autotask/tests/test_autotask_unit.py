"""Narrow unit tests of single client calls against mocked HTTP (respx)."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from gateway.errors import VendorRejected, VendorUnavailable, VendorUnreachable
from gateway.models import Connection, StatusCategory
from gateway_autotask import mapping
from gateway_autotask import query as q
from gateway_autotask.client import AutotaskClient
from gateway_autotask.query import parse_datetime
from gateway_autotask.settings import AutotaskSettings

DISCOVERY = "https://webservices.autotask.net"
ZONE = "https://webservices5.autotask.net/atservicesrest/v1.0"


def connection(zone_url: str | None = None) -> Connection:
    return Connection(
        id="at-unit",
        workspace="ws",
        vendor="autotask",
        base_url=DISCOVERY,
        settings=AutotaskSettings(username="api@msp.example", zone_url=zone_url),
        secrets={"secret": "s3cret-value", "integration_code": "TRACKING-ID"},
    )


@respx.mock
def test_credentials_go_to_the_zone_only() -> None:
    zone = respx.get(f"{DISCOVERY}/atservicesrest/v1.0/zoneInformation").respond(
        json={"zoneName": "Zone 5", "url": "https://webservices5.autotask.net/atservicesrest/", "webUrl": "https://ww5.autotask.net/", "ci": 5}
    )
    query = respx.get(f"{ZONE}/Tickets/query").respond(
        json={"items": [{"id": 1}], "pageDetails": {"count": 1, "requestCount": 500, "prevPageUrl": None, "nextPageUrl": "https://attacker.example/atservicesrest/v1.0/Tickets/query/next?paging=1"}}
    )
    foreign = respx.get(host="attacker.example").respond(json={"items": []})
    client = AutotaskClient(connection())
    page = client.query_page("Tickets", [])
    with pytest.raises(VendorRejected, match="outside the Autotask zone"):
        client.next_page(page.next_url)
    assert zone.calls.last.request.url.params["user"] == "api@msp.example"
    assert "secret" not in {k.lower() for k in zone.calls.last.request.headers}
    sent = query.calls.last.request.headers
    assert (sent["ApiIntegrationCode"], sent["UserName"], sent["Secret"]) == ("TRACKING-ID", "api@msp.example", "s3cret-value")
    assert not foreign.called
    assert client.ticket_url(7) == "https://ww5.autotask.net/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID=7"


@respx.mock
def test_short_queries_are_reads_and_long_ones_are_posted() -> None:
    page = {"items": [], "pageDetails": {"count": 0, "requestCount": 500, "prevPageUrl": None, "nextPageUrl": None}}
    read = respx.get(f"{ZONE}/Companies/query").respond(json=page)
    posted = respx.post(f"{ZONE}/Companies/query").respond(json=page)
    client = AutotaskClient(connection(zone_url="https://webservices5.autotask.net/atservicesrest/"))
    client.query_page("Companies", [q.eq("companyName", "ACME Corp")])
    assert json.loads(read.calls.last.request.url.params["search"]) == {"filter": [{"op": "eq", "field": "companyName", "value": "ACME Corp"}], "MaxRecords": 500}
    client.query_page("Companies", [q.in_("id", list(range(100_000, 100_500)))])
    assert posted.calls.last.request.headers["content-type"] == "application/json"
    assert len(json.loads(posted.calls.last.request.content)["filter"][0]["value"]) == 500


@respx.mock
def test_error_bodies_become_typed_errors_with_every_message() -> None:
    client = AutotaskClient(connection(zone_url="https://webservices5.autotask.net/atservicesrest/"))
    respx.post(f"{ZONE}/Tickets").respond(400, json={"errors": ["Field title is required.", "Field status is required."]})
    respx.post(f"{ZONE}/TimeEntries").respond(500, json={"errors": ["Object reference not set to an instance of an object."]})
    with pytest.raises(VendorRejected, match="Field title is required.; Field status is required."):
        client.create_ticket({})
    # A configured zone needs no discovery and still links to its web UI.
    assert client.ticket_url(5).startswith("https://ww5.autotask.net/Autotask/")
    with pytest.raises(VendorUnavailable, match="Object reference"):
        client.create("TimeEntries", {})


def test_status_categories_from_labels_and_overrides() -> None:
    assert mapping.category_for("1", "New", {}) is StatusCategory.NEW
    assert mapping.category_for("5", "complete", {}) is StatusCategory.CLOSED
    assert mapping.category_for("7", "Waiting Customer", {}) is StatusCategory.AWAITING_CUSTOMER
    assert mapping.category_for("11", "Escalated", {}) is StatusCategory.IN_PROGRESS
    assert mapping.category_for("11", "Escalated", {"11": "new"}) is StatusCategory.NEW


def test_dates_from_autotask_parse_as_utc() -> None:
    assert parse_datetime("2020-10-05T10:59:57.537").isoformat() == "2020-10-05T10:59:57.537000+00:00"
    assert parse_datetime("2024-05-01T14:00:00.1234567Z").isoformat() == "2024-05-01T14:00:00.123456+00:00"
    assert parse_datetime("not a date") is None


def test_transport_errors_on_zone_discovery_are_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = AutotaskClient(connection(), transport=httpx.MockTransport(refuse))
    with pytest.raises(VendorUnreachable) as caught:
        client.ticket(1)
    assert "s3cret-value" not in str(caught.value)
