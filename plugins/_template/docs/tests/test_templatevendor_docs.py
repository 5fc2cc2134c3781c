"""The plugin as the assembled gateway runs it (config, secrets from the environment, the
shared limiter, the audit trail) against the simulator over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from gateway import audit
from gateway.errors import VendorRejected
from gateway.testing.conformance import Env, build_env
from gateway_templatevendor.simulator import TemplateVendorSimulator


@pytest.fixture
def env(redis_client: redis.Redis) -> Iterator[Env]:
    sim = TemplateVendorSimulator()
    sim.seed_demo()
    yield from build_env(sim, redis_client, connection="tv")


def test_customers_carry_their_ids_in_other_tools(env: Env) -> None:
    customers = {c.name: c for c in env.gw.call("tv", "gateway_customer_list")}
    assert list(customers) == ["Acme Corp", "Globex", "Initech"]
    assert customers["Acme Corp"].integration_ids["connectwise"] == "250"


def test_runbooks_are_the_customers_own_live_articles_with_links(env: Env) -> None:
    sim: TemplateVendorSimulator = env.sim  # type: ignore[assignment]
    runbooks = env.gw.call("tv", "gateway_runbook_list", customer_id="1")
    assert [r.title for r in runbooks] == sim.article_titles(1)
    assert all(r.url.startswith(env.server.base_url + "/kb/") and r.customer_ref == "tv:1" for r in runbooks)
    assert env.gw.call("tv", "gateway_runbook_list", customer_id="not-a-company") == []


def test_every_call_is_audited_without_the_key(env: Env, redis_client: redis.Redis) -> None:
    env.gw.call("tv", "gateway_runbook_list", customer_id="2")
    records = [r for r in audit.read_audit(redis_client) if r.kind == "vendor_call"]
    assert records and {r.attributes["url.path"] for r in records} == {"/api/v1/articles"}
    assert env.sim.api_key not in str(records)  # type: ignore[attr-defined]


def test_a_wrong_api_key_is_rejected_not_retried(env: Env) -> None:
    env.sim.api_key = "another-key"  # type: ignore[attr-defined]
    with pytest.raises(VendorRejected) as caught:
        env.gw.call("tv", "gateway_customer_list")
    assert caught.value.status == 401
