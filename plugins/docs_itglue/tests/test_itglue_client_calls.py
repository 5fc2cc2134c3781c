"""Narrow unit tests of single IT Glue client calls (respx): which regional host a connection
talks to, the request it sends, paging signals other than ``next-page``, a 429 without
Retry-After, and documents answered without a ``resource-url``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from gateway.errors import ConfigError, VendorRateLimited
from gateway.models import Connection
from gateway_itglue import hooks
from gateway_itglue.client import ITGlueClient
from gateway_itglue.constants import RETRY_AFTER_FALLBACK_SECONDS

KEY = "ITG.unit-test-key"


def client_for(base_url: str, **settings: Any) -> ITGlueClient:
    connection = Connection(
        id="itg", workspace="w", vendor="itglue", base_url=base_url, settings=settings, secrets={"api_key": KEY}
    )
    return ITGlueClient(connection)


def page(rows: list[dict[str, Any]], **meta: Any) -> httpx.Response:
    return httpx.Response(200, json={"data": rows, "meta": meta, "links": {}},
                          headers={"content-type": "application/vnd.api+json"})


def org(org_id: int, name: str) -> dict[str, Any]:
    return {"id": str(org_id), "type": "organizations", "attributes": {"name": name}}


@pytest.mark.parametrize(
    ("base_url", "region", "host"),
    [
        ("https://api.itglue.com", None, "api.itglue.com"),
        ("https://api.eu.itglue.com", "eu", "api.eu.itglue.com"),
        ("https://acme-msp.au.itglue.com/account", None, "api.au.itglue.com"),  # the browser address
        ("https://acme-msp.itglue.com", "us", "api.itglue.com"),
    ],
)
def test_the_regional_api_host_is_called_with_the_key_and_media_type(
    base_url: str, region: str | None, host: str
) -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(f"https://{host}/organizations").mock(return_value=page([org(1, "Acme Corp")], **{"next-page": None}))
        client = client_for(base_url, region=region)
        assert [o.attributes.name for o in client.organizations()] == ["Acme Corp"]
    sent = route.calls.last.request
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["accept"] == sent.headers["content-type"] == "application/vnd.api+json"
    assert sent.url.params["page[number]"] == "1" and sent.url.params["page[size]"] == "100"


def test_a_region_that_contradicts_the_host_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="region 'eu' does not match"):
        client_for("https://api.itglue.com", region="eu")
    with pytest.raises(ConfigError, match="not an IT Glue address"):
        client_for("http://127.0.0.1:9100", region="au")


def test_total_pages_stands_in_when_next_page_is_missing() -> None:
    with respx.mock() as mock:
        route = mock.get("https://api.itglue.com/organizations").mock(
            side_effect=[
                page([org(1, "Acme Corp")], **{"current-page": 1, "total-pages": 2}),
                page([org(2, "Globex")], **{"current-page": 2, "total-pages": 2}),
            ]
        )
        names = [o.attributes.name for o in client_for("https://api.itglue.com").organizations()]
    assert names == ["Acme Corp", "Globex"] and route.call_count == 2


def test_a_429_without_retry_after_waits_the_documented_fallback() -> None:
    with respx.mock() as mock:
        mock.get("https://api.itglue.com/organizations").mock(
            return_value=httpx.Response(429, json={"errors": [{"status": 429, "title": "Too Many Requests"}]})
        )
        with pytest.raises(VendorRateLimited) as caught:
            list(client_for("https://api.itglue.com").organizations())
    assert caught.value.retry_after == RETRY_AFTER_FALLBACK_SECONDS


def test_a_document_without_resource_url_gets_a_link_only_from_web_url() -> None:
    doc = {"id": "55", "type": "documents", "attributes": {"name": "DR plan", "organization-id": 7, "resource-url": None}}
    with respx.mock() as mock:
        mock.get("https://api.itglue.com/organizations/7/relationships/documents").mock(
            return_value=page([doc], **{"next-page": None})
        )
        mock.get("https://api.itglue.com/organizations/7/relationships/document_folders").mock(
            return_value=httpx.Response(403, json={"message": "Forbidden"})  # a key that may not list folders
        )
        without = hooks.gateway_runbook_list(client_for("https://api.itglue.com"), "7")
        with_web = hooks.gateway_runbook_list(client_for("https://api.itglue.com", web_url="https://acme.itglue.com"), "7")
    assert without == []
    assert [(r.title, r.url) for r in with_web] == [("DR plan", "https://acme.itglue.com/7/docs/55")]
