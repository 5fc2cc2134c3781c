"""The simulator keeps NinjaOne's contract: auth, error shapes, paging, reset, throttling."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.testing.simulator import Faults
from gateway_ninjaone.simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, NinjaOneSimulator


@pytest.fixture
def http(sim: NinjaOneSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=5) as client:
        yield client


def bearer(http: httpx.Client, scope: str = "monitoring management") -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET,
            "scope": scope}  # fmt: skip
    answer = http.post("/ws/oauth/token", data=form)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and "refresh_token" not in body
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_demo_tenant_matches_the_demo_psa_customers(sim: NinjaOneSimulator) -> None:
    names = [o["name"] for o in sim.organizations.values()]

    assert names == ["Acme Corp", "Globex", "Initech"]
    for org in sim.organizations.values():
        devices = sim.devices_of(org["id"])
        assert 2 <= len(devices) <= 3
        assert all(d["system"]["serialNumber"] and d["systemName"] for d in devices)
        alerts = [a for a in sim.alerts.values() if a["deviceId"] in {d["id"] for d in devices}]
        assert len(alerts) >= 2


def test_api_without_a_valid_bearer_gets_ninjaones_401(http: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer made-up"}):
        answer = http.get("/v2/organizations", headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"error": "not_authenticated", "error_description": "Invalid credentials",
                                 "error_code": 10}  # fmt: skip


def test_token_endpoint_refuses_json_bad_secrets_and_offline_access(http: httpx.Client) -> None:
    form = {"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}

    assert http.post("/ws/oauth/token", json=form).status_code == 400
    wrong = http.post("/ws/oauth/token", data={**form, "client_secret": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    offline = http.post("/ws/oauth/token", data={**form, "scope": "monitoring offline_access"})
    assert offline.status_code == 400 and offline.json()["error"] == "invalid_scope"
    basic = http.post("/ws/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))  # fmt: skip
    assert basic.status_code == 200


def test_devices_page_by_after_id_with_a_short_last_page(http: httpx.Client) -> None:
    headers = bearer(http)

    first = http.get("/v2/devices", params={"pageSize": 4}, headers=headers).json()
    second = http.get("/v2/devices", params={"pageSize": 4, "after": first[-1]["id"]}, headers=headers).json()

    assert [d["id"] for d in first] == [1001, 1002, 1003, 1004]
    assert [d["id"] for d in second] == [1005, 1006, 1007]
    assert "system" not in first[0]  # the basic list; the serial is in the device detail


def test_reset_answers_204_then_404_with_ninjaones_error_body(sim: NinjaOneSimulator, http: httpx.Client) -> None:
    headers = bearer(http)
    uid = sim.sample_alert_id()

    first = http.delete(f"/v2/alert/{uid}", headers=headers)
    again = http.post(f"/v2/alert/{uid}/reset", json={}, headers=headers)

    assert first.status_code == 204 and first.content == b""
    assert again.status_code == 404
    assert again.json()["resultCode"] == "FAILURE" and again.json()["errorMessage"] == "Alert not found"
    assert sim.reset_count(uid) == 1
    assert uid not in {a["uid"] for a in http.get("/v2/alerts", headers=headers).json()}


def test_reset_with_a_read_only_token_is_forbidden(sim: NinjaOneSimulator, http: httpx.Client) -> None:
    uid = sim.sample_alert_id()

    answer = http.delete(f"/v2/alert/{uid}", headers=bearer(http, scope="monitoring"))

    assert answer.status_code == 403
    assert sim.alert_exists(uid)


def test_throttling_answers_429_with_retry_after(sim: NinjaOneSimulator, http: httpx.Client) -> None:
    headers = bearer(http)
    sim.set_faults(Faults(throttle_rate=1.0, retry_after=3))

    answer = http.get("/v2/alerts", headers=headers)

    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "3"
    assert answer.json()["resultCode"] == "FAILURE"
