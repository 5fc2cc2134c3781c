"""Alert actions through the real gateway: HTTP API, a real redis-server, rq jobs, this plugin,
and the Atera simulator over loopback HTTP (``build_env``, the conformance suite's harness).

The ``ConformanceSuite`` itself writes to tickets, which an RMM does not have; these are its
RMM counterparts: a resolve lands once, survives a lost answer and a 429, and an acknowledge
is refused before anything is queued.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from gateway.testing.conformance import Env, build_env
from gateway.testing.simulator import Faults

from gateway_atera.simulator import DEMO_API_KEY, AteraSimulator


@pytest.fixture
def env(redis_client: redis.Redis) -> Iterator[Env]:
    sim = AteraSimulator()
    sim.seed_demo()
    yield from build_env(sim, redis_client, connection="atera-conf")


def sim_of(env: Env) -> AteraSimulator:
    assert isinstance(env.sim, AteraSimulator)
    return env.sim


def resolve(env: Env, alert_id: str, key: str | None = None) -> str:
    response = env.post(f"/v1/alerts/{env.ref(alert_id)}/actions", {"action": "resolve"}, key=key)
    assert response.status_code == 202, response.text
    return response.json()["write_id"]


def test_resolve_through_the_gateway_archives_the_alert_once(env: Env) -> None:
    sim = sim_of(env)
    alert_id = sim.sample_alert_id()

    first = resolve(env, alert_id, key="atera-resolve-1")
    again = resolve(env, alert_id, key="atera-resolve-1")
    env.drain()

    assert first == again
    assert env.write(first)["status"] == "succeeded"
    assert sim.alert_resolved(alert_id)
    assert sim.resolve_count(alert_id) == 1
    assert alert_id not in sim.open_alert_ids()


def test_resolve_whose_answer_is_lost_is_reconciled_not_sent_again(env: Env) -> None:
    sim = sim_of(env)
    alert_id = sim.sample_alert_id()
    sim.set_faults(Faults(drop_after_commit_rate=1.0, writes_only=True))

    write_id = resolve(env, alert_id)
    env.drain()
    sim.set_faults(Faults())

    write = env.write(write_id)
    assert write["status"] == "succeeded", write
    assert sim.stats["dropped_after_commit"] >= 1
    assert sim.resolve_count(alert_id) == 1
    assert write["attempts"][-1]["outcome"] == "reconciled"


def test_resolve_waits_out_a_429_and_lands_once(env: Env) -> None:
    sim = sim_of(env)
    first, second = sim.open_alert_ids()[:2]
    sim.set_faults(Faults(throttle_rate=0.5, retry_after=1, writes_only=True, seed=3))

    writes = [resolve(env, first), resolve(env, second)]
    env.drain(timeout=60)
    sim.set_faults(Faults())

    assert sim.stats["throttled"] > 0
    assert all(env.write(w)["status"] == "succeeded" for w in writes)
    assert sim.resolve_count(first) == sim.resolve_count(second) == 1


def test_an_alert_resolved_in_the_console_meanwhile_is_a_success(env: Env) -> None:
    sim = sim_of(env)
    alert_id = sim.sample_alert_id()
    with sim.lock:
        sim.alerts[int(alert_id)]["Archived"] = True  # a technician resolved it in Atera

    write_id = resolve(env, alert_id)
    env.drain()

    assert env.write(write_id)["status"] == "succeeded"
    assert sim.resolve_count(alert_id) == 0


def test_acknowledge_is_501_with_the_reason_and_nothing_is_sent(env: Env) -> None:
    sim = sim_of(env)
    alert_id = sim.sample_alert_id()

    response = env.post(f"/v1/alerts/{env.ref(alert_id)}/actions", {"action": "acknowledge"})

    assert response.status_code == 501
    assert response.json()["extra"] == {"vendor": "atera", "capability": "alert_acknowledge"}
    assert "no acknowledge" in response.json()["detail"]
    env.drain()
    assert sim.stats["requests"] == 0
    assert alert_id in sim.open_alert_ids()


def test_the_resolve_is_audited_without_the_api_key(env: Env) -> None:
    alert_id = sim_of(env).sample_alert_id()

    write_id = resolve(env, alert_id)
    env.drain()

    records = env.get("/v1/admin/audit", params={"write_id": write_id}).json()
    calls = [r for r in records if r["kind"] == "vendor_call"]
    assert any(r["attributes"].get("http.request.method") == "PUT" for r in calls)
    assert all(r["attributes"].get("http.response.status_code") == 204 for r in calls
               if r["attributes"].get("http.request.method") == "PUT")  # fmt: skip
    assert DEMO_API_KEY not in str(records)


def test_resolve_through_5xx_is_retried_without_doubling(env: Env) -> None:
    sim = sim_of(env)
    alert_ids = sim.open_alert_ids()[:3]
    sim.set_faults(Faults(error_rate=0.5, error_status=503, writes_only=True, seed=1))

    writes = [resolve(env, a) for a in alert_ids]
    env.drain()
    sim.set_faults(Faults())

    assert sim.stats["errors"] > 0
    assert all(env.write(w)["status"] == "succeeded" for w in writes)
    assert [sim.resolve_count(a) for a in alert_ids] == [1, 1, 1]


def test_resolve_of_an_alert_atera_does_not_know_dead_letters_at_once(env: Env) -> None:
    write_id = resolve(env, "424242")
    env.drain()

    letter = env.get(f"/v1/admin/dead-letters/{write_id}")
    assert letter.status_code == 200, letter.text
    attempts = letter.json()["write"]["attempts"]
    assert [(a["status"], a["outcome"]) for a in attempts] == [(404, "rejected")]
    assert "Alert 424242 was not found" in attempts[-1]["error"]


def test_the_plugin_registers_as_an_rmm_with_honest_capabilities(env: Env) -> None:
    plugins = env.get("/v1/plugins").json()
    atera = next(p for p in plugins["plugins"] if p["vendor"] == "atera")

    assert atera["kind"] == "rmm" and atera["title"] == "Atera"
    assert set(atera["capabilities"]) == {"customer_read", "device_read", "device_link", "alert_read", "alert_resolve"}
    assert atera["default_rate_limit"]["windows"] == [{"requests": 300, "per_seconds": 60.0}]
    assert "atera" not in {b["name"] for b in plugins["broken"]}
