"""Alert actions through the real gateway (HTTP API, a real redis-server, rq jobs, this plugin)
against the simulator over loopback HTTP: each lands once, even when the answer is lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from gateway.testing.conformance import Env, build_env
from gateway.testing.simulator import Faults
from gateway_templatevendor.simulator import TemplateVendorSimulator


@pytest.fixture
def env(redis_client: redis.Redis) -> Iterator[Env]:
    sim = TemplateVendorSimulator()
    sim.seed_demo()
    yield from build_env(sim, redis_client, connection="tv")


def act(env: Env, alert_id: str, action: str, key: str | None = None) -> str:
    response = env.post(f"/v1/alerts/{env.ref(alert_id)}/actions", {"action": action}, key=key)
    assert response.status_code == 202, response.text
    return response.json()["write_id"]


@pytest.mark.parametrize(("action", "status"), [("acknowledge", "acknowledged"), ("resolve", "resolved")])
def test_an_alert_action_lands_once(env: Env, action: str, status: str) -> None:
    sim: TemplateVendorSimulator = env.sim  # type: ignore[assignment]
    alert_id = sim.sample_alert_id()
    first = act(env, alert_id, action, key="tv-1")
    again = act(env, alert_id, action, key="tv-1")
    env.drain()
    assert first == again
    assert env.write(first)["status"] == "succeeded"
    assert sim.alert_status(alert_id) == status
    assert sim.action_count(alert_id, action) == 1


def test_a_resolve_whose_answer_is_lost_is_reconciled_not_sent_again(env: Env) -> None:
    sim: TemplateVendorSimulator = env.sim  # type: ignore[assignment]
    alert_id = sim.sample_alert_id()
    sim.set_faults(Faults(drop_after_commit_rate=1.0, writes_only=True))
    write_id = act(env, alert_id, "resolve")
    env.drain()
    sim.set_faults(Faults())
    write = env.write(write_id)
    assert write["status"] == "succeeded", write
    assert write["attempts"][-1]["outcome"] == "reconciled"
    assert sim.action_count(alert_id, "resolve") == 1
