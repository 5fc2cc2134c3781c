"""The IT Glue plugin as the assembled gateway runs it (``build_env``: config tables, secrets in
the environment, the shared limiter, the audit trail, the HTTP API), against the simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from gateway.core import Gateway
from gateway.errors import ConfigError
from gateway.testing.conformance import Env, build_env
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, settings_from, workspace_config
from gateway_itglue.settings import ITGlueSettings
from gateway_itglue.simulator import ITGlueSimulator

SETTINGS = {"page_size": 2, "organization_types": ["Customer"], "include_archived": False}


@pytest.fixture
def env(redis_client: redis.Redis) -> Iterator[Env]:
    sim = ITGlueSimulator()
    sim.seed_demo()
    yield from build_env(sim, redis_client, connection="itg-docs", settings=SETTINGS)


def test_the_plugin_loads_as_a_docs_vendor_with_its_rate_limit(env: Env) -> None:
    plugins = env.get("/v1/plugins").json()
    itglue = next(p for p in plugins["plugins"] if p["vendor"] == "itglue")
    assert itglue["kind"] == "docs"
    assert sorted(itglue["capabilities"]) == ["customer_read", "runbook"]
    assert itglue["title"] == "IT Glue"
    assert itglue["default_rate_limit"]["windows"] == [{"requests": 3000, "per_seconds": 300.0}]
    assert "itglue" not in [b["name"] for b in plugins["broken"]]


def test_settings_are_converted_and_runbooks_listed_with_links_and_no_key_in_audit(env: Env) -> None:
    settings = env.gw.connection("itg-docs").settings
    assert isinstance(settings, ITGlueSettings) and settings.page_size == 2
    customers = env.gw.call("itg-docs", "gateway_customer_list")
    acme = next(c for c in customers if c.name == "Acme Corp")
    assert acme.integration_ids == {"connectwise": "250"}
    runbooks = env.gw.call("itg-docs", "gateway_runbook_list", customer_id=acme.ref.split(":", 1)[1])
    assert len(runbooks) == 3
    assert all(r.url.startswith(f"{env.server.base_url}/{acme.ref.split(':', 1)[1]}/docs/") for r in runbooks)

    records = [r for r in env.get("/v1/admin/audit").json() if r["kind"] == "vendor_call"]
    paths = {r["attributes"]["url.path"] for r in records}
    assert "/organizations" in paths and any(p.endswith("/relationships/document_folders") for p in paths)
    assert all(r["attributes"]["http.response.status_code"] == 200 for r in records)
    assert env.sim.api_key not in str(records)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("settings", "named"), [({"page_sise": 10}, "page_sise"), ({"page_size": 5000}, "page_size")])
def test_a_bad_setting_stops_start_up_naming_it(redis_client: redis.Redis, settings: dict, named: str) -> None:
    demo = ITGlueSimulator().demo_connection("https://api.itglue.com")
    conn = connection_config("itg-bad", {**demo, "settings": settings})
    tables = {"workspaces": [workspace_config("acme-msp", [conn], {new_api_key(): ALL_SCOPES})]}
    with pytest.raises(ConfigError, match=named):
        Gateway(settings_from(tables), redis_client)
