"""Customers across tools: one customer, its company in every PSA, its RMM organization and its
documentation company, matched by config, integration id or name, through the real gateway
(API, real redis-server, every plugin talking to its simulator over loopback HTTP)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway.customers import Source, match_customers, normalise_name
from gateway.errors import ConfigError
from gateway.models import Customer, VendorKind
from gateway.settings import CustomerLink
from gateway.testing.harness import settings_from
from gateway.testing.simulator import Faults



def _harness() -> Any:
    """``test_customers_harness.py``, loaded once by path (``tests/`` is not a package)."""
    name = "gateway_tests_customers_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_customers_harness.py"))
        assert spec and spec.loader
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


h = _harness()


@pytest.fixture(scope="module")
def served() -> Iterator[Any]:
    tools = h.serve_tools()
    yield tools
    h.stop_tools(tools)


@pytest.fixture
def tools(served: Any, redis_client: redis.Redis) -> Iterator[Any]:
    yield from h.build_tools(served, redis_client)


def links_by_connection(customer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {link["connection"]: link for link in customer["links"]}


def customer_named(listing: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in listing["customers"] if c["name"] == name)


# --------------------------------------------------------------------------- through the API


def test_a_customer_is_linked_in_all_five_tools_and_each_link_says_how(tools: Any) -> None:
    response = tools.get("/v1/customers")

    assert response.status_code == 200, response.text
    listing = response.json()
    assert listing["errors"] == {}
    acme = customer_named(listing, "Acme Corp")
    by_conn = links_by_connection(acme)
    assert set(by_conn) == {"cw", "at", "halo", "ninja", "hudu"}
    assert by_conn["cw"]["ref"] == "cw:250"
    assert by_conn["at"]["ref"] == "at:175"
    assert by_conn["ninja"]["ref"] == "ninja:7"
    assert by_conn["halo"]["ref"] == "halo:21"
    assert by_conn["hudu"]["kind"] == "docs" and by_conn["ninja"]["kind"] == "rmm"
    # Hudu's company lists NinjaOne organization 7 and ConnectWise company 250.
    assert by_conn["ninja"]["matched_by"] == "integration_id"
    assert "ninjaone id 7" in by_conn["ninja"]["evidence"]
    assert by_conn["hudu"]["matched_by"] == "integration_id"
    # Autotask calls it "ACME Corp": the same name once normalised.
    assert by_conn["at"]["matched_by"] == "name"
    assert tools.get(f"/v1/customers/{acme['id']}").json() == acme


def test_the_customer_views_company_refs_are_its_psa_companies(tools: Any) -> None:
    from gateway.customers import company_refs

    acme_id = customer_named(tools.get("/v1/customers").json(), "Acme Corp")["id"]
    assert sorted(company_refs(tools.gw, "tools", acme_id) or []) == ["at:175", "cw:250", "halo:21"]
    assert company_refs(tools.gw, "tools", "nobody") is None


def test_globex_corporation_in_autotask_is_globex_everywhere_else(tools: Any) -> None:
    globex = customer_named(tools.get("/v1/customers").json(), "Globex")
    by_conn = links_by_connection(globex)
    assert by_conn["at"]["name"] == "Globex Corporation"
    assert {by_conn[c]["ref"] for c in ("cw", "at", "ninja")} == {"cw:251", "at:176", "ninja:9"}


def test_a_company_in_one_tool_only_is_its_own_customer(tools: Any) -> None:
    umbrella = customer_named(tools.get("/v1/customers").json(), "Umbrella Health")
    assert [(link["ref"], link["matched_by"]) for link in umbrella["links"]] == [("at:178", "unmatched")]


def test_config_overrides_beat_automatic_matching(served: Any, redis_client: redis.Redis) -> None:
    # Halo's "Contoso Ltd" (12) is really Acme; Halo's "Acme Corp" (21) would match by name.
    # Autotask's "ACME Corp" is kept off this customer by hand.
    config = [{"id": "acme", "name": "Acme Corp", "refs": ["halo:12", "cw:250"], "exclude": ["at:175"]}]
    for tools in h.build_tools(served, redis_client, customers=config):
        acme = tools.get("/v1/customers/acme").json()
        by_conn = links_by_connection(acme)

        assert acme["configured"] is True
        assert by_conn["halo"]["ref"] == "halo:12" and by_conn["halo"]["matched_by"] == "config"
        assert by_conn["cw"]["matched_by"] == "config"
        assert "at" not in by_conn
        # Automatic matching still fills in the tools config does not name.
        assert by_conn["ninja"]["ref"] == "ninja:7" and by_conn["ninja"]["matched_by"] == "integration_id"
        listing = tools.get("/v1/customers").json()
        owners = {link["ref"]: c["id"] for c in listing["customers"] for link in c["links"]}
        assert owners["halo:21"] != "acme"
        assert owners["at:175"] != "acme"


def test_a_configured_record_the_tool_does_not_have_is_shown_as_not_found(served: Any, redis_client: redis.Redis) -> None:
    config = [{"id": "ghost", "name": "Ghost Ltd", "refs": ["ninja:999"]}]
    for tools in h.build_tools(served, redis_client, customers=config):
        ghost = tools.get("/v1/customers/ghost").json()
        assert ghost["links"] == [{
            "connection": "ninja", "vendor": "ninjaone", "kind": "rmm", "ref": "ninja:999", "name": "",
            "matched_by": "config", "evidence": "workspaces.customers 'ghost'", "found": False,
        }]  # fmt: skip


def test_the_map_is_cached_and_refresh_recomputes_it(tools: Any) -> None:
    ninja = tools.sim("ninja")
    first = tools.get("/v1/customers").json()
    assert first["expires_in"] is not None and 0 < first["expires_in"] <= 600
    ninja.add_organization("Hooli", org_id=40)
    calls = ninja.stats["requests"]

    cached = tools.get("/v1/customers").json()
    assert ninja.stats["requests"] == calls, "a cached map asks no tool"
    assert "Hooli" not in {c["name"] for c in cached["customers"]}

    refreshed = tools.get("/v1/customers", params={"refresh": "true"}).json()
    assert "Hooli" in {c["name"] for c in refreshed["customers"]}
    del ninja.organizations[40]


def test_a_tool_that_fails_is_named_and_the_others_still_match(tools: Any) -> None:
    tools.sim("hudu").set_faults(Faults(error_rate=1.0, error_status=503))

    listing = tools.get("/v1/customers").json()

    assert set(listing["errors"]) == {"hudu"}
    acme = links_by_connection(customer_named(listing, "Acme Corp"))
    assert set(acme) == {"cw", "at", "halo", "ninja"}
    # Kept only briefly, so the map heals once Hudu answers again.
    assert listing["expires_in"] <= 30


def test_a_customers_runbooks_are_the_hudu_articles_of_its_company_with_their_urls(tools: Any) -> None:
    hudu = tools.sim("hudu")
    acme_id = customer_named(tools.get("/v1/customers").json(), "Acme Corp")["id"]

    response = tools.get(f"/v1/customers/{acme_id}/runbooks")

    assert response.status_code == 200, response.text
    body = response.json()
    company = hudu.company_id("Acme Corp")
    expected = {a["name"]: a for a in hudu.articles.values() if a["company_id"] == company and not a["draft"]}
    assert {r["title"] for r in body["runbooks"]} == set(expected)
    for runbook in body["runbooks"]:
        assert runbook["url"].startswith(("http://", "https://"))
        assert runbook["url"].startswith(tools.base_url("hudu"))
        assert runbook["url"].endswith(expected[runbook["title"]]["slug"])
        assert runbook["customer_ref"] == f"hudu:{company}"


def test_a_customers_alerts_come_from_its_ninjaone_organization(tools: Any) -> None:
    ninja = tools.sim("ninja")
    acme_id = customer_named(tools.get("/v1/customers").json(), "Acme Corp")["id"]
    devices = {d["id"] for d in ninja.devices_of(7)}

    alerts = tools.get(f"/v1/customers/{acme_id}/alerts").json()["alerts"]

    expected = {uid for uid, a in ninja.alerts.items() if a["deviceId"] in devices}
    assert {a["alert"]["ref"] for a in alerts} == {f"ninja:{uid}" for uid in expected}
    assert all(a["tickets"] == [] for a in alerts)


def test_an_unknown_customer_is_404_and_reading_needs_the_read_scope(served: Any, redis_client: redis.Redis) -> None:
    for tools in h.build_tools(served, redis_client):
        assert tools.get("/v1/customers/nobody").status_code == 404
        assert tools.api.get("/v1/customers").status_code == 401
    for tools in h.build_tools(served, redis_client, scopes=["tickets:write"]):
        assert tools.get("/v1/customers").status_code == 403


# --------------------------------------------------------------------------- the matcher itself


def customer(ref: str, name: str, vendor: str, **ids: str) -> Customer:
    return Customer(ref=ref, name=name, vendor=vendor, integration_ids=ids)


def test_names_match_without_case_punctuation_or_legal_form() -> None:
    assert normalise_name("The ACME Corp., Inc.") == normalise_name("Acme Corporation") == "acme"
    assert normalise_name("Smith & Sons Ltd") == "smith and sons"
    assert normalise_name("Co") == "co"  # a name that is only a legal form stays itself


def test_a_name_two_companies_of_one_psa_share_is_not_matched_by_name() -> None:
    sources = [
        Source("cw", "connectwise", VendorKind.PSA, [customer("cw:1", "Acme", "connectwise"), customer("cw:2", "ACME Inc", "connectwise")]),
        Source("ninja", "ninjaone", VendorKind.RMM, [customer("ninja:7", "Acme", "ninjaone", ninjaone="7")]),
    ]
    found = match_customers([], sources)
    assert sorted(len(c.links) for c in found) == [1, 1, 1]


def test_an_integration_id_two_connections_of_one_vendor_could_own_is_not_used() -> None:
    sources = [
        Source("ninja-a", "ninjaone", VendorKind.RMM, [customer("ninja-a:7", "Alpha", "ninjaone", ninjaone="7")]),
        Source("ninja-b", "ninjaone", VendorKind.RMM, [customer("ninja-b:7", "Beta", "ninjaone", ninjaone="7")]),
        Source("hudu", "hudu", VendorKind.DOCS, [customer("hudu:1", "Gamma", "hudu", ninjaone="7")]),
    ]
    assert sorted(len(c.links) for c in match_customers([], sources)) == [1, 1, 1]


def test_two_configured_customers_are_never_joined_by_name() -> None:
    sources = [Source("cw", "connectwise", VendorKind.PSA, [customer("cw:1", "Acme", "connectwise")])]
    config = [CustomerLink(id="a", name="Acme", refs=["cw:1"]), CustomerLink(id="b", name="Acme")]
    found = {c.id: [link.ref for link in c.links] for c in match_customers(config, sources)}
    assert found == {"a": ["cw:1"], "b": []}


def test_automatic_ids_are_unique_and_stable() -> None:
    sources = [
        Source("cw", "connectwise", VendorKind.PSA, [customer("cw:1", "Acme", "connectwise")]),
        Source("at", "autotask", VendorKind.PSA, [customer("at:1", "Acme!", "autotask"), customer("at:2", "acme", "autotask")]),
    ]
    first = [(c.id, [link.ref for link in c.links]) for c in match_customers([], sources)]
    assert first == [(c.id, [link.ref for link in c.links]) for c in match_customers([], sources)]
    assert len({cid for cid, _ in first}) == len(first)


def test_customer_config_names_the_bad_field() -> None:
    base = {"id": "ws", "connections": [{"id": "cw", "vendor": "connectwise", "base_url": "http://127.0.0.1:1"}]}
    with pytest.raises(ConfigError, match=r"customers\[0\]\.refs\[0\]: no connection 'ninja'"):
        settings_from({"workspaces": [{**base, "customers": [{"id": "acme", "name": "Acme", "refs": ["ninja:7"]}]}]})
    with pytest.raises(ConfigError, match=r"customers\[1\]\.refs\[0\]: cw:1 is already a record of customer 'a'"):
        settings_from({"workspaces": [{**base, "customers": [
            {"id": "a", "name": "A", "refs": ["cw:1"]}, {"id": "b", "name": "B", "refs": ["cw:1"]},
        ]}]})  # fmt: skip
