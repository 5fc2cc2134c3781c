"""The IT Glue plugin's hooks against its simulator over loopback HTTP: organizations as
customers with their PSA ids, documents (root and foldered) as runbooks with the links that open
them, paging, a wrong key, the JSON:API media type and a 429 with Retry-After."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.errors import VendorRateLimited, VendorRejected
from gateway.models import Connection
from gateway.testing.simulator import Faults
from gateway_itglue import hooks
from gateway_itglue.client import ITGlueClient
from gateway_itglue.simulator import ITGlueSimulator


@pytest.fixture(scope="module")
def running_sim() -> Iterator[ITGlueSimulator]:
    simulator = ITGlueSimulator()
    simulator.seed_demo()
    running = simulator.serve_in_thread()
    yield simulator
    running.stop()


@pytest.fixture
def sim(running_sim: ITGlueSimulator) -> Iterator[ITGlueSimulator]:
    running_sim.stats.clear()
    yield running_sim
    running_sim.set_faults(Faults())
    running_sim.api_keys = {running_sim.api_key}
    running_sim.account_url = None


@pytest.fixture
def connect(sim: ITGlueSimulator) -> Iterator[Callable[..., ITGlueClient]]:
    made: list[ITGlueClient] = []

    def open_client(api_key: str | None = None, **settings: Any) -> ITGlueClient:
        connection = Connection(
            id="itg",
            workspace="acme-msp",
            vendor="itglue",
            base_url=sim.base_url,
            settings=settings,
            secrets={"api_key": api_key or sim.api_key},
            timeout_seconds=5.0,
        )
        client = hooks.gateway_connect(connection)
        made.append(client)
        return client

    yield open_client
    for client in made:
        client.close()


def runbooks_of(client: ITGlueClient, sim: ITGlueSimulator, name: str) -> dict[str, str]:
    links = hooks.gateway_runbook_list(client, str(sim.organization_id(name)))
    return {link.title: link.url for link in links}


def test_organizations_are_customers_with_their_connectwise_ids(
    sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]
) -> None:
    customers = hooks.gateway_customer_list(connect())
    assert [c.name for c in customers] == ["Acme Corp", "Globex", "Initech"]
    by_name = {c.name: c for c in customers}
    assert by_name["Acme Corp"].integration_ids == {"connectwise": "250"}
    assert by_name["Globex"].integration_ids == {"connectwise": "251"}
    assert by_name["Initech"].integration_ids == {}
    assert by_name["Initech"].ref == f"itg:{sim.organization_id('Initech')}"


def test_organization_types_setting_keeps_only_those_types(
    sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]
) -> None:
    vendor_org = sim.add_organization("Dell Support", type_name="Vendor")
    try:
        names = [c.name for c in hooks.gateway_customer_list(connect(organization_types=["customer"]))]
        assert "Dell Support" not in names and "Acme Corp" in names
        assert "Dell Support" in [c.name for c in hooks.gateway_customer_list(connect())]
    finally:
        with sim.lock:
            del sim.organizations[vendor_org]


def test_runbooks_are_root_and_folder_documents_with_their_links(
    sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]
) -> None:
    client = connect()
    acme = sim.organization_id("Acme Corp")
    acme_links = runbooks_of(client, sim, "Acme Corp")
    assert sorted(acme_links) == [
        "Onboard a new user",
        "Reset the site-to-site VPN tunnel",  # in the Network folder
        "Restore the file share from backup",
    ]
    vpn = next(i for i in sim.document_ids(acme) if sim.documents[i]["name"].startswith("Reset"))
    assert acme_links["Reset the site-to-site VPN tunnel"] == f"{sim.base_url}/{acme}/docs/{vpn}"
    # Initech: one document two folders deep, and the archived one left out.
    assert sorted(runbooks_of(client, sim, "Initech")) == ["Badge system outage", "Restart the TPS report server"]


def test_runbooks_carry_the_customer_reference(sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]) -> None:
    globex = sim.organization_id("Globex")
    links = hooks.gateway_runbook_list(connect(), str(globex))
    assert len(links) == 2
    assert {link.customer_ref for link in links} == {f"itg:{globex}"}
    assert {link.ref for link in links} == {f"itg:{i}" for i in sim.document_ids(globex)}


def test_archived_and_folder_settings(sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]) -> None:
    with_archived = runbooks_of(connect(include_archived=True), sim, "Initech")
    assert "Old fax server notes" in with_archived
    root_only = runbooks_of(connect(include_folders=False), sim, "Initech")
    assert sorted(root_only) == ["Restart the TPS report server"]


def test_links_use_the_account_address_resource_url_names(
    sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]
) -> None:
    sim.account_url = "https://acme-msp.itglue.com"
    globex = sim.organization_id("Globex")
    urls = runbooks_of(connect(), sim, "Globex").values()
    assert urls and all(url.startswith(f"https://acme-msp.itglue.com/{globex}/docs/") for url in urls)


def test_small_pages_are_followed_to_the_last_one(sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]) -> None:
    client = connect(page_size=1)
    assert [c.name for c in hooks.gateway_customer_list(client)] == ["Acme Corp", "Globex", "Initech"]
    # One request per page of one organization, and none past the last page.
    assert sim.stats["requests"] == 3
    assert len(runbooks_of(client, sim, "Acme Corp")) == 3


def test_unknown_or_malformed_customer_has_no_runbooks(
    sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]
) -> None:
    client = connect()
    assert hooks.gateway_runbook_list(client, "999") == []
    requests = sim.stats["requests"]
    assert hooks.gateway_runbook_list(client, "../organizations") == []
    assert sim.stats["requests"] == requests  # a bad id never reaches a URL


def test_a_psa_company_finds_its_organization(sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]) -> None:
    client = connect()
    [org] = client.organizations_in_psa("manage", 251)
    assert org.attributes.name == "Globex"
    assert client.organizations_in_psa("autotask", 251) == []
    assert client.organization(sim.organization_id("Initech")).attributes.name == "Initech"  # type: ignore[union-attr]
    assert client.organization("4242") is None


def test_a_document_is_found_alone_and_only_under_its_organization(
    sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]
) -> None:
    client = connect()
    acme, globex = sim.organization_id("Acme Corp"), sim.organization_id("Globex")
    doc_id = sim.document_ids(acme)[0]
    assert client.document(doc_id).attributes.name == sim.documents[doc_id]["name"]  # type: ignore[union-attr]
    assert client.document(doc_id, acme) is not None
    assert client.document(doc_id, globex) is None


def test_a_wrong_key_is_refused_with_where_it_was_sent_and_never_echoed(
    sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]
) -> None:
    wrong = "ITG.not-this-one-0000"
    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_customer_list(connect(api_key=wrong))
    assert caught.value.status == 403
    message = str(caught.value)
    assert "Forbidden" in message and sim.base_url in message and "api.eu.itglue.com" in message
    assert wrong not in message and wrong not in caught.value.body
    assert sim.stats["forbidden"] == 1


def test_every_request_speaks_the_json_api_media_type(
    sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]
) -> None:
    client = connect()
    hooks.gateway_customer_list(client)
    hooks.gateway_runbook_list(client, str(sim.organization_id("Acme Corp")))
    assert sim.stats["requests"] > 0 and sim.stats["unsupported_media_type"] == 0


def test_a_429_reports_the_retry_after_it_came_with(
    sim: ITGlueSimulator, connect: Callable[..., ITGlueClient]
) -> None:
    sim.set_faults(Faults(throttle_rate=1.0, retry_after=7))
    with pytest.raises(VendorRateLimited) as caught:
        hooks.gateway_customer_list(connect())
    assert caught.value.retry_after == 7
    assert "Too Many Requests" in str(caught.value)
