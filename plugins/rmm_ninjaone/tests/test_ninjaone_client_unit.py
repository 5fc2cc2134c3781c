"""Narrow unit tests of single client calls, with respx standing in for NinjaOne."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from gateway.errors import VendorRejected
from gateway.models import Connection
from gateway_ninjaone import hooks
from gateway_ninjaone.client import NinjaOneClient
from gateway_ninjaone.mapping import epoch
from gateway_ninjaone.settings import NinjaOneSettings

HOST = "https://eu.ninjarmm.com"
UID = "8d1e3f0a-2b7c-4c11-9a55-0f2a5e1c9b77"
TOKEN = {"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600, "scope": "monitoring management"}


@pytest.fixture
def client() -> Iterator[NinjaOneClient]:
    connection = Connection(
        id="nj-eu",
        workspace="acme-msp",
        vendor="ninjaone",
        base_url=HOST,
        settings=NinjaOneSettings(client_id="app-123"),
        secrets={"client_secret": "s3cret-value"},
    )
    client = NinjaOneClient(connection)
    yield client
    client.close()


@respx.mock(base_url=HOST, assert_all_called=True)
def test_token_is_a_form_post_and_the_api_gets_it_as_bearer(respx_mock: respx.MockRouter, client: NinjaOneClient) -> None:
    token = respx_mock.post("/ws/oauth/token").respond(200, json=TOKEN)
    orgs = respx_mock.get("/v2/organizations").respond(200, json=[{"id": 7, "name": "Acme Corp"}])

    customers = hooks.gateway_customer_list(client)

    sent = token.calls.last.request
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(sent.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["app-123"],
        "client_secret": ["s3cret-value"],
        "scope": ["monitoring management"],
    }
    assert orgs.calls.last.request.headers["authorization"] == "Bearer tok-1"
    assert orgs.calls.last.request.url.params["pageSize"] == "1000"
    assert customers[0].ref == "nj-eu:7"


@respx.mock(base_url=HOST)
def test_a_401_refreshes_the_token_once_then_gives_up(respx_mock: respx.MockRouter, client: NinjaOneClient) -> None:
    token = respx_mock.post("/ws/oauth/token").mock(
        side_effect=[httpx.Response(200, json=TOKEN), httpx.Response(200, json={**TOKEN, "access_token": "tok-2"})]
    )
    refused = {"error": "not_authenticated", "error_description": "Invalid credentials", "error_code": 10}
    alerts = respx_mock.get("/v2/alerts").respond(401, json=refused)

    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_alert_list(client, None)

    assert token.call_count == 2
    assert [c.request.headers["authorization"] for c in alerts.calls] == ["Bearer tok-1", "Bearer tok-2"]
    assert "not_authenticated: Invalid credentials" in str(caught.value)


@respx.mock(base_url=HOST)
def test_alerts_of_one_organization_use_the_device_filter(respx_mock: respx.MockRouter, client: NinjaOneClient) -> None:
    respx_mock.post("/ws/oauth/token").respond(200, json=TOKEN)
    route = respx_mock.get("/v2/alerts").respond(
        200,
        json=[
            {"uid": UID, "deviceId": 101, "message": "CPU high", "createTime": 1717000000.123, "severity": "MAJOR",
             "device": {"id": 101, "organizationId": 7}},
        ],  # fmt: skip
    )

    (alert,) = hooks.gateway_alert_list(client, "7")

    assert route.calls.last.request.url.params["df"] == "org = 7"
    assert alert.ref == f"nj-eu:{UID}"
    assert alert.customer_ref == "nj-eu:7"
    assert alert.created_at == epoch(1717000000.123)


@respx.mock(base_url=HOST)
def test_resolve_is_a_delete_of_the_alert(respx_mock: respx.MockRouter, client: NinjaOneClient) -> None:
    respx_mock.post("/ws/oauth/token").respond(200, json=TOKEN)
    route = respx_mock.delete(f"/v2/alert/{UID}").respond(204)

    effect = hooks.gateway_alert_action(client, UID, "resolve", "dk-1")

    assert route.called
    assert effect.vendor_id == UID


def test_timestamps_are_epoch_seconds_and_milliseconds_are_recognised() -> None:
    seconds = epoch(1717000000.5)

    assert seconds is not None and seconds.isoformat() == "2024-05-29T16:26:40.500000+00:00"
    assert epoch(1717000000500) == seconds
    assert epoch(None) is None


@respx.mock(base_url=HOST)
def test_a_host_that_is_not_ninjaone_is_named_as_the_problem(respx_mock: respx.MockRouter, client: NinjaOneClient) -> None:
    respx_mock.post("/ws/oauth/token").respond(200, html="<html>Sign in</html>")

    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_customer_list(client)

    assert "base_url" in str(caught.value)
