"""Reads through the plugin's hooks against the Atera simulator over loopback HTTP: customers,
agents as devices with their console links (by id, serial or host name), and open alerts."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from gateway.errors import VendorRejected

from gateway_atera import hooks
from gateway_atera.client import AteraClient
from gateway_atera.simulator import DEMO_API_KEY, AteraSimulator


def agent_id(sim: AteraSimulator, machine_name: str) -> str:
    return str(sim.agent_named(machine_name)["AgentID"])


# -- customers ---------------------------------------------------------------------------------


def test_customers_are_the_demo_companies_with_their_atera_ids(client: AteraClient) -> None:
    customers = hooks.gateway_customer_list(client)

    assert [c.name for c in customers] == ["Acme Corp", "Globex", "Initech"]
    assert customers[0].ref == "at-test:12"
    assert customers[0].integration_ids == {"atera": "12"}


def test_every_page_is_read_even_when_atera_caps_the_page_size(
    sim: AteraSimulator, connect: Callable[..., AteraClient]
) -> None:
    acme = sim.customer_named("Acme Corp")["CustomerID"]
    for n in range(120):
        sim.add_agent(acme, f"ACME-KIOSK{n:03}", f"KSK{n:05}")
    client = connect(page_size=100)  # the simulator answers at most 50 a page, as Atera is said to

    found = hooks.gateway_device_find(client, "ksk00119", None)

    assert found is not None and found.hostname == "ACME-KIOSK119"
    assert sim.stats["requests"] == 3  # 127 agents: pages of 50, 50 and 27


# -- devices -----------------------------------------------------------------------------------


def test_an_agent_is_a_device_with_atera_s_own_console_link(sim: AteraSimulator, client: AteraClient) -> None:
    raw = sim.agent_named("ACME-SRV01")

    device = hooks.gateway_device_get(client, str(raw["AgentID"]))

    assert device is not None
    assert device.name == device.hostname == "ACME-SRV01"
    assert device.serial == "4HXQ7M3"
    assert device.customer_ref == "at-test:12"
    assert device.online is True
    assert device.url == raw["AppViewUrl"]
    assert httpx.get(device.url).status_code == 200  # the simulator serves the console page


def test_an_agent_without_a_link_gets_the_console_device_page(
    sim: AteraSimulator, connect: Callable[..., AteraClient]
) -> None:
    raw = sim.agent_named("GLOBEX-PC114")
    assert raw["AppViewUrl"] is None
    client = connect(web_url="https://console.example/")

    device = hooks.gateway_device_get(client, str(raw["AgentID"]))

    assert device is not None
    assert device.url == f"https://console.example/new/rmm/device/{raw['DeviceGuid']}/agent"


def test_unknown_or_malformed_agent_ids_are_none(sim: AteraSimulator, client: AteraClient) -> None:
    assert hooks.gateway_device_get(client, "999999") is None
    before = sim.stats["requests"]
    assert hooks.gateway_device_get(client, "../customers") is None
    assert sim.stats["requests"] == before  # never sent


def test_find_by_serial_ignores_case_and_spaces(sim: AteraSimulator, client: AteraClient) -> None:
    device = hooks.gateway_device_find(client, "  pf4b2k9q ", "someone-else")

    assert device is not None and device.ref == f"at-test:{agent_id(sim, 'ACME-LT023')}"


def test_find_by_host_name_takes_a_full_dns_name(sim: AteraSimulator, client: AteraClient) -> None:
    device = hooks.gateway_device_find(client, None, "globex-dc02.globex.corp")

    assert device is not None and device.hostname == "GLOBEX-DC02"
    assert hooks.gateway_device_find(client, "NO-SUCH-SERIAL", "GLOBEX-DC02").hostname == "GLOBEX-DC02"  # type: ignore[union-attr]
    assert hooks.gateway_device_find(client, "NO-SUCH-SERIAL", "nowhere") is None


def test_a_placeholder_bios_serial_never_matches(sim: AteraSimulator, client: AteraClient) -> None:
    requests_before = sim.stats["requests"]

    assert hooks.gateway_device_find(client, "To Be Filled By O.E.M.", None) is None
    assert sim.stats["requests"] == requests_before  # no search for a serial that names no machine
    by_name = hooks.gateway_device_find(client, "To Be Filled By O.E.M.", "ACME-WS007")
    assert by_name is not None and by_name.serial is None and by_name.online is False


def test_a_reinstalled_machine_resolves_to_its_freshest_agent(sim: AteraSimulator, client: AteraClient) -> None:
    acme = sim.customer_named("Acme Corp")["CustomerID"]
    stale = sim.add_agent(acme, "ACME-LT023", "PF4B2K9Q", last_seen_minutes=60 * 24 * 30)

    by_serial = hooks.gateway_device_find(client, "PF4B2K9Q", None)
    by_name = hooks.gateway_device_find(client, None, "ACME-LT023")

    assert by_serial is not None and by_name is not None
    assert by_serial.ref == by_name.ref == f"at-test:{agent_id(sim, 'ACME-LT023')}"
    assert by_serial.ref != f"at-test:{stale['AgentID']}"


# -- alerts ------------------------------------------------------------------------------------


def test_only_open_alerts_are_listed(sim: AteraSimulator, client: AteraClient) -> None:
    alerts = hooks.gateway_alert_list(client, None)

    titles = {a.message for a in alerts}
    assert "Windows Update failed" not in titles  # resolved
    assert "Pending reboot" not in titles  # snoozed
    assert {a.ref.split(":")[1] for a in alerts} == set(sim.open_alert_ids())
    disk = next(a for a in alerts if a.message == "Disk Space Critical")
    assert disk.severity == "Critical" and disk.active
    assert disk.device_ref == f"at-test:{agent_id(sim, 'ACME-SRV01')}"
    assert disk.customer_ref == "at-test:12"
    assert disk.created_at is not None and disk.created_at.tzinfo is not None


def test_alerts_of_one_customer(client: AteraClient) -> None:
    initech = hooks.gateway_alert_list(client, "17")

    assert {a.message for a in initech} == {"Backup job failed", "Agent has not reported for 30 minutes",
                                            "Printer toner low"}  # fmt: skip
    printer = next(a for a in initech if a.message == "Printer toner low")
    assert printer.device_ref is None  # an SNMP device, not an agent
    assert hooks.gateway_alert_list(client, "not-a-customer") == []


def test_one_alert_is_read_until_it_is_resolved(sim: AteraSimulator, client: AteraClient) -> None:
    alert_id = sim.sample_alert_id()

    open_alert = hooks.gateway_alert_get(client, alert_id)
    hooks.gateway_alert_action(client, alert_id, "resolve", "dk-read-1")

    assert open_alert is not None and open_alert.ref == f"at-test:{alert_id}"
    assert hooks.gateway_alert_get(client, alert_id) is None
    assert hooks.gateway_alert_get(client, "424242") is None


# -- auth --------------------------------------------------------------------------------------


def test_a_refused_key_is_final_and_named_without_the_key(connect: Callable[..., AteraClient]) -> None:
    client = connect(api_key="not-the-key")

    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_customer_list(client)

    assert caught.value.status == 401
    assert "API key was refused" in str(caught.value)
    assert "not-the-key" not in str(caught.value) and DEMO_API_KEY not in str(caught.value)


def test_the_simulator_answers_a_missing_key_like_atera(sim: AteraSimulator) -> None:
    response = httpx.get(f"{sim.base_url}/api/v3/alerts")

    assert response.status_code == 401
    assert response.content == b""
    assert "www-authenticate" not in response.headers
