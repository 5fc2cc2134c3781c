"""Refused credentials, as Autotask answers them (a 500 with an ``errors`` body for an unknown
UserName or ApiIntegrationCode, a 401 only for a known user's wrong Secret), and what the gateway
does with them: no retry, the write dead-lettered with the cause, the connection ``auth_failed``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from gateway.core import Gateway
from gateway.errors import VendorAuthFailed, VendorUnavailable
from gateway.models import Connection
from gateway.testing.conformance import Env, build_env
from gateway.testing.simulator import Faults

from gateway_autotask import hooks
from gateway_autotask.simulator import AutotaskSimulator

API = "/atservicesrest/v1.0"


def _headers(**changes: str) -> dict[str, str]:
    headers = {
        "ApiIntegrationCode": AutotaskSimulator.DEMO_INTEGRATION_CODE,
        "UserName": AutotaskSimulator.DEMO_USERNAME,
        "Secret": AutotaskSimulator.DEMO_SECRET,
    }
    return {**headers, **changes}


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        (_headers(UserName="nobody@example.com"), 500, "UserName is invalid."),
        (_headers(ApiIntegrationCode="NOT-A-TRACKING-ID"), 500, "IntegrationCode is invalid."),
        (_headers(Secret="wrong"), 401, "Unauthorized: check the UserName, Secret and ApiIntegrationCode headers."),
    ],
    ids=["unknown-username", "unknown-integration-code", "wrong-secret"],
)
def test_the_simulator_refuses_credentials_as_autotask_does(
    sim: AutotaskSimulator, running: Any, headers: dict[str, str], status: int, message: str
) -> None:
    answer = httpx.get(f"{running.base_url}{API}/Tickets/7800", headers=headers)
    assert (answer.status_code, answer.json()) == (status, {"errors": [message]})


def test_a_zone_lookup_for_an_unknown_user_is_a_500_with_an_errors_body(sim: AutotaskSimulator, running: Any) -> None:
    answer = httpx.get(f"{running.base_url}{API}/zoneInformation", params={"user": "nobody@example.com"})
    assert (answer.status_code, answer.json()) == (500, {"errors": ["Zone information could not be determined"]})


@pytest.fixture
def connect(make_connection: Callable[..., Connection]) -> Iterator[Callable[..., Any]]:
    """A client whose connection differs from the demo one by ``secrets`` or ``settings``."""
    made: list[Any] = []

    def build(**changes: Any) -> Any:
        made.append(hooks.gateway_connect(make_connection(**changes)))
        return made[-1]

    yield build
    for client in made:
        client.close()


def test_an_unknown_integration_code_is_an_auth_failure_not_a_server_fault(connect: Callable[..., Any]) -> None:
    secrets = {"secret": AutotaskSimulator.DEMO_SECRET, "integration_code": "NOT-A-TRACKING-ID"}
    with pytest.raises(VendorAuthFailed) as caught:
        connect(secrets=secrets).ticket("7800")
    assert caught.value.status == 500
    assert "IntegrationCode is invalid" in str(caught.value)
    assert "NOT-A-TRACKING-ID" not in str(caught.value)


def test_a_zone_lookup_for_an_unknown_user_is_an_auth_failure(connect: Callable[..., Any]) -> None:
    with pytest.raises(VendorAuthFailed, match="Zone information could not be determined"):
        connect(settings={"username": "nobody@example.com"}).ticket("7800")


def test_a_real_server_error_stays_transient(client: Any, sim: AutotaskSimulator) -> None:
    client.zone  # discovered before the fault, which the lookup would otherwise meet  # noqa: B018
    sim.set_faults(Faults(error_rate=1.0))
    try:
        with pytest.raises(VendorUnavailable) as caught:
            client.ticket("7800")
    finally:
        sim.set_faults(Faults())
    assert not isinstance(caught.value, VendorAuthFailed)


# --------------------------------------------------------------------------- through the gateway


@pytest.fixture
def env(redis_client: redis.Redis) -> Iterator[Env]:
    simulator = AutotaskSimulator()
    simulator.seed_demo()
    yield from build_env(simulator, redis_client, connection="at")


def _connection_view(env: Env) -> dict[str, Any]:
    (view,) = [c for c in env.get("/v1/connections").json() if c["id"] == "at"]
    return view


def test_a_refused_integration_code_dead_letters_the_write_at_once_and_marks_the_connection(env: Env) -> None:
    sim = env.sim
    assert isinstance(sim, AutotaskSimulator)
    ref = env.ref(sim.sample_ticket_id())
    assert _connection_view(env).get("state", "ok") == "ok"
    accepted = env.post(f"/v1/tickets/{ref}/replies", {"text": "We are on it"}, key="auth-1")
    assert accepted.status_code == 202, accepted.text
    sim.integration_codes = {"ANOTHER-TRACKING-ID"}  # the integration is deleted in Autotask meanwhile
    refused_before = sim.stats["unauthorized"]

    env.drain()

    write = env.write(accepted.json()["write_id"])
    assert write["status"] == "dead"
    assert [a["outcome"] for a in write["attempts"]] == ["rejected"]  # one attempt, no retries
    assert "IntegrationCode is invalid" in write["error"]
    assert sim.stats["unauthorized"] - refused_before == 1
    view = _connection_view(env)
    assert view["state"] == "auth_failed"
    assert "IntegrationCode is invalid" in view["auth_error"]
    assert sim.DEMO_INTEGRATION_CODE not in str(view)

    sim.integration_codes = {sim.DEMO_INTEGRATION_CODE}  # fixed at the vendor
    again = env.post(f"/v1/tickets/{ref}/replies", {"text": "Back on it"}, key="auth-2")
    assert again.status_code == 202, again.text
    env.drain()
    assert env.write(again.json()["write_id"])["status"] == "succeeded"
    assert _connection_view(env).get("state", "ok") == "ok"


def test_a_success_in_another_process_clears_the_mark(env: Env) -> None:
    sim = env.sim
    assert isinstance(sim, AutotaskSimulator)
    users = dict(sim.api_users)
    sim.api_users.clear()
    assert env.get(f"/v1/tickets/{env.ref(sim.sample_ticket_id())}").status_code == 502
    assert _connection_view(env)["state"] == "auth_failed"
    sim.api_users.update(users)  # the API user is back

    worker = Gateway(env.gw.settings, env.gw.redis)  # another process, which never saw the refusal
    try:
        assert worker.call("at", "gateway_ticket_get", ticket_id=sim.sample_ticket_id()) is not None
    finally:
        worker.close()

    assert _connection_view(env).get("state", "ok") == "ok"
