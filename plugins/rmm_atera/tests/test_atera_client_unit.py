"""Narrow unit tests of single client calls, with respx standing in for Atera."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import respx
from gateway.errors import ConfigError, VendorRejected, VendorUnavailable
from gateway.models import Connection

from gateway_atera import hooks
from gateway_atera.client import AteraClient
from gateway_atera.mapping import timestamp

API = "https://app.atera.com/api/v3"
KEY = "atera-key-0123456789abcdef"


def envelope(items: list[dict], page: int = 1, total_pages: int = 1) -> dict:
    return {"items": items, "page": page, "itemsInPage": 50, "totalItemCount": len(items),
            "totalPages": total_pages, "prevLink": "", "nextLink": ""}  # fmt: skip


@pytest.fixture
def client() -> Iterator[AteraClient]:
    # The host alone is accepted: the client adds /api/v3.
    connection = Connection(id="at", workspace="w", vendor="atera", base_url="https://app.atera.com",
                            secrets={"api_key": KEY})  # fmt: skip
    client = AteraClient(connection)
    yield client
    client.close()


@respx.mock(base_url=API, assert_all_called=True)
def test_the_key_goes_in_x_api_key_and_lists_page_with_page_and_items_in_page(
    respx_mock: respx.MockRouter, client: AteraClient
) -> None:
    route = respx_mock.get("/customers").respond(200, json=envelope([{"CustomerID": 12, "CustomerName": "Acme"}]))

    (customer,) = hooks.gateway_customer_list(client)

    sent = route.calls.last.request
    assert sent.headers["x-api-key"] == KEY
    assert "authorization" not in sent.headers
    assert KEY not in str(sent.url)
    assert sent.url.params["page"] == "1" and sent.url.params["itemsInPage"] == "50"
    assert customer.ref == "at:12" and customer.name == "Acme"


@respx.mock(base_url=API, assert_all_called=True)
def test_resolve_is_a_put_without_a_body(respx_mock: respx.MockRouter, client: AteraClient) -> None:
    route = respx_mock.put("/alerts/9876").respond(204)

    effect = hooks.gateway_alert_action(client, "9876", "resolve", "dk-1")

    assert route.calls.last.request.content == b""
    assert effect.vendor_id == "9876"


@respx.mock(base_url=API)
def test_a_400_on_an_open_alert_is_not_taken_for_success(respx_mock: respx.MockRouter, client: AteraClient) -> None:
    problem = {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": "Alert cannot be resolved"}
    respx_mock.put("/alerts/9876").respond(400, json=problem)
    respx_mock.get("/alerts/9876").respond(200, json={"AlertID": 9876, "Title": "Disk", "Archived": False})

    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_alert_action(client, "9876", "resolve", "dk-1")

    assert caught.value.status == 400
    assert "Bad Request: Alert cannot be resolved" in str(caught.value)


@respx.mock(base_url=API)
def test_a_server_that_ignores_page_fails_loudly_instead_of_looping(
    respx_mock: respx.MockRouter, client: AteraClient
) -> None:
    same = envelope([{"AgentID": 1, "MachineName": "PC-1"}], total_pages=3)
    route = respx_mock.get("/agents").respond(200, json=same)

    with pytest.raises(VendorUnavailable, match="did not advance"):
        hooks.gateway_device_find(client, "SERIAL-1", None)

    assert route.call_count == 2


@respx.mock(base_url=API)
def test_a_login_page_instead_of_json_names_the_base_url(respx_mock: respx.MockRouter, client: AteraClient) -> None:
    respx_mock.get("/alerts").respond(200, html="<html>Sign in to Atera</html>")

    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_alert_list(client, None)

    assert "base_url" in str(caught.value)


def test_atera_times_without_an_offset_are_utc() -> None:
    assert timestamp("2026-02-04T09:00:00") == datetime(2026, 2, 4, 9, 0, tzinfo=timezone.utc)
    assert timestamp("2021-03-27T00:22:14.781Z") == datetime(2021, 3, 27, 0, 22, 14, 781000, tzinfo=timezone.utc)
    assert timestamp(None) is None and timestamp("yesterday") is None


def test_a_connection_without_a_key_fails_at_start_up() -> None:
    connection = Connection(id="at", workspace="w", vendor="atera", base_url=API)

    with pytest.raises(ConfigError, match="api_key"):
        AteraClient(connection)
