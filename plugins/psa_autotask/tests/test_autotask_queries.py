"""The query filter DSL end to end: the plugin's client against the simulator over loopback."""

from __future__ import annotations

import json

import httpx
import pytest

from gateway.errors import VendorRejected
from gateway_autotask import query as q
from gateway_autotask.client import AutotaskClient
from gateway_autotask.simulator import AutotaskSimulator


def titles(client: AutotaskClient, filters: list[q.Condition], entity: str = "Tickets") -> list[str]:
    field = "title" if entity == "Tickets" else "companyName"
    return [r[field] for r in client.query_all(entity, filters)]


def test_eq_and_noteq_with_case_insensitive_field_names(client: AutotaskClient) -> None:
    acme_open = titles(client, [{"op": "noteq", "field": "Status", "value": 5}, {"op": "eq", "field": "COMPANYid", "value": 175}])
    assert acme_open == ["Printer on 2nd floor offline", "New starter laptop for Road Runner", "VPN drops every hour", "Backup job failed on FS01", "Disk space low on SQL01"]


def test_or_and_nested_and_groups(client: AutotaskClient) -> None:
    found = titles(client, [q.any_of(q.eq("status", 7), {"op": "and", "items": [q.eq("companyID", 178), q.eq("priority", 1)]})])
    assert found == ["VPN drops every hour", "TPS report template broken", "EHR app slow in clinic B"]


def test_in_and_not_in(client: AutotaskClient) -> None:
    assert len(titles(client, [q.in_("status", [9, 12])])) == 3
    assert len(titles(client, [q.not_in("companyID", [175, 176, 177])])) == 4


def test_string_operators_ignore_case(client: AutotaskClient) -> None:
    assert titles(client, [q.condition("beginsWith", "title", "printer")]) == ["Printer on 2nd floor offline"]
    assert titles(client, [q.condition("endsWith", "title", "EXPIRING")]) == ["Website certificate expiring"]
    assert titles(client, [q.condition("contains", "title", "wi-fi")]) == ["New Wi-Fi access point in reception"]
    assert titles(client, [q.eq("title", "stapler requisition")]) == ["Stapler requisition"]


def test_numeric_ranges_and_exist(client: AutotaskClient) -> None:
    assert len(titles(client, [q.gte("id", 7810), q.condition("lt", "id", 7815)])) == 5
    unassigned = titles(client, [q.condition("notExist", "assignedResourceID")])
    assert set(unassigned) == {"Printer on 2nd floor offline", "Outlook keeps asking for password", "New Wi-Fi access point in reception", "Website certificate expiring"}
    assert len(titles(client, [q.exist("contactID")])) == 13


def test_boolean_values(client: AutotaskClient) -> None:
    assert len(titles(client, [q.eq("isActive", True)], entity="Companies")) == 5


def test_null_values_unknown_operators_and_fields_are_refused(client: AutotaskClient) -> None:
    with pytest.raises(VendorRejected, match="cannot be null"):
        client.query_page("Tickets", [{"op": "eq", "field": "status", "value": None}])
    with pytest.raises(VendorRejected, match="Unknown filter operator 'like'"):
        client.query_page("Tickets", [{"op": "like", "field": "title", "value": "x%"}])
    with pytest.raises(VendorRejected, match="Unable to find nope in the Tickets entity"):
        client.query_page("Tickets", [q.eq("nope", 1)])
    with pytest.raises(VendorRejected, match="Boolean values must be true or false"):
        client.query_page("Companies", [q.eq("isActive", 1)])


def test_max_records_and_include_fields(client: AutotaskClient) -> None:
    page = client.query_page("Tickets", [q.exist("id")], max_records=4, include_fields=["Title"])
    assert len(page.items) == 4 and page.next_url
    assert set(page.items[0]) == {"id", "title"}
    rest = client.next_page(page.next_url)
    assert rest.items[0]["id"] == page.items[-1]["id"] + 1


def test_count_and_get_with_search_parameter(client: AutotaskClient, sim: AutotaskSimulator, running) -> None:
    assert client.count("Tickets", [q.eq("status", 5)]) == 3
    headers = {"ApiIntegrationCode": sim.DEMO_INTEGRATION_CODE, "UserName": sim.DEMO_USERNAME, "Secret": sim.DEMO_SECRET}
    search = json.dumps({"filter": [{"op": "eq", "field": "CompanyName", "value": "ACME Corp"}]})
    answer = httpx.get(f"{running.base_url}/atservicesrest/v1.0/Companies/query", params={"search": search}, headers=headers)
    assert [c["id"] for c in answer.json()["items"]] == [175]
    assert answer.json()["pageDetails"] == {"count": 1, "requestCount": 500, "prevPageUrl": None, "nextPageUrl": None}


def test_entity_information_fields_shape(client: AutotaskClient) -> None:
    status = next(f for f in client.fields("TicketNotes") if f["name"] == "publish")
    assert status["isPickList"] and status["isRequired"]
    assert [(v["value"], v["label"]) for v in status["picklistValues"]] == [("1", "All Autotask Users"), ("2", "Internal Only")]


def test_put_replaces_the_ticket_and_patch_needs_an_id(sim: AutotaskSimulator, running) -> None:
    headers = {"ApiIntegrationCode": sim.DEMO_INTEGRATION_CODE, "UserName": sim.DEMO_USERNAME, "Secret": sim.DEMO_SECRET}
    url = f"{running.base_url}/atservicesrest/v1.0/Tickets"
    with httpx.Client(headers=headers) as http:
        missing_id = http.patch(url, json={"status": 8})
        replaced = http.put(url, json={"id": 7802, "title": "Replaced", "status": 8, "priority": 3, "companyID": 175, "queueID": 5, "dueDateTime": "2030-01-01T00:00:00Z"})
    assert missing_id.status_code == 400 and missing_id.json() == {"errors": ["Field id is required to update a ticket."]}
    assert replaced.json() == {"itemId": 7802}
    ticket = sim.store.get("Tickets", 7802)
    # Writable fields the body left out are cleared; read-only ones (number, dates) are kept.
    assert (ticket["title"], ticket["status"], ticket["contactID"]) == ("Replaced", 8, None)
    assert ticket["ticketNumber"].startswith("T") and ticket["createDate"]
