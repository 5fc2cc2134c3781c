"""Narrow checks of single client calls (respx) and of the pure mapping helpers."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from gateway.errors import ConfigError
from gateway.models import Connection, StatusCategory
from gateway.plugins import load_plugins, simulator_factories

from gateway_halopsa.client import HaloClient, error_detail
from gateway_halopsa.mapping import parse_time, status_category
from gateway_halopsa.settings import HaloSettings, load_settings

HOST = "https://acme.halopsa.test"


def _client(**settings) -> HaloClient:
    return HaloClient(
        Connection(
            id="halo-unit",
            workspace="acme",
            vendor="halopsa",
            base_url=HOST + "/api",
            settings={"client_id": "app-id", **settings},
            secrets={"client_secret": "s3cr3t-value"},
        )
    )


@respx.mock(assert_all_called=True)
def test_token_request_carries_client_credentials_scope_and_tenant(respx_mock):
    respx_mock.get(f"{HOST}/api/authinfo").respond(json={"auth_url": "https://auth.halopsa.test/auth"})
    token = respx_mock.post("https://auth.halopsa.test/auth/token", params={"tenant": "acme"}).respond(
        json={"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}
    )
    api = respx_mock.get(f"{HOST}/api/Status").respond(json=[{"id": 1, "name": "New"}])

    client = _client(tenant="acme")
    assert client.statuses() == [{"id": 1, "name": "New"}]

    form = {k: v[0] for k, v in parse_qs(token.calls.last.request.content.decode()).items()}
    assert form == {"grant_type": "client_credentials", "client_id": "app-id", "client_secret": "s3cr3t-value", "scope": "all"}
    assert api.calls.last.request.headers["Authorization"] == "Bearer tok-1"


@respx.mock
def test_a_401_fetches_a_new_token_and_retries_once(respx_mock):
    respx_mock.post(f"{HOST}/auth/token").mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "old", "expires_in": 3600}),
            httpx.Response(200, json={"access_token": "new", "expires_in": 3600}),
        ]
    )
    route = respx_mock.get(f"{HOST}/api/TicketType").mock(
        side_effect=lambda request: httpx.Response(401)
        if request.headers["Authorization"] == "Bearer old"
        else httpx.Response(200, json=[{"id": 1, "name": "Incident"}])
    )

    client = _client(auth_url=f"{HOST}/auth")  # configured: no discovery call

    assert [t["name"] for t in client.ticket_types()] == ["Incident"]
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer old", "Bearer new"]


def test_error_detail_reads_text_json_and_bearer_challenges():
    assert error_detail(httpx.Response(400, text="Summary is required")) == "Summary is required"
    assert error_detail(httpx.Response(400, json="Invalid ticket")) == "Invalid ticket"
    assert error_detail(httpx.Response(400, json={"error": "invalid_client"})) == "invalid_client"
    challenge = httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    assert error_detail(challenge) == 'Bearer error="invalid_token"'


def test_halo_timestamps_parse_as_utc_including_seven_digit_fractions():
    assert parse_time("2024-05-01T14:00:00.1234567") == datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone.utc)
    assert parse_time("1900-01-01T00:00:00") is None
    assert parse_time(None) is None


def test_status_category_rules_and_overrides():
    settings = HaloSettings(status_categories={"7": "resolved"}, status_type_categories={"3": "closed"})
    assert status_category({"id": 1, "name": "Renewal Due"}, HaloSettings()) is StatusCategory.IN_PROGRESS
    assert status_category({"id": 5, "name": "With User"}, HaloSettings()) is StatusCategory.AWAITING_CUSTOMER
    assert status_category({"id": 7, "name": "Done?"}, settings) is StatusCategory.RESOLVED
    assert status_category({"id": 11, "name": "Archived", "type": 3}, settings) is StatusCategory.CLOSED


def test_bad_settings_fail_at_connect():
    with pytest.raises(ConfigError):
        load_settings({"client_id": "x", "status_categories": {"1": "done"}})
    with pytest.raises(ConfigError):
        _client(client_id="")


def test_plugin_and_simulator_load_through_entry_points(monkeypatch):
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "halopsa")
    loaded = load_plugins()

    info = loaded.vendors["halopsa"]
    assert loaded.broken == []
    assert info.attachment_cap_bytes == 25 * 1024 * 1024
    assert [(w.requests, w.per_seconds) for w in info.default_rate_limit.windows] == [(300, 300.0)]
    assert info.secret_settings == ("client_secret",)
    assert simulator_factories()["halopsa"].__name__ == "HaloSimulator"
