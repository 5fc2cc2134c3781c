"""The Hudu plugin as the assembled gateway runs it: config file tables, secrets from the
environment, the shared limiter and the audit trail, against the simulator over loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from gateway import audit
from gateway.core import Gateway
from gateway.errors import ConfigError
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, settings_from, workspace_config
from gateway_hudu.simulator import HuduSimulator


def build_gateway(sim: HuduSimulator, redis_client: redis.Redis, settings: dict) -> Gateway:
    demo = sim.demo_connection(sim.base_url)
    conn = connection_config("hudu-docs", {**demo, "settings": settings})
    tables = {"workspaces": [workspace_config("acme-msp", [conn], {new_api_key(): ALL_SCOPES})]}
    return Gateway(settings_from(tables), redis_client)


@pytest.fixture
def sim() -> Iterator[HuduSimulator]:
    simulator = HuduSimulator()
    simulator.seed_demo()
    running = simulator.serve_in_thread()
    yield simulator
    running.stop()


def test_the_gateway_lists_hudu_customers_and_runbooks_and_audits_without_the_key(
    sim: HuduSimulator, redis_client: redis.Redis
) -> None:
    gw = build_gateway(sim, redis_client, {"web_url": "https://docs.acme-msp.test", "page_size": 25})
    try:
        customers = gw.call("hudu-docs", "gateway_customer_list")
        acme = next(c for c in customers if c.name == "Acme Corp")
        assert acme.integration_ids["ninjaone"] == "7"
        runbooks = gw.call("hudu-docs", "gateway_runbook_list", customer_id=acme.ref.split(":", 1)[1])
        assert len(runbooks) == 3
        records = [r for r in audit.read_audit(redis_client) if r.kind == "vendor_call"]
        assert {r.attributes["url.path"] for r in records} == {"/api/v1/companies", "/api/v1/articles"}
        assert sim.api_key not in str(records)
    finally:
        gw.close()


def test_a_misspelt_setting_fails_at_start_up_naming_it(sim: HuduSimulator, redis_client: redis.Redis) -> None:
    with pytest.raises(ConfigError, match="page_sise"):
        build_gateway(sim, redis_client, {"page_sise": 10})
