"""Narrow unit tests of single client calls with respx (no simulator)."""

from __future__ import annotations

import base64

import httpx
import pytest
import respx
from gateway.errors import VendorRejected, VendorUnavailable
from gateway.models import Connection

from gateway_connectwise.client import ConnectWiseClient
from gateway_connectwise.records import ConnectWiseSettings

API = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0"


@pytest.fixture
def client():
    connection = Connection(
        id="cw-unit",
        workspace="test",
        vendor="connectwise",
        base_url=API,
        settings=ConnectWiseSettings(company_id="mymsp", api_version="2025.16"),
        secrets={"public_key": "pub", "private_key": "priv", "client_id": "client-guid"},
    )
    client = ConnectWiseClient(connection)
    yield client
    client.close()


@respx.mock
def test_every_call_carries_basic_auth_the_client_id_and_the_pinned_version(client):
    route = respx.get(f"{API}/service/tickets/5").respond(json={"id": 5, "summary": "x"})
    assert client.ticket("5").summary == "x"
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"mymsp+pub:priv").decode()
    assert sent.headers["clientId"] == "client-guid"
    assert sent.headers["Accept"] == "application/vnd.connectwise.com+json; version=2025.16"


@respx.mock
def test_next_page_is_asked_of_our_host_with_our_conditions(client):
    # A Link that names another host and drops the conditions must change neither.
    link = '<https://elsewhere.example/v4_6_release/apis/3.0/service/tickets?page=2>; rel="next"'
    route = respx.get(f"{API}/service/tickets").mock(
        side_effect=[
            httpx.Response(200, json=[{"id": 1}], headers={"Link": link}),
            httpx.Response(200, json=[{"id": 2}]),
        ]
    )
    tickets = client.all("/service/tickets", dict, conditions='status/name = "New"')
    assert tickets == [{"id": 1}, {"id": 2}]
    second = route.calls[1].request.url
    assert second.host == "api-na.myconnectwise.net"
    assert (second.params["conditions"], second.params["page"], second.params["pageSize"]) == (
        'status/name = "New"',
        "2",
        "1000",
    )


@respx.mock
def test_validation_errors_are_spelled_out(client):
    body = {
        "code": "InvalidObject",
        "message": "contact object is invalid",
        "errors": [
            {
                "code": "MissingRequiredField",
                "message": "The firstName field is required.",
                "resource": "contact",
                "field": "firstName",
            }
        ],
    }
    respx.post(f"{API}/service/tickets").respond(400, json=body)
    with pytest.raises(VendorRejected) as refused:
        client.create_ticket({"summary": "x"})
    assert str(refused.value) == (
        "connectwise answered 400: InvalidObject: contact object is invalid"
        " (contact.firstName: The firstName field is required.)"
    )


@respx.mock
def test_cloudflare_throttle_and_html_errors_are_typed(client):
    respx.get(f"{API}/service/boards").respond(503, text="<html>upstream timeout</html>")
    with pytest.raises(VendorUnavailable, match="upstream timeout"):
        client.boards()


@respx.mock
def test_unexpected_body_is_an_error_not_a_crash(client):
    respx.get(f"{API}/service/tickets/5").respond(json={"summary": "no id"})
    with pytest.raises(Exception, match="unexpected body"):
        client.ticket("5")
