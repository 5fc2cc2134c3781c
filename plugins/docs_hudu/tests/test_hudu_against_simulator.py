"""The Hudu plugin against its simulator over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry import trace

from gateway.errors import VendorRateLimited, VendorRejected, VendorUnavailable
from gateway.models import Capability, Connection, VendorKind
from gateway.plugins import load_plugins, simulator_factories
from gateway.ratelimit import RateLimiter
from gateway.redact import Redactor
from gateway.runtime import Runtime
from gateway.testing.simulator import Faults
from gateway_hudu import hooks
from gateway_hudu.client import HuduClient
from gateway_hudu.constants import WINDOW_MARGIN_SECONDS
from gateway_hudu.settings import HuduSettings
from gateway_hudu.simulator import HuduSimulator


@pytest.fixture
def sim() -> Iterator[HuduSimulator]:
    simulator = HuduSimulator()
    simulator.seed_demo()
    running = simulator.serve_in_thread()
    yield simulator
    running.stop()


def connection(
    sim: HuduSimulator,
    *,
    api_key: str | None = None,
    settings: HuduSettings | None = None,
    runtime: Runtime | None = None,
) -> Connection:
    return Connection(
        id="hudu-main",
        workspace="acme-msp",
        vendor="hudu",
        base_url=sim.base_url,
        settings=settings,
        secrets={"api_key": api_key or sim.api_key},
        timeout_seconds=5.0,
        runtime=runtime,
    )


def vendor_calls(sim: HuduSimulator) -> int:
    return sim.stats["requests"]


# --------------------------------------------------------------------------- registration


def test_hudu_registers_as_a_docs_vendor_with_runbooks_and_customers() -> None:
    loaded = load_plugins()
    info = loaded.vendors["hudu"]
    assert info.kind is VendorKind.DOCS
    assert info.capabilities == {Capability.RUNBOOK, Capability.CUSTOMER_READ}
    assert info.secret_settings == ("api_key",)
    assert info.settings_type is HuduSettings
    windows = {(w.requests, w.per_seconds) for w in info.default_rate_limit.windows}
    assert windows == {(300, 60.0), (1500, 300.0)}
    assert simulator_factories()["hudu"] is HuduSimulator


def test_demo_connection_reaches_the_simulator(sim: HuduSimulator) -> None:
    config = sim.demo_connection(sim.base_url)
    client = hooks.gateway_connect(
        Connection(
            id="demo",
            workspace="demo",
            vendor=config["vendor"],
            base_url=config["base_url"],
            settings=config["settings"],
            secrets=config["secrets"],
        )
    )
    names = [c.name for c in hooks.gateway_customer_list(client)]
    assert names == ["Acme Corp", "Globex", "Initech"]


# --------------------------------------------------------------------------- auth


def test_a_wrong_api_key_is_refused_with_401_and_the_key_never_shows(sim: HuduSimulator) -> None:
    client = hooks.gateway_connect(connection(sim, api_key="not-the-right-key-123"))
    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_customer_list(client)
    assert caught.value.status == 401
    assert "Unauthorized" in str(caught.value)
    assert "not-the-right-key-123" not in str(caught.value)
    assert sim.stats["unauthorized"] == 1


def test_a_company_scoped_key_sees_only_its_companies(sim: HuduSimulator) -> None:
    globex = sim.company_id("Globex")
    sim.add_api_key("globex-only-key-9d2", company_ids=[globex])
    client = hooks.gateway_connect(connection(sim, api_key="globex-only-key-9d2"))
    assert [c.name for c in hooks.gateway_customer_list(client)] == ["Globex"]
    assert hooks.gateway_runbook_list(client, str(sim.company_id("Acme Corp"))) == []


# --------------------------------------------------------------------------- customers


def test_customer_list_reads_every_page(sim: HuduSimulator) -> None:
    for n in range(1, 61):
        sim.add_company(f"Customer {n:03d}")
    client = hooks.gateway_connect(connection(sim))
    before = vendor_calls(sim)
    customers = hooks.gateway_customer_list(client)
    assert len(customers) == 63
    assert customers[-1].name == "Customer 060"
    assert vendor_calls(sim) - before == 3  # 25 + 25 + 13


def test_customer_list_is_complete_when_hudu_ignores_page_size(sim: HuduSimulator) -> None:
    for n in range(1, 31):
        sim.add_company(f"Customer {n:03d}")
    sim.honour_page_size = False  # serves 25 a page whatever we ask
    client = hooks.gateway_connect(connection(sim, settings=HuduSettings(page_size=10)))
    assert len(hooks.gateway_customer_list(client)) == 33


def test_customers_carry_their_ninjaone_organization_id(sim: HuduSimulator) -> None:
    client = hooks.gateway_connect(connection(sim))
    customers = {c.name: c for c in hooks.gateway_customer_list(client)}
    assert customers["Acme Corp"].integration_ids == {"ninjaone": "7", "connectwise": "250"}
    assert customers["Globex"].integration_ids == {"ninjaone": "9"}
    assert "ninjaone" not in customers["Initech"].integration_ids
    assert customers["Initech"].integration_ids == {"autotask": "INITECH-01"}
    assert customers["Acme Corp"].ref == f"hudu-main:{sim.company_id('Acme Corp')}"
    assert {c.vendor for c in customers.values()} == {"hudu"}


def test_archived_companies_are_not_customers_unless_asked_for(sim: HuduSimulator) -> None:
    sim.add_company("Vandelay Industries", archived=True)
    plain = hooks.gateway_connect(connection(sim))
    assert "Vandelay Industries" not in [c.name for c in hooks.gateway_customer_list(plain)]
    everything = hooks.gateway_connect(connection(sim, settings=HuduSettings(include_archived=True)))
    assert "Vandelay Industries" in [c.name for c in hooks.gateway_customer_list(everything)]


def test_a_ninjaone_organization_finds_its_hudu_company(sim: HuduSimulator) -> None:
    client = HuduClient(connection(sim))
    assert [c.name for c in client.companies_in_integration(9)] == ["Globex"]
    assert client.companies_in_integration(12345) == []


def test_a_missing_company_or_article_reads_as_none(sim: HuduSimulator) -> None:
    client = HuduClient(connection(sim))
    assert client.company(999) is None  # Hudu: 404 {"error": "Company not found"}
    assert client.article(999) is None  # Hudu: 200 null
    acme = client.company(sim.company_id("Acme Corp"))
    assert acme is not None and acme.name == "Acme Corp"


# --------------------------------------------------------------------------- runbooks


def test_runbooks_of_one_company_open_its_articles(sim: HuduSimulator) -> None:
    acme = sim.company_id("Acme Corp")
    client = hooks.gateway_connect(connection(sim))
    runbooks = hooks.gateway_runbook_list(client, str(acme))
    assert [r.title for r in runbooks] == [
        "Reset the site-to-site VPN tunnel",
        "Onboard a new user",
        "Restore the file share from backup",
    ]
    assert all(r.customer_ref == f"hudu-main:{acme}" for r in runbooks)
    # Hudu's article url is absolute: the link is used as Hudu gave it.
    assert all(r.url.startswith(sim.base_url + "/kb/") for r in runbooks)
    assert len({r.url for r in runbooks}) == 3


def test_global_articles_and_drafts_are_not_a_customers_runbooks(sim: HuduSimulator) -> None:
    initech = sim.company_id("Initech")
    client = hooks.gateway_connect(connection(sim))
    titles = [r.title for r in hooks.gateway_runbook_list(client, str(initech))]
    assert titles == ["Restart the TPS report server", "Badge system outage"]
    with_drafts = hooks.gateway_connect(connection(sim, settings=HuduSettings(include_drafts=True)))
    assert "Firewall migration plan" in [r.title for r in hooks.gateway_runbook_list(with_drafts, str(initech))]


def test_article_paths_are_completed_with_the_web_address(sim: HuduSimulator) -> None:
    sim.article_urls = "relative"
    settings = HuduSettings(web_url="https://docs.acme-msp.test")
    client = hooks.gateway_connect(connection(sim, settings=settings))
    runbooks = hooks.gateway_runbook_list(client, str(sim.company_id("Globex")))
    assert runbooks and all(r.url.startswith("https://docs.acme-msp.test/kb/") for r in runbooks)


def test_runbooks_span_pages(sim: HuduSimulator) -> None:
    globex = sim.company_id("Globex")
    for n in range(30):
        sim.add_article(f"Procedure {n:02d}", globex)
    client = hooks.gateway_connect(connection(sim))
    assert len(hooks.gateway_runbook_list(client, str(globex))) == 32


def test_an_unknown_company_has_no_runbooks(sim: HuduSimulator) -> None:
    client = hooks.gateway_connect(connection(sim))
    assert hooks.gateway_runbook_list(client, "999") == []
    calls = vendor_calls(sim)
    assert hooks.gateway_runbook_list(client, "not-a-hudu-id") == []
    assert vendor_calls(sim) == calls  # not worth a call


# --------------------------------------------------------------------------- rate limit and faults


def test_a_spent_window_is_retry_later_until_the_next_window(sim: HuduSimulator) -> None:
    frozen = 1_800_000_100.0  # 100 s into a 5-minute window
    sim.clock = lambda: frozen
    sim.set_window_budget(2)
    client = HuduClient(connection(sim), clock=lambda: frozen)
    client.api_info()
    client.api_info()
    with pytest.raises(VendorRateLimited) as caught:
        client.api_info()
    assert caught.value.status == 429
    assert "Retry later" in caught.value.body
    assert caught.value.retry_after == 200 + WINDOW_MARGIN_SECONDS


def test_hudus_retry_after_header_wins_when_sent(sim: HuduSimulator) -> None:
    frozen = 1_800_000_270.0  # 30 s before the window ends
    sim.clock = lambda: frozen
    sim.set_window_budget(0, retry_after_header=True)
    client = HuduClient(connection(sim), clock=lambda: 0.0)
    with pytest.raises(VendorRateLimited) as caught:
        hooks.gateway_customer_list(client)
    assert caught.value.retry_after == 30


def test_retry_later_pauses_the_connection_for_every_worker(sim: HuduSimulator, redis_client) -> None:
    runtime = Runtime(
        redis=redis_client,
        limiter=RateLimiter(redis_client),
        redactor=Redactor([sim.api_key]),
        tracer=trace.get_tracer("test"),
    )
    sim.set_window_budget(0)
    # 100 s into a window, so the pause (200 s) is longer than an API read may wait.
    client = HuduClient(connection(sim, runtime=runtime), clock=lambda: 1_800_000_100.0)
    with pytest.raises(VendorRateLimited):
        hooks.gateway_customer_list(client)
    paused = runtime.limiter.paused_for("hudu-main")
    assert 195 < paused <= 200 + WINDOW_MARGIN_SECONDS
    calls = vendor_calls(sim)
    other_worker = hooks.gateway_connect(connection(sim, runtime=runtime))
    with pytest.raises(VendorRateLimited):
        hooks.gateway_runbook_list(other_worker, "1")
    assert vendor_calls(sim) == calls  # Hudu was left alone until the window turns


def test_simulated_throttling_answers_retry_later(sim: HuduSimulator) -> None:
    sim.set_faults(Faults(throttle_rate=1.0, retry_after=4))
    client = hooks.gateway_connect(connection(sim))
    with pytest.raises(VendorRateLimited) as caught:
        hooks.gateway_customer_list(client)
    assert caught.value.retry_after == 4
    assert "Retry later" in caught.value.body


def test_a_hudu_server_error_is_retryable(sim: HuduSimulator) -> None:
    sim.set_faults(Faults(error_rate=1.0))
    client = hooks.gateway_connect(connection(sim))
    with pytest.raises(VendorUnavailable) as caught:
        hooks.gateway_runbook_list(client, "1")
    assert caught.value.status == 500


# --------------------------------------------------------------------------- the simulator's own contract


def test_company_jump_redirects_browsers_and_refuses_json(sim: HuduSimulator) -> None:
    headers = {"x-api-key": sim.api_key}
    url = f"{sim.base_url}/api/v1/companies/jump"
    params = {"integration_slug": "ninja", "integration_id": "7"}
    browser = httpx.get(url, params=params, headers={**headers, "accept": "text/html"})
    assert browser.status_code == 302 and "/c/acme-corp" in browser.headers["location"]
    api = httpx.get(url, params=params, headers={**headers, "accept": "application/json"})
    assert api.status_code == 406
