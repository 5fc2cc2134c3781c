"""Alert actions through the real gateway: HTTP API, Redis, rq jobs, plugin, simulator.

The gateway's ``ConformanceSuite`` covers PSA writes (tickets); these are its RMM counterpart
for NinjaOne, built on the same harness (``build_env``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from gateway.testing.conformance import Env, build_env
from gateway.testing.simulator import Faults
from gateway_ninjaone.simulator import NinjaOneSimulator


@pytest.fixture
def env(redis_client: redis.Redis) -> Iterator[Env]:
    sim = NinjaOneSimulator()
    sim.seed_demo()
    yield from build_env(sim, redis_client, connection="nj")


def resolve(env: Env, uid: str, key: str | None = None) -> str:
    response = env.post(f"/v1/alerts/{env.ref(uid)}/actions", {"action": "resolve"}, key=key)
    assert response.status_code == 202, response.text
    return response.json()["write_id"]


def test_resolve_through_the_gateway_resets_the_alert_once(env: Env) -> None:
    sim: NinjaOneSimulator = env.sim  # type: ignore[assignment]
    uid = sim.sample_alert_id()

    write_id = resolve(env, uid, key="nj-resolve-1")
    env.drain()

    assert env.write(write_id)["status"] == "succeeded"
    assert not sim.alert_exists(uid)
    assert sim.reset_count(uid) == 1


def test_resolve_dropped_after_commit_is_reconciled_not_sent_again(env: Env) -> None:
    sim: NinjaOneSimulator = env.sim  # type: ignore[assignment]
    first, second = list(sim.alerts)[:2]
    resolve(env, first)
    env.drain()  # a clean write first: the token is now cached for every worker
    sim.set_faults(Faults(drop_after_commit_rate=1.0, writes_only=True))

    write_id = resolve(env, second)
    env.drain()
    sim.set_faults(Faults())

    write = env.write(write_id)
    assert write["status"] == "succeeded", write
    assert sim.stats["dropped_after_commit"] >= 1
    assert sim.reset_count(second) == 1
    assert [a["outcome"] for a in write["attempts"]][-1] == "reconciled"


def test_acknowledge_through_the_gateway_is_501_and_nothing_is_queued(env: Env) -> None:
    sim: NinjaOneSimulator = env.sim  # type: ignore[assignment]
    uid = sim.sample_alert_id()

    response = env.post(f"/v1/alerts/{env.ref(uid)}/actions", {"action": "acknowledge"})

    assert response.status_code == 501
    assert response.json()["extra"] == {"vendor": "ninjaone", "capability": "alert_acknowledge"}
    env.drain()
    assert sim.alert_exists(uid)
    assert sim.stats["requests"] == 0
