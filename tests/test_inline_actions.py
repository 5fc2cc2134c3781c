"""Inline actions from a ticket across tools, through the real pipeline (API, real redis-server,
rq jobs, every plugin talking to its simulator over loopback HTTP): a ticket created from a
NinjaOne alert shows the alert and its device, resolves it exactly once, is refused an
acknowledge with NinjaOne's reason, links the device's console page and its customer's Hudu
runbooks; a PSA configuration item resolves to its RMM device."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway import links
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

CREATE_FIELDS = {
    "cw": {"board": "1", "company": "250"},
    "at": {"companyID": 175, "queueID": 5, "dueDateTime": "2030-03-21T00:00:00Z"},
    "halo": {"client_id": 21},
}


@pytest.fixture(scope="module")
def served() -> Iterator[Any]:
    tools = h.serve_tools()
    yield tools
    h.stop_tools(tools)


@pytest.fixture
def tools(served: Any, redis_client: redis.Redis) -> Iterator[Any]:
    yield from h.build_tools(served, redis_client)


def fs01(tools: Any) -> dict[str, Any]:
    return tools.served.facts["fs01"]


def new_alert(tools: Any, message: str) -> str:
    """A fresh alert on ACME-FS01 (the simulators are shared by the module's tests)."""
    return "ninja:" + tools.sim("ninja").add_alert(fs01(tools)["id"], message, severity="CRITICAL")


def ticket_from_alert(tools: Any, alert_ref: str, connection: str = "cw") -> str:
    body = {"connection": connection, "summary": "From NinjaOne: disk space", "description": "Disk D: is nearly full.",
            "fields": CREATE_FIELDS[connection], "alert": alert_ref}  # fmt: skip
    response = tools.post("/v1/tickets", body)
    assert response.status_code == 202, response.text
    tools.drain()
    write = tools.write(response.json()["write_id"])
    assert write["status"] == "succeeded", write
    return write["result_ref"]


def dashboard_url(tools: Any, device_id: int) -> str:
    return f"{tools.base_url('ninja')}/#/deviceDashboard/{device_id}/overview"


# --------------------------------------------------------------------------- ticket <-> alert


def test_a_ticket_created_from_a_ninjaone_alert_shows_the_alert_and_its_device(tools: Any) -> None:
    alert_ref = new_alert(tools, "Disk D: free space is below 5%")
    ticket_ref = ticket_from_alert(tools, alert_ref)

    related = tools.get(f"/v1/tickets/{ticket_ref}/related").json()

    device_id = fs01(tools)["id"]
    assert related == [
        {"kind": "alert", "ref": alert_ref, "name": "Disk D: free space is below 5%"},
        {"kind": "device", "ref": f"ninja:{device_id}", "name": "ACME-FS01", "url": dashboard_url(tools, device_id)},
    ]
    # The link is kept both ways: the alert knows its ticket.
    alert = tools.get(f"/v1/alerts/{alert_ref}").json()
    assert alert["tickets"] == [ticket_ref]
    assert alert["alert"]["device_ref"] == f"ninja:{device_id}"
    acme = next(c for c in tools.get("/v1/customers").json()["customers"] if c["name"] == "Acme Corp")
    listed = {a["alert"]["ref"]: a["tickets"] for a in tools.get(f"/v1/customers/{acme['id']}/alerts").json()["alerts"]}
    assert listed[alert_ref] == [ticket_ref]
    # What GET /v1/tickets/{ref} shows as related records is the same list.
    assert [r.ref for r in links.related_records(tools.gw, ticket_ref)] == [r["ref"] for r in related]


@pytest.mark.parametrize("connection", ["cw", "at", "halo"])
def test_the_psa_ticket_itself_names_the_alert_it_came_from(tools: Any, connection: str) -> None:
    alert_ref = new_alert(tools, f"Backup failed ({connection})")

    ticket_id = int(ticket_from_alert(tools, alert_ref, connection).split(":", 1)[1])

    sim = tools.sim(connection)
    if connection == "cw":
        # ConnectWise files the initial description as the ticket's first Discussion note.
        text = sim.ticket_notes(str(ticket_id))[0]["text"]
    elif connection == "at":
        text = sim.store.records["Tickets"][ticket_id]["description"]
    else:
        text = sim.tickets[ticket_id]["details"]
    assert text.startswith("Disk D: is nearly full.")
    assert f"- {alert_ref}" in text


def test_the_device_link_is_the_ninjaone_dashboard_url_of_that_device(tools: Any) -> None:
    ticket_ref = ticket_from_alert(tools, new_alert(tools, "CPU over 90%"))

    devices = tools.get(f"/v1/tickets/{ticket_ref}/devices").json()

    device = fs01(tools)
    assert [(d["ref"], d["url"], d["serial"]) for d in devices] == [
        (f"ninja:{device['id']}", dashboard_url(tools, device["id"]), device["system"]["serialNumber"])
    ]


# --------------------------------------------------------------------------- alert actions


def test_resolving_the_alert_from_the_ticket_resets_it_once_even_when_retried(tools: Any) -> None:
    ninja = tools.sim("ninja")
    alert_ref = new_alert(tools, "Service MSSQLSERVER stopped")
    uid = alert_ref.split(":", 1)[1]
    ticket_ref = ticket_from_alert(tools, alert_ref)
    # NinjaOne commits every write and drops the answer: the gateway cannot know it landed.
    ninja.set_faults(Faults(drop_after_commit_rate=1.0, writes_only=True))

    first = tools.post(f"/v1/tickets/{ticket_ref}/alert-actions", {"action": "resolve"}, key="resolve-1")
    again = tools.post(f"/v1/tickets/{ticket_ref}/alert-actions", {"action": "resolve"}, key="resolve-1")
    tools.drain()
    ninja.set_faults(Faults())

    assert first.status_code == again.status_code == 202, first.text
    assert again.json() == {**first.json(), "duplicate": True}
    write = tools.write(first.json()["write_id"])
    assert write["status"] == "succeeded", write
    assert write["target"] == alert_ref
    assert write["attempts"][-1]["outcome"] == "reconciled"
    assert ninja.stats["dropped_after_commit"] >= 1
    assert not ninja.alert_exists(uid)
    assert ninja.reset_count(uid) == 1

    # The caller retries once more after it all landed: still one reset.
    late = tools.post(f"/v1/tickets/{ticket_ref}/alert-actions", {"action": "resolve"}, key="resolve-1")
    tools.drain()
    assert late.json()["write_id"] == first.json()["write_id"]
    assert ninja.reset_count(uid) == 1
    related = tools.get(f"/v1/tickets/{ticket_ref}/related").json()
    assert related[0] == {"kind": "alert", "ref": alert_ref, "name": "Service MSSQLSERVER stopped (resolved)"}
    assert tools.get(f"/v1/alerts/{alert_ref}").json()["alert"]["active"] is False


def test_acknowledging_the_alert_from_the_ticket_is_refused_with_ninjaones_reason(tools: Any) -> None:
    ninja = tools.sim("ninja")
    alert_ref = new_alert(tools, "Reboot pending for 7 days")
    ticket_ref = ticket_from_alert(tools, alert_ref)
    calls = ninja.stats["requests"]

    response = tools.post(f"/v1/tickets/{ticket_ref}/alert-actions", {"action": "acknowledge"})

    assert response.status_code == 501
    problem = response.json()
    assert problem["extra"] == {"vendor": "ninjaone", "capability": "alert_acknowledge"}
    assert "NinjaOne's API has no acknowledge" in problem["detail"]
    assert "resolve" in problem["detail"]
    assert tools.gw.writes.active_count() == 0
    assert ninja.stats["requests"] == calls
    assert ninja.alert_exists(alert_ref.split(":", 1)[1])
    # The alert route answers the same reason.
    direct = tools.post(f"/v1/alerts/{alert_ref}/actions", {"action": "acknowledge"})
    assert direct.status_code == 501 and direct.json()["detail"] == problem["detail"]


def test_an_alert_action_on_a_ticket_without_a_linked_alert_is_refused(tools: Any) -> None:
    response = tools.post("/v1/tickets/cw:2/alert-actions", {"action": "resolve"})

    assert response.status_code == 409
    assert "not created from an alert" in response.json()["detail"]


def test_a_ticket_with_two_alerts_must_name_the_one_to_act_on(tools: Any) -> None:
    first, second = new_alert(tools, "Alert one"), new_alert(tools, "Alert two")
    ticket_ref = ticket_from_alert(tools, first)
    links.link_alert(tools.gw, ticket_ref, second)

    unnamed = tools.post(f"/v1/tickets/{ticket_ref}/alert-actions", {"action": "resolve"})
    stranger = tools.post(f"/v1/tickets/{ticket_ref}/alert-actions", {"action": "resolve", "alert": "ninja:nope"})
    named = tools.post(f"/v1/tickets/{ticket_ref}/alert-actions", {"action": "resolve", "alert": second})
    tools.drain()

    assert unnamed.status_code == 422 and unnamed.json()["extra"]["linked_alerts"] == [first, second]
    assert stranger.status_code == 422
    assert named.status_code == 202
    ninja = tools.sim("ninja")
    assert ninja.reset_count(second.split(":", 1)[1]) == 1
    assert ninja.alert_exists(first.split(":", 1)[1])


# --------------------------------------------------------------------------- configuration items


@pytest.mark.parametrize(
    ("fact", "matched_by"),
    [("cw_ci_ticket", "serial"), ("at_ci_ticket", "host name"), ("halo_ci_ticket", "serial")],
)
def test_a_psa_configuration_item_resolves_to_its_ninjaone_device(tools: Any, fact: str, matched_by: str) -> None:
    ticket_ref = tools.served.facts[fact]

    related = tools.get(f"/v1/tickets/{ticket_ref}/related").json()

    device = fs01(tools)
    kinds = [r["kind"] for r in related]
    assert kinds == ["configuration", "device"], (matched_by, related)
    assert "ACME-FS01" in related[0]["name"]
    assert related[1] == {
        "kind": "device", "ref": f"ninja:{device['id']}", "name": "ACME-FS01", "url": dashboard_url(tools, device["id"]),
    }  # fmt: skip


def test_a_configuration_item_found_in_another_customers_organization_is_not_linked(tools: Any) -> None:
    cw = tools.sim("cw")
    globex_ticket = next(t["id"] for t in cw.tickets.values() if t["company"]["id"] == 251)
    # Globex's ticket names a machine whose serial NinjaOne knows only under Acme.
    cw.add_configuration(251, "ACME-FS01", serial=fs01(tools)["system"]["serialNumber"], ticket_id=globex_ticket)

    related = tools.get(f"/v1/tickets/cw:{globex_ticket}/related").json()

    assert [r["kind"] for r in related] == ["configuration"]


# --------------------------------------------------------------------------- runbooks


def test_a_tickets_runbooks_are_its_customers_hudu_articles(tools: Any) -> None:
    hudu = tools.sim("hudu")
    cw = tools.sim("cw")
    acme_ticket = next(t["id"] for t in cw.tickets.values() if t["company"]["id"] == 250)

    body = tools.get(f"/v1/tickets/cw:{acme_ticket}/runbooks").json()

    company = hudu.company_id("Acme Corp")
    titles = {a["name"] for a in hudu.articles.values() if a["company_id"] == company and not a["draft"]}
    assert body["customer"] == "acme-corp"
    assert {r["title"] for r in body["runbooks"]} == titles
    assert all(r["url"].startswith(tools.base_url("hudu")) for r in body["runbooks"])


def test_a_ticket_of_an_unlinked_company_has_no_runbooks(tools: Any) -> None:
    at = tools.sim("at")
    umbrella_ticket = next(i for i, t in sorted(at.store.records["Tickets"].items()) if t["companyID"] == 178)

    body = tools.get(f"/v1/tickets/at:{umbrella_ticket}/runbooks").json()

    assert body == {"customer": "umbrella-health", "runbooks": [], "errors": {}}


def test_a_ticket_from_an_alert_lands_and_links_even_while_ninjaone_is_down(tools: Any) -> None:
    ninja = tools.sim("ninja")
    alert_ref = new_alert(tools, "Agent offline")
    ninja.set_faults(Faults(error_rate=1.0, error_status=503))

    ticket_ref = ticket_from_alert(tools, alert_ref)
    down = tools.get(f"/v1/tickets/{ticket_ref}/related").json()
    ninja.set_faults(Faults())
    up = tools.get(f"/v1/tickets/{ticket_ref}/related").json()

    assert down == [{"kind": "alert", "ref": alert_ref}]
    assert [r["kind"] for r in up] == ["alert", "device"]
    assert up[0]["name"] == "Agent offline"


# --------------------------------------------------------------------------- the configuration item convention


def test_a_configuration_record_carries_serial_and_host_name_for_matching() -> None:
    record = links.configuration_record("cw", 31, hostname="ACME-FS01", serial="CZJ0123FS1")
    assert record.name == "ACME-FS01 (serial CZJ0123FS1)"
    assert links.configuration_keys(record) == ("CZJ0123FS1", "ACME-FS01")
    labelled = links.configuration_record("at", 7, label="Reception printer", serial="PRN-9")
    assert links.configuration_keys(labelled) == ("PRN-9", None)
    assert links.configuration_keys(links.configuration_record("halo", 3, hostname="WS-22")) == (None, "WS-22")
