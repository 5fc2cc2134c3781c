"""Narrow checks of single Hudu client calls, with the vendor mocked by respx."""

from __future__ import annotations

import httpx
import pytest
import respx

from gateway.errors import ConfigError, VendorRateLimited
from gateway.models import Connection
from gateway_hudu import hooks
from gateway_hudu.client import HuduClient
from gateway_hudu.settings import HuduSettings

HOST = "https://docs.acme-msp.test"
KEY = "k3y-that-must-stay-in-the-header"


def connection(base_url: str = HOST, settings: HuduSettings | dict | None = None) -> Connection:
    return Connection(
        id="hudu-main", workspace="w", vendor="hudu", base_url=base_url, settings=settings, secrets={"api_key": KEY}
    )


@respx.mock
def test_the_api_key_travels_in_the_x_api_key_header_only() -> None:
    route = respx.get(f"{HOST}/api/v1/companies").mock(
        return_value=httpx.Response(200, json={"companies": []})
    )
    # A base URL given with the API path is not doubled.
    client = hooks.gateway_connect(connection(f"{HOST}/api/v1/"))
    assert hooks.gateway_customer_list(client) == []
    request = route.calls.last.request
    assert request.headers["x-api-key"] == KEY
    assert KEY not in str(request.url)
    assert request.url.params["page"] == "1" and request.url.params["page_size"] == "25"


@respx.mock
def test_runbooks_never_include_another_companys_articles() -> None:
    # A Hudu that ignored the company_id filter, answering a bare array with relative urls.
    respx.get(f"{HOST}/api/v1/articles").mock(
        return_value=httpx.Response(
            200,
            json=[
                {"id": 1, "name": "Ours", "company_id": 17, "url": "/kb/ours-1a2b3c"},
                {"id": 2, "name": "Theirs", "company_id": 18, "url": "/kb/theirs-4d5e6f"},
                {"id": 3, "name": "Global", "company_id": None, "url": "/kb/global-7a8b9c"},
            ],
        )
    )
    settings = {"web_url": "https://hudu.acme-msp.test"}
    client = hooks.gateway_connect(connection(settings=settings))
    runbooks = hooks.gateway_runbook_list(client, "17")
    assert [(r.title, r.url) for r in runbooks] == [("Ours", "https://hudu.acme-msp.test/kb/ours-1a2b3c")]
    assert respx.calls.last.request.url.params["company_id"] == "17"


@respx.mock
def test_retry_later_without_retry_after_waits_for_the_next_five_minute_window() -> None:
    respx.get(f"{HOST}/api/v1/companies").mock(
        return_value=httpx.Response(429, text="Retry later\n", headers={"content-type": "text/plain"})
    )
    client = HuduClient(connection(), clock=lambda: 1_800_000_299.5)  # half a second before it turns
    with pytest.raises(VendorRateLimited) as caught:
        list(client.companies())
    assert caught.value.retry_after == 3  # 0.5 s to the boundary + 2 s margin, rounded up
    assert "Retry later" in str(caught.value)


@respx.mock
def test_a_missing_article_answered_with_null_is_none() -> None:
    respx.get(f"{HOST}/api/v1/articles/42").mock(return_value=httpx.Response(200, content=b"null"))
    assert HuduClient(connection()).article(42) is None


def test_a_connection_without_an_api_key_or_with_a_bad_web_url_fails_at_connect() -> None:
    with pytest.raises(ConfigError, match="api_key"):
        HuduClient(Connection(id="h", workspace="w", vendor="hudu", base_url=HOST))
    with pytest.raises(ConfigError, match="web_url"):
        HuduClient(connection(settings={"web_url": "docs.acme-msp.test"}))
